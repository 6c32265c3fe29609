"""Where a field of a rendered object was written, when it is not the file
that declares the object: the overlay patch that sets it, or the
kustomization whose configMapGenerator makes a ConfigMap.

A finding about a ServiceEntry's hosts should point at
overlays/prod/model-store.yaml, which sets them, rather than at the
component that declares a placeholder.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from scripts.core.errors import InputError
from scripts.core.model import Resource, SourceRef, Target
from scripts.core.yamlio import load_all_text

_KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@functools.lru_cache(maxsize=512)
def _documents(path: str, mtime_ns: int, size: int) -> tuple[Any, ...]:
    """A file's YAML documents, read once per content version (the key
    changes when the file does)."""
    del mtime_ns, size  # part of the cache key only
    try:
        return tuple(load_all_text(Path(path).read_text(encoding="utf-8"), path))
    except (OSError, UnicodeDecodeError, InputError):
        return ()  # the render stage reports unreadable files; here it only means "not found"


def _read(repo: Path, relative: str) -> tuple[Any, ...]:
    path = repo / relative
    try:
        stat = path.stat()
    except OSError:
        return ()
    return _documents(str(path), stat.st_mtime_ns, stat.st_size)


def _kustomizations(target: Target) -> list[str]:
    """The target's kustomization files, the one applied last first: an
    overlay's patches apply after those of the bases it pulls in."""
    return [f for f in target.sources if f.rsplit("/", 1)[-1] in _KUSTOMIZATION_NAMES]


def _line_of(repo: Path, relative: str, pattern: str) -> int | None:
    try:
        for number, line in enumerate((repo / relative).read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(pattern, line):
                return number
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _targets(selector: Any, obj: Resource) -> bool:
    if not isinstance(selector, dict):
        return False
    if selector.get("kind") not in (None, obj.kind):
        return False
    name = selector.get("name")
    if name is not None:
        try:
            if not (re.fullmatch(str(name), obj.name) or obj.name.startswith(str(name))):
                return False
        except re.error:
            return False
    return True


def _sets(patch: Any, pointer: tuple[str, ...]) -> bool:
    """Does a patch document (JSON 6902 operations or a strategic merge) write at or above `pointer`?"""
    if isinstance(patch, list):
        for op in patch:
            path = tuple(p for p in str((op or {}).get("path", "")).split("/") if p) if isinstance(op, dict) else ()
            if path and (path == pointer[:len(path)] or pointer == path[:len(pointer)]):
                return True
        return False
    node = patch
    for key in pointer:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def patch_origin(repo: Path, target: Target, obj: Resource, pointer: tuple[str, ...]) -> SourceRef | None:
    """The patch file that last sets `pointer` (e.g. ("spec", "hosts")) on
    obj in this target's build, or None when no patch file does."""
    for kustomization in _kustomizations(target):
        docs = _read(repo, kustomization)
        spec = docs[0] if docs and isinstance(docs[0], dict) else {}
        directory = kustomization.rsplit("/", 1)[0] if "/" in kustomization else ""
        for entry in spec.get("patches") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                continue
            relative = f"{directory}/{entry['path']}" if directory else entry["path"]
            patch_docs = _read(repo, relative)
            if not patch_docs:
                continue
            selected = _targets(entry.get("target"), obj) if entry.get("target") else \
                isinstance(patch_docs[0], dict) and _targets(patch_docs[0], obj)
            if selected and _sets(patch_docs[0], pointer):
                return SourceRef(relative, 1)
    return None


def generator_origin(repo: Path, target: Target, name: str) -> SourceRef | None:
    """The kustomization (and line) whose configMapGenerator makes the
    ConfigMap `name` (without the hash suffix)."""
    for kustomization in _kustomizations(target):
        docs = _read(repo, kustomization)
        spec = docs[0] if docs and isinstance(docs[0], dict) else {}
        for entry in spec.get("configMapGenerator") or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return SourceRef(kustomization, _line_of(repo, kustomization, rf"name:\s*{re.escape(name)}\s*$"))
    return None


def generated_file_origin(repo: Path, target: Target, name: str, key: str, needle: str = "") -> SourceRef | None:
    """The file a configMapGenerator reads into key `key` of ConfigMap `name`
    (`files: [key=path]` or `files: [path]`), at the first line holding
    `needle` when given."""
    for kustomization in _kustomizations(target):
        docs = _read(repo, kustomization)
        spec = docs[0] if docs and isinstance(docs[0], dict) else {}
        directory = kustomization.rsplit("/", 1)[0] if "/" in kustomization else ""
        for entry in spec.get("configMapGenerator") or []:
            if not isinstance(entry, dict) or entry.get("name") != name:
                continue
            for item in entry.get("files") or []:
                item_key, sep, path = str(item).partition("=")
                path = path if sep else item_key
                if (item_key if sep else path.rsplit("/", 1)[-1]) == key:
                    relative = f"{directory}/{path}" if directory else path
                    line = _line_of(repo, relative, re.escape(needle)) if needle else None
                    return SourceRef(relative, line or 1)
    return None


def located(obj: Resource, source: SourceRef | None) -> Resource:
    """obj, pointing at `source` when one was found (the finding's file and line)."""
    return Resource(doc=obj.doc, source=source) if source is not None else obj
