"""NetworkPolicy egress as the network plugin enforces it, for one pod and one
destination: which policies isolate the pod, and whether their rules admit a
connection.

The semantics (networking.k8s.io/v1):
- a pod is isolated for egress once any policy of its namespace selects it
  with Egress among its policyTypes (absent policyTypes mean Ingress, plus
  Egress when the policy has egress rules); an isolated pod may only open
  what some rule of those policies admits (rules are unioned);
- a rule admits a connection when one of its peers admits the destination
  (no `to`: every destination) and one of its ports admits the port (no
  `ports`: every port); ports belong to their rule, never to another's peers;
- a port entry is TCP unless it says otherwise; a number with endPort is a
  range; a name matches a named container port of the destination pod, so it
  never matches an address outside the cluster;
- an ipBlock admits the addresses of its CIDR outside its `except` ranges; a
  namespaceSelector/podSelector admits pods, never an address outside the
  cluster.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from scripts.core.model import Render, Resource
from scripts.stages.policy_support import selector_matches

Network = ipaddress.IPv4Network

# IPv4 ranges that are not public addresses (RFC 6890 special-purpose
# registry): what remains is where an internet endpoint may resolve to.
NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"))
# Where a pod address may be: the cluster's pod range is not in the manifests,
# so an ipBlock admits cluster pods only if it admits every private range.
PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"))


def subtract(networks: list[Network], removed: Network) -> list[Network]:
    out: list[Network] = []
    for net in networks:
        if not net.overlaps(removed):
            out.append(net)
        elif net.subnet_of(removed):
            continue
        else:
            out.extend(net.address_exclude(removed))
    return out


def uncovered(targets: list[Network], covering: list[Network]) -> list[Network]:
    """The parts of `targets` that no network of `covering` contains."""
    rest = list(targets)
    for net in covering:
        rest = subtract(rest, net)
        if not rest:
            break
    return sorted(rest)


def public_space() -> list[Network]:
    space = [ipaddress.ip_network("0.0.0.0/0")]
    for special in NOT_PUBLIC:
        space = subtract(space, special)
    return sorted(space)


@dataclass(frozen=True)
class Destination:
    """Where a connection goes. `networks`: the addresses it may have (for
    an endpoint outside the cluster); or a pod, by its namespace and labels,
    with its named ports."""

    protocol: str
    port: int
    networks: tuple[Network, ...] = ()
    namespace: str | None = None
    namespace_labels: dict[str, str] = field(default_factory=dict)
    pod_labels: dict[str, str] | None = None
    port_names: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return self.pod_labels is not None


@dataclass(frozen=True)
class Blocked:
    """Why the pod's egress policies refuse a destination, and which policy
    a fix belongs in."""

    policy: Resource
    policies: tuple[str, ...]  # names of every policy isolating the pod
    reason: str


def policy_types(spec: dict[str, Any]) -> list[str]:
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        return [str(t) for t in types]
    return ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def egress_policies(render: Render, namespace: str | None, pod_labels: dict[str, str]) -> list[Resource]:
    """The policies that isolate a pod of `namespace` with these labels for egress."""
    out = []
    for policy in render.objects:
        if policy.kind != "NetworkPolicy" or policy.namespace != namespace:
            continue
        spec = policy.doc.get("spec") or {}
        if "Egress" in policy_types(spec) and selector_matches(spec.get("podSelector") or {}, pod_labels):
            out.append(policy)
    return out


def _port_admits(entries: Any, destination: Destination) -> bool:
    if not entries:
        return True
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        protocol = str(entry.get("protocol") or "TCP")
        port = entry.get("port")
        if port is None:
            if protocol == destination.protocol:
                return True
        elif isinstance(port, int) and not isinstance(port, bool):
            end = entry.get("endPort")
            top = end if isinstance(end, int) and end >= port else port
            if protocol == destination.protocol and port <= destination.port <= top:
                return True
        elif isinstance(port, str) and port.isdigit():
            if protocol == destination.protocol and int(port) == destination.port:
                return True
        elif isinstance(port, str) and destination.is_pod:
            named = destination.port_names.get(port)
            if named == (protocol, destination.port) and protocol == destination.protocol:
                return True
    return False


def _ipblock_networks(block: Any) -> list[Network]:
    """The IPv4 addresses an ipBlock admits (IPv6 blocks admit none of them)."""
    if not isinstance(block, dict):
        return []
    try:
        cidr = ipaddress.ip_network(str(block.get("cidr")), strict=False)
    except ValueError:
        return []
    if not isinstance(cidr, ipaddress.IPv4Network):
        return []
    admitted = [cidr]
    for excepted in block.get("except") or []:
        try:
            net = ipaddress.ip_network(str(excepted), strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            admitted = subtract(admitted, net)
    return admitted


def _peer_admits_pod(peer: dict[str, Any], policy_namespace: str | None, destination: Destination) -> bool:
    if "ipBlock" in peer:
        return not uncovered(list(PRIVATE), _ipblock_networks(peer["ipBlock"]))
    pods = peer.get("podSelector")
    if "namespaceSelector" in peer:
        if not selector_matches(peer.get("namespaceSelector") or {}, destination.namespace_labels):
            return False
    elif destination.namespace != policy_namespace:
        return False
    return pods is None or selector_matches(pods, destination.pod_labels or {})


def admitted_networks(policies: list[Resource], destination: Destination) -> tuple[list[Network], bool]:
    """(addresses the rules that admit the destination's port admit, whether
    any rule admits the port at all)."""
    networks: list[Network] = []
    port_admitted = False
    for policy in policies:
        for rule in (policy.doc.get("spec") or {}).get("egress") or []:
            if not isinstance(rule, dict) or not _port_admits(rule.get("ports"), destination):
                continue
            port_admitted = True
            peers = rule.get("to")
            if not peers:
                networks.append(ipaddress.ip_network("0.0.0.0/0"))
                continue
            for peer in peers:
                if isinstance(peer, dict) and "ipBlock" in peer:
                    networks.extend(_ipblock_networks(peer["ipBlock"]))
    return networks, port_admitted


def _blame(policies: list[Resource]) -> Resource:
    """The policy a fix belongs in: the first that allows anything, else the first."""
    return next((p for p in policies if (p.doc.get("spec") or {}).get("egress")), policies[0])


def _show(networks: list[Network], limit: int = 3) -> str:
    text = ", ".join(str(n) for n in networks[:limit])
    return text + (f" and {len(networks) - limit} more" if len(networks) > limit else "")


def check_egress(render: Render, namespace: str | None, pod_labels: dict[str, str],
                 destination: Destination) -> Blocked | None:
    """None when the pod may open the connection; else why not."""
    policies = egress_policies(render, namespace, pod_labels)
    if not policies:
        return None  # not isolated for egress
    names = tuple(p.name for p in policies)
    wanted = f"{destination.protocol}/{destination.port}"
    if destination.is_pod:
        for policy in policies:
            for rule in (policy.doc.get("spec") or {}).get("egress") or []:
                if not isinstance(rule, dict) or not _port_admits(rule.get("ports"), destination):
                    continue
                peers = rule.get("to")
                if not peers or any(isinstance(p, dict) and _peer_admits_pod(p, policy.namespace, destination)
                                    for p in peers):
                    return None
        return Blocked(_blame(policies), names, f"no egress rule admits {wanted} to those pods")
    networks, port_admitted = admitted_networks(policies, destination)
    if not port_admitted:
        return Blocked(_blame(policies), names, f"no egress rule admits {wanted}")
    missing = uncovered(list(destination.networks), networks)
    if not missing:
        return None
    return Blocked(_blame(policies), names,
                   f"the rules that admit {wanted} leave out {_show(missing)}, where it may resolve")
