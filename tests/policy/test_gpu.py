"""GPU: the gpu environment runs on NVIDIA GPUs, and only it asks for them."""

from __future__ import annotations

from scripts.core.model import Render
from scripts.stages.policy_support import PolicyConfig, Violation, assert_no_violations, containers, workloads


def _gpu_limit(container: dict, resource: str):
    return ((container.get("resources") or {}).get("limits") or {}).get(resource)


def check_gpu_scheduling(render: Render, config: PolicyConfig) -> list[Violation]:
    if not config.env(render).get("gpu"):
        return []
    out = []
    resource = config.gpu_resource
    for obj, pod in workloads(render):
        serving = [(label, c) for label, c in containers(pod, init=False) if c.get("ports")]
        for label, c in serving:
            if not _gpu_limit(c, resource):
                out.append(Violation(obj, f"does not request {resource} in its limits",
                                     f"set resources.limits.{resource}: 1", label))
        tolerations = pod.get("tolerations") or []
        if not any(t.get("key") == config.gpu_taint_key and t.get("operator", "Equal") in ("Exists", "Equal")
                   for t in tolerations):
            out.append(Violation(obj, f"does not tolerate the {config.gpu_taint_key} taint",
                                 f"add a toleration for {config.gpu_taint_key} (NoSchedule)"))
        terms = (((pod.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
        pinned = any(expr.get("key") == config.gpu_node_label for term in terms
                     for expr in term.get("matchExpressions") or []) \
            or config.gpu_node_label in (pod.get("nodeSelector") or {})
        if not pinned:
            out.append(Violation(obj, "is not pinned to GPU nodes",
                                 f"require node label {config.gpu_node_label} in nodeAffinity"))
    return out


def check_no_gpu_outside_gpu_overlay(render: Render, config: PolicyConfig) -> list[Violation]:
    if config.env(render).get("gpu"):
        return []
    resource = config.gpu_resource
    return [Violation(obj, f"asks for {resource} outside the gpu environment",
                      f"remove {resource}; GPU workloads belong in overlays/gpu", label)
            for obj, pod in workloads(render) for label, c in containers(pod)
            if resource in ((c.get("resources") or {}).get("limits") or {})
            or resource in ((c.get("resources") or {}).get("requests") or {})]


def test_gpu_scheduling(render, config):
    assert_no_violations(check_gpu_scheduling(render, config))


def test_no_gpu_outside_gpu_overlay(render, config):
    assert_no_violations(check_no_gpu_outside_gpu_overlay(render, config))
