"""What the scheduler and the kubelet decide about a pod: its priority
(who is preempted when the cluster is full) and its QoS class (who is
evicted first when a node runs short). Both are per environment in
config/policy.yaml."""

from __future__ import annotations

from scripts.core.model import Render
from scripts.stages.policy_support import (
    PolicyConfig,
    Violation,
    assert_no_violations,
    containers,
    parse_quantity,
    workloads,
)

# PriorityClasses every API server creates itself; meant for the cluster's
# own components (DNS, CNI, kube-proxy), which a pod using them can preempt.
BUILTIN_PRIORITY_CLASSES = {"system-cluster-critical", "system-node-critical"}


def _priority_classes(render: Render, config: PolicyConfig) -> set[str]:
    """PriorityClasses a pod of this render may name: those in the render
    (the kind is cluster-scoped) and those the clusters provide."""
    declared = {o.name for o in render.objects if o.kind == "PriorityClass"}
    provided = {str(p.get("name")) for p in config.cluster.get("provides") or [] if p.get("kind") == "PriorityClass"}
    return declared | provided


def check_priority_class_set(render: Render, config: PolicyConfig) -> list[Violation]:
    """Pods of an environment with `priority_classes` use one of them; any
    priorityClassName names a class that exists (the Priority admission
    plugin refuses the pod otherwise, so the ReplicaSet never gets one); the
    built-in system-* classes only where the environment lists them
    (Polaris priorityClassNotSet)."""
    required = list(config.env(render).get("priority_classes") or [])
    known = _priority_classes(render, config)
    out = []
    for obj, pod in workloads(render):
        name = pod.get("priorityClassName")
        if required and name not in required:
            problem = (f"runs at priority class {name!r}" if name else "sets no priorityClassName, so it runs at the "
                       "default priority and is preempted first when the cluster is full")
            out.append(Violation(obj, f"{problem}; this environment requires one of {required}",
                                 f"set spec.template.spec.priorityClassName to one of {required} "
                                 "(environments.<env>.priority_classes in config/policy.yaml)"))
            continue
        if not name:
            continue
        if name in BUILTIN_PRIORITY_CLASSES and name not in required:
            out.append(Violation(obj, f"uses the built-in priority class {name}, meant for the cluster's own "
                                      "components, which it could preempt",
                                 "use a priority class of the platform's, or list this one in the environment's "
                                 "priority_classes with a comment saying why"))
        elif name not in BUILTIN_PRIORITY_CLASSES and name not in known:
            out.append(Violation(obj, f"uses priority class {name!r}, which is neither in this render nor provided by "
                                      "the cluster, so the API server refuses its pods",
                                 "fix the name, or declare the PriorityClass in cluster.provides in "
                                 "config/policy.yaml with a reason"))
    return out


def _resource_problems(container: dict, resource: str) -> str | None:
    resources = container.get("resources") or {}
    limit = (resources.get("limits") or {}).get(resource)
    request = (resources.get("requests") or {}).get(resource)
    if limit is None:
        return f"has no {resource} limit"
    # An omitted request defaults to the limit, so it is equal.
    if request is not None and parse_quantity(request) != parse_quantity(limit):
        return f"requests {resource} {request} but limits it to {limit}"
    return None


def check_guaranteed_qos(render: Render, config: PolicyConfig) -> list[Violation]:
    """In an environment with `guaranteed_qos`, every container (init
    containers included) limits CPU and memory and requests exactly that, so
    the kubelet classes the pod Guaranteed: evicted last under node
    pressure, eligible for exclusive CPUs (kube-score
    container-resource-requests-equal-limits and its CPU and memory halves)."""
    if not config.env(render).get("guaranteed_qos"):
        return []
    out = []
    for obj, pod in workloads(render):
        for label, container in containers(pod, ephemeral=False):
            for resource in ("cpu", "memory"):
                problem = _resource_problems(container, resource)
                if problem:
                    out.append(Violation(obj, f"{problem}, so the pod is not Guaranteed QoS as this environment "
                                              "requires (guaranteed_qos)",
                                         f"set resources.requests.{resource} equal to resources.limits.{resource}",
                                         label))
    return out


def test_priority_class_set(render, config):
    assert_no_violations(check_priority_class_set(render, config))


def test_guaranteed_qos(render, config):
    assert_no_violations(check_guaranteed_qos(render, config))
