"""`validate`: discover roots, render each once, run the stages on the renders."""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from scripts.core.errors import UsageError
from scripts.core.model import STAGES, Finding, Render, Report, Target
from scripts.core.processes import WorkerPool, stop_pool
from scripts.loading.discover import discover, select
from scripts.loading.render import render_findings, render_with_flux
from scripts.pullrequest.changed import changed_roots
from scripts.stages import immutable, kustomize_effects, lint, policy, schema, security
from scripts.stages.policy_support import CONFIG_FILE as POLICY_CONFIG_FILE
from scripts.stages.policy_support import PolicyConfig


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

    # checkov is the slowest stage and runs in worker processes: start them
    # first (their import overlaps discovery), hand each render over as it
    # is made, and collect the findings last, reported in stage order.
    checkov = security.CheckovRun(repo, jobs=options.jobs) if "security" in options.stages else None
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
        checks = _StreamedChecks(repo, version, options.stages, checkov)
        on_render = checks.add
        if selection is not None:  # --changed rendered its choice (Flux builds included) already
            roots = {t.path for t in targets}
            renders = [selection.head[p] for p in sorted(selection.paths) if p.split("#")[0] in roots]
            findings += [f for f in selection.findings if f.target.split("#")[0] in roots]
            for render in renders:
                on_render(render)
        else:
            renders, flux_findings = render_with_flux(repo, targets, found.kustomizations, options.jobs, on_render)
            findings += flux_findings
        findings += render_findings(renders) + checks.effects_findings(renders)
        timings["render"] = time.perf_counter() - t0

        stage_findings = _own_stages(options, repo, renders, timings, progress, lint_job, checks,
                                     selection.base if selection is not None else {})
        if checkov is not None:
            progress("security: waiting for checkov")
            stage_findings["security"] = checkov.findings()
            timings["security"] = checkov.seconds
    except BaseException:
        if checkov is not None:
            checkov.stop()
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

    def __init__(self, repo: Path, version: str, stages: list[str], checkov: security.CheckovRun | None):
        self.repo = repo
        # Part of the render stage, which always runs: kustomize entries that select nothing.
        self.effects = kustomize_effects.KustomizeEffects(repo)
        self._effects: dict[str, list[Finding]] = {}
        self.checkov = checkov
        self.schema = schema.SchemaRun(repo, version) if "schema" in stages else None
        self.policy = policy.PolicyRun(repo, version, PolicyConfig.load(repo),
                                       store=self.schema.store if self.schema is not None else None) \
            if "policy" in stages else None

    def add(self, render: Render) -> None:
        if not render.ok and render.error:
            explained = kustomize_effects.explain_failure(self.repo, render.target, render.error)
            if explained is not None:
                render.error, render.error_source = explained
        if self.checkov is not None:
            self.checkov.submit(render)
        if self.schema is not None:
            self.schema.add(render)
        if self.policy is not None:
            self.policy.add(render)
        self._effects[render.target.path] = self.effects.check(render)

    def effects_findings(self, renders: list[Render]) -> list[Finding]:
        """The entries that select nothing, in render order (computed for any render not added yet)."""
        return [f for r in renders
                for f in (self._effects[r.target.path] if r.target.path in self._effects else self.effects.check(r))]


def _own_stages(options: Options, repo: Path, renders: list[Render], timings: dict[str, float], progress: Progress,
                lint_job: Future | None, checks: _StreamedChecks, base_renders: dict[str, Render]
                ) -> dict[str, list[Finding]]:
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
        stage_findings["lint"] = lint.run(repo, [r.target for r in renders], files=files, workflows=workflows)
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
        stage_findings["policy"] = checks.policy.finish(renders)
        timings["policy"] = checks.policy.seconds
    return stage_findings
