"""The value formats the API server accepts (apimachinery's pkg/util/validation,
pkg/api/resource and the name rules of pkg/api/validation), as Python.

Each `*_problems` function returns the list of what is wrong with a value, empty
when it is fine, so a caller can report every problem as the API server does.
The patterns and limits are the API server's (v0.34 of k8s.io/apimachinery);
the wording is ours.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Any

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63
PORT_NAME_MAX = 15
INT32_MAX = 2**31 - 1

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_SUBDOMAIN_UNDERSCORE = re.compile(r"_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*")
_WILDCARD_SUBDOMAIN = re.compile(r"\*\." + _DNS_SUBDOMAIN.pattern)
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+")
_PERCENT = re.compile(r"[0-9]+%")
_HTTP_HEADER_NAME = re.compile(r"[-A-Za-z0-9]+")
_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def _memo(function):
    """The same value is judged thousands of times a run (every object's
    labels, names and quantities repeat across renders): remember the
    answer. Callers get a fresh list each time, so they may extend it."""
    cached = functools.lru_cache(maxsize=8192)(lambda value: tuple(function(value)))

    @functools.wraps(function)
    def wrapper(value):
        return list(cached(value)) if isinstance(value, str) else function(value)
    return wrapper


def too_long(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _chdir_problems(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


@_memo
def dns_label_problems(value: str) -> list[str]:
    """RFC 1123 label: Namespace names, many `name` fields."""
    out = [too_long(DNS_LABEL_MAX)] if len(value) > DNS_LABEL_MAX else []
    if not _DNS_LABEL.fullmatch(value):
        out.append("must not contain dots" if _DNS_SUBDOMAIN.fullmatch(value) else
                   "must be a lowercase RFC 1123 label: lowercase letters, digits and '-', beginning and ending "
                   "with a letter or digit (e.g. 'my-name' or '123-abc')")
    return out


@_memo
def dns_subdomain_problems(value: str) -> list[str]:
    """RFC 1123 subdomain: most object names."""
    out = [too_long(DNS_SUBDOMAIN_MAX)] if len(value) > DNS_SUBDOMAIN_MAX else []
    if not _DNS_SUBDOMAIN.fullmatch(value):
        out.append("must be a lowercase RFC 1123 subdomain: lowercase letters, digits, '-' and '.', beginning and "
                   "ending with a letter or digit (e.g. 'example.com')")
    return out


def dns_subdomain_with_underscore_problems(value: str) -> list[str]:
    out = [too_long(DNS_SUBDOMAIN_MAX)] if len(value) > DNS_SUBDOMAIN_MAX else []
    if not _DNS_SUBDOMAIN_UNDERSCORE.fullmatch(value):
        out.append("must be a lowercase RFC 1123 subdomain that may hold '_': lowercase letters, digits, '_', '-' "
                   "and '.', beginning and ending with a letter or digit")
    return out


def wildcard_subdomain_problems(value: str) -> list[str]:
    out = [too_long(DNS_SUBDOMAIN_MAX)] if len(value) > DNS_SUBDOMAIN_MAX else []
    if not _WILDCARD_SUBDOMAIN.fullmatch(value):
        out.append("must be '*.' followed by a lowercase RFC 1123 subdomain (e.g. '*.example.com')")
    return out


@_memo
def dns1035_label_problems(value: str) -> list[str]:
    """RFC 1035 label: Service names (they become DNS names and env var prefixes)."""
    out = [too_long(DNS_LABEL_MAX)] if len(value) > DNS_LABEL_MAX else []
    if not _DNS1035_LABEL.fullmatch(value):
        out.append("must be an RFC 1035 label: lowercase letters, digits and '-', beginning with a letter and "
                   "ending with a letter or digit (e.g. 'my-name' or 'abc-123')")
    return out


@_memo
def qualified_name_problems(value: str) -> list[str]:
    """A label or annotation key: an optional DNS subdomain prefix and '/',
    then a name of at most 63 characters."""
    out: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return ["must be a name (alphanumerics, '-', '_' or '.', beginning and ending with an alphanumeric) with "
                "an optional DNS subdomain prefix and '/', e.g. 'example.com/MyName'"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            out.append("prefix part must be non-empty")
        else:
            out += ["prefix part " + problem for problem in dns_subdomain_problems(prefix)]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        out.append("name part " + too_long(QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME.fullmatch(name):
        out.append("name part must consist of alphanumerics, '-', '_' or '.', beginning and ending with an "
                   "alphanumeric (e.g. 'MyName', 'my.name' or '123-abc')")
    return out


@_memo
def label_value_problems(value: str) -> list[str]:
    out = [too_long(LABEL_VALUE_MAX)] if len(value) > LABEL_VALUE_MAX else []
    if not _LABEL_VALUE.fullmatch(value):
        out.append("must be empty or consist of alphanumerics, '-', '_' or '.', beginning and ending with an "
                   "alphanumeric (e.g. 'MyValue', 'my_value' or '12345')")
    return out


@_memo
def c_identifier_problems(value: str) -> list[str]:
    if _C_IDENTIFIER.fullmatch(value):
        return []
    return ["must be a C identifier: a letter or '_', then letters, digits or '_' (e.g. 'my_name' or 'MY_NAME')"]


def port_number_problems(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


def in_range_problems(value: int, low: int, high: int) -> list[str]:
    return [] if low <= value <= high else [f"must be between {low} and {high}, inclusive"]


def user_id_problems(value: int) -> list[str]:
    return in_range_problems(value, 0, INT32_MAX)


@_memo
def port_name_problems(value: str) -> list[str]:
    """An IANA service name (RFC 6335): what a named port must be."""
    out = [too_long(PORT_NAME_MAX)] if len(value) > PORT_NAME_MAX else []
    if not _PORT_NAME_CHARS.fullmatch(value):
        out.append("must contain only lowercase letters, digits and '-'")
    if not re.search(r"[a-z]", value):
        out.append("must contain at least one letter (a-z)")
    if "--" in value:
        out.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        out.append("must not begin or end with a hyphen")
    return out


def percent_problems(value: str) -> list[str]:
    return [] if _PERCENT.fullmatch(value) else ["must be a whole number followed by '%' (e.g. '1%' or '93%')"]


def http_header_name_problems(value: str) -> list[str]:
    return [] if _HTTP_HEADER_NAME.fullmatch(value) else \
        ["must consist of letters, digits or '-' (e.g. 'X-Header-Name')"]


@_memo
def env_var_name_problems(value: str) -> list[str]:
    """The strict environment variable name (before RelaxedEnvironmentVariableValidation)."""
    out = [] if _ENV_VAR_NAME.fullmatch(value) else \
        ["must consist of letters, digits, '_', '-' or '.', and must not start with a digit (e.g. 'MY_ENV.NAME')"]
    return out + _chdir_problems(value)


@_memo
def relaxed_env_var_name_problems(value: str) -> list[str]:
    """Any printable ASCII character but '=' (RelaxedEnvironmentVariableValidation, on by default since 1.32)."""
    out = ["environment variable name must be non-empty"] if not value else []
    if any(ord(ch) > 126 or ord(ch) < 32 or ch == "=" for ch in value):
        out.append("must consist only of printable ASCII characters other than '='")
    return out


@_memo
def config_key_problems(value: str) -> list[str]:
    """A ConfigMap or Secret key (also a projected file name)."""
    out = [too_long(DNS_SUBDOMAIN_MAX)] if len(value) > DNS_SUBDOMAIN_MAX else []
    if not _CONFIG_KEY.fullmatch(value):
        out.append("must consist of alphanumerics, '-', '_' or '.' (e.g. 'key.name', 'KEY_NAME' or 'key-name')")
    return out + _chdir_problems(value)


def path_segment_name_problems(value: str, prefix: bool = False) -> list[str]:
    """Names that only need to be a URL path segment (RBAC roles and bindings)."""
    if not prefix and value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{ch}'" for ch in ("/", "%") if ch in value]


# ---- object names ----------------------------------------------------------

def _mask_trailing_dash(name: str) -> str:
    # A generateName prefix may end with '-': the generated suffix follows it.
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return dns_subdomain_problems(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return dns_label_problems(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return dns1035_label_problems(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool = False) -> list[str]:
    return path_segment_name_problems(name, prefix)


# ---- quantities (k8s.io/apimachinery/pkg/api/resource) ---------------------

_BINARY_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# sign, digits with an optional fraction, then a suffix: SI, binary SI, or an exponent.
_QUANTITY = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*)([-+]?[0-9]*)")
_WIDE = Context(Emax=MAX_EMAX, Emin=MIN_EMIN)  # exponents up to int32, as the API server reads them
QUANTITY_FORMAT = "must be a quantity like 500m, 2, 1.5, 512Mi, 4Gi or 1e3"


@functools.lru_cache(maxsize=8192)
def _parse_quantity_text(value: str) -> Decimal | None:
    return _parse_quantity(value)


def parse_quantity(value: Any) -> Decimal | None:
    """A resource quantity's value, or None when the API server cannot read it.
    Numbers in YAML are quantities too (`cpu: 2`)."""
    if isinstance(value, str):
        return _parse_quantity_text(value)
    return _parse_quantity(value)


def _parse_quantity(value: Any) -> Decimal | None:
    """A resource quantity's value, or None when the API server cannot read it.
    Numbers in YAML are quantities too (`cpu: 2`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str) or not value:
        return None
    match = _QUANTITY.fullmatch(value)
    if match is None:
        return None
    sign, whole, fraction, letters, exponent = match.groups()
    # No digits at all reads as zero ("+", ".", "Ki"), as the API server's parser does.
    suffix = letters + exponent
    number = Decimal(f"{whole or '0'}.{fraction or '0'}")
    if suffix in _BINARY_SUFFIX:
        number *= Decimal(2) ** _BINARY_SUFFIX[suffix]
    elif suffix in _DECIMAL_SUFFIX:
        number = number.scaleb(_DECIMAL_SUFFIX[suffix])
    elif letters in ("e", "E") and re.fullmatch(r"[-+]?[0-9]+", exponent) \
            and -(2**31) <= int(exponent) < 2**31:  # the exponent is read as an int32
        number = number.scaleb(int(exponent), _WIDE)
    else:
        return None
    return -number if sign == "-" else number


# ---- int-or-string ---------------------------------------------------------

def is_int(value: Any) -> bool:
    """A YAML integer (not a boolean, which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


# ---- IP addresses and CIDRs ------------------------------------------------

def _sloppy_ipv4(value: str) -> str:
    # The API server's legacy parser accepts leading zeros in IPv4 octets
    # ("010.1.1.1" is 10.1.1.1); Python's ipaddress refuses them.
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        return ".".join(str(int(p)) for p in parts)
    return value


def parse_ip(value: str, strict: bool = False) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address; `strict` refuses leading zeros (the StrictIPCIDRValidation rules)."""
    if not isinstance(value, str) or "%" in value:
        return None
    try:
        return ipaddress.ip_address(value if strict else _sloppy_ipv4(value))
    except ValueError:
        return None


def parse_cidr(value: str, strict: bool = False) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR (host bits may be set, as the legacy parser allows), or None."""
    if not isinstance(value, str) or "/" not in value:
        return None
    address, _, length = value.partition("/")
    if not length.isdigit() or (strict and len(length) > 1 and length.startswith("0")):
        return None
    try:
        return ipaddress.ip_network(f"{address if strict else _sloppy_ipv4(address)}/{int(length)}", strict=False)
    except ValueError:
        return None
