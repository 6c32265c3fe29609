"""The model path: every endpoint outside the cluster that a pod's containers
connect to (the model store, the cloud's identity service, what config
declares), derived from the manifests, and checked against every layer
between the container and the endpoint: cluster DNS and the endpoint's port
in the NetworkPolicies, and, for a pod with a proxy, the start order of its
init containers, the Sidecar, the ServiceEntries it sees and the outbound
traffic policy.

How each layer behaves: scripts/stages/netpolicy.py and meshegress.py; how
the endpoints are formed: scripts/stages/endpoints.py; why: docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts.core.model import Render, Resource
from scripts.stages import endpoints as endpoint_model
from scripts.stages.egress_settings import PeerPods
from scripts.stages.endpoints import Needed, PodEndpoints
from scripts.stages.meshegress import MeshEndpoint, MeshView, captured, check_mesh, injected, native_sidecar
from scripts.stages.netpolicy import Destination, check_egress, egress_policies, public_space, to_ranges
from scripts.stages.origins import generator_origin, located, patch_origin
from scripts.stages.policy_support import PolicyConfig, Violation, assert_no_violations, workloads


def _pods(render: Render, config: PolicyConfig) -> tuple[list[PodEndpoints], list]:
    assert config.egress is not None
    return endpoint_model.derive(render, config.egress, [(w, p) for w, p in workloads(render) if w.kind != "Job"])


def check_egress_endpoints_formed(render: Render, config: PolicyConfig, repo: Path) -> list[Violation]:
    """Each endpoint a container needs can be formed from the manifests: the
    model ConfigMap has the bucket key and a bucket name, the CLI's region is
    set and is a region, the IRSA annotation is a role ARN."""
    if config.egress is None:
        return []
    _, problems = _pods(render, config)
    out = []
    seen: set[tuple[int, str, str]] = set()
    for problem in problems:
        key = (id(problem.obj), problem.problem, problem.detail)
        if key in seen:
            continue
        seen.add(key)
        obj = problem.obj
        store = config.egress.model_store
        if obj.kind == "ConfigMap" and store is not None:
            generator = endpoint_model.model_generator(obj.name, store.configmaps) or obj.name
            obj = located(obj, generator_origin(repo, render.target, generator))
        elif obj.kind == "ServiceAccount":
            obj = located(obj, patch_origin(repo, render.target, obj, ("metadata", "annotations")))
        out.append(Violation(obj, problem.problem, problem.fix, problem.detail))
    return out


@dataclass
class _Finding:
    """One blocking layer, for every container it blocks."""

    obj: Resource
    problem: str
    fix: str
    why: str
    who: dict[str, list[str]] = field(default_factory=dict)  # container label -> workload refs


def _who(finding: _Finding) -> str:
    return "; ".join(f"{label} of {', '.join(refs)}" for label, refs in finding.who.items())


def _peer_destinations(peers: PeerPods) -> list[Destination]:
    namespace = peers.namespace_labels.get("kubernetes.io/metadata.name")
    return [Destination(protocol=protocol, port=port, namespace=namespace, namespace_labels=peers.namespace_labels,
                        pod_labels=peers.pod_labels, port_names=peers.ports)
            for protocol, port in sorted(set(peers.ports.values()))]


def _peer_blocks(policies: list[Resource], peers: PeerPods, consequence: str):
    for destination in _peer_destinations(peers):
        blocked = check_egress(policies, destination)
        if blocked:
            wanted = " and ".join(f"{p}/{n}" for p, n in sorted(set(peers.ports.values())))
            yield (blocked.policy, f"blocks {destination.protocol}/{destination.port} to {peers.what}, so "
                                   f"{consequence} ({blocked.reason}; policies isolating the pods: "
                                   f"{', '.join(blocked.policies)})",
                   f"admit {wanted} to the pods {peers.pod_labels} of the namespaces {peers.namespace_labels}",
                   ("spec", "egress"))


def _layers(view: MeshView, config: PolicyConfig, pod: PodEndpoints, need: Needed, policies: list[Resource]):
    """(object, problem, fix, field) for each layer that stops the container
    reaching the endpoint; `policies`: the NetworkPolicies isolating the pod."""
    egress = config.egress
    assert egress is not None
    remedy = f"; better: {need.remedy}" if need.remedy else ""
    if egress.dns is not None and not endpoint_model.is_address(need.host):
        yield from _peer_blocks(policies, egress.dns, f"{need.host} does not resolve")
    networks = to_ranges([need.host + "/32"]) if endpoint_model.is_address(need.host) else public_space()
    blocked = check_egress(policies, Destination(protocol="TCP", port=need.port, networks=networks))
    if blocked:
        target = "its address" if endpoint_model.is_address(need.host) else \
            "every public address (0.0.0.0/0 except private and special ranges; the host's addresses change)"
        yield (blocked.policy, f"blocks {need} ({blocked.reason}; policies isolating the pods: "
                               f"{', '.join(blocked.policies)})",
               f"admit TCP/{need.port} to {target}{remedy}", ("spec", "egress"))
    endpoint = MeshEndpoint(need.host, need.port, need.protocol)
    if not injected(view, pod.namespace, pod.pod_spec, pod.labels, pod.annotations):
        return  # no proxy: the mesh layers do not apply
    if egress.control_plane is not None:
        yield from _peer_blocks(policies, egress.control_plane,
                                "the proxy gets no configuration or certificate and the pod never starts")
    if not captured(pod.annotations, need.spec, endpoint):
        return  # the proxy does not see this connection
    if need.init and not native_sidecar(pod.annotations, egress.mesh):
        yield (pod.workload, f"{need.container} runs before its proxy starts (the proxy is not a native sidecar), "
                             f"but the connection to {need} is already redirected to it, so it fails",
               "annotate the pod template sidecar.istio.io/nativeSidecar: \"true\"",
               ("spec", "template", "metadata", "annotations"))
        return
    for block in check_mesh(view, pod.namespace, pod.labels, endpoint, egress.mesh):
        yield block.obj, block.problem, block.fix + remedy, block.field


def check_egress_endpoints_open(render: Render, config: PolicyConfig, repo: Path) -> list[Violation]:
    """Every endpoint a pod's containers need is open at every layer that can
    block it: DNS and the port in the NetworkPolicies; for a pod with a
    proxy, istiod in the NetworkPolicies, a native sidecar for init containers, the Sidecar's egress hosts,
    the ServiceEntries' hosts, ports, protocols and exportTo, and the
    outbound traffic policy. One finding per blocking layer, naming the
    endpoint, the containers that need it and the fix."""
    if config.egress is None:
        return []
    pods, _ = _pods(render, config)
    found: dict[tuple, _Finding] = {}
    view = MeshView.of(render)
    for pod in pods:
        policies = egress_policies(render, pod.namespace, pod.labels)
        for need in pod.needed:
            for obj, problem, fix, pointer in _layers(view, config, pod, need, policies):
                key = (id(obj), problem, fix)
                if key not in found:
                    origin = patch_origin(repo, render.target, obj, pointer) if pointer else None
                    found[key] = _Finding(located(obj, origin), problem, fix, need.why)
                refs = found[key].who.setdefault(need.container, [])
                if pod.workload.ref not in refs:
                    refs.append(pod.workload.ref)
    return [Violation(f.obj, f"{f.problem}: {_who(f)} needs it ({f.why})", f.fix) for f in found.values()]


@pytest.fixture(scope="session")
def repo(policy) -> Path:
    return policy.repo


# It reads the repository only to locate fields in the render's own build files (Rule.reads).
check_egress_endpoints_formed.reads = "build"  # type: ignore[attr-defined]


def test_egress_endpoints_formed(render, config, repo):
    assert_no_violations(check_egress_endpoints_formed(render, config, repo))


# It reads the repository only to locate fields in the render's own build files (Rule.reads).
check_egress_endpoints_open.reads = "build"  # type: ignore[attr-defined]


def test_egress_endpoints_open(render, config, repo):
    assert_no_violations(check_egress_endpoints_open(render, config, repo))
