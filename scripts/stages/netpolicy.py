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

import functools
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from scripts.core.model import Render, Resource
from scripts.stages.policy_support import selector_matches

# IPv4 address sets as sorted, disjoint, inclusive (first, last) integer
# ranges: set arithmetic on them is a merge, where ipaddress networks cost
# a hundred times more (every render checks every endpoint).
Range = tuple[int, int]
Ranges = tuple[Range, ...]
_ALL: Ranges = ((0, 2**32 - 1),)


def to_ranges(networks) -> Ranges:  # noqa: ANN001 - any iterable of IPv4 networks or CIDR strings
    return union([(int(n.network_address), int(n.broadcast_address))
                  for n in (ipaddress.IPv4Network(x, strict=False) if isinstance(x, str) else x for x in networks)])


def to_networks(ranges: Ranges) -> list[ipaddress.IPv4Network]:
    return [net for first, last in ranges
            for net in ipaddress.summarize_address_range(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last))]


def union(ranges) -> Ranges:  # noqa: ANN001 - any iterable of ranges
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple((a, b) for a, b in merged)


def minus(ranges: Ranges, removed: Ranges) -> Ranges:
    """The addresses of `ranges` outside `removed` (both merged)."""
    out: list[Range] = []
    for first, last in ranges:
        start = first
        for r_first, r_last in removed:
            if r_last < start or r_first > last:
                continue
            if r_first > start:
                out.append((start, r_first - 1))
            start = max(start, r_last + 1)
            if start > last:
                break
        if start <= last:
            out.append((start, last))
    return tuple(out)


def uncovered(targets: Ranges, covering) -> Ranges:  # noqa: ANN001 - any iterable of ranges
    """The parts of `targets` that no range of `covering` contains."""
    return minus(union(targets), union(covering))


# IPv4 ranges that are not public addresses (RFC 6890 special-purpose
# registry): what remains is where an internet endpoint may resolve to.
NOT_PUBLIC = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
              "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
              "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4")
PUBLIC: Ranges = minus(_ALL, to_ranges(NOT_PUBLIC))
# Where a pod address may be: the cluster's pod range is not in the manifests,
# so an ipBlock admits cluster pods only if it admits every private range.
PRIVATE: Ranges = to_ranges(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"])


def public_space() -> Ranges:
    return PUBLIC


@dataclass(frozen=True)
class Destination:
    """Where a connection goes. `networks`: the addresses it may have (for
    an endpoint outside the cluster); or a pod, by its namespace and labels,
    with its named ports."""

    protocol: str
    port: int
    networks: Ranges = ()
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


def _ipblock_networks(block: Any) -> Ranges:
    """The IPv4 addresses an ipBlock admits (IPv6 blocks admit none of them)."""
    if not isinstance(block, dict):
        return ()
    excepted = block.get("except") or []
    return _ipblock(str(block.get("cidr")), tuple(str(e) for e in excepted) if isinstance(excepted, list) else ())


@functools.lru_cache(maxsize=1024)
def _ipblock(cidr: str, excepted: tuple[str, ...]) -> Ranges:
    def parsed(text: str) -> Ranges:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return ()
        return to_ranges([net]) if isinstance(net, ipaddress.IPv4Network) else ()
    return minus(parsed(cidr), union(r for e in excepted for r in parsed(e)))


def _peer_admits_pod(peer: dict[str, Any], policy_namespace: str | None, destination: Destination) -> bool:
    if "ipBlock" in peer:
        return not uncovered(PRIVATE, _ipblock_networks(peer["ipBlock"]))
    pods = peer.get("podSelector")
    if "namespaceSelector" in peer:
        if not selector_matches(peer.get("namespaceSelector") or {}, destination.namespace_labels):
            return False
    elif destination.namespace != policy_namespace:
        return False
    return pods is None or selector_matches(pods, destination.pod_labels or {})


def admitted_networks(policies: list[Resource], destination: Destination) -> tuple[list[Range], bool]:
    """(addresses the rules that admit the destination's port admit, whether
    any rule admits the port at all)."""
    networks: list[Range] = []
    port_admitted = False
    for policy in policies:
        for rule in (policy.doc.get("spec") or {}).get("egress") or []:
            if not isinstance(rule, dict) or not _port_admits(rule.get("ports"), destination):
                continue
            port_admitted = True
            peers = rule.get("to")
            if not peers:
                networks.extend(_ALL)
                continue
            for peer in peers:
                if isinstance(peer, dict) and "ipBlock" in peer:
                    networks.extend(_ipblock_networks(peer["ipBlock"]))
    return networks, port_admitted


def _blame(policies: list[Resource]) -> Resource:
    """The policy a fix belongs in: the first that allows anything, else the first."""
    return next((p for p in policies if (p.doc.get("spec") or {}).get("egress")), policies[0])


def _show(ranges: Ranges, limit: int = 3) -> str:
    networks = to_networks(ranges)
    text = ", ".join(str(n) for n in networks[:limit])
    return text + (f" and {len(networks) - limit} more" if len(networks) > limit else "")


def check_egress(policies: list[Resource], destination: Destination) -> Blocked | None:
    """None when a pod that these policies isolate (egress_policies) may
    open the connection; else why not."""
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
    missing = uncovered(destination.networks, networks)
    if not missing:
        return None
    return Blocked(_blame(policies), names,
                   f"the rules that admit {wanted} leave out {_show(missing)}, where it may resolve")
