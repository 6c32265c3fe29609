"""YAML loading with line numbers in errors, fast where it matters."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import ryml
import yaml

from scripts.core.errors import InputError

try:  # libyaml's loader is several times faster on large renders
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml is in the pinned PyYAML wheels
    _BaseLoader = yaml.SafeLoader


# libyaml's emitter, for the files we write for other tools to read
# (kustomize, promtool): pure-Python safe_dump cost more than the parse.
_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """YAML as Kubernetes reads it: a plain `=` is the string "=" (YAML 1.1's
    value tag, which PyYAML cannot construct; Prometheus Operator's CRDs
    list it as a label-matcher operator)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def _error_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def _describe(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = " ".join(p for p in (context, problem) if p) or str(exc).splitlines()[0]
    return f"invalid YAML: {text}"


def load_all_text(text: str, file: str) -> list[Any]:
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        raise InputError(_describe(exc), file, _error_line(exc)) from None


# Plain scalars on which YAML 1.1 (PyYAML, and the API server's YAML library)
# and YAML 1.2 / JSON (rapidyaml) disagree, or that rapidyaml's JSON cannot
# carry: 1.1 booleans and nulls (yes, on, True, ~), octal, hex, binary,
# underscores, sexagesimal, exponents, leading + or ., trailing ., infinities,
# timestamps; merge keys, anchors, aliases and tags; keys that are not
# strings. A render holding one
# (as a key or a value, anywhere, even inside a block scalar) is read by
# PyYAML. tests/test_yamlio.py checks each form against both libraries.
# Written for Python's re, which tries every branch at every position: a
# line start is the newline itself (the text gets one in front) so the
# search skips to the characters a token can follow; runs of blanks are
# possessive (nothing after them starts with a blank, so nothing is lost by
# not giving them back); and a token must start with a character one of the
# forms below can start with. 7 ms -> 1 ms on a 36 KB render, which had made
# this check cost more than the parse it decides.
_TOKEN_START = r"(?:\n[ \t]*+(?:-[ \t]++)*+|:[ \t]++|-[ \t]++|[\[{,][ \t]*+)"
_TOKEN_FIRST = r"(?=[YyNnOoTtFf~<&*!%@`0-9+\-.])"
_TOKEN_END = r"(?=[ \t]*(?:#.*)?$|:(?:[ \t]|$)|[ \t]*[,\]}])"
_WORDS = r"(?:[Yy]es|YES|[Nn]o|NO|[Oo]n|ON|[Oo]ff|OFF|True|TRUE|False|FALSE|~|Null|NULL|<<|[&*!%@`][^ \t]*)"
_NUMBERS = "|".join((
    r"[-+]?0[0-9_]+(?:\.[0-9_]*)?",
    r"[-+]?[0-9][0-9]*_[0-9_]*(?:\.[0-9_]*)?",
    r"[-+]?0[xXbBoO][0-9a-fA-F_]*",
    r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?",
    r"[-+]?(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)[eE][-+]?[0-9]*",
    r"\+[^ \t#,\]}]*",
    r"-?\.(?:[0-9]|inf|Inf|INF|nan|NaN|NAN)[^ \t#,\]}]*",
    r"[-+]?[0-9][0-9_]*\.",
))
# JSON keys are strings; PyYAML keeps a plain 8080, true or null key as such.
_NON_STRING_KEY = r"(?:\n[ \t]*+(?:-[ \t]++)*+|[{,][ \t]*+)(?:[-+.]?[0-9][^:\s]*|true|false|null|~)?[ \t]*:(?:[ \t]|$)"
_DIVERGENT = re.compile(rf"(?m)(?=[\n:\-\[{{,])(?:{_TOKEN_START}{_TOKEN_FIRST}"
                        rf"(?:(?:{_WORDS}|{_NUMBERS}){_TOKEN_END}|[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}})"
                        rf"|{_NON_STRING_KEY})")


def divergent(text: str) -> bool:
    """Whether the text holds a plain scalar YAML 1.1 and 1.2 read differently."""
    return _DIVERGENT.search("\n" + text) is not None


def load_render(text: str, file: str) -> list[Any]:
    """The documents of kustomize's output, as load_all_text reads them.

    rapidyaml parses and emits JSON in C++, several times faster than PyYAML
    builds objects; it is used where it gives exactly what PyYAML gives,
    and PyYAML is used for any text holding a scalar the two read
    differently, or that rapidyaml does not take."""
    if not text.strip() or divergent(text):
        return load_all_text(text, file)
    try:
        tree = ryml.parse_in_arena(text.encode("utf-8"))
        data = json.loads(ryml.emit_json(tree))
        documents = data if tree.is_stream(tree.root_id()) else [data]
    except Exception:  # noqa: BLE001 - anything rapidyaml or its JSON cannot do, PyYAML decides
        return load_all_text(text, file)
    return [doc for doc in documents if doc is not None]


def load_file(path: Path, display: str) -> Any:
    """One YAML document from a file; InputError naming the file on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", display) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", display) from None
    docs = load_all_text(text, display)
    if len(docs) > 1:
        raise InputError("expected one YAML document, found several", display)
    return docs[0] if docs else None


def document_lines(text: str) -> list[int]:
    """1-based line where each non-empty document of a multi-document file starts."""
    lines = []
    start = 1
    has_content = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("---"):
            if has_content:
                lines.append(start)
            start, has_content = number + 1, False
            continue
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not has_content:
            start, has_content = number, True
    if has_content:
        lines.append(start)
    return lines


class _DuplicateKeyLoader(_Loader):  # type: ignore[misc, valid-type]
    """Refuses a mapping with the same key twice, as kustomize does."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201 - PyYAML's signature
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except (yaml.YAMLError, TypeError):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def check_duplicate_keys(text: str, file: str) -> None:
    """InputError naming the line of the first key written twice in a mapping."""
    try:
        for _ in yaml.load_all(text, Loader=_DuplicateKeyLoader):
            pass
    except yaml.YAMLError as exc:
        raise InputError(_describe(exc), file, _error_line(exc)) from None
