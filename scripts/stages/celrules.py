"""The CRDs' own validation rules (`x-kubernetes-validations`), evaluated
offline as the API server evaluates them on create.

The runtime is cel-expr-python, the CEL project's own C++ implementation. The
Kubernetes CEL libraries the rules may use are declared here on top: the
strings extension (as cel-go's ext.Strings, which Kubernetes enables: its
substring accepts an end equal to the length, where cel-expr-python 0.1.3's
own extension refuses it), url and its getters, isURL, isQuantity, isIP and
the list helpers (isSorted, indexOf, lastIndexOf). A rule that uses anything else
does not compile and is reported as not evaluated, never passed. Each
distinct rule compiles once per run. Rules that compare with the old object
(`oldSelf`, transition rules) cannot be judged without a cluster and are
skipped, as documented in docs/validation.md.
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$")


def _parse_url(text: str) -> urllib.parse.SplitResult:
    """Go's url.ParseRequestURI, which Kubernetes' url() uses: an absolute
    URI or an absolute path, no spaces or control characters."""
    if not text or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValueError(f"URL parse error during conversion from string: {text!r}")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme:
        if not _SCHEME.match(parts.scheme):
            raise ValueError(f"URL parse error: invalid scheme in {text!r}")
    elif not text.startswith("/"):
        raise ValueError(f"URL parse error: {text!r} is neither an absolute URI nor an absolute path")
    return parts


def _url(text: str) -> str:
    _parse_url(text)
    return text


def _is_url(text: str) -> bool:
    try:
        _parse_url(text)
    except ValueError:
        return False
    return True


def _port(text: str) -> str:
    netloc = _parse_url(text).netloc.rpartition("@")[2]
    if netloc.startswith("["):
        return netloc.partition("]")[2].lstrip(":")
    return netloc.rpartition(":")[2] if ":" in netloc else ""


def _hostname(text: str) -> str:
    host = _parse_url(text).netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


def _is_sorted(items: list) -> bool:
    return all(a <= b for a, b in zip(items, items[1:], strict=False))


def _check_range(text: str, start: int, end: int) -> None:
    if start < 0 or end > len(text) or start > end:
        raise ValueError(f"index out of range: substring({start}, {end}) of a string of length {len(text)}")


def _substring(text: str, start: int, end: int | None = None) -> str:
    end = len(text) if end is None else end
    _check_range(text, start, end)
    return text[start:end]


def _char_at(text: str, index: int) -> str:
    if index < 0 or index > len(text):
        raise ValueError(f"index out of range: {index}")
    return text[index:index + 1]


def _index_of(haystack: Any, needle: Any, start: int = 0) -> int:
    if isinstance(haystack, str):
        if start < 0 or start > len(haystack):
            raise ValueError(f"index out of range: {start}")
        return haystack.find(needle, start)
    return next((i for i, item in enumerate(haystack) if item == needle), -1)


def _last_index_of(haystack: Any, needle: Any, end: int | None = None) -> int:
    if isinstance(haystack, str):
        end = len(haystack) if end is None else end
        if end < 0 or end > len(haystack):
            raise ValueError(f"index out of range: {end}")
        return haystack.rfind(needle, 0, end + len(needle))
    return next((i for i in range(len(haystack) - 1, -1, -1) if haystack[i] == needle), -1)


def _split(text: str, separator: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    if separator == "":
        parts = list(text)
        return parts if limit < 0 or limit >= len(parts) else [*parts[:limit - 1], "".join(parts[limit - 1:])]
    return text.split(separator, limit - 1 if limit > 0 else -1)


def _replace(text: str, old: str, new: str, count: int = -1) -> str:
    return text.replace(old, new, count if count >= 0 else -1)


def _ascii(text: str, upper: bool) -> str:
    return "".join((c.upper() if upper else c.lower()) if c.isascii() else c for c in text)


def _quantity_ok(text: str) -> bool:
    return bool(_QUANTITY.match(text))


def _is_ip(text: str) -> bool:
    """The Kubernetes IP library's isIP: an IPv4 or IPv6 address as Go's
    netip parses it (no leading zeros), without a zone and not an IPv4-mapped
    IPv6 address (Gateway API's hostname rules use it)."""
    if "%" in text:
        return False
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None)


def _declare(name: str, *overloads: tuple[Any, list, Any, bool]) -> cel.FunctionDecl:
    """One function, each overload as (returns, parameters, impl, member)."""
    return cel.FunctionDecl(name, [
        cel.Overload(f"{name}_{number}", return_type=returns, parameters=params, is_member=member, impl=impl)
        for number, (returns, params, impl, member) in enumerate(overloads)])


def _kubernetes_functions() -> list[cel.FunctionDecl]:
    # A URL is carried as its string: url() checks it, the getters parse it.
    string, integer, boolean, dyn = cel.Type.STRING, cel.Type.INT, cel.Type.BOOL, cel.Type.DYN
    dyn_list, strings = cel.Type.List(dyn), cel.Type.List(string)
    # list helpers take lists of one scalar type (runtime dispatch is by type)
    scalars = (integer, string, cel.Type.DOUBLE, boolean)
    return [
        # strings (cel-go ext.Strings, as Kubernetes enables it)
        _declare("substring", (string, [string, integer], _substring, True),
                 (string, [string, integer, integer], _substring, True)),
        _declare("charAt", (string, [string, integer], _char_at, True)),
        _declare("indexOf", (integer, [string, string], _index_of, True),
                 (integer, [string, string, integer], _index_of, True),
                 *((integer, [cel.Type.List(t), t], _index_of, True) for t in scalars)),
        _declare("lastIndexOf", (integer, [string, string], _last_index_of, True),
                 (integer, [string, string, integer], _last_index_of, True),
                 *((integer, [cel.Type.List(t), t], _last_index_of, True) for t in scalars)),
        _declare("lowerAscii", (string, [string], lambda s: _ascii(s, False), True)),
        _declare("upperAscii", (string, [string], lambda s: _ascii(s, True), True)),
        _declare("trim", (string, [string], str.strip, True)),
        _declare("replace", (string, [string, string, string], _replace, True),
                 (string, [string, string, string, integer], _replace, True)),
        _declare("split", (strings, [string, string], _split, True),
                 (strings, [string, string, integer], _split, True)),
        _declare("join", (string, [strings], "".join, True),
                 (string, [strings, string], lambda items, sep: sep.join(items), True)),
        # url
        _declare("url", (string, [string], _url, False)),
        _declare("isURL", (boolean, [string], _is_url, False)),
        _declare("getScheme", (string, [string], lambda s: _parse_url(s).scheme, True)),
        _declare("getHost", (string, [string], lambda s: _parse_url(s).netloc.rpartition("@")[2], True)),
        _declare("getHostname", (string, [string], _hostname, True)),
        _declare("getPort", (string, [string], _port, True)),
        _declare("getEscapedPath", (string, [string], lambda s: _parse_url(s).path, True)),
        # quantity and lists
        _declare("isQuantity", (boolean, [string], _quantity_ok, False)),
        _declare("isIP", (boolean, [string], _is_ip, False)),
        _declare("isSorted", (boolean, [dyn_list], _is_sorted, True)),
    ]


@dataclass(frozen=True)
class Rule:
    """One x-kubernetes-validations entry and the schema node it sits on."""
    path: tuple[str, ...]  # property names; "*" is a list item or a map value
    rule: str
    message: str = ""
    message_expression: str = ""
    field_path: str = ""
    reason: str = ""

    @classmethod
    def from_json(cls, data: dict) -> Rule:
        return cls(tuple(data.get("path") or ()), data["rule"], data.get("message", ""),
                   data.get("messageExpression", ""), data.get("fieldPath", ""), data.get("reason", ""))

    @property
    def needs_old_object(self) -> bool:
        return bool(re.search(r"\boldSelf\b", self.rule))


@dataclass
class CompiledRule:
    rule: Rule
    program: Any = None
    message_program: Any = None
    error: str = ""


@dataclass(frozen=True)
class RuleFailure:
    path: str  # API-server style: spec.http[0].timeout
    message: str  # the whole line after the path
    compile_error: bool = False


class Environment:
    """One CEL environment and compiled-program cache per run."""

    def __init__(self) -> None:
        self._env = cel.NewEnv(variables={"self": cel.Type.DYN}, functions=_kubernetes_functions())
        self._programs: dict[str, tuple[Any, str]] = {}

    def _program(self, text: str) -> tuple[Any, str]:
        cached = self._programs.get(text)
        if cached is None:
            try:
                cached = (self._env.compile(text), "")
            except Exception as exc:  # noqa: BLE001 - the library raises plain exceptions on bad rules
                cached = (None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._programs[text] = cached
        return cached

    def compile_rules(self, rules: list[Rule]) -> list[CompiledRule]:
        compiled = []
        for rule in rules:
            if rule.needs_old_object:
                continue
            program, error = self._program(rule.rule)
            message_program = self._program(rule.message_expression)[0] if rule.message_expression else None
            compiled.append(CompiledRule(rule, program, message_program, error))
        return compiled


def _nodes(value: Any, path: tuple[str, ...], where: str) -> Iterator[tuple[str, Any]]:
    """The values at a rule's schema path, with their API-server field paths."""
    if not path:
        yield where, value
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _nodes(item, rest, f"{where}[{index}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from _nodes(item, rest, f"{where}[{key}]")
        return
    if isinstance(value, dict) and head in value and value[head] is not None:
        yield from _nodes(value[head], rest, f"{where}.{head}" if where else head)


def _shown(value: Any) -> str:
    """The value as `Invalid value:` shows it; objects and lists by type, as
    the API server does, so a message never prints a whole spec."""
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(value)


def _field_path(base: str, relative: str) -> str:
    if not relative:
        return base or "(root)"
    relative = relative if relative.startswith((".", "[")) else "." + relative
    joined = f"{base}{relative}" if base else relative.lstrip(".")
    return re.sub(r"\['([^']*)'\]", r".\1", joined)


def _describe(compiled: CompiledRule, value: Any) -> str:
    rule = compiled.rule
    message = rule.message or f"failed rule: {rule.rule}"
    if compiled.message_program is not None:
        result = compiled.message_program.eval(data={"self": value})
        if result.type() == cel.Type.STRING and result.value().strip():
            message = result.value()
    reason = rule.reason or "FieldValueInvalid"
    if reason == "FieldValueRequired":
        return f"Required value: {message}"
    if reason == "FieldValueForbidden":
        return f"Forbidden: {message}"
    if reason == "FieldValueDuplicate":
        return f"Duplicate value: {message}"
    return f"Invalid value: {_shown(value)}: {message}"


def evaluate(compiled_rules: list[CompiledRule], doc: dict) -> list[RuleFailure]:
    failures: list[RuleFailure] = []
    for compiled in compiled_rules:
        for where, value in _nodes(doc, compiled.rule.path, ""):
            path = where or "(root)"
            if compiled.program is None:
                failures.append(RuleFailure(path, f"rule not evaluated, it does not compile here: "
                                                  f"{compiled.rule.rule!r}: {compiled.error}", compile_error=True))
                continue
            result = compiled.program.eval(data={"self": value})
            if result.type() == cel.Type.BOOL:
                if not result.value():
                    failures.append(RuleFailure(_field_path(where, compiled.rule.field_path),
                                                _describe(compiled, value)))
                continue
            # The API server rejects an object whose rule cannot be evaluated.
            detail = str(result.value()) if result.type() == cel.Type.ERROR else f"returned {result.type().name()}"
            failures.append(RuleFailure(path, f"Invalid value: {_shown(value)}: evaluating rule "
                                              f"{compiled.rule.rule!r}: {detail}"))
    return failures
