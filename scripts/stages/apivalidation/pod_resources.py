"""Resources named at the pod level: spec.overhead (core's validateOverhead,
which reuses the container requirements rules on limits only) and
spec.resources (validatePodResources, behind PodLevelResources, on by default
since 1.34)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

HUGEPAGES_PREFIX = "hugepages-"
# Names without a domain the API server knows (helper.IsStandardResourceName).
_STANDARD = ("cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
             "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas", "services",
             "replicationcontrollers", "secrets", "persistentvolumeclaims", "configmaps", "services.nodeports",
             "services.loadbalancers")
_CONTAINER_STANDARD = ("cpu", "memory", "ephemeral-storage")
_INTEGER = ("pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
            "persistentvolumeclaims", "services.nodeports", "services.loadbalancers")
POD_LEVEL_SUPPORTED = ("cpu", "hugepages-", "memory")


def _native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _hugepages(name: str) -> bool:
    return name.startswith(HUGEPAGES_PREFIX)


def extended(name: str) -> bool:
    """helper.IsExtendedResourceName: a domain-prefixed name outside kubernetes.io."""
    if _native(name) or name.startswith("requests."):
        return False
    return not formats.qualified_name_problems("requests." + name)


def _overcommit_allowed(name: str) -> bool:
    return _native(name) and not _hugepages(name)


def _standard(name: str) -> bool:
    return name in _STANDARD or name.startswith((HUGEPAGES_PREFIX, "requests." + HUGEPAGES_PREFIX))


def _base_name_problems(name: str) -> list[str]:
    """validateResourceName."""
    problems = formats.qualified_name_problems(name)
    if problems:
        return problems
    if "/" not in name and not _standard(name):
        return ["must be a standard resource type or a domain-prefixed name"]
    return []


def container_resource_name_problems(name: str) -> list[str]:
    """validateContainerResourceName (what overhead's names must be)."""
    problems = _base_name_problems(name)
    if "/" not in name:
        if not (name in _CONTAINER_STANDARD or _hugepages(name)):
            problems.append("must be cpu, memory, ephemeral-storage, hugepages-<size> or a domain-prefixed "
                            "extended resource")
    elif not _native(name) and not extended(name):
        problems.append("is not a valid extended resource name")
    return problems


def _hugepage_problem(name: str, value: Decimal, shown: Any) -> str | None:
    size = formats.parse_quantity(name[len(HUGEPAGES_PREFIX):])
    if size is None or size <= 0 or size != size.to_integral_value() or \
            value.to_integral_value(rounding="ROUND_CEILING") % size != 0:
        return f"{shown} is not a whole multiple of the page size of {name}"
    return None


def _requirements(requirements: dict[str, Any], path: FieldPath, errs: Errors, *, check: str,
                  name_problems: Callable[[str], list[str]], pod_level: bool) -> None:
    """validateResourceRequirements: names, quantities, requests against
    limits, huge pages. All errors carry `check` except the pod-level
    rules' own ids."""
    limits, requests = as_dict(requirements.get("limits")), as_dict(requirements.get("requests"))
    cpu_or_memory = hugepages = False
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for section, entries in (("limits", limits), ("requests", requests)):
        for name, quantity in entries.items():
            name = str(name)
            at = path.child(section).key(name)
            name_check = "api-pod-resources-name" if pod_level else check
            if pod_level:
                problems = _base_name_problems(name)
                errs.each(name_check, at, name, problems)
                if not problems and name not in ("cpu", "memory") and not _hugepages(name):
                    errs.not_supported(name_check, at, name, POD_LEVEL_SUPPORTED)
            else:
                errs.each(name_check, at, name, name_problems(name))
            value = formats.parse_quantity(quantity)
            quantity_check = "api-pod-resources-quantity" if pod_level else check
            if value is None:
                errs.invalid(quantity_check, at, quantity, formats.QUANTITY_FORMAT)
                continue
            parsed[section][name] = value
            if value < 0:
                errs.invalid(quantity_check, at, str(quantity), "must be greater than or equal to 0")
            if (name in _INTEGER or extended(name)) and value != value.to_integral_value():
                errs.invalid(quantity_check, at, str(quantity), "must be a whole number")
            if _hugepages(name):
                hugepages = True
                problem = _hugepage_problem(name, value, quantity)
                if problem:
                    errs.invalid("api-pod-resources-hugepages" if pod_level else check, at, str(quantity), problem)
            cpu_or_memory = cpu_or_memory or name in ("cpu", "memory")
    for name, value in parsed["requests"].items():
        limit_check = "api-pod-resources-request-limit" if pod_level else check
        if name in limits:
            limit = parsed["limits"].get(name)
            if limit is None:
                continue
            if not _overcommit_allowed(name) and value != limit:
                errs.invalid(limit_check, path.child("requests"), str(requests[name]),
                             f"must equal the {name} limit of {limits[name]} ({name} cannot be overcommitted)")
            elif value > limit:
                errs.invalid(limit_check, path.child("requests"), str(requests[name]),
                             f"must be less than or equal to the {name} limit of {limits[name]}")
        elif not _overcommit_allowed(name):
            errs.required(limit_check, path.child("limits"),
                          f"{name} cannot be overcommitted: set its limit, equal to the request")
    if hugepages and not cpu_or_memory:
        errs.forbidden("api-pod-resources-hugepages" if pod_level else check, path,
                       "huge pages need a cpu or memory request or limit as well")


def validate_overhead(overhead: Any, path: FieldPath, errs: Errors) -> None:
    """validateOverhead: spec.overhead as a container's limits."""
    if isinstance(overhead, dict):
        _requirements({"limits": overhead}, path, errs, check="api-pod-overhead",
                      name_problems=container_resource_name_problems, pod_level=False)


def _requests(container: dict[str, Any]) -> dict[str, Decimal]:
    out = {}
    for name, quantity in as_dict(as_dict(container.get("resources")).get("requests")).items():
        value = formats.parse_quantity(quantity)
        if value is not None:
            out[str(name)] = value
    return out


def _add(total: dict[str, Decimal], more: dict[str, Decimal]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, Decimal(0)) + value


def _keep_max(total: dict[str, Decimal], other: dict[str, Decimal]) -> None:
    for name, value in other.items():
        if value > total.get(name, Decimal(0)):
            total[name] = value


def aggregate_container_requests(spec: dict[str, Any]) -> dict[str, Decimal]:
    """What the containers need together (resourcehelper.AggregateContainerRequests):
    the regular containers and sidecars summed, or the largest need of an
    init container (plus the sidecars started before it), whichever is more."""
    total: dict[str, Decimal] = {}
    for container in as_list(spec.get("containers")):
        _add(total, _requests(as_dict(container)))
    sidecars: dict[str, Decimal] = {}
    init_peak: dict[str, Decimal] = {}
    for container in as_list(spec.get("initContainers")):
        container = as_dict(container)
        own = _requests(container)
        if container.get("restartPolicy") == "Always":
            _add(total, own)
            _add(sidecars, own)
            need = dict(sidecars)
        else:
            need = dict(own)
            _add(need, sidecars)
        _keep_max(init_peak, need)
    _keep_max(total, init_peak)
    return total


def validate_pod_resources(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    """validatePodResources at spec.resources (`path` is the spec's)."""
    resources = spec.get("resources")
    # PodLevelResources is on by default since 1.34; before, the API server drops spec.resources.
    if not ctx.at_least(34) or not isinstance(resources, dict):
        return
    at = path.child("resources")
    if resources.get("claims") is not None:
        errs.forbidden("api-pod-resources-claims", at.child("claims"),
                       "pod-level resources take no claims: name them in each container's resources.claims")
    _requirements(resources, at, errs, check="api-pod-resources-quantity", name_problems=_base_name_problems,
                  pod_level=True)
    requests = as_dict(resources.get("requests"))
    for name, needed in sorted(aggregate_container_requests(spec).items()):
        # Compared only where the pod-level request is set: an unset one is
        # filled in when the Pod is created.
        pod_value = formats.parse_quantity(requests.get(name)) if name in requests else None
        if pod_value is not None and needed > pod_value:
            errs.invalid("api-pod-resources-aggregate", at.child("requests").key(name), str(requests[name]),
                         f"must be at least what the containers request together ({_show(needed)})")
    limits = as_dict(resources.get("limits"))
    for index, container in enumerate(as_list(spec.get("containers"))):
        for name, quantity in as_dict(as_dict(as_dict(container).get("resources")).get("limits")).items():
            pod_limit = formats.parse_quantity(limits.get(name)) if name in limits else None
            value = formats.parse_quantity(quantity)
            if pod_limit is not None and value is not None and value > pod_limit:
                # The API server's path for this one: resources.containers[i][name].limits.
                errs.invalid("api-pod-resources-container-limit", at.child("containers").index(index).key(str(name))
                             .child("limits"), str(quantity),
                             f"must be less than or equal to the pod's {name} limit of {limits[name]}")


def _show(value: Decimal) -> str:
    """A summed quantity in the units a manifest would use: 300m, 1536Mi, 2."""
    if value == value.to_integral_value():
        number = int(value)
        for exponent, suffix in ((4, "Ti"), (3, "Gi"), (2, "Mi"), (1, "Ki")):
            if number and number % 1024 ** exponent == 0:
                return f"{number // 1024 ** exponent}{suffix}"
        return str(number)
    milli = value * 1000
    return f"{int(milli)}m" if milli == milli.to_integral_value() else format(value.normalize(), "f")


_R = "core: validatePodResources"
ROWS = (
    Row((POD_TEMPLATE,), "core: validateOverhead (ValidateContainerResourceRequirements)", "overhead names are "
        "container resources (cpu, memory, ephemeral-storage, hugepages-*, extended) with quantities that are "
        "not negative (whole numbers for extended resources) and huge pages in whole pages",
        "api-pod-overhead"),
    Row((POD_TEMPLATE,), "RuntimeClass admission", "overhead matches the RuntimeClass's (or is set only by it)",
        None, "admission with the cluster's RuntimeClass objects: a user-set overhead is refused when the pods are "
        "created"),
    Row((POD_TEMPLATE,), _R, "spec.resources sets no claims", "api-pod-resources-claims"),
    Row((POD_TEMPLATE,), _R + " (validatePodResourceName)", "pod-level resource names are cpu, memory or "
        "hugepages-<size>", "api-pod-resources-name"),
    Row((POD_TEMPLATE,), _R + " (ValidateResourceQuantityValue)", "pod-level quantities parse and are not "
        "negative", "api-pod-resources-quantity"),
    Row((POD_TEMPLATE,), _R + " (validateResourceRequirements)", "a pod-level request is at most its limit; huge "
        "pages' request equals their limit, and a request needs the limit", "api-pod-resources-request-limit"),
    Row((POD_TEMPLATE,), _R + " (validateResourceQuantityHugePageValue)", "pod-level huge pages are whole pages "
        "and come with a cpu or memory request or limit", "api-pod-resources-hugepages"),
    Row((POD_TEMPLATE,), "core: validatePodResourceConsistency", "a pod-level request is at least what the "
        "containers request together (sidecars summed, init containers at their peak); compared where the pod "
        "sets the request", "api-pod-resources-aggregate"),
    Row((POD_TEMPLATE,), "core: validatePodResourceConsistency", "no container's limit exceeds the pod-level limit "
        "of the same resource", "api-pod-resources-container-limit"),
)
