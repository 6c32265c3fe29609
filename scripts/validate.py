"""`validate`: discover roots, render each once, run the stages on the renders."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from scripts.core.cache import Store, digest, tree_digest
from scripts.core.errors import InputError, UsageError
from scripts.core.model import STAGES, Finding, Render, Report, Resource, Target
from scripts.core.processes import WorkerPool, stop_pool
from scripts.core.yamlio import load_render
from scripts.loading.buildinputs import InputDigests
from scripts.loading.discover import Kustomization, discover, select
from scripts.loading.fluxcluster import FLUX_API_LINE
from scripts.loading.render import SourceIndex, _lazy, kubectl_binary, render_findings, render_with_flux
from scripts.pullrequest.changed import changed_roots
from scripts.stages import immutable, kustomize_effects, lint, policy, schema, security
from scripts.stages.policy_support import CONFIG_FILE as POLICY_CONFIG_FILE
from scripts.stages.policy_support import PolicyConfig
from scripts.stages.resultcache import (
    REPOSITORY_SKIP,
    RenderEntry,
    policy_results_from_json,
    policy_results_json,
    run_fingerprint,
)


@dataclass
class Options:
    repo: Path = Path(".")
    targets: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    kubernetes_version: str | None = None  # None: cluster.kubernetes_version in config/policy.yaml
    jobs: int | None = None
    shard: tuple[int, int] | None = None  # (index from 1, count)
    changed: bool = False  # only the roots whose render differs from `base`
    base: str | None = None  # with changed: a git ref (None: the merge base with the default branch)
    progress: bool = False
    cache: bool = True  # read and write .cache/validate/ (never with `changed`)


CACHE_DIR = ".cache/validate"


def default_configs(repo: Path) -> list[str]:
    """This project's configuration files that the repository lacks, each of
    which is then replaced by documented defaults: yamllint with this
    project's rules, the policy suite with no registry or environment rules."""
    return [name for name in (lint.CONFIG_FILE, POLICY_CONFIG_FILE) if not (repo / name).is_file()]


def parse_shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        raise UsageError(f"--shard {value}: expected I/N, e.g. 2/4") from None
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {value}: I must be between 1 and N")
    return index, count


def shard(targets: list[Target], index: int, count: int) -> list[Target]:
    """Deterministic split: the sorted roots dealt round-robin, so every root
    lands in exactly one shard and shard sizes differ by at most one."""
    ordered = sorted(targets, key=lambda t: t.path)
    return [t for position, t in enumerate(ordered) if position % count == index - 1]


class Progress:
    """One line on stderr while long stages run, only on a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{text}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def run(options: Options) -> Report:
    started = time.perf_counter()
    progress = Progress(options.progress)
    # A stage that does not run has no timing (null in the JSON report), so
    # no report or summary can show it as passed.
    timings: dict[str, float | None] = {stage: 0.0 if stage in (*options.stages, "render") else None
                                        for stage in STAGES}
    repo = options.repo.resolve()
    version = schema.check_version(options.kubernetes_version or PolicyConfig.load(repo).kubernetes_version)
    unknown = [s for s in options.stages if s not in STAGES]
    if unknown:
        raise UsageError(f"--stage {unknown[0]}: choose from {', '.join(STAGES)}")

    store = Store(repo / CACHE_DIR) if options.cache and not options.changed else None
    # checkov is the slowest stage and runs in worker processes: start them
    # first (their import overlaps discovery), hand each render over as it
    # is made, and collect the findings last, reported in stage order. With
    # a cache that has entries, they start only when a render is not in it.
    wants_checkov = "security" in options.stages
    checkov = security.CheckovRun(repo, jobs=options.jobs) \
        if wants_checkov and (store is None or not store.has_entries()) else None
    checks: _StreamedChecks | None = None
    lint_job: Future | None = None
    # Lint runs in a process of its own: in a thread it would hold this
    # process's GIL while the render threads wait to start the next kustomize.
    helper = WorkerPool(1)
    try:
        progress("discovering roots")
        t0 = time.perf_counter()
        found = discover(repo)
        # --changed chooses its roots here, after the workers started: checkov's
        # import overlaps the selection, which renders the candidates (kept).
        selection = changed_roots(repo, options.base, options.jobs, found) if options.changed else None
        if not found.targets and not found.findings and selection is None:
            raise UsageError(f"--repo {options.repo}: no kustomization under it, nothing to validate")
        targets = select(found.targets, repo, options.targets)
        if options.shard:
            targets = shard(targets, *options.shard)
        chosen = {t.path for t in targets}
        findings = [f for f in found.findings if f.target in chosen or not options.targets]
        whole_repo = not (options.targets or selection is not None or options.shard)
        if "lint" in options.stages and whole_repo:
            # Every YAML file of the tree, linted while kustomize renders:
            # its findings are given their roots once the renders exist.
            files = lint.files_to_lint(repo, found.targets)
            lint_job = helper.submit(_timed, lint.run, repo, [], files, True)

        progress(f"rendering {len(targets)} targets")
        checks = _StreamedChecks(repo, version, options.stages, checkov,
                                 (lambda: security.CheckovRun(repo, jobs=options.jobs)) if wants_checkov else None)
        if store is not None:
            checks.kept = _KeptRenders(repo, store, found.kustomizations,
                                       _fingerprint(repo, version, options.stages, checks))
        on_render = checks.add
        if selection is not None:  # --changed rendered its choice (Flux builds included) already
            roots = {t.path for t in targets}
            renders = [selection.head[p] for p in sorted(selection.paths) if p.split("#")[0] in roots]
            findings += [f for f in selection.findings if f.target.split("#")[0] in roots]
            for render in renders:
                on_render(render)
        else:
            renders, flux_findings = render_with_flux(repo, targets, found.kustomizations, options.jobs, on_render,
                                                      checks.kept.lookup if checks.kept is not None else None)
            findings += flux_findings
        findings += render_findings(renders) + checks.effects_findings(renders)
        timings["render"] = time.perf_counter() - t0
        timings["effects"] = checks.effects_seconds  # kustomize's no-ops, part of render

        lint_scope = None
        if selection is not None and "lint" in options.stages:
            # The renders' files, and every changed file a build reads or that
            # configures a tool: a change that leaves every render as it was
            # (a trailing space, a broken indent yamllint flags) is still linted,
            # and so are changed workflows.
            linted = set(lint.files_to_lint(repo, found.targets))
            files = {f for r in renders for f in r.target.sources if f.endswith((".yaml", ".yml"))}
            lint_scope = _LintScope(sorted(files | (set(selection.files) & linted)), found.targets,
                                    any(f.startswith(".github/workflows/") for f in selection.files))
        stage_findings = _own_stages(options, repo, renders, timings, progress, lint_job, checks,
                                     selection.base if selection is not None else {}, lint_scope)
        if checks.checkov is not None:
            progress("security: waiting for checkov")
            stage_findings["security"] = checks.checkov.findings()
            timings["security"] = checks.checkov.seconds
        if checks.kept is not None:
            # Kept renders' findings among the new ones, by render path as checkov's are.
            stage_findings["security"] = sorted(stage_findings["security"] + checks.kept_security,
                                                key=lambda f: f.target)
            checks.kept.save(renders, checks, stage_findings["security"], options.stages)
    except BaseException:
        running = checks.checkov if checks is not None else checkov
        if running is not None:
            running.stop()
        raise
    finally:
        stop_pool(helper)
    for stage in STAGES[1:]:
        findings += stage_findings[stage]
    progress.done()
    timings["total"] = time.perf_counter() - started
    return Report(kubernetes_version=version, renders=renders, findings=findings, timings=timings)


def _timed(function, *args):
    t0 = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - t0


class _StreamedChecks:
    """What runs on each render as it is made, while kustomize makes the
    next: hand it to checkov's workers first, then schema and the policy
    rules that need one render. (Run after the last render, they left one
    core idle: 2.5 s at 50 services, 8 s at 200.)"""

    def __init__(self, repo: Path, version: str, stages: list[str], checkov: security.CheckovRun | None,
                 start_checkov: Callable[[], security.CheckovRun] | None = None):
        self.repo = repo
        # Part of the render stage, which always runs: kustomize entries that select nothing.
        self.effects = kustomize_effects.KustomizeEffects(repo)
        self._effects: dict[str, list[Finding]] = {}
        self.effects_seconds = 0.0  # CPU-seconds, part of the render stage's time
        self.checkov = checkov
        self.start_checkov = start_checkov  # when checkov is not running yet and a render needs it
        self.kept: _KeptRenders | None = None
        self.kept_security: list[Finding] = []
        self.schema = schema.SchemaRun(repo, version) if "schema" in stages else None
        self.policy = policy.PolicyRun(repo, version, PolicyConfig.load(repo),
                                       store=self.schema.store if self.schema is not None else None) \
            if "policy" in stages else None

    def add(self, render: Render) -> None:
        entry = self.kept.hits.get(render.target.path) if self.kept is not None else None
        if entry is not None:
            self._add_kept(render, entry)
            return
        if not render.ok and render.error:
            explained = kustomize_effects.explain_failure(self.repo, render.target, render.error)
            if explained is not None:
                render.error, render.error_source = explained
        if self.checkov is None and self.start_checkov is not None:
            self.checkov = self.start_checkov()
        if self.checkov is not None:
            self.checkov.submit(render)
        if self.schema is not None:
            self.schema.add(render)
        if self.policy is not None:
            self.policy.add(render)
        t0 = time.thread_time()  # CPU, as the API server's checks are timed (ApiServerChecks.seconds)
        shared = self._effects.get(render.built_as) if render.built_as is not None else None
        if shared is not None:
            # The entries acted (or not) in kustomize's run, which this build
            # shares with its root: the root's findings, on this target too.
            self._effects[render.target.path] = [dataclasses.replace(f, target=render.target.path) for f in shared]
        else:
            self._effects[render.target.path] = self.effects.check(render)
        self.effects_seconds += time.thread_time() - t0

    def _add_kept(self, render: Render, entry: RenderEntry) -> None:
        """A render kept from an earlier run: its findings as they were."""
        path = render.target.path
        self._effects[path] = entry.effects
        self.kept_security += entry.security or []
        if self.schema is not None:
            self.schema._results[path] = entry.schema or []
        if self.policy is not None:
            # The rules it holds no result of run at the end (PolicyRun.finish),
            # unless the run's policy results are kept too (_KeptRenders.restore_policy).
            for rule, found in (entry.policy or {}).items():
                self.policy._results[(rule, path)] = found

    def effects_findings(self, renders: list[Render]) -> list[Finding]:
        """The entries that select nothing, in render order (computed for any render not added yet)."""
        return [f for r in renders
                for f in (self._effects[r.target.path] if r.target.path in self._effects else self.effects.check(r))]


def _fingerprint(repo: Path, version: str, stages: list[str], checks: _StreamedChecks) -> str:
    try:
        kubectl: str | None = kubectl_binary()
    except InputError:
        kubectl = None
    missing = checks.policy._missing_tools if checks.policy is not None else []
    programs = tuple(rule.requires for rule in checks.policy.rules if rule.requires) if checks.policy else ()
    return run_fingerprint(repo, version, stages, kubectl, [m for m in missing if m], programs=programs)


def cacheable_rule(rule: policy.Rule) -> bool:
    """A per-render rule whose result depends on the render and the
    configuration only, or that reads the repository only to locate fields
    in the render's own build files (which the render's key holds)."""
    return "repo" not in rule.params or rule.reads == "build"


def _run_wide_rules(run: policy.PolicyRun) -> list[policy.Rule]:
    """The rules whose results are not kept with each render: those over
    every render, and those that read the repository beyond the build."""
    kept = {rule.name for rule in run._per_render if cacheable_rule(rule)}
    return [rule for rule in run.rules if rule.name not in kept and rule.requires not in run._missing_tools]


class _KeptRenders:
    """This run's use of .cache/validate/: renders looked up by their
    build's inputs while the others render, and stored at the end."""

    def __init__(self, repo: Path, store: Store, kustomizations: dict[str, Kustomization], fingerprint: str):
        self.repo = repo
        self.store = store
        self.kustomizations = kustomizations
        self.fingerprint = fingerprint
        self.index = SourceIndex(repo)
        self.inputs = InputDigests(repo, kustomizations)
        self.keys: dict[str, str] = {}  # target path -> its entry's key
        self.hits: dict[str, RenderEntry] = {}
        self.policy_kept = False  # the run-wide policy results came from the cache
        self._repository: str | None = None  # every file's digest, for the run-wide policy key

    def _policy_key(self, renders: list[Render]) -> str | None:
        """The key of the run-wide policy results: every render's key, and
        every file of the repository (such a rule may read any of them, as
        the image-marker scan does), so any edit anywhere recomputes them."""
        keys = [self.keys.get(r.target.path) for r in renders]
        if not renders or any(k is None for k in keys):
            return None
        if self._repository is None:  # once per run: restore and save ask for the same
            self._repository = tree_digest(self.repo, skip=REPOSITORY_SKIP, known=self.inputs.file_digests())
        return digest(self.fingerprint, "run-wide policy", self._repository,
                      *(f"{r.target.path}={k}" for r, k in zip(renders, keys, strict=True)))

    def restore_policy(self, run: policy.PolicyRun, renders: list[Render]) -> None:
        """The run-wide rules' results of an earlier run with the same inputs,
        all of them or none."""
        key = self._policy_key(renders)
        value = self.store.get(key) if key is not None else None
        try:
            kept = policy_results_from_json(value, [r.name for r in _run_wide_rules(run)],
                                            [r.target.path for r in renders if r.ok]) if value is not None else None
        except ValueError:
            kept = None
        if kept is not None:
            run._results.update(kept)
            self.policy_kept = True

    def save_policy(self, run: policy.PolicyRun, renders: list[Render]) -> None:
        key = None if self.policy_kept else self._policy_key(renders)
        if key is None:
            return
        paths = [r.target.path for r in renders if r.ok]
        results = {(rule.name, path): run._results.get((rule.name, path))
                   for rule in _run_wide_rules(run) for path in paths}
        if any(found is None for found in results.values()):
            return  # a rule that did not run on every render (none ran when nothing rendered)
        self.store.put(key, policy_results_json(results))

    def lookup(self, target: Target) -> Render | None:
        """The kept render of this target (called from the render threads)."""
        inputs = self.inputs.target_digest(target)
        if inputs is None:
            return None
        key = digest(self.fingerprint, inputs)
        self.keys[target.path] = key
        value = self.store.get(key)
        if value is None:
            return None
        try:
            entry = RenderEntry.from_json(value)
        except ValueError:
            return None
        self.hits[target.path] = entry
        return self._render(target, entry, key)

    def _documents(self, key: str, text: str) -> list[dict] | None:
        """The parsed documents kept beside an entry whose render declares Flux
        objects (a cluster root: every run parses it to find its builds), when
        they were kept for exactly this text."""
        value = self.store.get(digest(key, "documents"))
        if not (isinstance(value, dict) and value.get("text") == digest(text)
                and isinstance(value.get("documents"), list)):
            return None
        return value["documents"] if all(isinstance(d, dict) for d in value["documents"]) else None

    def _render(self, target: Target, entry: RenderEntry, key: str) -> Render:
        if entry.error is not None or entry.text is None:
            return Render(target=target, text=entry.text, error=entry.error, error_source=entry.error_source)
        if entry.object_sources is None:
            return _lazy(target, entry.text, self.index)
        text, sources = entry.text, entry.object_sources
        render = Render(target=target, text=text)

        def parse() -> list[Resource]:
            try:
                docs = self._documents(key, text) if FLUX_API_LINE.search(text) else None
                if docs is None:
                    docs = [d for d in load_render(text, target.path) if isinstance(d, dict)]
            except InputError as exc:
                render.error = f"kustomize output is not YAML: {exc.message}"
                return []
            if len(docs) != len(sources):  # not the text these sources were found for: find them again
                return _lazy(target, text, self.index).objects
            return [Resource(doc=doc, source=source) for doc, source in zip(docs, sources, strict=True)]
        render._parse = parse
        return render

    def save(self, renders: list[Render], checks: _StreamedChecks, security_findings: list[Finding],
             stages: list[str]) -> None:
        """Store each render made this run with every per-render result of
        the stages chosen; a render missing one of them is not stored."""
        if "security" in stages and checks.checkov is not None and checks.checkov.refused:
            return  # checkov refused to run: nothing it would have found can be kept
        by_target: dict[str, list[Finding]] = {}
        for finding in security_findings:
            by_target.setdefault(finding.target, []).append(finding)
        cached_rules = [rule for rule in checks.policy._per_render if cacheable_rule(rule)] \
            if checks.policy is not None else []
        for render in renders:
            path = render.target.path
            key = self.keys.get(path)
            if key is None or path in self.hits or path not in checks._effects:
                continue
            schema_findings = None
            if checks.schema is not None:
                schema_findings = checks.schema._results.get(path)
                if schema_findings is None:
                    continue
            security_found = by_target.get(path, []) if "security" in stages else None
            if security_found is not None and any(f.rule == "checkov-failed" for f in security_found):
                continue  # a worker that died says nothing about the render
            policy_found = None
            if checks.policy is not None:
                policy_found = {}
                if render.ok:
                    results = {rule.name: checks.policy._results.get((rule.name, path)) for rule in cached_rules}
                    if any(v is None for v in results.values()):
                        continue
                    policy_found = {name: found for name, found in results.items() if found is not None}
            entry = RenderEntry(
                text=render.text, error=render.error, error_source=render.error_source,
                object_sources=[o.source for o in render._objects] if render._objects is not None else None,
                effects=checks._effects[path], schema=schema_findings, security=security_found,
                policy=policy_found)
            self.store.put(key, entry.as_json())
            if render.ok and render.text and FLUX_API_LINE.search(render.text):
                self._keep_documents(key, render.text)

    def _keep_documents(self, key: str, text: str) -> None:
        """A cluster root's documents as JSON, read afresh from its text (not
        the objects the stages had in hand), when JSON carries them exactly."""
        try:
            documents = [d for d in load_render(text, "") if isinstance(d, dict)]
            if json.loads(json.dumps(documents)) != documents:
                return
        except (InputError, TypeError, ValueError):
            return  # a value JSON cannot carry (a date PyYAML read): parsed from the text instead
        self.store.put(digest(key, "documents"), {"text": digest(text), "documents": documents})


@dataclass
class _LintScope:
    """What lint reads under --changed: files, their possible owners, workflows or not."""

    files: list[str]
    targets: list[Target]
    workflows: bool


def _own_stages(options: Options, repo: Path, renders: list[Render], timings: dict[str, float], progress: Progress,
                lint_job: Future | None, checks: _StreamedChecks, base_renders: dict[str, Render],
                lint_scope: _LintScope | None = None) -> dict[str, list[Finding]]:
    """lint, schema and policy: this project's own stages."""
    stage_findings: dict[str, list[Finding]] = {stage: [] for stage in STAGES}
    if lint_job is not None:
        progress("lint: yamllint and workflow checks")
        lint_findings, timings["lint"] = lint_job.result()  # its own time, though it overlapped rendering
        stage_findings["lint"] = lint.assign_owners(lint_findings, [r.target for r in renders])
    elif "lint" in options.stages:
        progress("lint: yamllint and workflow checks")
        t0 = time.perf_counter()
        files = sorted({f for r in renders for f in r.target.sources if f.endswith((".yaml", ".yml"))})
        workflows = options.shard is not None and options.shard[0] == 1
        owners = [r.target for r in renders]
        if lint_scope is not None:
            files, owners, workflows = lint_scope.files, lint_scope.targets, lint_scope.workflows
        stage_findings["lint"] = lint.run(repo, owners, files=files, workflows=workflows)
        timings["lint"] = time.perf_counter() - t0
    # schema and policy: their time is what they took on each render plus what is left at the end.
    if checks.schema is not None:
        progress("schema: validating objects")
        stage_findings["schema"] = checks.schema.finish(renders)
        t0 = time.perf_counter()
        # --changed: updates the API server would refuse (immutable fields).
        for render in renders if base_renders else []:
            stage_findings["schema"] += immutable.findings(base_renders.get(render.target.path), render)
        timings["schema"] = checks.schema.seconds + time.perf_counter() - t0
        timings["api"] = checks.schema.api.seconds  # the API server's validation, part of schema
    if checks.policy is not None:
        progress("policy: tests/policy")
        if checks.kept is not None:
            checks.kept.restore_policy(checks.policy, renders)
        stage_findings["policy"] = checks.policy.finish(renders)
        if checks.kept is not None:
            checks.kept.save_policy(checks.policy, renders)
        timings["policy"] = checks.policy.seconds
    return stage_findings
