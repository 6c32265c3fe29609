"""What checkov's kubernetes Runner makes of one render before a check sees
it, rebuilt from the documents we parsed ourselves.

The Runner writes nothing of its own into a manifest, but it reads the render
back from a file and reshapes what it read; its checks were written for that
shape, so the direct path (checkov_direct) gives them the same one:

- every mapping carries `__startline__` and `__endline__` (its YAML loader
  adds them). No kubernetes check reads their values, but their presence
  changes what checks and the graph see: an empty `securityContext: {}` or
  `podSelector: {}` is a non-empty, truthy mapping.
- a document is dropped unless it is a mapping with `apiVersion` and `kind`
  whose every `name` field (at any depth) is a string of at most 253
  characters without `#`, `{` or `}`; and a render whose text lacks the words
  `apiVersion` and `kind`, or looks like a Helm template, is not read at all.
  (What was dropped shows as fewer objects read, which the stage reports.)
- the items of a `kind: List` are objects of their own, after the others.
- reading the `checkov.io/skip*` annotations turns an object's
  `metadata.annotations` mapping into a one-item list of that mapping, and
  the checks see that list.
- an object's name in results is `Kind.namespace.name` (namespace `default`
  when unset), or built from its labels when it has no name.

tests/test_checkov_equal.py holds both paths to the same results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

START_LINE = "__startline__"
END_LINE = "__endline__"
# Keys the loader's bookkeeping owns; never part of a name built from labels.
LINE_FIELDS = frozenset({START_LINE, END_LINE, "__file__"})
# Pods without a kind (templates) are named as Pods.
DEFAULT_KIND = "Pod"
SKIP_PREFIXES = ("checkov.io/skip", "bridgecrew.io/skip", "cortex.io/skip")
PARENT_ID = "_parent_resource_id"
PARENT_NAME = "_parent_resource"
_HELM_TEMPLATE = (re.compile(r"\{\{-?\s*\.Release\."), re.compile(r"\{\{-?\s*\.Values\."))
_BAD_NAME = re.compile(r"[#{}]")


def readable(text: str) -> bool:
    """Whether the Runner reads the render's text at all."""
    if "apiVersion" not in text or "kind" not in text:
        return False
    return not any(pattern.search(text) for pattern in _HELM_TEMPLATE)


def with_line_keys(value: Any, line: int) -> Any:
    """A copy of a parsed document with the loader's line keys in every
    mapping (after its own keys, as the loader adds them). The value is the
    entity's position: no check reads it, and distinct documents keep
    distinct values as distinct lines would."""
    if isinstance(value, dict):
        out = {key: with_line_keys(item, line) for key, item in value.items()}
        out[START_LINE] = line
        out[END_LINE] = line
        return out
    if isinstance(value, list):
        return [with_line_keys(item, line) for item in value]
    return value


def _name_ok(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= 253 and not _BAD_NAME.search(name)


def _names_ok(mapping: dict) -> bool:
    """Every `name` scalar under this mapping (lists are entered for their mappings only)."""
    for key, value in mapping.items():
        if isinstance(value, dict):
            if not _names_ok(value):
                return False
        elif isinstance(value, list):
            if not all(_names_ok(item) for item in value if isinstance(item, dict)):
                return False
        elif key == "name" and not _name_ok(value):
            return False
    return True


def accepted(document: Any) -> bool:
    """The Runner's test of a document read from a file."""
    return (isinstance(document, dict) and "apiVersion" in document and "kind" in document
            and _names_ok(document))


def spread_lists(entities: list) -> list:
    """`kind: List` replaced by its (non-empty) items, which go last."""
    out = list(entities)
    for entity in entities:
        if entity.get("kind") == "List":
            out.extend(item for item in entity.get("items", []) if item)
            out.remove(entity)
    return out


def is_object(entity: Any) -> bool:
    """A mapping with apiVersion, a non-integer kind and a metadata mapping."""
    return (isinstance(entity, dict) and "apiVersion" in entity and "kind" in entity
            and not isinstance(entity.get("kind"), int) and isinstance(entity.get("metadata"), dict))


def resource_id(entity: dict | None) -> str | None:
    """How results name an object: `Kind.namespace.name`, else from its labels."""
    if not entity:
        return None
    kind = entity.get("kind", DEFAULT_KIND)
    metadata = entity.get("metadata") or {}
    namespace = metadata.get("namespace", "default")
    if metadata.get("name"):
        return f"{kind}.{namespace}.{metadata.get('name')}"
    labels = metadata.get("labels")
    if not labels:
        return None
    pairs = [f"{key}-{value}" for key, value in labels.items() if key not in LINE_FIELDS]
    joined = ".".join(pairs) if pairs else "default"
    parent = entity.get(PARENT_NAME)
    return f"{kind}.{namespace}.{parent}.{joined}" if parent else f"{kind}.{namespace}.{joined}"


def take_skip_annotations(entity: Any) -> list[dict[str, str]]:
    """The `checkov.io/skip*` annotations as [{id, suppress_comment}].

    Like the Runner, this turns an annotations mapping into a one-item list
    (checks see it so), and raises where the Runner raises (a value with two
    `=`, a value that is not a string), so such an object is a failed scan."""
    if not isinstance(entity, dict):
        return []
    metadata = entity.get("metadata", {})
    if not metadata:
        return []
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata is a {type(metadata).__name__}, not a mapping")
    if metadata.get("annotations") is None:
        return []
    if isinstance(metadata["annotations"], dict):
        metadata["annotations"] = [metadata["annotations"]]
    skips = []
    for annotation in metadata["annotations"]:
        if not isinstance(annotation, dict):
            continue
        for key in annotation:
            if not any(prefix in key for prefix in SKIP_PREFIXES):
                continue
            value = annotation[key]
            if "=" in value:
                check_id, comment = value.split("=")
            else:
                check_id, comment = value, "No comment provided"
            skips.append({"id": check_id, "suppress_comment": comment})
    return skips


@dataclass
class Entities:
    """One render as the Runner holds it: the objects checks run on, and
    each named object's skip annotations (what graph results consult)."""

    objects: list = field(default_factory=list)
    skips_by_id: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def entities(documents: list, text: str | None = None) -> Entities:
    """The Runner's view of a render whose documents we parsed (`text`, when
    given, is what it would read from the file)."""
    if text is not None and not readable(text):
        return Entities()
    kept = [with_line_keys(doc, position) for position, doc in enumerate(documents, start=1)]
    objects = spread_lists([doc for doc in kept if accepted(doc)])
    skips_by_id = {}
    for entity in objects:
        if not is_object(entity):
            continue
        name = resource_id(entity)
        if name:
            skips_by_id[name] = take_skip_annotations(entity)
    return Entities(objects=objects, skips_by_id=skips_by_id)
