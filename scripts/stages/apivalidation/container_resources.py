"""A container's resources and resizePolicy (core's
ValidateContainerResourceRequirements, validateContainerResourceName,
ValidateResourceQuantityValue, validateResourceClaimNames, validateResizePolicy),
and the quantity arithmetic they need (how the API server prints a quantity,
which resources may be overcommitted)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import NOT_FOUND, Errors, FieldError, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

HUGEPAGES = "hugepages-"
NATIVE_PREFIX = "kubernetes.io/"
QUOTA_REQUESTS_PREFIX = "requests."
CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
# Names the API server knows without a domain (helper.IsStandardResourceName): container
# resources and the quota ones.
STANDARD_RESOURCES = frozenset(CONTAINER_RESOURCES + (
    "requests.cpu", "requests.memory", "requests.ephemeral-storage", "limits.cpu", "limits.memory",
    "limits.ephemeral-storage", "pods", "resourcequotas", "services", "replicationcontrollers", "secrets",
    "configmaps", "persistentvolumeclaims", "storage", "requests.storage", "services.nodeports",
    "services.loadbalancers",
))
# Counted resources: their quantities must be whole numbers (helper.IsIntegerResourceName).
INTEGER_RESOURCES = frozenset((
    "pods", "resourcequotas", "services", "replicationcontrollers", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
))
RESIZE_RESOURCES = ("cpu", "memory")
RESIZE_POLICIES = ("NotRequired", "RestartContainer")

_DECIMAL_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


# ---- quantities ----------------------------------------------------------------

def _notation(raw: Any) -> str:
    """How a quantity was written, which decides how the API server prints it back."""
    if isinstance(raw, str):
        letters = raw.lstrip("+-0123456789.")
        if letters[:2] in _BINARY_SUFFIXES[1:]:
            return "binary"
        if re.fullmatch(r"[eE][-+]?[0-9]+", letters):
            return "exponent"
    return "decimal"


def quantity_text(raw: Any) -> str:
    """A quantity in the API server's canonical form ("0.5" -> "500m",
    "2048Mi" -> "2Gi", "1000" -> "1k"), as its messages show it."""
    value = formats.parse_quantity(raw)
    if value is None:
        return str(raw)
    if value == 0:
        return "0"
    notation = _notation(raw)
    if notation == "binary" and (-1024 < value < 1024 or value != value.to_integral_value()):
        notation = "decimal"  # the API server avoids a rounded binary form
    if notation == "binary":
        number, power = int(value), 0
        while number % 1024 == 0 and power < len(_BINARY_SUFFIXES) - 1:
            number, power = number // 1024, power + 1
        return f"{number}{_BINARY_SUFFIXES[power]}"
    # A whole mantissa and an exponent that is a multiple of 3; precision stops at nano.
    mantissa, exponent = value, 0
    while mantissa != mantissa.to_integral_value() and exponent > -9:
        mantissa, exponent = mantissa * 1000, exponent - 3
    whole = math.ceil(mantissa)
    while whole % 1000 == 0:
        whole, exponent = whole // 1000, exponent + 3
    if notation == "exponent" or exponent not in _DECIMAL_SUFFIXES:
        return f"{whole}e{exponent}" if exponent else str(whole)
    return f"{whole}{_DECIMAL_SUFFIXES[exponent]}"


def is_native(name: str) -> bool:
    """In the kubernetes.io namespace (an unprefixed name is)."""
    return "/" not in name or NATIVE_PREFIX in name


def is_extended(name: str) -> bool:
    """A device-plugin style resource (example.com/gpu)."""
    if is_native(name) or name.startswith(QUOTA_REQUESTS_PREFIX):
        return False
    # It must still be a qualified name once a quota prefixes it.
    return not formats.qualified_name_problems(QUOTA_REQUESTS_PREFIX + name)


def overcommit_allowed(name: str) -> bool:
    """Requests may be below limits: native resources but hugepages."""
    return is_native(name) and not name.startswith(HUGEPAGES)


def _is_integer_resource(name: str) -> bool:
    return name in INTEGER_RESOURCES or is_extended(name)


def _standard(name: str) -> bool:
    return name in STANDARD_RESOURCES or name.startswith((HUGEPAGES, QUOTA_REQUESTS_PREFIX + HUGEPAGES))


def _milli_is_whole(value: Decimal) -> bool:
    # The API server rounds up to millis, then asks for a multiple of 1000.
    return math.ceil(value * 1000) % 1000 == 0


def _hugepage_multiple(name: str, value: Decimal) -> bool:
    page = formats.parse_quantity(name[len(HUGEPAGES):])
    if page is None or page <= 0 or not _milli_is_whole(page):
        return False
    return math.ceil(value) % int(page) == 0


# ---- resources -------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedList:
    """A requests or limits map: the quantities that parse, by resource name."""

    values: dict[str, Decimal]
    raw: dict[str, Any]


def _resource_name(name: str, path: FieldPath, errs: Errors) -> None:
    problems = formats.qualified_name_problems(name)
    errs.each("api-container-resource-name", path, name, problems)
    unprefixed = "/" not in name
    if not problems and unprefixed and not _standard(name):
        errs.invalid("api-container-resource-name-standard", path, name,
                     "an unprefixed resource name must be one Kubernetes knows; give others a domain "
                     "(example.com/" + name + ")")
    if unprefixed:
        if name not in CONTAINER_RESOURCES and not name.startswith(HUGEPAGES):
            errs.invalid("api-container-resource-name-container", path, name,
                         "a container may request cpu, memory, ephemeral-storage, hugepages-<size> or an "
                         "extended resource (example.com/name)")
    elif not is_native(name) and not is_extended(name):
        errs.invalid("api-container-resource-name-extended", path, name,
                     "an extended resource name is <domain>/<name> and does not start with 'requests.'")


def _quantities(resources: dict[str, Any], key: str, path: FieldPath, errs: Errors) -> ParsedList:
    values: dict[str, Decimal] = {}
    raw: dict[str, Any] = {}
    for name, quantity in as_dict(resources.get(key)).items():
        name = str(name)
        at = path.child(key).key(name)
        _resource_name(name, at, errs)
        if not isinstance(quantity, (str, int, float)) or isinstance(quantity, bool):
            continue  # the JSON schema's finding
        value = formats.parse_quantity(quantity)
        if value is None:
            errs.invalid("api-container-quantity", at, quantity, formats.QUANTITY_FORMAT)
            continue
        values[name], raw[name] = value, quantity
        # The canonical text is made only for a message (it costs more than the checks).
        if value < 0:
            errs.invalid("api-container-resource-negative", at, quantity_text(quantity), "must not be negative")
        if _is_integer_resource(name) and not _milli_is_whole(value):
            errs.invalid("api-container-resource-integer", at, quantity_text(quantity),
                         "an extended resource is counted in whole units")
        if name.startswith(HUGEPAGES) and not _hugepage_multiple(name, value):
            errs.invalid("api-container-resource-hugepages-multiple", at, quantity_text(quantity),
                         f"must be a whole multiple of the page size of {name}")
    return ParsedList(values, raw)


def validate_resources(resources: Any, claim_names: frozenset[str] | None, path: FieldPath, errs: Errors) -> None:
    """`path`: the container's `resources`. `claim_names`: the pod's
    resourceClaims names, or None when the API server drops claims (no DRA)."""
    resources = as_dict(resources)
    limits = _quantities(resources, "limits", path, errs)
    requests = _quantities(resources, "requests", path, errs)
    limit_names = {str(name) for name in as_dict(resources.get("limits"))}
    for name, value in requests.values.items():
        if name in limits.values:
            limit = limits.values[name]
            if value != limit and not overcommit_allowed(name):
                errs.invalid("api-container-resource-equal", path.child("requests"),
                             quantity_text(requests.raw[name]), f"{name} cannot be overcommitted: the request must "
                             f"equal the limit of {quantity_text(limits.raw[name])}")
            elif value > limit:
                errs.invalid("api-container-resource-request-limit", path.child("requests"),
                             quantity_text(requests.raw[name]),
                             f"the {name} request must be at most its limit of {quantity_text(limits.raw[name])}")
        elif name not in limit_names and not overcommit_allowed(name):
            errs.required("api-container-resource-limit-required", path.child("limits"),
                          f"{name} cannot be overcommitted: set its limit (equal to the request)")
    names = set(as_dict(resources.get("limits"))) | set(as_dict(resources.get("requests")))
    if any(str(n).startswith(HUGEPAGES) for n in names) and not names & {"cpu", "memory"}:
        errs.forbidden("api-container-resource-hugepages-cpu-memory", path,
                       "a container with hugepages must also request or limit cpu or memory")
    if claim_names is not None:
        _claims(resources.get("claims"), claim_names, path.child("claims"), errs)


def _claims(claims: Any, pod_claims: frozenset[str], path: FieldPath, errs: Errors) -> None:
    seen: set[str] = set()
    for index, claim in enumerate(as_list(claims)):
        claim = as_dict(claim)
        at = path.index(index)
        name = claim.get("name") if isinstance(claim.get("name"), str) else ""
        request = claim.get("request") if isinstance(claim.get("request"), str) else ""
        if not name:
            errs.required("api-container-claim-name-required", at, "name an entry of spec.resourceClaims")
            continue
        if name in seen:
            errs.duplicate("api-container-claim-unique", at, name)
        else:
            key = name
            if request:
                errs.each("api-container-claim-request", at.child("request"), request,
                          formats.dns_label_problems(request))
                key += "/" + request
            if key in seen:
                errs.duplicate("api-container-claim-unique", at, key)
            elif not request and any(k.partition("/")[0] == name for k in seen if "/" in k):
                # The whole claim after one of its requests: the request is counted twice.
                errs.duplicate("api-container-claim-unique", at, name)
            seen.add(key)
        if name not in pod_claims:
            declared = ", ".join(sorted(pod_claims)) or "none declared"
            errs.items.append(FieldError(at, NOT_FOUND, "api-container-claim-not-found", name,
                                         f"must name an entry of spec.resourceClaims ({declared})"))


def validate_resize_policy(policies: Any, path: FieldPath, pod_restart_policy: str, errs: Errors) -> None:
    """`path`: the container's `resizePolicy`."""
    seen: set[str] = set()
    for index, policy in enumerate(as_list(policies)):
        if not isinstance(policy, dict):
            continue
        resource = policy.get("resourceName") if isinstance(policy.get("resourceName"), str) else ""
        restart = policy.get("restartPolicy") if isinstance(policy.get("restartPolicy"), str) else ""
        if resource in seen:
            errs.duplicate("api-container-resize-unique", path.index(index), resource)
        seen.add(resource)
        if not resource:
            errs.required("api-container-resize-resource-required", path, "each entry names cpu or memory")
        elif resource not in RESIZE_RESOURCES:
            errs.not_supported("api-container-resize-resource", path, resource, RESIZE_RESOURCES)
        if not restart:
            errs.required("api-container-resize-policy-required", path,
                          "each entry sets restartPolicy NotRequired or RestartContainer")
        elif restart not in RESIZE_POLICIES:
            errs.not_supported("api-container-resize-policy", path, restart, RESIZE_POLICIES)
        if pod_restart_policy == "Never" and restart != "NotRequired":
            errs.invalid("api-container-resize-never", path, restart,
                         "a pod with restartPolicy Never cannot restart a container to resize it: use NotRequired")


_REQ = "core: validateResourceRequirements"
_NAME = "core: validateContainerResourceName"
ROWS = (
    Row((POD_TEMPLATE,), "decoding (resource.ParseQuantity)", "every quantity of a container (requests, limits, "
        "an env resourceFieldRef divisor) parses: the API server refuses the whole object otherwise",
        "api-container-quantity"),
    Row((POD_TEMPLATE,), _NAME + " (validateResourceName, IsQualifiedName)", "a resource name is a qualified name",
        "api-container-resource-name"),
    Row((POD_TEMPLATE,), _NAME + " (validateResourceName)", "an unprefixed resource name is one Kubernetes knows "
        "(IsStandardResourceName)", "api-container-resource-name-standard"),
    Row((POD_TEMPLATE,), _NAME, "an unprefixed resource name is cpu, memory, ephemeral-storage or hugepages-<size> "
        "(IsStandardContainerResourceName)", "api-container-resource-name-container"),
    Row((POD_TEMPLATE,), _NAME + " (IsExtendedResourceName)", "a prefixed name outside kubernetes.io is an "
        "extended resource name: not 'requests.'-prefixed, still qualified with 'requests.' in front",
        "api-container-resource-name-extended"),
    Row((POD_TEMPLATE,), "core: ValidateResourceQuantityValue (ValidateNonnegativeQuantity)", "a quantity is not "
        "negative", "api-container-resource-negative"),
    Row((POD_TEMPLATE,), "core: ValidateResourceQuantityValue (IsIntegerResourceName)", "an extended resource's "
        "quantity is a whole number", "api-container-resource-integer"),
    Row((POD_TEMPLATE,), _REQ + " (validateResourceQuantityHugePageValue)", "a hugepages-<size> quantity is a whole "
        "multiple of the page size", "api-container-resource-hugepages-multiple"),
    Row((POD_TEMPLATE,), _REQ, "a request is at most its limit", "api-container-resource-request-limit"),
    Row((POD_TEMPLATE,), _REQ + " (IsOvercommitAllowed)", "an extended resource's or hugepages' request equals its "
        "limit", "api-container-resource-equal"),
    Row((POD_TEMPLATE,), _REQ + " (IsOvercommitAllowed)", "an extended resource or hugepages request needs a "
        "limit", "api-container-resource-limit-required"),
    Row((POD_TEMPLATE,), _REQ, "hugepages need a cpu or memory request or limit in the same container",
        "api-container-resource-hugepages-cpu-memory"),
    Row((POD_TEMPLATE,), "core: validateResourceClaimNames", "a resources.claims entry has a name (DRA, on by "
        "default since 1.34; before, the API server drops claims)", "api-container-claim-name-required"),
    Row((POD_TEMPLATE,), "core: validateResourceClaimNames", "a claim, or a claim and request, is listed once, "
        "and not both whole and by request", "api-container-claim-unique"),
    Row((POD_TEMPLATE,), "core: validateResourceClaimNames (ValidateDNS1123Label)", "a claim's request is a DNS "
        "label", "api-container-claim-request"),
    Row((POD_TEMPLATE,), "core: validateResourceClaimNames", "a claim names an entry of spec.resourceClaims",
        "api-container-claim-not-found"),
    Row((POD_TEMPLATE,), "core: validateResizePolicy", "a resource is listed once in resizePolicy (InPlacePod"
        "VerticalScaling, on by default since 1.33; before, the field is dropped)", "api-container-resize-unique"),
    Row((POD_TEMPLATE,), "core: validateResizePolicy", "resizePolicy resourceName is not empty",
        "api-container-resize-resource-required"),
    Row((POD_TEMPLATE,), "core: validateResizePolicy", "resizePolicy resourceName is cpu or memory",
        "api-container-resize-resource"),
    Row((POD_TEMPLATE,), "core: validateResizePolicy", "resizePolicy restartPolicy is not empty",
        "api-container-resize-policy-required"),
    Row((POD_TEMPLATE,), "core: validateResizePolicy", "resizePolicy restartPolicy is NotRequired or "
        "RestartContainer", "api-container-resize-policy"),
    Row((POD_TEMPLATE,), "core: validateResizePolicy", "with the pod's restartPolicy Never, resizePolicy "
        "restartPolicy is NotRequired", "api-container-resize-never"),
)
