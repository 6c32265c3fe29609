"""Changes the API server refuses on update (immutable fields), found by
comparing a root's render at the base with its render now.

An object is the same object at both refs when its kind, namespace and exact
name match: a generated ConfigMap whose hash changed is a new object, and
nothing about it is immutable. What Flux does with a refused update is said in
each finding: the apply fails and the Kustomization stops there, unless it
sets `spec.force: true`, in which case Flux deletes the object and creates it
again (for a workload: every pod replaced at once; for a Service: a new IP).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from scripts.core.model import Finding, Render, Resource, finding_for

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
# What a StatefulSet update may change; anything else in its spec is refused.
STATEFULSET_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}
_MISSING = object()


@dataclass(frozen=True)
class Refusal:
    field: str
    reason: str


def _get(doc: dict, *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _show(value: Any) -> str:
    text = "(unset)" if value is _MISSING else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _changed(old: dict, new: dict, *path: str) -> Refusal | None:
    before, after = _get(old, *path), _get(new, *path)
    if before != after:
        return Refusal(".".join(path), f"field is immutable (was {_show(before)}, now {_show(after)})")
    return None


def _workload(old: dict, new: dict) -> Iterator[Refusal | None]:
    yield _changed(old, new, "spec", "selector")
    if old.get("kind") == "StatefulSet":
        spec_old, spec_new = old.get("spec") or {}, new.get("spec") or {}
        for key in sorted((set(spec_old) | set(spec_new)) - STATEFULSET_MUTABLE - {"selector"}):
            if spec_old.get(key, _MISSING) != spec_new.get(key, _MISSING):
                yield Refusal(f"spec.{key}", "updates to a StatefulSet's spec for fields other than "
                                             f"{', '.join(sorted(STATEFULSET_MUTABLE))} are forbidden")


def _job(old: dict, new: dict) -> Iterator[Refusal | None]:
    yield _changed(old, new, "spec", "selector")
    yield _changed(old, new, "spec", "template")


def _service(old: dict, new: dict) -> Iterator[Refusal | None]:
    before, after = _get(old, "spec", "clusterIP"), _get(new, "spec", "clusterIP")
    to_external = _get(new, "spec", "type") == "ExternalName" and _get(old, "spec", "type") != "ExternalName"
    released = after in ("", None)
    # An unset clusterIP keeps the allocated one. A different one is refused,
    # except that a change to ExternalName must release it.
    if before not in (_MISSING, "", None) and after is not _MISSING and after != before \
            and not (to_external and released):
        yield Refusal("spec.clusterIP", f"field is immutable (was {_show(before)}, now {_show(after)})")
    if to_external and after not in (_MISSING, "", None):
        yield Refusal("spec.clusterIP", "an ExternalName Service has no cluster IP: the type change needs the "
                                        "IP released (clusterIP must be empty)")
    ips_before, ips_after = _get(old, "spec", "clusterIPs"), _get(new, "spec", "clusterIPs")
    if ips_before not in (_MISSING, None, []) and ips_after is not _MISSING and ips_after != ips_before \
            and not (to_external and ips_after in (None, [])):
        yield Refusal("spec.clusterIPs", f"field is immutable (was {_show(ips_before)}, now {_show(ips_after)})")


def _quantity(value: Any) -> float | None:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "m": 1e-3}
    text = str(value)
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * factor
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None


def _claim(old: dict, new: dict) -> Iterator[Refusal | None]:
    spec_old, spec_new = dict(old.get("spec") or {}), dict(new.get("spec") or {})
    size_old = _get(old, "spec", "resources", "requests", "storage")
    size_new = _get(new, "spec", "resources", "requests", "storage")
    if size_old is not _MISSING and size_new is not _MISSING:
        a, b = _quantity(size_old), _quantity(size_new)
        if a is not None and b is not None and b < a:
            yield Refusal("spec.resources.requests.storage",
                          f"field can not be less than previous value (was {size_old}, now {size_new})")
    for spec in (spec_old, spec_new):
        spec.pop("volumeAttributesClassName", None)
        requests = dict((spec.get("resources") or {}).get("requests") or {})
        requests.pop("storage", None)
        spec["resources"] = {**(spec.get("resources") or {}), "requests": requests}
    if spec_old != spec_new:
        yield Refusal("spec", "spec is immutable after creation except resources.requests.storage "
                              "(only larger) and volumeAttributesClassName")


def _immutable_data(old: dict, new: dict) -> Iterator[Refusal | None]:
    if old.get("immutable") is not True:
        return
    if new.get("immutable") is not True:
        yield Refusal("immutable", "field is immutable when `immutable` is set")
    for key in ("data", "binaryData", "stringData"):
        if old.get(key) != new.get(key):
            yield Refusal(key, "field is immutable when `immutable` is set")


def _binding(old: dict, new: dict) -> Iterator[Refusal | None]:
    yield _changed(old, new, "roleRef")


CHECKS: dict[str, Callable[[dict, dict], Iterator[Refusal | None]]] = {
    **dict.fromkeys(WORKLOADS, _workload), "Job": _job, "Service": _service,
    "PersistentVolumeClaim": _claim, "ConfigMap": _immutable_data, "Secret": _immutable_data,
    "RoleBinding": _binding, "ClusterRoleBinding": _binding,
}


def _key(obj: Resource) -> tuple[str, str, str | None, str]:
    group = obj.api_version.rpartition("/")[0]
    return group, obj.kind, obj.namespace, obj.name


def flux_consequence(render: Render) -> str:
    flux = render.target.flux
    if flux is None:
        return ("the API server refuses the update: Flux's apply fails and its Kustomization stops there "
                "(with spec.force: true it deletes the object and creates it again)")
    spec = flux.kustomization.get("spec") or {}
    name = (flux.kustomization.get("metadata") or {}).get("name")
    if spec.get("force") is True:
        return (f"Flux Kustomization {name} sets force: true, so Flux deletes the object and creates it again "
                "(pods or IP replaced at once)")
    return (f"the API server refuses the update: Flux Kustomization {name} fails to apply and stops there "
            "until it is fixed (with spec.force: true Flux would delete the object and create it again)")


def findings(old: Render | None, new: Render | None) -> list[Finding]:
    """Immutable-field findings for the objects present in both renders."""
    if old is None or new is None or not old.ok or not new.ok:
        return []
    before = {_key(o): o for o in old.objects}
    consequence = flux_consequence(new)
    out = []
    for obj in new.objects:
        previous = before.get(_key(obj))
        check = CHECKS.get(obj.kind)
        if previous is None or check is None:
            continue
        for refusal in check(previous.doc, obj.doc):
            if refusal is not None:
                out.append(finding_for(obj, stage="schema", target=new.target.path, rule="immutable-field",
                                       message=f"{refusal.field}: {refusal.reason}; {consequence}"))
    return out
