"""What a cluster applies, followed the way Flux follows it.

A cluster root is a root whose render declares Flux Kustomizations (this
repository's `clusters/prod`, or `flux bootstrap`'s `clusters/<name>/`
built from a generated kustomization). Each of its Flux Kustomizations is
built as kustomize-controller builds it, and becomes a root of its own,
`<cluster root>#<name>`; a build that declares further Kustomizations leads
to their builds too (each (namespace, name) once, so a Kustomization that
applies its own path ends there).

A Kustomization's `sourceRef` must name a source the cluster declares: in
the cluster root's render or in any build of it (renders arrive in any
order, so a reference waits until every render of the cluster is in). Then:

- a GitRepository of this repository: `spec.path` is built from the tree,
  less what the source leaves out (`.sourceignore`, `spec.ignore`);
- an ExternalArtifact made by an ArtifactGenerator (source-watcher) from
  sources of this repository: the artifact is laid out from the
  generator's copy rules (scripts/loading/artifacts.py), and `spec.path` is
  built inside it;
- an OCIRepository, a Bucket, a GitRepository of another repository, or an
  artifact made from one: not built, and a notice says so;
- nothing declared: an error (that Kustomization never reconciles), unless
  config/policy.yaml's `cluster.provides` lists the source with a reason.

`flux bootstrap` writes the GitRepository `flux-system/flux-system` into
`clusters/<name>/flux-system/gotk-sync.yaml`, pointing at the repository
it writes to. A cluster directory with that `flux-system/` directory whose
render does not declare the GitRepository (the file not committed, or a
placeholder) has it implied: it is this repository.

Which GitRepository is this repository: one whose URL is a remote of this
checkout; when no remote matches any GitRepository of the cluster (an
export, a fork, a checkout without remotes), every GitRepository it
declares is taken as this repository.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scripts.core import processes
from scripts.core.errors import InputError
from scripts.core.model import Finding, FluxSource, Render, Resource, Target, finding_for
from scripts.core.yamlio import load_file
from scripts.loading import artifacts, sourceignore
from scripts.loading.discover import closure, generated_listing, kustomization_file, scan
from scripts.loading.flux import inside, is_flux_kustomization, shape_problem
from scripts.loading.fluxkinds import GENERATOR_GROUP, KUSTOMIZATION_SOURCES, SOURCE_GROUP, is_artifact_generator

POLICY_FILE = "config/policy.yaml"
BOOTSTRAP_SOURCE = ("GitRepository", "flux-system", "flux-system")  # (kind, namespace, name)
NOT_HERE = "not built: the artifact is not in this repository"


@dataclass(frozen=True)
class Provided:
    """A source the cluster has without this repository declaring it."""

    kind: str
    name: str
    namespace: str | None
    reason: str


def provided_sources(repo: Path) -> list[Provided]:
    """config/policy.yaml's `cluster.provides` entries (the policy stage
    checks the file's shape and reports it; a broken file provides nothing)."""
    path = repo / POLICY_FILE
    if not path.is_file():
        return []
    try:
        data = load_file(path, POLICY_FILE)
    except InputError:  # reported by the policy stage, with its line
        return []
    cluster = data.get("cluster") if isinstance(data, dict) else None
    entries = cluster.get("provides") if isinstance(cluster, dict) else None
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("kind") and entry.get("name") and entry.get("reason"):
            out.append(Provided(str(entry["kind"]), str(entry["name"]),
                                str(entry["namespace"]) if entry.get("namespace") else None, str(entry["reason"])))
    return out


def normalised_url(url: str) -> str:
    """host/path of a Git URL, for comparing https://, ssh:// and scp-like
    forms of one repository."""
    text = url.strip()
    text = re.sub(r"^[a-z+]+://", "", text)
    text = re.sub(r"^[^@/]+@", "", text)
    if ":" in text.split("/", 1)[0]:  # scp-like host:path, or host:port
        host, _, rest = text.partition(":")
        rest = re.sub(r"^\d+/", "", rest)
        text = f"{host}/{rest}"
    text = text.rstrip("/")
    text = text[:-4] if text.endswith(".git") else text
    host, _, path = text.partition("/")
    return f"{host.lower()}/{path}"


@dataclass
class RunContext:
    """What every cluster of one run shares: the tree's .sourceignore
    patterns, the provided sources, and this checkout's remotes (asked of
    git once, and only when a cluster declares two different URLs)."""

    repo: Path
    tree_patterns: list[str] | None = None
    provided: list[Provided] | None = None
    _remotes: set[str] | None = None
    _trees: dict[tuple[str, ...], artifacts.Tree] = field(default_factory=dict)

    def patterns(self) -> list[str]:
        if self.tree_patterns is None:
            self.tree_patterns = sourceignore.repository_patterns(self.repo)
        return self.tree_patterns

    def provides(self) -> list[Provided]:
        if self.provided is None:
            self.provided = provided_sources(self.repo)
        return self.provided

    def remotes(self) -> set[str]:
        if self._remotes is None:
            proc = processes.run(["git", "-C", str(self.repo), "config", "--get-regexp", r"^remote\..*\.url$"],
                                 text=True)
            self._remotes = {normalised_url(line.split(None, 1)[1]) for line in proc.stdout.splitlines()
                             if len(line.split(None, 1)) == 2} if proc.returncode == 0 else set()
        return self._remotes

    def repository_tree(self, patterns: tuple[str, ...]) -> artifacts.Tree:
        """This repository as a GitRepository with these exclusions holds it."""
        tree = self._trees.get(patterns)
        if tree is None:
            tree = self._trees[patterns] = artifacts.repository_tree(self.repo, sourceignore.matcher(patterns))
        return tree


@dataclass
class SourceOutcome:
    """Where a Kustomization's (or a generator's) source leads."""

    patterns: tuple[str, ...] | None = None  # a GitRepository of this repository: what it leaves out
    tree: artifacts.Tree | None = None  # an ExternalArtifact made here: its files
    outside: str | None = None  # why its artifact is not in this repository
    missing: str | None = None  # what is not declared (yet)
    problem: str | None = None  # why the artifact cannot be made (a copy rule fails)
    name: str = ""


def _key(kind: object, namespace: object, name: object) -> tuple[str, str, str]:
    return (str(kind or ""), str(namespace or ""), str(name or ""))


class Cluster:
    """One cluster root and every Flux build it leads to."""

    def __init__(self, root: Target, kustomizations: dict, context: RunContext):
        self.root = root
        self.repo = context.repo
        self.context = context
        self.kustomizations = kustomizations
        # bootstrap's layout: clusters/<name>/flux-system/ next to the cluster's manifests
        self.bootstrap = root.directory != "." and (self.repo / root.directory / "flux-system").is_dir()
        self.renders: list[Render] = []  # every render of the cluster, root first
        self.sources: dict[tuple[str, str, str], Resource] = {}
        self.generated: dict[tuple[str, str], tuple[Resource, dict]] = {}  # (ns, artifact) -> generator, entry
        self.patterned: list[Resource] = []  # generators with spec.pathPattern
        self.flux: dict[tuple[str, str], Resource] = {}  # (ns, name) -> Kustomization, first seen
        self.waiting: list[tuple[Resource, Render]] = []
        self.names: dict[str, tuple[str, str]] = {}  # target name -> (ns, name)
        self.findings: list[Finding] = []

    # ---- the renders of the cluster, as they arrive ----

    @property
    def objects(self) -> list[Resource]:
        """Every object of the cluster's renders (parsed when first asked for)."""
        return [obj for render in self.renders for obj in render.objects]

    def add(self, render: Render) -> list[Target]:
        """Take in one render of this cluster; the builds that can now be made."""
        self.renders.append(render)
        # Kustomizations, sources and generators are all Flux APIs: a render
        # with no object of one brings nothing new, and is not parsed here
        # (it is parsed later, while checkov reads its text). kustomize writes
        # each object's apiVersion first, at the start of a line; the label
        # kustomize.toolkit.fluxcd.io/name on every object of a Flux build
        # is no such line.
        if not FLUX_API_LINE.search(render.text or ""):
            return []
        new = []
        for obj in render.objects:
            kind = obj.kind
            if obj.api_version.startswith(SOURCE_GROUP):
                self.sources.setdefault(_key(kind, obj.namespace or "", obj.name), obj)
            elif obj.api_version.startswith(GENERATOR_GROUP) and is_artifact_generator(obj.doc):
                self._add_generator(obj)
            elif is_flux_kustomization(obj):
                key = (obj.namespace or "", obj.name)
                if key in self.flux:  # the same object met again (a build of a path that declares it)
                    continue
                self.flux[key] = obj
                problem = shape_problem(obj.doc)
                if problem:
                    self.findings.append(finding_for(obj, stage="render", target=self._name(obj),
                                                     rule="flux-kustomization-invalid",
                                                     message=f"not built: {problem}"))
                    continue
                new.append((obj, render))
        builds = []
        still = []
        for obj, declared_in in self.waiting + new:
            outcome = self._resolve(obj, declared_in, final=False)
            if outcome is None:
                still.append((obj, declared_in))
            elif isinstance(outcome, Target):
                builds.append(outcome)
        self.waiting = still
        return builds

    def finish(self) -> list[Finding]:
        """The findings, once every render of the cluster is in: references
        still unresolved are errors now, and dependsOn is checked."""
        for obj, declared_in in self.waiting:
            self._resolve(obj, declared_in, final=True)
        self.waiting = []
        valid = [o for o in self.flux.values() if not shape_problem(o.doc)]
        findings = self.findings + self._dependencies(valid)
        return sorted(findings, key=lambda f: (f.target, f.file or "", f.line or 0, f.rule, f.message))

    # ---- names ----

    def _name(self, obj: Resource) -> str:
        key = (obj.namespace or "", obj.name)
        taken = self.names.get(obj.name)
        if taken is None or taken == key:
            self.names[obj.name] = key
            return f"{self.root.path}#{obj.name}"
        return f"{self.root.path}#{obj.namespace}/{obj.name}"  # same name in another namespace

    # ---- generators ----

    def _add_generator(self, obj: Resource) -> None:
        problem = artifacts.check_generator(obj.doc)
        if problem:
            self.findings.append(finding_for(obj, stage="render", target=self.root.path,
                                             rule="flux-artifact-invalid", message=f"{obj.ref}: {problem}"))
            return
        spec = obj.doc["spec"]
        if spec.get("pathPattern"):
            # Its artifacts' names come from its source's directories: known
            # once that source is, so they are worked out when looked for.
            self.patterned.append(obj)
            return
        for entry in spec["artifacts"]:
            self.generated.setdefault((obj.namespace or "", str(entry["name"])), (obj, entry))

    def _pattern_artifacts(self, obj: Resource, seen: set) -> list[tuple[str, dict]]:
        """The artifacts of a generator with `pathPattern`: one set per
        directory of the source that matches it, placeholders filled in."""
        spec = obj.doc["spec"]
        pattern = str(spec["pathPattern"])
        alias, _, body = pattern[1:].partition("/") if pattern.startswith("@") else ("", "", "")
        source = self._generator_source(obj, alias, seen)
        tree = source.tree if source.tree is not None else \
            self.context.repository_tree(source.patterns) if source.patterns is not None else None
        if tree is None:
            return []  # the artifacts' names cannot be known: Kustomizations naming them wait, then say why
        regex = re.compile("^" + re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(body)) + "$")
        directories = sorted(artifacts.Listing.of(tree).dirs)
        out = []
        for directory in directories:
            match = regex.match(directory)
            if not match:
                continue
            raw = match.groupdict()
            lower = {k: v.lower() for k, v in raw.items()}
            for entry in spec["artifacts"]:
                rendered = dict(entry, name=_fill(str(entry["name"]), lower))
                rendered["copy"] = [dict(op, **{k: _fill(str(op.get(k, "")), raw) for k in ("from", "to")})
                                    for op in entry.get("copy") or [] if isinstance(op, dict)]
                out.append((rendered["name"], rendered))
        return out

    def _generator_source(self, generator: Resource, alias: str, seen: set) -> SourceOutcome:
        spec = generator.doc["spec"]
        entry = next((s for s in spec["sources"] if s.get("alias") == alias), None)
        if entry is None:
            return SourceOutcome(problem=f"{generator.ref}: no source with alias {alias!r}")
        kind, name = entry.get("kind"), entry.get("name")
        namespace = entry.get("namespace") or generator.namespace or ""
        return self._source(_key(kind, namespace, name), seen)

    def _artifact(self, namespace: str, name: str, seen: set) -> SourceOutcome:
        """The files of an ExternalArtifact a generator of this cluster makes."""
        made = self.generated.get((namespace, name))
        label = f"ExternalArtifact {namespace}/{name}"
        for generator in self.patterned if made is None else []:
            if (generator.namespace or "") == namespace:
                made = next(((generator, entry) for artifact, entry in self._pattern_artifacts(generator, seen)
                             if artifact == name), None)
                if made is not None:
                    break
        if made is None:
            declared = self.sources.get(_key("ExternalArtifact", namespace, name))
            if declared is not None:
                return SourceOutcome(outside=f"{label} is made outside this repository (no ArtifactGenerator of the "
                                       "cluster makes it)", name=label)
            return SourceOutcome(missing=f"no ArtifactGenerator of this cluster makes {label}", name=label)
        if (namespace, name) in seen:
            return SourceOutcome(problem=f"{label} is made from itself", name=label)
        generator, entry = made
        trees: dict[str, artifacts.Tree] = {}
        for alias in _aliases(entry):
            source = self._generator_source(generator, alias, seen | {(namespace, name)})
            if source.tree is None and source.patterns is None:
                reason = source.outside or source.missing or source.problem
                source.name = label
                if source.outside:
                    source.outside = f"{label} is made by {generator.ref} from {reason}"
                elif source.missing:
                    source.missing = f"{label} is made by {generator.ref} from a source that is not declared: " \
                                     f"{reason}"
                else:
                    source.problem = f"{label}: {reason}"
                return source
            trees[alias] = source.tree if source.tree is not None else \
                self.context.repository_tree(source.patterns or ())
        try:
            return SourceOutcome(tree=artifacts.build_artifact(entry, trees), name=label)
        except artifacts.CopyError as exc:
            return SourceOutcome(problem=f"{generator.ref} cannot make {label}: {exc}", name=label)

    # ---- sources ----

    def source(self, kind: str, namespace: str, name: str) -> SourceOutcome:
        """Where a reference to a source of this cluster leads (for
        HelmReleases: chartRef and chart.spec.sourceRef)."""
        return self._source(_key(kind, namespace, name), set())

    def _source(self, key: tuple[str, str, str], seen: set) -> SourceOutcome:
        kind, namespace, name = key
        label = f"{kind} {namespace}/{name}"
        if kind == "ExternalArtifact":
            return self._artifact(namespace, name, seen)
        declared = self.sources.get(key)
        if kind == "GitRepository":
            if declared is not None:
                if self._is_this_repository(declared):
                    ignore = (declared.doc.get("spec") or {}).get("ignore")
                    return SourceOutcome(patterns=sourceignore.artifact_patterns(self.context.patterns(), ignore),
                                   name=label)
                url = (declared.doc.get("spec") or {}).get("url")
                return SourceOutcome(outside=f"{label} is another repository ({url})", name=label)
            if self.bootstrap and key == BOOTSTRAP_SOURCE:
                return SourceOutcome(patterns=sourceignore.artifact_patterns(self.context.patterns(), None), name=label)
        elif declared is not None:
            return SourceOutcome(outside=f"{label} is fetched by the cluster", name=label)
        provided = next((p for p in self.context.provides() if p.kind == kind and p.name == name
                         and p.namespace in (None, namespace)), None)
        if provided is not None:
            return SourceOutcome(outside=f"{label} is provided by the cluster ({POLICY_FILE} cluster.provides: "
                                   f"{provided.reason})", name=label)
        return SourceOutcome(missing=f"{label} is not declared in this cluster", name=label)

    def _is_this_repository(self, source: Resource) -> bool:
        urls = {normalised_url(str((o.doc.get("spec") or {}).get("url") or ""))
                for k, o in self.sources.items() if k[0] == "GitRepository"}
        if len(urls) < 2:
            return True  # one repository, whichever it is: this one
        remotes = self.context.remotes()
        if not remotes & urls:
            return True  # no way to tell them apart: all are taken as this repository
        return normalised_url(str((source.doc.get("spec") or {}).get("url") or "")) in remotes

    # ---- one Kustomization ----

    def _resolve(self, obj: Resource, declared_in: Render, final: bool) -> Target | Finding | None:
        """The build of a Kustomization, or the finding that it is not built;
        None while its source may still be declared by a render to come."""
        spec = obj.doc.get("spec") or {}
        ref = spec.get("sourceRef") or {}
        path = self._name(obj)
        kind = ref.get("kind")
        if kind not in KUSTOMIZATION_SOURCES:
            return self._finding(obj, path, "flux-source-missing",
                                 f"not built: sourceRef.kind {kind!r} is not a source a Kustomization can use "
                                 f"({', '.join(KUSTOMIZATION_SOURCES)})")
        key = _key(kind, ref.get("namespace") or obj.namespace or "", ref.get("name"))
        source = self._source(key, set())
        if source.missing is not None:
            if not final:
                return None
            return self._finding(obj, path, "flux-source-missing",
                                 f"not built: sourceRef {kind}/{ref.get('name')}: {source.missing}, so this "
                                 "Kustomization never reconciles; declare the source, or list it in "
                                 f"{POLICY_FILE} cluster.provides with the reason the cluster has it")
        if source.outside is not None:
            return self._finding(obj, path, "flux-source-not-built", f"{NOT_HERE}: {source.outside}",
                                 severity="notice")
        if source.problem is not None:
            return self._finding(obj, path, "flux-artifact-invalid", f"not built: {source.problem}")
        inputs = tuple(o.doc for o in declared_in.objects if o.kind in ("ConfigMap", "Secret"))
        if source.tree is not None:
            return self._artifact_build(obj, path, spec, source, inputs)
        return self._repository_build(obj, path, spec, source.patterns or (), inputs)

    def _finding(self, obj: Resource, path: str, rule: str, message: str, severity: str = "error") -> Finding:
        finding = finding_for(obj, stage="render", target=path, rule=rule, message=message, severity=severity)
        self.findings.append(finding)
        return finding

    def _repository_build(self, obj: Resource, path: str, spec: dict, patterns: tuple[str, ...],
                          inputs: tuple) -> Target | Finding:
        repo = self.repo
        raw_path = str(spec.get("path") or "./")
        directory = os.path.normpath(raw_path.lstrip("/")).replace(os.sep, "/")
        if directory.startswith("..") or not (repo / directory).is_dir() or not inside(repo, repo / directory):
            return self._finding(obj, path, "flux-path-missing",
                                 f"spec.path {raw_path!r} does not exist in the repository")
        directory = "." if directory in ("", ".") else directory
        excluded = sourceignore.matcher(patterns)
        known = self.kustomizations.get(directory)
        if known is not None and not known.generated:
            files, resource_files, _ = closure(self.kustomizations, directory)
        else:
            children, listed = generated_listing(repo, directory, excluded)
            files, resource_files = list(listed), list(listed)
            for child in children:
                more, more_resources, _ = closure(self.kustomizations, child)
                files += more
                resource_files += more_resources
            files, resource_files = tuple(dict.fromkeys(files)), tuple(dict.fromkeys(resource_files))
        doc = obj.doc
        if spec.get("ignoreMissingComponents") and spec.get("components"):
            # Flux drops the components its artifact lacks (missing or ignored).
            kept = [c for c in spec["components"] if not _component_missing(repo, directory, c, excluded)]
            doc = {**obj.doc, "spec": {**spec, "components": kept}}
            spec = doc["spec"]
        left_out = _left_out(self.kustomizations, directory, files, spec, excluded)
        if left_out:
            ref = spec.get("sourceRef") or {}
            return self._finding(
                obj, path, "flux-source-ignored",
                f"not built: the build reads {left_out}, which GitRepository {ref.get('name')} leaves out of its "
                "artifact (its spec.ignore or a .sourceignore); in the cluster the build fails")
        flux_file = obj.source.file if obj.source else None
        return Target(path=path, directory=directory,
                      sources=tuple(dict.fromkeys([*files, *([flux_file] if flux_file else [])])),
                      resource_files=resource_files,
                      flux=FluxSource(kustomization=doc, inputs=inputs, file=flux_file, ignore=patterns))

    def _artifact_build(self, obj: Resource, path: str, spec: dict, source: SourceOutcome, inputs: tuple
                        ) -> Target | Finding:
        tree = source.tree or {}
        raw_path = str(spec.get("path") or "./")
        inner = os.path.normpath(raw_path.lstrip("/")).replace(os.sep, "/")
        listing = artifacts.Listing.of(tree)
        if inner.startswith("..") or not listing.is_dir(inner):
            return self._finding(obj, path, "flux-path-missing",
                                 f"spec.path {raw_path!r} does not exist in {source.name} "
                                 f"(it holds {_summary(listing)})")
        files, resource_files, directory = _artifact_reads(self.repo, tree, inner)
        flux_file = obj.source.file if obj.source else None
        return Target(path=path, directory=directory,
                      sources=tuple(dict.fromkeys([*files, *([flux_file] if flux_file else [])])),
                      resource_files=resource_files,
                      flux=FluxSource(kustomization=obj.doc, inputs=inputs, file=flux_file,
                                      artifact=tuple(sorted(tree.items())), artifact_path=inner))

    # ---- dependsOn ----

    def _dependencies(self, flux_objects: list[Resource]) -> list[Finding]:
        """dependsOn must name Kustomizations of this cluster, without cycles."""
        by_key = {(o.namespace, o.name): o for o in flux_objects}
        edges: dict[tuple, list[tuple]] = {}
        findings = []
        for obj in flux_objects:
            deps = []
            for dep in (obj.doc.get("spec") or {}).get("dependsOn") or []:
                key = (dep.get("namespace") or obj.namespace, dep.get("name"))
                if key not in by_key:
                    findings.append(finding_for(
                        obj, stage="render", target=self.root.path, rule="flux-dependency-missing",
                        message=f"dependsOn {key[0]}/{key[1]}, which is not a Kustomization in this cluster"))
                else:
                    deps.append(key)
            edges[(obj.namespace, obj.name)] = deps
        state: dict[tuple, int] = {}
        reported: set[frozenset] = set()

        def visit(node: tuple, stack: list[tuple]) -> None:
            state[node] = 1
            for nxt in edges.get(node, []):
                if state.get(nxt) == 1:
                    cycle = stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        findings.append(finding_for(
                            by_key[nxt], stage="render", target=self.root.path, rule="flux-dependency-cycle",
                            message="dependsOn cycle: " + " -> ".join(name for _, name in cycle)))
                elif state.get(nxt) is None:
                    visit(nxt, stack + [nxt])
            state[node] = 2

        for node in sorted(edges, key=str):
            if state.get(node) is None:
                visit(node, [node])
        return findings


FLUX_API_LINE = re.compile(r"""^apiVersion:[ \t]*["']?[^\s"']*fluxcd\.io/""", re.MULTILINE)


_KUSTOMIZATION_API_LINE = re.compile(r"""^apiVersion:[ \t]*["']?kustomize\.toolkit\.fluxcd\.io/""", re.MULTILINE)


def declares_flux(render: Render) -> bool:
    """Does a root's render hold Flux Kustomizations? (Only renders with an
    object of that API are parsed here: the label kustomize.toolkit.fluxcd.io/name
    on every object of a Flux build is none.)"""
    return render.ok and _KUSTOMIZATION_API_LINE.search(render.text or "") is not None and \
        any(is_flux_kustomization(o) for o in render.objects)


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _aliases(entry: dict) -> list[str]:
    """The source aliases an artifact's copy rules read, in order."""
    found = []
    for op in entry.get("copy") or []:
        value = op.get("from") if isinstance(op, dict) else None
        if isinstance(value, str) and value.startswith("@"):
            alias = value[1:].partition("/")[0]
            if alias not in found:
                found.append(alias)
    return found


def _summary(listing: artifacts.Listing) -> str:
    top = [name + ("/" if listing.is_dir(name) else "") for name in listing.dirs.get(".", [])]
    return ", ".join(top[:8]) + (", ..." if len(top) > 8 else "") if top else "no files"


def _artifact_reads(repo: Path, tree: artifacts.Tree, inner: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """(files, resource files, the repository directory it stands for) of a
    build at `inner` in an artifact: the artifact is laid out and read like
    a tree, then every path is traced back to the repository's files."""
    with tempfile.TemporaryDirectory(prefix="flux-artifact-") as tmp:
        root = Path(tmp).resolve()
        artifacts.materialise(repo, tree.items(), root)
        found = scan(root)
        if kustomization_file(root / inner) is not None:
            files, resource_files, _ = closure(found, inner)
        else:
            children, listed = generated_listing(root, inner, lambda _: False)
            files, resource_files = tuple(listed), tuple(listed)
            for child in children:
                more, more_resources, _ = closure(found, child)
                files += more
                resource_files += more_resources

    def back(paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(origin for p in paths for origin in tree.get(p, ())))

    kfile = next((tree[p][0] for p in (f"{inner}/{n}" if inner != "." else n
                                        for n in ("kustomization.yaml", "kustomization.yml", "Kustomization"))
                  if p in tree), None)
    anchor = kfile or next((origins[0] for p, origins in tree.items()
                            if inner == "." or p.startswith(inner + "/")), None)
    directory = anchor.rpartition("/")[0] or "." if anchor else "."
    return back(files), back(resource_files), directory


def _component_missing(repo: Path, directory: str, component: object, excluded) -> bool:
    path = os.path.normpath(os.path.join(directory, str(component))).replace(os.sep, "/")
    return not (repo / path).is_dir() or excluded(f"{path}/")


def _left_out(kustomizations: dict, directory: str, files: tuple[str, ...], spec: dict, excluded) -> str | None:
    """The first file a Flux build reads that its source's artifact lacks."""
    read = list(files) or [f"{directory}/"]
    for component in spec.get("components") or []:
        path = os.path.normpath(os.path.join(directory, str(component))).replace(os.sep, "/")
        read += list(closure(kustomizations, path)[0]) if path in kustomizations else [f"{path}/"]
    return next((f for f in read if not f.startswith("..") and excluded(f)), None)
