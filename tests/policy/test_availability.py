"""Availability: HA environments keep serving through node drains and zone loss."""

from __future__ import annotations

from scripts.core.model import Render, Resource
from scripts.stages.policy_support import (
    PolicyConfig,
    Violation,
    assert_no_violations,
    pod_template_labels,
    selector_matches,
    workloads,
)


def _hpa_for(render: Render, obj: Resource) -> Resource | None:
    for hpa in (o for o in render.objects if o.kind == "HorizontalPodAutoscaler"):
        ref = (hpa.doc.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") == obj.kind and ref.get("name") == obj.name:
            return hpa
    return None


def _serving_workloads(render: Render):
    return [(obj, pod) for obj, pod in workloads(render) if obj.kind in ("Deployment", "StatefulSet")]


def check_ha_replicas(render: Render, config: PolicyConfig) -> list[Violation]:
    """In an HA environment a serving workload never runs fewer than
    ha_min_replicas pods: its HPA's minReplicas (or, without an HPA, its
    spec.replicas) is at least that."""
    if not config.env(render).get("ha"):
        return []
    least = config.ha_min_replicas
    out = []
    # Every HPA, whether or not its target is in the render: minReplicas
    # defaults to 1.
    for hpa in (o for o in render.objects if o.kind == "HorizontalPodAutoscaler"):
        spec = hpa.doc.get("spec") or {}
        low = spec.get("minReplicas", 1)
        if not isinstance(low, int) or low < least:
            ref = spec.get("scaleTargetRef") or {}
            out.append(Violation(hpa, f"may scale {ref.get('kind')}/{ref.get('name')} down to {low} replicas in an "
                                      "HA environment", f"set spec.minReplicas to at least {least}"))
    for obj, _ in _serving_workloads(render):
        if _hpa_for(render, obj) is not None:
            continue
        replicas = (obj.doc.get("spec") or {}).get("replicas", 1)
        if not isinstance(replicas, int) or replicas < least:
            out.append(Violation(obj, f"runs {replicas} replicas in an HA environment and has no HPA",
                                 f"add an HPA with minReplicas >= {least} (or set spec.replicas to at least {least})"))
    return out


def check_no_replicas_under_hpa(render: Render) -> list[Violation]:
    """An HPA-managed workload must not set spec.replicas: Flux applies the
    manifest on every reconcile and resets the count the HPA chose (kube-score
    deployment-replicas, Flux's HPA guidance)."""
    out = []
    for obj, _ in _serving_workloads(render):
        if "replicas" in (obj.doc.get("spec") or {}) and _hpa_for(render, obj) is not None:
            out.append(Violation(obj, "sets spec.replicas while an HPA scales it, so every Flux reconcile resets "
                                      "the HPA's choice",
                                 "remove spec.replicas (the HPA's minReplicas is the floor)"))
    return out


def _percent(value: object) -> int | None:
    """The number in a "N%" IntOrString, else None."""
    if isinstance(value, str) and value.strip().endswith("%") and value.strip()[:-1].isdigit():
        return int(value.strip()[:-1])
    return None


def _never_disruptible(spec: dict) -> str | None:
    """Why a PDB allows no eviction whatever it selects: maxUnavailable 0
    (or 0%), or minAvailable of 100 % or more (the disruption controller
    rounds a percentage of minAvailable up)."""
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None and (max_unavailable == 0 or _percent(max_unavailable) == 0):
        return f"maxUnavailable is {max_unavailable}"
    percent = _percent(min_available)
    if percent is not None and percent >= 100:
        return f"minAvailable is {min_available}"
    return None


def _blocks_at(spec: dict, replicas: int) -> bool:
    """Does a PDB allow no eviction of a workload running `replicas` pods?"""
    if spec.get("maxUnavailable") is not None:
        return False  # 0 is judged for every PDB; any other value lets at least one pod go
    min_available = spec.get("minAvailable")
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return min_available >= replicas
    percent = _percent(min_available)
    return percent is not None and -(-percent * replicas // 100) >= replicas


def check_pdb_allows_drain(render: Render, config: PolicyConfig) -> list[Violation]:
    """No PDB blocks a node drain, in any environment: none allows zero
    evictions outright (maxUnavailable 0, minAvailable 100 %), whether or not
    a workload of the render matches it, and none asks for as many pods as a
    workload it covers runs at its minimum (the HPA's minReplicas, else
    spec.replicas). In HA environments every serving workload is covered by
    one (Polaris pdbDisruptionsIsZero, pdbMinAvailableGreaterThanHPAMinReplicas)."""
    pdbs = [o for o in render.objects if o.kind == "PodDisruptionBudget"]
    out = []
    for pdb in pdbs:
        reason = _never_disruptible(pdb.doc.get("spec") or {})
        if reason:
            out.append(Violation(pdb, f"{reason}, so it allows no voluntary eviction of the pods it selects and a "
                                      "node drain never finishes", "use maxUnavailable: 1"))
    for obj, _ in _serving_workloads(render):
        labels = pod_template_labels(obj)
        covering = [p for p in pdbs if p.namespace == obj.namespace
                    and selector_matches((p.doc.get("spec") or {}).get("selector"), labels)]
        if not covering:
            if config.env(render).get("ha"):
                out.append(Violation(obj, "has no PodDisruptionBudget",
                                     "add a PDB selecting its pods with maxUnavailable: 1"))
            continue
        replicas = (obj.doc.get("spec") or {}).get("replicas", 1)
        hpa = _hpa_for(render, obj)
        if hpa is not None:
            replicas = (hpa.doc.get("spec") or {}).get("minReplicas", 1)
        if not isinstance(replicas, int):
            continue
        for pdb in covering:
            spec = pdb.doc.get("spec") or {}
            if not _never_disruptible(spec) and _blocks_at(spec, replicas):
                out.append(Violation(pdb, f"minAvailable {spec.get('minAvailable')} allows no disruption of "
                                          f"{obj.ref} at its minimum of {replicas} replicas, so a node drain never "
                                          "finishes", "use maxUnavailable: 1 (or a minAvailable below the minimum "
                                                      "replicas)"))
    return out


def check_pdb_has_policy(render: Render) -> list[Violation]:
    """A PDB sets minAvailable or maxUnavailable: with neither, the
    disruption controller lets every pod be evicted at once, so it protects
    nothing while looking as if it did (kube-score poddisruptionbudget-has-policy)."""
    return [Violation(pdb, "sets neither minAvailable nor maxUnavailable, so every pod it selects may be evicted "
                           "at once", "set maxUnavailable: 1")
            for pdb in render.objects if pdb.kind == "PodDisruptionBudget"
            and (pdb.doc.get("spec") or {}).get("minAvailable") is None
            and (pdb.doc.get("spec") or {}).get("maxUnavailable") is None]


def check_zone_spread(render: Render, config: PolicyConfig) -> list[Violation]:
    """HA workloads spread over zones, with a constraint whose selector
    selects the workload's own pods (one that selects nothing spreads nothing)."""
    if not config.env(render).get("ha"):
        return []
    out = []
    for obj, pod in _serving_workloads(render):
        labels = pod_template_labels(obj)
        constraints = [c for c in pod.get("topologySpreadConstraints") or [] if isinstance(c, dict)]
        anti = ((pod.get("affinity") or {}).get("podAntiAffinity") or {})
        terms = (anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []) + [
            t.get("podAffinityTerm", {}) for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        zone = [c for c in constraints + terms if c.get("topologyKey") == "topology.kubernetes.io/zone"]
        if not zone:
            out.append(Violation(obj, "is not spread across zones",
                                 "add a topologySpreadConstraint on topology.kubernetes.io/zone"))
        elif not any(selector_matches(c.get("labelSelector"), labels) for c in zone):
            out.append(Violation(obj, "spreads over zones with a labelSelector that does not select its own pods",
                                 "make the constraint's labelSelector match the pod template's labels"))
    return out


def check_hpa_bounds(render: Render) -> list[Violation]:
    out = []
    for hpa in (o for o in render.objects if o.kind == "HorizontalPodAutoscaler"):
        spec = hpa.doc.get("spec") or {}
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            out.append(Violation(hpa, f"minReplicas {low} is above maxReplicas {high}",
                                 "make minReplicas <= maxReplicas"))
        elif isinstance(low, int) and low == high:
            out.append(Violation(hpa, f"minReplicas equals maxReplicas ({low}), so it never scales",
                                 "raise maxReplicas, or drop the HPA and set spec.replicas"))
    return out


def test_ha_replicas(render, config):
    assert_no_violations(check_ha_replicas(render, config))


def test_no_replicas_under_hpa(render):
    assert_no_violations(check_no_replicas_under_hpa(render))


def test_pdb_allows_drain(render, config):
    assert_no_violations(check_pdb_allows_drain(render, config))


def test_pdb_has_policy(render):
    assert_no_violations(check_pdb_has_policy(render))


def test_zone_spread(render, config):
    assert_no_violations(check_zone_spread(render, config))


def test_hpa_bounds(render):
    assert_no_violations(check_hpa_bounds(render))
