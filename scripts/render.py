"""Render targets with kustomize (from the pinned kubectl), in parallel, once.

Each rendered object is mapped back to the source file and line that wrote
it, so a finding on `Deployment/ai-inference-service-v1` points at
base/workload/deployment.yaml rather than at a render nobody can open.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from scripts.errors import InputError
from scripts.model import Finding, Render, Resource, SourceRef, Target
from scripts.yamlio import _Loader, document_lines, load_all_text


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
        self._lock = threading.Lock()

    def objects(self, file: str) -> list[tuple[str, str, int]]:
        cached = self._files.get(file)
        if cached is not None:
            return cached
        entries: list[tuple[str, str, int]] = []
        try:
            text = (self.repo / file).read_text(encoding="utf-8")
            docs = list(yaml.load_all(text, Loader=_Loader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            docs, text = [], ""
        lines = document_lines(text)
        non_empty = [d for d in docs if d is not None]
        for doc, line in zip(non_empty, lines, strict=False):
            if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
                entries.append((str(doc.get("kind")), str(doc["metadata"].get("name")), line))
        with self._lock:
            self._files[file] = entries
        return entries

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


_MISSING_RESOURCE = re.compile(r"accumulating resources from '([^']+)'.*no such file or directory")


def _clean_error(stderr: str, repo: Path) -> str:
    """kustomize's error, shortened to what a person needs: the innermost
    cause, with repository paths made relative."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    message = lines[-1] if lines else "kustomize failed without a message"
    message = re.sub(r"^[Ee]rror: ", "", message).replace(str(repo) + os.sep, "")
    missing = _MISSING_RESOURCE.search(message)
    if missing:
        return f"resource {missing.group(1)!r} does not exist (listed in a kustomization's resources)"
    return message if len(message) <= 400 else message[:397] + "..."


def _pinpoint(repo: Path, target: Target, stderr: str) -> tuple[str | None, SourceRef | None]:
    """Find the source file behind a failed build: a YAML error with its line
    if one of the files fails to parse, else a file kustomize names."""
    for file in target.sources:
        path = repo / file
        if path.suffix not in (".yaml", ".yml") and path.name != "Kustomization":
            continue
        try:
            load_all_text(path.read_text(encoding="utf-8"), file)
        except InputError as exc:
            return exc.message, SourceRef(file, exc.line)
        except (OSError, UnicodeDecodeError):
            continue
    match = _FILE_IN_ERROR.search(stderr)
    if match:
        try:
            return None, SourceRef(os.path.relpath(match.group(1), repo).replace(os.sep, "/"))
        except ValueError:
            return None, None
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
            return _objects(target, load_all_text(text, target.path), index)
        except InputError as exc:  # kustomize emitted something unparsable: report, do not crash
            render.error = f"kustomize output is not YAML: {exc.message}"
            return []
    render._parse = parse
    return render


def render_flux_build(repo: Path, target: Target, index: SourceIndex, kubectl: str) -> Render:
    from scripts import flux

    text, error = flux.build(repo, target, kubectl)
    if error is not None:
        file = target.flux.file if target.flux else None
        return Render(target=target, error=error, error_source=SourceRef(file) if file else None)
    return _lazy(target, text or "", index)


def render_target(repo: Path, target: Target, index: SourceIndex, kubectl: str) -> Render:
    if target.flux is not None:
        return render_flux_build(repo, target, index, kubectl)
    proc = subprocess.run(
        [kubectl, "kustomize", str(repo / target.directory)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        message, source = _pinpoint(repo, target, proc.stderr)
        if source is None:
            kfile = next((f for f in target.sources if f.startswith(target.directory + "/")), None)
            source = SourceRef(kfile) if kfile else None
        return Render(target=target, error=message or _clean_error(proc.stderr, repo), error_source=source)
    return _lazy(target, proc.stdout, index)


def render_all(repo: Path, targets: list[Target], jobs: int | None = None,
               index: SourceIndex | None = None, on_render: Callable[[Render], None] | None = None
               ) -> list[Render]:
    """Render every target once, `jobs` at a time (default: the machine's
    cores); `on_render` is called with each render as soon as it is made."""
    if not targets:
        return []
    kubectl = kubectl_binary()
    index = index or SourceIndex(repo)
    workers = max(1, jobs or os.cpu_count() or 1)

    def one(target: Target) -> Render:
        render = render_target(repo, target, index, kubectl)
        if on_render is not None:
            on_render(render)
        return render

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, targets))


def render_with_flux(repo: Path, targets: list[Target], kustomizations: dict, jobs: int | None = None,
                     on_render: Callable[[Render], None] | None = None) -> tuple[list[Render], list[Finding]]:
    """Render the roots, then every Flux Kustomization they declare (built
    as kustomize-controller would), sorted by path; plus the findings about
    the Flux objects themselves."""
    from scripts import flux

    index = SourceIndex(repo)
    renders = render_all(repo, targets, jobs, index, on_render)
    builds: list[Target] = []
    findings: list[Finding] = []
    for render in renders:
        # Parse only renders that can hold Flux objects; the rest stay text for now.
        if render.ok and flux.FLUX_GROUP in (render.text or "") \
                and any(flux.is_flux_kustomization(o) for o in render.objects):
            more, found = flux.expand(repo, render, kustomizations)
            builds += more
            findings += found
    renders += render_all(repo, builds, jobs, index, on_render)
    return sorted(renders, key=lambda r: r.target.path), findings
