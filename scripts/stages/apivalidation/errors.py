"""Field errors as the API server reports them.

An error names the field by its path (`spec.template.spec.containers[0].ports[2].name`),
its reason in the API server's words (`Invalid value`, `Required value`, ...), the
value where the API server shows one, and a detail. `FieldError.message` renders
them in the order and form `kubectl apply` prints, so a user can search for the
message they would have seen from the cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The reasons, as the API server spells them in its messages.
REQUIRED = "Required value"
INVALID = "Invalid value"
FORBIDDEN = "Forbidden"
NOT_SUPPORTED = "Unsupported value"
DUPLICATE = "Duplicate value"
TOO_LONG = "Too long"
TOO_MANY = "Too many"
NOT_FOUND = "Not found"
REASONS = (REQUIRED, INVALID, FORBIDDEN, NOT_SUPPORTED, DUPLICATE, TOO_LONG, TOO_MANY, NOT_FOUND)
# Reasons whose message never shows the value.
_VALUELESS = (REQUIRED, FORBIDDEN, TOO_LONG)


class _Omitted:
    def __repr__(self) -> str:
        return "OMITTED"


OMITTED = _Omitted()  # no value in the message


@dataclass(frozen=True)
class Key:
    """A map key in a field path (rendered `labels[app]`, not `labels.app`)."""

    name: str


Segment = str | int | Key


class FieldPath:
    """An immutable field path; cheap to extend, rendered only when an error needs it."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Segment, ...] = ()):
        self.parts = parts

    def child(self, *names: str) -> FieldPath:
        return FieldPath(self.parts + names)

    def index(self, position: int) -> FieldPath:
        return FieldPath(self.parts + (position,))

    def key(self, name: str) -> FieldPath:
        return FieldPath(self.parts + (Key(str(name)),))

    def __str__(self) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, int):
                out.append(f"[{part}]")
            elif isinstance(part, Key):
                out.append(f"[{part.name}]")
            else:
                out.append(f".{part}" if out else part)
        return "".join(out) or "<root>"

    def __repr__(self) -> str:
        return f"FieldPath({self})"


ROOT = FieldPath()


def show(value: Any) -> str:
    """A value as the API server prints it: numbers and booleans bare,
    strings quoted, anything else as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


@dataclass(frozen=True)
class FieldError:
    """One thing the API server would refuse, and which of our checks found it."""

    path: FieldPath
    reason: str
    check: str  # our check id (a row of docs/api-validation.md)
    value: Any = OMITTED
    detail: str = ""

    @property
    def field(self) -> str:
        return str(self.path)

    def message(self) -> str:
        body = self.reason
        if self.reason not in _VALUELESS and self.value is not OMITTED:
            body += f": {show(self.value)}"
        if self.detail:
            body += f": {self.detail}"
        return f"{self.field}: {body}"


class Errors:
    """Collects the errors of one object. Each method takes the check id
    first so that every error can be traced to its coverage row."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def __len__(self) -> int:
        return len(self.items)

    def required(self, check: str, path: FieldPath, detail: str = "") -> None:
        self.items.append(FieldError(path, REQUIRED, check, detail=detail))

    def invalid(self, check: str, path: FieldPath, value: Any, detail: str = "") -> None:
        self.items.append(FieldError(path, INVALID, check, value, detail))

    def forbidden(self, check: str, path: FieldPath, detail: str = "") -> None:
        self.items.append(FieldError(path, FORBIDDEN, check, detail=detail))

    def not_supported(self, check: str, path: FieldPath, value: Any, supported: list[str] | tuple[str, ...]) -> None:
        detail = "supported values: " + ", ".join(json.dumps(str(v)) for v in supported) if supported else ""
        self.items.append(FieldError(path, NOT_SUPPORTED, check, value, detail))

    def duplicate(self, check: str, path: FieldPath, value: Any) -> None:
        self.items.append(FieldError(path, DUPLICATE, check, value))

    def too_long(self, check: str, path: FieldPath, limit: int) -> None:
        unit = "byte" if limit == 1 else "bytes"
        self.items.append(FieldError(path, TOO_LONG, check, detail=f"may not be more than {limit} {unit}"))

    def too_many(self, check: str, path: FieldPath, actual: int, limit: int) -> None:
        unit = "item" if limit == 1 else "items"
        self.items.append(FieldError(path, TOO_MANY, check, actual, f"must have at most {limit} {unit}"))

    def not_found(self, check: str, path: FieldPath, value: Any) -> None:
        self.items.append(FieldError(path, NOT_FOUND, check, value))

    def each(self, check: str, path: FieldPath, value: Any, details: list[str]) -> None:
        """One `Invalid value` per problem a format check found (the API
        server reports each, e.g. too long and a bad character)."""
        for detail in details:
            self.items.append(FieldError(path, INVALID, check, value, detail))
