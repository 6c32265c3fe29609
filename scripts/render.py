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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from scripts.errors import InputError
from scripts.model import Render, Resource, SourceRef, Target
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


def _clean_error(stderr: str, repo: Path) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    message = lines[-1] if lines else "kustomize failed without a message"
    message = re.sub(r"^[Ee]rror: ", "", message)
    return message.replace(str(repo) + os.sep, "")


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


def render_target(repo: Path, target: Target, index: SourceIndex, kubectl: str) -> Render:
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
    try:
        docs = load_all_text(proc.stdout, target.path)
    except InputError as exc:  # kustomize emitted something unparsable: report, do not crash
        return Render(target=target, error=f"kustomize output is not YAML: {exc.message}")
    objects = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        source = index.locate(target, str(doc.get("kind")), str(meta.get("name")))
        objects.append(Resource(doc=doc, source=source))
    return Render(target=target, objects=objects, text=proc.stdout)


def render_all(repo: Path, targets: list[Target], jobs: int | None = None) -> list[Render]:
    """Render every target once, `jobs` at a time (default: the machine's cores)."""
    if not targets:
        return []
    kubectl = kubectl_binary()
    index = SourceIndex(repo)
    workers = max(1, jobs or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda t: render_target(repo, t, index, kubectl), targets))
