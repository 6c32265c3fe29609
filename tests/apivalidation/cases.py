"""How an API-validation test case is written: a valid object of a kind
(objects.py), edits at field paths, and what the API server must say.

A failing case names the check it exercises and the field path and reason
of the error it must produce. A passing case (usually the boundary: 15
characters where 16 fail) must produce no error at all, so the base objects
are valid and every case changes one thing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.apivalidation.objects import OBJECTS

DELETE = object()  # an edit value: remove the field
_TOKEN = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")

Edit = Mapping[str, Any] | Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Case:
    id: str
    check: str  # the check id (coverage row) this case exercises
    base: str  # a key of OBJECTS
    edits: Edit = field(default_factory=dict)
    fails: bool = True
    path: str | None = None  # failing cases: the field path of the expected error
    reason: str | None = None  # failing cases: "Invalid value", "Required value", ...
    version: str = "1.34"  # the Kubernetes minor the case is judged at

    def build(self) -> dict[str, Any]:
        doc = copy.deepcopy(OBJECTS[self.base])
        if callable(self.edits):
            self.edits(doc)
        else:
            for path, value in self.edits.items():
                set_path(doc, path, value)
        return doc


def fail(id: str, check: str, base: str, edits: Edit, path: str, reason: str, version: str = "1.34") -> Case:
    return Case(id=id, check=check, base=base, edits=edits, fails=True, path=path, reason=reason, version=version)


def ok(id: str, check: str, base: str, edits: Edit, version: str = "1.34") -> Case:
    return Case(id=id, check=check, base=base, edits=edits, fails=False, version=version)


def parse_path(path: str) -> list[str | int]:
    """'spec.containers[0].ports[1].name' -> ['spec', 'containers', 0, 'ports', 1, 'name'];
    '[key]' after a name is a map key that may hold dots ('labels[app.kubernetes.io/name]')."""
    parts: list[str | int] = []
    for name, bracket in _TOKEN.findall(path):
        if name:
            parts.append(name)
        else:
            parts.append(int(bracket) if bracket.isdigit() else bracket)
    return parts


def set_path(doc: Any, path: str, value: Any) -> None:
    parts = parse_path(path)
    node = doc
    for position, part in enumerate(parts[:-1]):
        following = parts[position + 1]
        if isinstance(part, int):
            while len(node) <= part:
                node.append([] if isinstance(following, int) else {})
            node = node[part]
        else:
            if not isinstance(node.get(part), (dict, list)):
                node[part] = [] if isinstance(following, int) else {}
            node = node[part]
    last = parts[-1]
    if value is DELETE:
        if isinstance(last, int):
            del node[last]
        else:
            node.pop(last, None)
    elif isinstance(last, int):
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    else:
        node[last] = value


def get_path(doc: Any, path: str) -> Any:
    node = doc
    for part in parse_path(path):
        node = node[part]
    return node
