"""Render targets with kustomize (from the pinned kubectl), in parallel, once.

Each rendered object is mapped back to the source file and line that wrote
it, so a finding on `Deployment/ai-inference-service-v1` points at
base/workload/deployment.yaml rather than at a render nobody can open.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

from scripts.core import processes
from scripts.core.errors import InputError
from scripts.core.model import Finding, Render, Resource, SourceRef, Target
from scripts.core.yamlio import check_duplicate_keys, document_lines, load_all_text, load_file, load_render
from scripts.loading import flux, fluxcluster, helm
from scripts.loading.discover import kustomization_file

LIMITS_FILE = "config/limits.yaml"


@dataclass(frozen=True)
class Limits:
    """Bounds on one input's cost, from config/limits.yaml."""

    render_timeout_seconds: float = 120.0
    render_memory_mib: int = 2048
    lint_max_file_kib: int = 1024

    @classmethod
    def load(cls, repo: Path) -> Limits:
        path = repo / LIMITS_FILE
        if not path.is_file():
            return cls()
        data = load_file(path, LIMITS_FILE)
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InputError("expected a mapping of limit: number", LIMITS_FILE)
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"unknown key `{unknown[0]}` (known: {', '.join(f.name for f in fields(cls))})",
                             LIMITS_FILE)
        values = {}
        for field in fields(cls):
            if field.name not in data:
                continue
            value = data[field.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InputError(f"`{field.name}` must be a positive number, found {value!r}", LIMITS_FILE)
            values[field.name] = value
        if values.get("render_memory_mib", 2048) < 1024:
            raise InputError("`render_memory_mib` must be at least 1024 (kustomize needs about 1 GiB of address "
                             "space to start)", LIMITS_FILE)
        return cls(**values)


def kustomize_env(limits: Limits) -> dict[str, str]:
    """How kustomize is run, here and in bench's floor. Builds are dealt over
    the cores already, so each Go runtime gets one (GOMAXPROCS=1: no GC
    threads fighting the other builds), and collects garbage less often
    (GOGC=400) but harder near half the memory bound (GOMEMLIMIT). Measured
    on 350 roots, 2 cores: 18.5 s instead of 23.5 s."""
    return dict(os.environ, GOMAXPROCS="1", GOGC="400", GOMEMLIMIT=f"{int(limits.render_memory_mib) // 2}MiB")


def run_kustomize(command: list[str], limits: Limits) -> tuple[subprocess.CompletedProcess | None, str | None]:
    """(kustomize's result, None), or (None, which bound it hit)."""
    prefix = []
    prlimit = shutil.which("prlimit")
    if prlimit:
        prefix = [prlimit, f"--as={int(limits.render_memory_mib) * 1024 * 1024}", "--"]
    try:
        proc = processes.run(prefix + command, text=True, encoding="utf-8", errors="replace",
                             timeout=limits.render_timeout_seconds, env=kustomize_env(limits))
    except subprocess.TimeoutExpired:
        return None, (f"kustomize did not finish within {limits.render_timeout_seconds:g} s "
                      f"(render_timeout_seconds in {LIMITS_FILE})")
    if proc.returncode != 0 and ("fatal error: out of memory" in proc.stderr
                                 or "runtime: out of memory" in proc.stderr
                                 or "failed to reserve page summary memory" in proc.stderr):
        return None, (f"kustomize ran out of memory: more than {limits.render_memory_mib} MiB "
                      f"(render_memory_mib in {LIMITS_FILE}); a YAML alias bomb or a very large input?")
    if proc.returncode < 0:
        return None, f"kustomize was killed by signal {-proc.returncode}"
    return proc, None


def kubectl_binary() -> str:
    """The kubectl that the pinned requirements install next to this Python."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found:
        return found
    raise InputError("kubectl not found: run `make validate` (or pip install -r requirements.txt) first")


class SourceIndex:
    """(kind, name) of the objects in each source file, parsed once per run."""

    def __init__(self, repo: Path):
        self.repo = repo
        self._files: dict[str, list[tuple[str, str, int]]] = {}
        self._links: dict[str, list[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def objects(self, file: str) -> list[tuple[str, str, int]]:
        cached = self._files.get(file)
        if cached is not None:
            return cached
        entries: list[tuple[str, str, int]] = []
        try:
            text = (self.repo / file).read_text(encoding="utf-8")
            docs = load_render(text, file)  # every source file of the run: the fast loader
        except (OSError, UnicodeDecodeError, InputError):
            docs, text = [], ""
        lines = document_lines(text)
        non_empty = [d for d in docs if d is not None]
        for doc, line in zip(non_empty, lines, strict=False):
            if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
                entries.append((str(doc.get("kind")), str(doc["metadata"].get("name")), line))
        with self._lock:
            self._files[file] = entries
        return entries

    def escaping_links(self, files: tuple[str, ...]) -> list[tuple[str, str]]:
        """escaping_links(), each file looked at once per run."""
        out = []
        for file in files:
            found = self._links.get(file)
            if found is None:
                found = escaping_links(self.repo, (file,))
                with self._lock:
                    self._links[file] = found
            out += found
        return out

    def locate(self, target: Target, kind: str, name: str) -> SourceRef | None:
        """The source of a rendered object: same kind, and the name it had
        before suffixes and hashes were added (the longest matching prefix)."""
        best: tuple[int, SourceRef] | None = None
        for file in target.resource_files:
            for src_kind, src_name, line in self.objects(file):
                if src_kind != kind:
                    continue
                if src_name == name:
                    return SourceRef(file, line)
                if name.startswith(src_name) and (best is None or len(src_name) > best[0]):
                    best = (len(src_name), SourceRef(file, line))
        return best[1] if best else None


_FILE_IN_ERROR = re.compile(r"(?:[Ff]ile:? |in |path |')(/[^\s':]+\.ya?ml)")
_ACCUMULATING = re.compile(r"accumulating resources from '([^']+)'")
_RECURSED = re.compile(r"recursed accumulation of path '([^']+)'")
_GO_TRACE = re.compile(r"^(goroutine \d+|runtime\.|\t|created by |\S+\.go:\d+)")


def _clean_error(stderr: str, repo: Path, tmp: str | None = None) -> str:
    """kustomize's error, shortened to what a person needs: every line that
    says something (git's own `fatal:` lines included, not only the last),
    repository paths made relative, the middle of a very long chain cut."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip() and not _GO_TRACE.match(ln)]
    if not lines:
        return "kustomize failed without a message"
    lines = [re.sub(r"^[Ee]rror: ", "", ln) for ln in lines]
    message = " | ".join(dict.fromkeys(lines))
    for prefix in filter(None, (tmp, str(repo))):
        message = message.replace(prefix + os.sep, "").replace(prefix, ".")
    entries = _ACCUMULATING.findall(message)
    if entries and message.endswith("no such file or directory") and "://" not in entries[-1] \
            and not entries[-1].startswith(("git@", "github.com/")):
        parents = _RECURSED.findall(message)
        where = f"{parents[-1]}/kustomization.yaml" if parents else "the root's kustomization"
        return f"resource {entries[-1]!r} does not exist (listed in the resources of {where})"
    if len(message) > 600:  # the cause is at the end of kustomize's chain: keep both ends
        message = message[:200] + " ... " + message[-395:]
    return message


def _pinpoint(repo: Path, target: Target, stderr: str) -> tuple[str | None, SourceRef | None]:
    """Find the source file behind a failed build: a YAML error with its line
    if one of the files fails to parse, else a file kustomize names."""
    for file in target.sources:
        path = repo / file
        if path.suffix not in (".yaml", ".yml") and path.name != "Kustomization":
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[:exc.start].count(b"\n") + 1
            return f"not UTF-8 text (byte {exc.object[exc.start]:#04x})", SourceRef(file, line)
        except OSError:
            continue
        try:
            load_all_text(text, file)
            check_duplicate_keys(text, file)  # kustomize refuses them; PyYAML takes the last
        except InputError as exc:
            return exc.message, SourceRef(file, exc.line)
    if stderr.rstrip().endswith("no such file or directory"):
        # A missing resource: blame the kustomization that lists it.
        parents = _RECURSED.findall(stderr)
        directory = os.path.relpath(parents[-1], repo) if parents else target.directory
        found = kustomization_file(repo / directory)
        if found is not None and not directory.startswith(".."):
            return None, SourceRef(found.relative_to(repo).as_posix())
    for match in _FILE_IN_ERROR.finditer(stderr):
        rel = os.path.relpath(match.group(1), repo).replace(os.sep, "/")
        if not rel.startswith("..") and (repo / rel).is_file():
            return None, SourceRef(rel)
    return None, None


def _objects(target: Target, docs: list, index: SourceIndex) -> list[Resource]:
    objects = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        source = index.locate(target, str(doc.get("kind")), str(meta.get("name")))
        objects.append(Resource(doc=doc, source=source))
    return objects


def _lazy(target: Target, text: str, index: SourceIndex) -> Render:
    """A render whose objects are parsed from `text` when first needed."""
    render = Render(target=target, text=text)

    def parse() -> list[Resource]:
        try:
            return _objects(target, load_render(text, target.path), index)
        except InputError as exc:  # kustomize emitted something unparsable: report, do not crash
            render.error = f"kustomize output is not YAML: {exc.message}"
            return []
    render._parse = parse
    return render


def flux_build(repo: Path, target: Target, kubectl: str, limits: Limits) -> tuple[str | None, str | None]:
    """(the built YAML, or the error) of a Flux build or a root with a
    generated kustomization: flux.prepare lays out what kustomize-controller
    builds, kustomize builds it, flux.post_build does what the controller
    does after. InputError for a file of the build that cannot be read."""
    with tempfile.TemporaryDirectory(prefix="flux-build-") as tmp:
        leaf = flux.prepare(repo, target, Path(tmp))
        proc, bound = run_kustomize(flux.kustomize_command(kubectl, leaf), limits)
        if bound:
            return None, bound
        assert proc is not None
        if proc.returncode != 0:
            return None, _clean_error(proc.stderr, repo, tmp)
    try:
        return flux.post_build(proc.stdout, target), None
    except InputError as exc:
        return None, exc.message


def _post_built(target: Target, built: str, index: SourceIndex) -> Render:
    """A Flux build from kustomize's output for its path."""
    try:
        text = flux.post_build(built, target)
    except InputError as exc:
        file = target.flux.file if target.flux else None
        return Render(target=target, error=exc.message, error_source=SourceRef(file) if file else None)
    return _lazy(target, text, index)


def render_flux_build(repo: Path, target: Target, index: SourceIndex, kubectl: str, limits: Limits) -> Render:
    file = target.flux.file if target.flux else None
    try:
        text, error = flux_build(repo, target, kubectl, limits)
    except InputError as exc:
        source = SourceRef(exc.file, exc.line) if exc.file else SourceRef(file) if file else None
        return Render(target=target, error=exc.message, error_source=source)
    if error is not None:
        fallback = file or (target.directory if target.generated else None)
        return Render(target=target, error=error, error_source=SourceRef(fallback) if fallback else None)
    return _lazy(target, text or "", index)


def escaping_links(repo: Path, files: tuple[str, ...]) -> list[tuple[str, str]]:
    """(file, where it leads) for every file of a build that is, or lies
    under, a link leading out of the repository (or a link loop)."""
    real_repo = os.path.realpath(repo)
    out = []
    for file in files:
        try:
            real = os.path.realpath(repo / file, strict=True)
        except (OSError, RuntimeError):
            out.append((file, "a link loop or a missing link target"))
            continue
        if real != real_repo and not real.startswith(real_repo + os.sep):
            out.append((file, real))
    return out


def render_target(repo: Path, target: Target, index: SourceIndex, kubectl: str, limits: Limits) -> Render:
    escaping = index.escaping_links(target.sources)
    if escaping:
        file, leads = escaping[0]
        return Render(target=target, error=f"{file} is a link out of the repository ({leads}): Flux's source "
                                           "artifact holds only the repository, so this cannot build in the "
                                           "cluster", error_source=SourceRef(file))
    if target.flux is not None or target.generated:
        return render_flux_build(repo, target, index, kubectl, limits)
    proc, bound = run_kustomize([kubectl, "kustomize", str(repo / target.directory)], limits)
    if proc is None or proc.returncode != 0:
        stderr = proc.stderr if proc is not None else ""
        message, source = _pinpoint(repo, target, stderr)
        if source is None:
            kfile = next((f for f in target.sources if f.startswith(target.directory + "/")), None)
            source = SourceRef(kfile) if kfile else None
        return Render(target=target, error=bound or message or _clean_error(stderr, repo), error_source=source)
    return _lazy(target, proc.stdout, index)


def _render_one(repo: Path, target: Target, index: SourceIndex, kubectl: str, limits: Limits,
                cached: Callable[[Target], Render | None] | None = None, same_as: Future | None = None) -> Render:
    if cached is not None:  # a render kept from an earlier run, when its inputs are unchanged
        kept = cached(target)
        if kept is not None:
            return kept
    if same_as is not None:
        # A Flux build kustomize would make exactly as the root at its path
        # (flux.builds_as_root): that root's output, after the post-build steps.
        # The root was queued before any build, so it runs or has run.
        root = same_as.result()
        if root.ok and root.text is not None:
            built = _post_built(target, root.text, index)
            built.built_as = root.target.path
            return built
    try:
        return render_target(repo, target, index, kubectl, limits)
    except InputError as exc:  # a file of the build that cannot be read: that root's finding
        return Render(target=target, error=exc.message,
                      error_source=SourceRef(exc.file, exc.line) if exc.file else None)


def render_all(repo: Path, targets: list[Target], jobs: int | None = None,
               index: SourceIndex | None = None, on_render: Callable[[Render], None] | None = None,
               limits: Limits | None = None) -> list[Render]:
    """Render every target once, `jobs` at a time (default: the machine's
    cores); `on_render` is called with each render as soon as it is made."""
    renders, _ = _render(repo, targets, jobs, index, on_render, limits, None)
    return renders


def render_with_flux(repo: Path, targets: list[Target], kustomizations: dict, jobs: int | None = None,
                     on_render: Callable[[Render], None] | None = None,
                     cached: Callable[[Target], Render | None] | None = None) -> tuple[list[Render], list[Finding]]:
    """Render the roots and every Flux Kustomization they declare (built as
    kustomize-controller would), sorted by path; plus the findings about the
    Flux objects themselves. A cluster root's Flux builds are queued as soon
    as it is rendered, so kustomize never waits for the expansion. `cached`
    may give a target's render instead of kustomize (None: render it)."""
    renders, findings = _render(repo, targets, jobs, None, on_render, None, kustomizations, cached)
    return sorted(renders, key=lambda r: r.target.path), findings


def _render(repo: Path, targets: list[Target], jobs: int | None, index: SourceIndex | None,
            on_render: Callable[[Render], None] | None, limits: Limits | None, kustomizations: dict | None,
            cached: Callable[[Target], Render | None] | None = None) -> tuple[list[Render], list[Finding]]:
    if not targets:
        return [], []
    kubectl = kubectl_binary()
    index = index or SourceIndex(repo)
    limits = limits or Limits.load(repo)
    workers = max(1, jobs or os.cpu_count() or 1)
    results: dict[int, Render] = {}  # by submission order, so the result is deterministic
    clusters: dict[str, fluxcluster.Cluster] = {}  # by cluster root
    context = fluxcluster.RunContext(repo)
    pool = ThreadPoolExecutor(max_workers=workers)
    # Finished renders arrive on a queue, in the order they finish. (wait()
    # with FIRST_COMPLETED installs a waiter on every pending future at each
    # call: quadratic in the roots, 1 s at 550 and 16 s at 2,200.)
    done: queue.SimpleQueue[tuple[int, Future]] = queue.SimpleQueue()

    futures: dict[str, Future] = {}  # a root's render, by its directory
    roots = {t.directory: t for t in targets if t.flux is None and not t.generated}

    def submit(number: int, target: Target) -> None:
        root = roots.get(target.directory) if target.flux is not None else None
        same_as = futures.get(target.directory) if root is not None and flux.builds_as_root(target, root) else None
        future = pool.submit(_render_one, repo, target, index, kubectl, limits, cached, same_as)
        if target.flux is None and not target.generated:
            futures[target.directory] = future
        future.add_done_callback(lambda f: done.put((number, f)))

    try:
        for number, target in enumerate(targets):
            submit(number, target)
        submitted = len(targets)
        while len(results) < submitted:
            number, future = done.get()
            render = future.result()
            results[number] = render
            # A cluster root, or a build of one: its Flux Kustomizations are
            # built (parsing only renders that can hold Flux objects).
            root = render.target.path.split("#")[0]
            cluster = clusters.get(root)
            if kustomizations is not None and cluster is None and render.target.flux is None \
                    and fluxcluster.declares_flux(render):
                cluster = clusters[root] = fluxcluster.Cluster(render.target, kustomizations, context)
            if cluster is not None and render.ok:
                for build in cluster.add(render):
                    submit(submitted, build)
                    submitted += 1
            # After the builds are queued: kustomize should not wait for what on_render does.
            if on_render is not None:
                on_render(render)
    except BaseException:
        # Interrupted: start no further kustomize, and wait for those running
        # (in process groups of their own, out of reach of the terminal's
        # Ctrl-C: a build takes well under a second, and the render timeout
        # bounds it), so none outlives the command.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
    renders = [results[n] for n in sorted(results)]
    findings = [f for root in sorted(clusters) for f in clusters[root].finish()]
    if kustomizations is not None:
        findings += helm.findings(repo, renders, clusters, context)
    return renders, findings


def render_findings(renders: list[Render]) -> list[Finding]:
    findings = []
    for render in renders:
        if render.ok:
            continue
        source = render.error_source or SourceRef(render.target.directory)
        findings.append(Finding(stage="render", target=render.target.path, rule="render-failed", severity="error",
                                message=render.error or "render failed", file=source.file, line=source.line))
    return findings
