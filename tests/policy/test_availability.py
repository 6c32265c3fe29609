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
    for obj, _ in _serving_workloads(render):
        hpa = _hpa_for(render, obj)
        if hpa is not None:
            low = (hpa.doc.get("spec") or {}).get("minReplicas", 1)
            if not isinstance(low, int) or low < least:
                out.append(Violation(hpa, f"may scale {obj.ref} down to {low} replicas in an HA environment",
                                     f"set spec.minReplicas to at least {least}"))
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


def check_pdb_allows_drain(render: Render, config: PolicyConfig) -> list[Violation]:
    """No PDB in any environment blocks a node drain; in HA environments
    every serving workload is covered by one."""
    pdbs = [o for o in render.objects if o.kind == "PodDisruptionBudget"]
    out = []
    for obj, _ in _serving_workloads(render):
        labels = pod_template_labels(obj)
        covering = [p for p in pdbs if selector_matches((p.doc.get("spec") or {}).get("selector"), labels)]
        if not covering:
            if config.env(render).get("ha"):
                out.append(Violation(obj, "has no PodDisruptionBudget",
                                     "add a PDB selecting its pods with maxUnavailable: 1"))
            continue
        replicas = (obj.doc.get("spec") or {}).get("replicas", 1)
        hpa = _hpa_for(render, obj)
        if hpa is not None:
            replicas = (hpa.doc.get("spec") or {}).get("minReplicas", 1)
        for pdb in covering:
            spec = pdb.doc.get("spec") or {}
            max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
            blocks = False
            if max_unavailable is not None:
                blocks = max_unavailable in (0, "0", "0%")
            elif isinstance(min_available, int) and isinstance(replicas, int):
                blocks = min_available >= replicas
            elif isinstance(min_available, str) and min_available.strip() == "100%":
                blocks = True
            if blocks:
                out.append(Violation(pdb, f"allows no disruption of {obj.ref} at its minimum of {replicas} "
                                          "replicas, so a node drain never finishes",
                                     "use maxUnavailable: 1 (or a minAvailable below the minimum replicas)"))
    return out


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


def test_zone_spread(render, config):
    assert_no_violations(check_zone_spread(render, config))


def test_hpa_bounds(render):
    assert_no_violations(check_hpa_bounds(render))
