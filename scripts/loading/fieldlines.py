"""Where a rendered field was written: the file and line of the source
document (or the patch) that set it, so a finding on
`spec.template.spec.containers[0].ports[0].name` points at the line holding
that name, not only at the object.

Only findings need this, so files are parsed on demand (with PyYAML's
composer, which keeps each node's line) and cached for the run.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts.core.model import SourceRef, Target

Part = str | int


@dataclass(frozen=True)
class _Candidate:
    line: int
    value: str | None  # the scalar written there, when it is a scalar


def _compose(text: str) -> list[yaml.Node]:
    try:
        return [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node is not None]
    except yaml.YAMLError:
        return []


def _lookup(node: yaml.Node, key: Part) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of a mapping entry, or (item, item) of a list item."""
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return key_node, value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        item = node.value[key]
        return item, item
    return None


def _walk(node: yaml.Node, parts: tuple[Part, ...]) -> tuple[_Candidate | None, int]:
    """The field's line if the whole path is in `node`, and the line of the
    deepest part reached."""
    deepest = node.start_mark.line + 1
    for part in parts:
        found = _lookup(node, part)
        if found is None:
            return None, deepest
        key_node, node = found
        deepest = key_node.start_mark.line + 1
    value = node.value if isinstance(node, yaml.ScalarNode) else None
    return _Candidate(deepest, value), deepest


def _pointer(path: str) -> tuple[Part, ...]:
    """A JSON patch path as parts (~1 is '/', ~0 is '~'; digits are indexes)."""
    parts: list[Part] = []
    for raw in path.lstrip("/").split("/") if path else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        parts.append(int(token) if token.isdigit() else token)
    return tuple(parts)


def _op_candidate(op: yaml.Node, parts: tuple[Part, ...], line_offset: int) -> _Candidate | None:
    """A JSON patch operation that sets the field (or a field above it)."""
    if not isinstance(op, yaml.MappingNode):
        return None
    fields = {k.value: (k, v) for k, v in op.value if isinstance(k, yaml.ScalarNode)}
    path_entry, kind_entry = fields.get("path"), fields.get("op")
    if path_entry is None or not isinstance(path_entry[1], yaml.ScalarNode):
        return None
    if kind_entry is not None and getattr(kind_entry[1], "value", None) not in ("add", "replace", "copy", "move"):
        return None
    target = _pointer(path_entry[1].value)
    if target != parts[:len(target)]:
        return None
    value_entry = fields.get("value")
    if value_entry is None:
        return _Candidate(path_entry[0].start_mark.line + 1 + line_offset, None)
    found, _ = _walk(value_entry[1], parts[len(target):])
    if found is None:
        return _Candidate(path_entry[0].start_mark.line + 1 + line_offset, None)
    return _Candidate(found.line + line_offset, found.value)


class FieldLocator:
    """Maps (render, object, field path) to the source line that wrote it."""

    def __init__(self, repo: Path):
        self.repo = repo
        self._nodes: dict[str, list[yaml.Node]] = {}
        self._lock = threading.Lock()

    def _documents(self, file: str) -> list[yaml.Node]:
        cached = self._nodes.get(file)
        if cached is None:
            try:
                text = (self.repo / file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            cached = _compose(text)
            with self._lock:
                self._nodes[file] = cached
        return cached

    def _patch_candidates(self, target: Target, kind: str, parts: tuple[Part, ...]) -> list[tuple[str, _Candidate]]:
        """Patches of the build that set the field: patch files and inline
        `patch:` texts of kustomizations whose target is of the object's kind
        (a strategic-merge patch without a target names its kind itself)."""
        out: list[tuple[str, _Candidate]] = []
        for kustomization in target.sources:
            if os.path.basename(kustomization) not in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
                continue
            directory = os.path.dirname(kustomization)
            for document in self._documents(kustomization):
                for entry in _patch_entries(document):
                    if entry.kind not in (None, kind):
                        continue
                    if entry.inline is not None:
                        for node in _compose(entry.inline):
                            out += [(kustomization, c) for c in _in_patch(node, kind, parts, entry.offset)]
                    elif entry.path:
                        file = os.path.normpath(os.path.join(directory, entry.path)).replace(os.sep, "/")
                        for node in self._documents(file):
                            out += [(file, c) for c in _in_patch(node, kind, parts, 0)]
        return out

    def locate(self, target: Target, source: SourceRef | None, kind: str, parts: tuple[Part, ...],
               rendered: Any) -> SourceRef | None:
        """The line that set the field: a patch that wrote the rendered
        value, else the field in the object's own document, else the object."""
        wanted = None if isinstance(rendered, (dict, list)) or rendered is None else \
            (("true" if rendered else "false") if isinstance(rendered, bool) else str(rendered))
        patches = self._patch_candidates(target, kind, parts)
        for file, candidate in patches:
            if wanted is not None and candidate.value == wanted:
                return SourceRef(file, candidate.line)
        if source is not None and source.line is not None:
            for document in self._documents(source.file):
                if document.start_mark.line + 1 == source.line:
                    found, deepest = _walk(document, parts)
                    if found is not None and (wanted is None or found.value in (wanted, None)):
                        return SourceRef(source.file, found.line)
                    if patches:
                        file, candidate = patches[-1]
                        return SourceRef(file, candidate.line)
                    return SourceRef(source.file, deepest)
        if patches:
            file, candidate = patches[-1]
            return SourceRef(file, candidate.line)
        return source


def _in_patch(document: yaml.Node, kind: str, parts: tuple[Part, ...], offset: int) -> list[_Candidate]:
    if isinstance(document, yaml.SequenceNode):  # JSON patch: a list of operations
        return [c for op in document.value if (c := _op_candidate(op, parts, offset)) is not None]
    if isinstance(document, yaml.MappingNode):  # strategic merge: the object's own shape
        own_kind = _lookup(document, "kind")
        if own_kind is not None and getattr(own_kind[1], "value", kind) != kind:
            return []
        found, _ = _walk(document, parts)
        if found is not None:
            return [_Candidate(found.line + offset, found.value)]
    return []


@dataclass(frozen=True)
class _PatchEntry:
    kind: str | None  # the target's kind, if the entry has a target
    path: str | None = None  # a patch file, relative to the kustomization
    inline: str | None = None  # or the patch text itself
    offset: int = 0  # lines before the inline text starts


def _scalar(node: yaml.Node | None) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _patch_entries(document: yaml.Node) -> list[_PatchEntry]:
    """The patches a kustomization lists (patches, patchesJson6902, patchesStrategicMerge)."""
    out: list[_PatchEntry] = []
    if not isinstance(document, yaml.MappingNode):
        return out
    for key, value in document.value:
        field = _scalar(key)
        if field not in ("patches", "patchesJson6902", "patchesStrategicMerge") \
                or not isinstance(value, yaml.SequenceNode):
            continue
        for entry in value.value:
            if field == "patchesStrategicMerge":
                text = _scalar(entry)
                if text is not None and "\n" not in text:
                    out.append(_PatchEntry(None, path=text))
                elif text is not None:
                    out.append(_PatchEntry(None, inline=text, offset=entry.start_mark.line + 1))
                continue
            if not isinstance(entry, yaml.MappingNode):
                continue
            fields = {k.value: v for k, v in entry.value if isinstance(k, yaml.ScalarNode)}
            target = fields.get("target")
            kind = _scalar(_lookup(target, "kind")[1]) if target is not None and _lookup(target, "kind") else None
            patch = fields.get("patch")
            if isinstance(patch, yaml.ScalarNode):
                # A block scalar's text starts on the line after its indicator.
                block = patch.style in ("|", ">")
                out.append(_PatchEntry(kind, inline=patch.value, offset=patch.start_mark.line + (1 if block else 0)))
            elif _scalar(fields.get("path")):
                out.append(_PatchEntry(kind, path=_scalar(fields.get("path"))))
    return out
