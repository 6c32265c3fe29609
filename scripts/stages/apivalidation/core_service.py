"""v1 Service: core's ValidateService and what it calls (ports, cluster IPs
and IP families, external IPs, source ranges, traffic policies, load
balancer fields), judged as the API server sees the object: after
SetDefaults_Service and after the create path's own steps that run before
validation (clusterIP copied into clusterIPs, ipFamilyPolicy defaulted, node
ports allocated). The name rule is core.py's."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

CLUSTER_IP, NODE_PORT, LOAD_BALANCER, EXTERNAL_NAME = "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"
TYPES = (CLUSTER_IP, EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT)
PROTOCOLS = ("SCTP", "TCP", "UDP")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")  # externalTrafficPolicy and internalTrafficPolicy
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
SINGLE_STACK, REQUIRE_DUAL_STACK = "SingleStack", "RequireDualStack"
HEADLESS = "None"
DEFAULT_AFFINITY_SECONDS = 10800
MAX_AFFINITY_SECONDS = 86400
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
TOPOLOGY_MODE_ANNOTATION = "service.kubernetes.io/topology-mode"
TOPOLOGY_HINTS_ANNOTATION = "service.kubernetes.io/topology-aware-hints"  # the deprecated spelling
PREFER_CLOSE = "PreferClose"
# PreferSameTrafficDistribution (beta, on by default since 1.34) adds the two explicit spellings.
PREFER_SAME = ("PreferSameZone", "PreferSameNode")


def traffic_distributions(ctx: Context) -> tuple[str, ...]:
    return (PREFER_CLOSE, *PREFER_SAME) if ctx.at_least(34) else (PREFER_CLOSE,)


def _unset(value: Any) -> bool:
    return value is None or value == ""


def defaulted(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of the spec as SetDefaults_Service and the create path leave it
    for validation (the user's object is not touched)."""
    spec = copy.deepcopy(spec)
    if _unset(spec.get("type")):
        spec["type"] = CLUSTER_IP
    if _unset(spec.get("sessionAffinity")):
        spec["sessionAffinity"] = "None"
    # The config of a None affinity is cleared, so nothing below reads it.
    if spec["sessionAffinity"] == "ClientIP":
        client_ip = as_dict(as_dict(spec.get("sessionAffinityConfig")).get("clientIP"))
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}}
    for port in as_list(spec.get("ports")):
        if isinstance(port, dict):
            if _unset(port.get("protocol")):
                port["protocol"] = "TCP"
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
    if externally_accessible(spec) and _unset(spec.get("externalTrafficPolicy")):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in (NODE_PORT, LOAD_BALANCER, CLUSTER_IP):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == LOAD_BALANCER and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # The create path copies a lone clusterIP into clusterIPs before anything looks at them.
    cluster_ip = spec.get("clusterIP")
    if isinstance(cluster_ip, str) and cluster_ip and not as_list(spec.get("clusterIPs")):
        spec["clusterIPs"] = [cluster_ip]
    return spec


def externally_accessible(spec: dict[str, Any]) -> bool:
    kind = spec.get("type")
    return kind in (LOAD_BALANCER, NODE_PORT) or (kind == CLUSTER_IP and bool(as_list(spec.get("externalIPs"))))


def _is_headless(spec: dict[str, Any]) -> bool:
    cluster_ips = as_list(spec.get("clusterIPs"))
    return len(cluster_ips) == 1 and cluster_ips[0] == HEADLESS


def validate_service_spec(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    """Everything of a Service but its name (core.validate_service)."""
    annotations = as_dict(as_dict(doc.get("metadata")).get("annotations"))
    raw = as_dict(doc.get("spec"))
    spec = defaulted(raw)
    path = ROOT.child("spec")
    kind = spec.get("type")
    _topology_annotations(annotations, errs)
    ports = spec.get("ports")
    if not ports and not _is_headless(spec) and kind != EXTERNAL_NAME and (ports is None or isinstance(ports, list)):
        errs.required("api-service-ports-required", path.child("ports"),
                      "a Service needs at least one port unless it is headless (clusterIP: None) or ExternalName")
    _type_specific(spec, path, errs)
    _ports(spec, path, errs)
    for key, value in as_dict(spec.get("selector")).items():
        # Like labels, the API server names the map, not the key.
        errs.each("api-service-selector", path.child("selector"), str(key), formats.qualified_name_problems(str(key)))
        if isinstance(value, str):
            errs.each("api-service-selector", path.child("selector"), value, formats.label_value_problems(value))
    _session_affinity(spec, path, errs)
    if kind != EXTERNAL_NAME:
        before = len(errs)
        _cluster_ips(spec, path, errs)
        if len(errs) == before:  # the create path stops at those errors before its own family checks
            _single_stack(spec, path, errs)
    _external_ips(spec, path, errs)
    if isinstance(kind, str) and kind not in TYPES:
        errs.not_supported("api-service-type", path.child("type"), kind, TYPES)
    _node_ports(spec, path, errs)
    _source_ranges(spec, annotations, path, errs)
    if raw.get("allocateLoadBalancerNodePorts") is not None and kind != LOAD_BALANCER:
        errs.forbidden("api-service-allocate-node-ports", path.child("allocateLoadBalancerNodePorts"),
                       "only a LoadBalancer Service allocates node ports for its load balancer: remove it")
    _load_balancer_class(spec, path, errs)
    _traffic_policies(spec, path, errs)
    distribution = spec.get("trafficDistribution")
    if isinstance(distribution, str) and distribution not in traffic_distributions(ctx):
        errs.not_supported("api-service-traffic-distribution", path.child("trafficDistribution"), distribution,
                           traffic_distributions(ctx))


def _topology_annotations(annotations: dict[str, Any], errs: Errors) -> None:
    mode, hints = annotations.get(TOPOLOGY_MODE_ANNOTATION), annotations.get(TOPOLOGY_HINTS_ANNOTATION)
    if mode is not None and hints is not None and mode != hints:
        errs.invalid("api-service-topology-annotations",
                     ROOT.child("metadata", "annotations").key(TOPOLOGY_MODE_ANNOTATION), mode,
                     f"differs from {TOPOLOGY_HINTS_ANNOTATION} ({hints!r}): set one of the two, or the same value "
                     "in both")


def _type_specific(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    kind = spec.get("type")
    if kind in (LOAD_BALANCER, NODE_PORT) and _is_headless(spec):
        errs.invalid("api-service-headless-type", path.child("clusterIPs").index(0), HEADLESS,
                     f"a {kind} Service needs a cluster IP: only a ClusterIP Service may be headless")
    if kind != EXTERNAL_NAME:
        return
    for field, remove in (("clusterIPs", "clusterIP and clusterIPs"), ("ipFamilies", "it")):
        if as_list(spec.get(field)):
            errs.forbidden("api-service-external-name-ip-fields", path.child(field),
                           f"an ExternalName Service is a DNS alias and gets no IPs: remove {remove}")
    if spec.get("ipFamilyPolicy") is not None:
        errs.forbidden("api-service-external-name-ip-fields", path.child("ipFamilyPolicy"),
                       "an ExternalName Service is a DNS alias and gets no IPs: remove it")
    name = spec.get("externalName")
    cname = name.removesuffix(".") if isinstance(name, str) else ""
    if not cname:
        errs.required("api-service-external-name-required", path.child("externalName"),
                      "an ExternalName Service needs the DNS name it aliases")
    else:
        errs.each("api-service-external-name", path.child("externalName"), cname,
                  formats.dns_subdomain_problems(cname))


def _ports(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    ports = as_list(spec.get("ports"))
    names: set[str] = set()
    seen: set[tuple[str, Any]] = set()
    for index, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        at = path.child("ports").index(index)
        name = port.get("name")
        if _unset(name) and len(ports) > 1:
            errs.required("api-service-port-name-required", at.child("name"),
                          "a Service with several ports names each of them")
        elif isinstance(name, str) and name:
            errs.each("api-service-port-name", at.child("name"), name, formats.dns_label_problems(name))
            if name in names:
                errs.duplicate("api-service-port-name-unique", at.child("name"), name)
            names.add(name)
        number = port.get("port")
        if formats.is_int(number):
            errs.each("api-service-port-number", at.child("port"), number, formats.port_number_problems(number))
        protocol = port.get("protocol")
        if isinstance(protocol, str) and protocol not in PROTOCOLS:
            errs.not_supported("api-service-port-protocol", at.child("protocol"), protocol, PROTOCOLS)
        target = port.get("targetPort")
        if formats.is_int(target):
            errs.each("api-service-target-port", at.child("targetPort"), target, formats.port_number_problems(target))
        elif isinstance(target, str):
            errs.each("api-service-target-port", at.child("targetPort"), target, formats.port_name_problems(target))
        app_protocol = port.get("appProtocol")
        if isinstance(app_protocol, str):
            errs.each("api-service-app-protocol", at.child("appProtocol"), app_protocol,
                      formats.qualified_name_problems(app_protocol))
        key = (str(protocol), number if formats.is_int(number) else repr(number))
        if key in seen:
            errs.duplicate("api-service-port-duplicate", at, {"port": number, "protocol": protocol})
        seen.add(key)


def _session_affinity(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    affinity = spec.get("sessionAffinity")
    if isinstance(affinity, str) and affinity not in SESSION_AFFINITIES:
        errs.not_supported("api-service-session-affinity", path.child("sessionAffinity"), affinity,
                           SESSION_AFFINITIES)
    if affinity != "ClientIP":
        return
    timeout = as_dict(as_dict(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
    if formats.is_int(timeout) and not 0 < timeout <= MAX_AFFINITY_SECONDS:
        errs.invalid("api-service-session-affinity-timeout",
                     path.child("sessionAffinityConfig", "clientIP", "timeoutSeconds"), timeout,
                     f"must be between 1 and {MAX_AFFINITY_SECONDS} seconds (24 hours), inclusive")


# ---- cluster IPs and IP families -----------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_legacy_ip(value: Any) -> IPAddress | None:
    """An IP address as a Service's IP fields take it at 1.34: the loose
    parser (leading zeros in IPv4, IPv4-mapped IPv6 and non-canonical IPv6
    are accepted while StrictIPCIDRValidation is off); None when invalid."""
    return formats.parse_ip(value) if isinstance(value, str) else None


def family_of(address: IPAddress) -> str:
    # An IPv4-mapped IPv6 address counts as IPv4, as the API server's IP helpers read it.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return "IPv6"
    return "IPv4"


def _cluster_ips(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    """clusterIP, clusterIPs, ipFamilies and ipFamilyPolicy together
    (ValidateServiceClusterIPsRelatedFields; not run for ExternalName)."""
    ips_path, families_path = path.child("clusterIPs"), path.child("ipFamilies")
    cluster_ip, cluster_ips = spec.get("clusterIP"), as_list(spec.get("clusterIPs"))
    if isinstance(cluster_ip, str) and cluster_ip:
        if cluster_ips and cluster_ips[0] != cluster_ip:
            errs.invalid("api-service-cluster-ips-match", ips_path, cluster_ips,
                         f"clusterIPs[0] must be clusterIP ({cluster_ip}): set both to the same first IP, or only "
                         "clusterIP")
    elif cluster_ips:
        errs.invalid("api-service-cluster-ips-without-cluster-ip", ips_path, cluster_ips,
                     "clusterIPs needs clusterIP set to its first value")
    seen: set[str] = set()
    for index, family in enumerate(as_list(spec.get("ipFamilies"))):
        if not isinstance(family, str):
            continue
        if family not in IP_FAMILIES:
            errs.not_supported("api-service-ip-family", families_path.index(index), family, IP_FAMILIES)
        if family in seen:
            errs.duplicate("api-service-ip-family-duplicate", families_path.index(index), family)
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    if isinstance(policy, str) and policy not in IP_FAMILY_POLICIES:
        errs.not_supported("api-service-ip-family-policy", path.child("ipFamilyPolicy"), policy, IP_FAMILY_POLICIES)
    invalid = False
    addresses: list[IPAddress] = []
    for index, value in enumerate(cluster_ips):
        if index == 0 and value == HEADLESS:
            if len(cluster_ips) > 1:
                invalid = True
                errs.invalid("api-service-cluster-ips-none", ips_path, cluster_ips,
                             "'None' (headless) must be the only value")
            continue
        address = parse_legacy_ip(value)
        if address is None:
            invalid = True
            errs.invalid("api-service-cluster-ip", ips_path.index(index), value,
                         "must be an IP address (e.g. 10.96.0.10 or fd00::10), or 'None' as the only value")
        else:
            addresses.append(address)
    if len(cluster_ips) > 2:
        errs.invalid("api-service-cluster-ips-count", ips_path, cluster_ips,
                     "holds at most 2 IPs: one IPv4 and one IPv6")
    if invalid:
        return  # the API server stops here too: the family checks would repeat the same problem
    if len(addresses) > 1 and len({family_of(a) for a in addresses}) < 2:
        errs.invalid("api-service-cluster-ips-dual-stack", ips_path, cluster_ips,
                     "two IPs must be of different families (one IPv4, one IPv6)")
    families = as_list(spec.get("ipFamilies"))
    if _is_headless(spec):
        return
    for index, (value, family) in enumerate(zip(cluster_ips, families, strict=False)):  # families may be fewer
        address = parse_legacy_ip(value)
        if address is None or family not in IP_FAMILIES or family_of(address) == family:
            continue
        errs.invalid("api-service-cluster-ip-family", ips_path.index(index), value,
                     f"is not an {family} address, as ipFamilies[{index}] says it is: swap the entries of one list "
                     "so that they match")


def _single_stack(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    """The create path's own check before it allocates IPs: a SingleStack
    Service (ipFamilyPolicy written, or defaulted to SingleStack) has one IP
    and one family."""
    policy = spec.get("ipFamilyPolicy")
    if policy is None:
        headless_without_selector = spec.get("clusterIP") == HEADLESS and not as_dict(spec.get("selector"))
        policy = REQUIRE_DUAL_STACK if headless_without_selector else SINGLE_STACK
        written = "defaulted to SingleStack"
    else:
        written = "SingleStack"
    if policy != SINGLE_STACK:
        return
    for field, what in (("clusterIPs", "cluster IPs"), ("ipFamilies", "IP families")):
        if len(as_list(spec.get(field))) == 2:
            errs.invalid("api-service-single-stack", path.child("ipFamilyPolicy"), SINGLE_STACK,
                         f"two {what} need ipFamilyPolicy PreferDualStack or RequireDualStack (it is {written})")


_SPECIAL = (
    (lambda a: a.is_unspecified, "may not be unspecified (0.0.0.0 or ::)"),
    (lambda a: a.is_loopback, "may not be a loopback address (127.0.0.0/8 or ::1)"),
    (lambda a: a in _LINK_LOCAL_V4 if a.version == 4 else a in _LINK_LOCAL_V6,
     "may not be link-local (169.254.0.0/16 or fe80::/10)"),
    (lambda a: a in _LINK_LOCAL_MULTICAST_V4 if a.version == 4 else _is_link_local_multicast_v6(a),
     "may not be link-local multicast (224.0.0.0/24 or ff02::/16)"),
)
_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")
_LINK_LOCAL_MULTICAST_V4 = ipaddress.ip_network("224.0.0.0/24")


def _is_link_local_multicast_v6(address: IPAddress) -> bool:
    # Multicast (ff) with link-local scope (2), whatever the flags.
    packed = address.packed
    return packed[0] == 0xFF and packed[1] & 0x0F == 0x02


def _external_ips(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    for index, value in enumerate(as_list(spec.get("externalIPs"))):
        if not isinstance(value, str):
            continue
        at = path.child("externalIPs").index(index)
        address = parse_legacy_ip(value)
        if address is None:
            errs.invalid("api-service-external-ip", at, value, "must be an IP address (e.g. 203.0.113.10)")
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for test, detail in _SPECIAL:
            if test(address):
                errs.invalid("api-service-external-ip-special", at, value, detail)


# ---- node ports --------------------------------------------------------------------------

def _node_ports(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    kind = spec.get("type")
    ports = [(index, port) for index, port in enumerate(as_list(spec.get("ports"))) if isinstance(port, dict)]
    seen: set[tuple[str, int]] = set()
    for index, port in ports:
        node_port = port.get("nodePort")
        if not formats.is_int(node_port) or node_port == 0:
            continue
        at = path.child("ports").index(index).child("nodePort")
        if kind == CLUSTER_IP:
            errs.forbidden("api-service-node-port-cluster-ip", at,
                           "a ClusterIP Service opens no node ports: remove nodePort, or use type NodePort")
        elif kind in (NODE_PORT, LOAD_BALANCER) and not 0 < node_port <= 65535:
            # The allocator refuses it before validation, whatever the cluster's node port range.
            errs.invalid("api-service-node-port-range", at, node_port,
                         "must be between 1 and 65535 (and inside the cluster's node port range, 30000-32767 by "
                         "default)")
        key = (str(port.get("protocol")), node_port)
        if key in seen:
            errs.duplicate("api-service-node-port-duplicate", at, node_port)
        seen.add(key)
    if kind in (NODE_PORT, LOAD_BALANCER):
        _node_port_allocation(spec, ports, path, errs)


def _node_port_allocation(spec: dict[str, Any], ports: list[tuple[int, dict[str, Any]]], path: FieldPath,
                          errs: Errors) -> None:
    """The create path reserves the requested node ports before validation:
    the ports of one port number share one node port, and a node port that
    one port number holds cannot be given to another (the first refusal
    stops the request)."""
    allocates = spec.get("type") == NODE_PORT or spec.get("allocateLoadBalancerNodePorts") is not False
    held: dict[int, Any] = {}  # node port -> the port number holding it
    by_number: dict[Any, int | None] = {}  # port number -> its node port (None: one allocated later)

    def reserve(index: int, node_port: int, number: Any) -> bool:
        if node_port in held:
            errs.invalid("api-service-node-port-reused", path.child("ports").index(index).child("nodePort"),
                         node_port, f"is already taken by port {held[node_port]} of this Service: ports with "
                         "different port numbers need different node ports")
            return False
        held[node_port] = number
        return True

    for index, port in ports:
        number, node_port = _hashable(port.get("port")), port.get("nodePort")
        requested = node_port if formats.is_int(node_port) and node_port != 0 else None
        if requested is None and not allocates:
            continue
        if number not in by_number:
            wanted = next((p.get("nodePort") for _, p in ports if _hashable(p.get("port")) == number
                           and formats.is_int(p.get("nodePort")) and p.get("nodePort") != 0), None)
            by_number[number] = wanted
            if wanted is not None and not reserve(index, wanted, number):
                return
        elif requested is not None and requested != by_number[number] and not reserve(index, requested, number):
            return


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (int, str)) or value is None else repr(value)


# ---- load balancers and traffic policies -----------------------------------------------------

def parse_legacy_cidr(value: str) -> Any:
    """A CIDR as the loose parser takes it (host bits and leading zeros allowed
    while StrictIPCIDRValidation is off); None when invalid."""
    return None if "%" in value else formats.parse_cidr(value)


_CIDR_DETAIL = "must be a CIDR (e.g. 203.0.113.0/24 or 2001:db8::/64)"


def _source_ranges(spec: dict[str, Any], annotations: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    ranges = as_list(spec.get("loadBalancerSourceRanges"))
    only_lb = "only a LoadBalancer Service has source ranges: remove it, or use type LoadBalancer"
    if ranges:
        # The API server spells this path with a capital L.
        at = path.child("LoadBalancerSourceRanges")
        if spec.get("type") != LOAD_BALANCER:
            errs.forbidden("api-service-source-ranges-type", at, only_lb)
        for index, value in enumerate(ranges):
            if isinstance(value, str) and parse_legacy_cidr(value.strip()) is None:
                errs.invalid("api-service-source-ranges", at.index(index), value.strip(), _CIDR_DETAIL)
        return
    value = annotations.get(SOURCE_RANGES_ANNOTATION)
    if value is None:
        return
    at = ROOT.child("metadata", "annotations").key(SOURCE_RANGES_ANNOTATION)
    if spec.get("type") != LOAD_BALANCER:
        errs.forbidden("api-service-source-ranges-annotation-type", at, only_lb)
    text = value.strip() if isinstance(value, str) else ""
    for item in (text.split(",") if text else []):
        if parse_legacy_cidr(item.strip()) is None:
            errs.invalid("api-service-source-ranges-annotation", at, item.strip(),
                         _CIDR_DETAIL + "; the annotation is a comma-separated list")


def _load_balancer_class(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    value = spec.get("loadBalancerClass")
    if value is None:
        return
    at = path.child("loadBalancerClass")
    if spec.get("type") != LOAD_BALANCER:
        errs.forbidden("api-service-lb-class-type", at,
                       "only a LoadBalancer Service has a load balancer class: remove it, or use type LoadBalancer")
    elif isinstance(value, str):
        errs.each("api-service-lb-class", at, value, formats.qualified_name_problems(value))


def _traffic_policies(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    external = spec.get("externalTrafficPolicy")
    if not externally_accessible(spec):
        if not _unset(external):
            errs.invalid("api-service-etp-not-external", path.child("externalTrafficPolicy"), external,
                         "only a NodePort or LoadBalancer Service, or a ClusterIP one with externalIPs, takes "
                         "external traffic: remove it")
    elif isinstance(external, str) and external not in TRAFFIC_POLICIES:
        errs.not_supported("api-service-etp-value", path.child("externalTrafficPolicy"), external, TRAFFIC_POLICIES)
    health = spec.get("healthCheckNodePort")
    if formats.is_int(health) and health != 0:
        at = path.child("healthCheckNodePort")
        if spec.get("type") != LOAD_BALANCER or external != "Local":
            errs.invalid("api-service-hc-node-port-unneeded", at, health,
                         "only a LoadBalancer Service with externalTrafficPolicy Local has a health check node "
                         "port: remove it")
        else:
            errs.each("api-service-hc-node-port-range", at, health, formats.port_number_problems(health))
    internal = spec.get("internalTrafficPolicy")
    if isinstance(internal, str) and internal not in TRAFFIC_POLICIES:
        errs.not_supported("api-service-itp-value", path.child("internalTrafficPolicy"), internal, TRAFFIC_POLICIES)


_SVC = ("Service",)
_VS = "core: ValidateService"
_CIPS = "core: ValidateServiceClusterIPsRelatedFields"
_ALLOC = "registry: service allocateCreate"
_DEFAULTED = "filled by defaulting (SetDefaults_Service)"
COVERAGE = (
    Row(_SVC, _VS, "annotations topology-mode and the deprecated topology-aware-hints agree when both are set",
        "api-service-topology-annotations"),
    Row(_SVC, _VS, "spec.ports is required unless the Service is headless or ExternalName",
        "api-service-ports-required"),
    Row(_SVC, _VS, "a LoadBalancer or NodePort Service is not headless (clusterIPs[0] 'None')",
        "api-service-headless-type"),
    Row(_SVC, _VS, "an ExternalName Service has no clusterIP/clusterIPs, ipFamilies or ipFamilyPolicy",
        "api-service-external-name-ip-fields"),
    Row(_SVC, _VS, "an ExternalName Service has an externalName (a trailing '.' is ignored)",
        "api-service-external-name-required"),
    Row(_SVC, _VS + " (ValidateDNS1123Subdomain)", "externalName is a DNS subdomain (253 characters)",
        "api-service-external-name"),
    Row(_SVC, "core: validateServicePort", "each port has a name when there are several",
        "api-service-port-name-required"),
    Row(_SVC, "core: validateServicePort (ValidateDNS1123Label)", "a port name is a DNS label (63 characters, "
        "no dots; unlike a container port it may be longer than 15)", "api-service-port-name"),
    Row(_SVC, "core: validateServicePort", "port names are unique", "api-service-port-name-unique"),
    Row(_SVC, "core: validateServicePort (IsValidPortNum)", "port is 1-65535 (a missing port is refused by the "
        "JSON schema)", "api-service-port-number"),
    Row(_SVC, "core: validateServicePort", "protocol is TCP, UDP or SCTP", "api-service-port-protocol"),
    Row(_SVC, "core: validateServicePort", "protocol is required", None, _DEFAULTED + ": TCP"),
    Row(_SVC, "core: validateServicePort (ValidatePortNumOrName)", "targetPort (defaulted to port when 0 or unset) "
        "is 1-65535 or an IANA port name (15 characters, a letter, no '--')", "api-service-target-port"),
    Row(_SVC, "core: validateServicePort (ValidateQualifiedName)", "appProtocol, when set, is a qualified name "
        "(e.g. http, kubernetes.io/h2c)", "api-service-app-protocol"),
    Row(_SVC, _VS + " (ValidateLabels)", "selector keys are qualified names and values label values",
        "api-service-selector"),
    Row(_SVC, _VS, "sessionAffinity is None or ClientIP", "api-service-session-affinity"),
    Row(_SVC, _VS, "sessionAffinity is required", None, _DEFAULTED + ": None"),
    Row(_SVC, "core: validateClientIPAffinityConfig", "sessionAffinityConfig.clientIP.timeoutSeconds is required "
        "for ClientIP", None, _DEFAULTED + ": 10800 when the config or its timeout is missing"),
    Row(_SVC, "core: validateAffinityTimeout", "timeoutSeconds is 1-86400", "api-service-session-affinity-timeout"),
    Row(_SVC, _VS, "sessionAffinityConfig is not set when sessionAffinity is None", None,
        "cleared by defaulting: SetDefaults_Service drops the config of a None affinity"),
    Row(_SVC, _CIPS, "clusterIPs is required when clusterIP is set", None,
        "filled on create: the API server copies clusterIP into an empty clusterIPs"),
    Row(_SVC, _CIPS, "clusterIPs[0] equals clusterIP", "api-service-cluster-ips-match"),
    Row(_SVC, _CIPS, "clusterIPs is empty when clusterIP is not set", "api-service-cluster-ips-without-cluster-ip"),
    Row(_SVC, _CIPS, "each ipFamilies entry is IPv4 or IPv6", "api-service-ip-family"),
    Row(_SVC, _CIPS, "ipFamilies has no duplicate (so at most one of each family)", "api-service-ip-family-duplicate"),
    Row(_SVC, _CIPS, "ipFamilyPolicy is SingleStack, PreferDualStack or RequireDualStack",
        "api-service-ip-family-policy"),
    Row(_SVC, _CIPS, "'None' is only ever the first and only clusterIPs value", "api-service-cluster-ips-none"),
    Row(_SVC, _CIPS + " (IsValidIPForLegacyField)", "each other clusterIPs value is an IP address (loose parser at "
        "1.34)", "api-service-cluster-ip"),
    Row(_SVC, _CIPS, "clusterIPs holds at most 2 values", "api-service-cluster-ips-count"),
    Row(_SVC, _CIPS, "two clusterIPs are of different families", "api-service-cluster-ips-dual-stack"),
    Row(_SVC, _CIPS, "each clusterIPs[i] is of the family ipFamilies[i] (not checked for headless)",
        "api-service-cluster-ip-family"),
    Row(_SVC, _ALLOC + " (initIPFamilyFields)", "a SingleStack Service (ipFamilyPolicy SingleStack, or unset and so "
        "defaulted to it, except headless without selector) has neither two clusterIPs nor two ipFamilies",
        "api-service-single-stack"),
    Row(_SVC, _ALLOC + " (initIPFamilyFields)", "RequireDualStack needs a dual-stack cluster; each IP family (given, "
        "or inferred from clusterIPs) is configured on the cluster", None,
        "needs the cluster's configuration (its --service-cluster-ip-range families)"),
    Row(_SVC, _ALLOC + " (allocClusterIPs)", "a requested clusterIP is inside the service CIDR and not taken", None,
        "needs the cluster's state (its service CIDRs and the IPs already allocated)"),
    Row(_SVC, _VS + " (IsValidIPForLegacyField)", "each externalIPs value is an IP address (loose parser at 1.34)",
        "api-service-external-ip"),
    Row(_SVC, "core: ValidateNonSpecialIP", "an external IP is not unspecified, loopback, link-local or link-local "
        "multicast", "api-service-external-ip-special"),
    Row(_SVC, f"{_VS}, {_CIPS} (strict IP and CIDR forms)", "IPs and CIDRs have no leading zeros, no IPv4-mapped IPv6 "
        "form, no bits past the prefix", None, "behind StrictIPCIDRValidation, off by default at 1.34 (only warnings)"),
    Row(_SVC, "admission: DenyServiceExternalIPs", "externalIPs are refused outright", None,
        "needs the cluster's configuration (an admission plugin that is off by default)"),
    Row(_SVC, _VS, "type is ClusterIP, NodePort, LoadBalancer or ExternalName", "api-service-type"),
    Row(_SVC, _VS, "type is required", None, _DEFAULTED + ": ClusterIP"),
    Row(_SVC, _VS, "a ClusterIP Service sets no nodePort", "api-service-node-port-cluster-ip"),
    Row(_SVC, _VS, "no two ports have the same nodePort and protocol", "api-service-node-port-duplicate"),
    Row(_SVC, _ALLOC + " (initNodePorts)", "a nodePort is not requested by two ports with different port numbers "
        "(the allocator refuses the second: 'provided port is already allocated')", "api-service-node-port-reused"),
    Row(_SVC, _ALLOC + " (initNodePorts)", "a nodePort of a NodePort or LoadBalancer Service is a port number "
        "(1-65535: no node port range holds anything else; 'provided port is not in the valid range')",
        "api-service-node-port-range"),
    Row(_SVC, _ALLOC + " (initNodePorts, allocHealthCheckNodePort)", "a requested nodePort or healthCheckNodePort "
        "is inside --service-node-port-range (30000-32767 by default) and not taken by another Service", None,
        "needs the cluster's configuration and state (the node port range and the ports already allocated)"),
    Row(_SVC, _VS, "no two ports have the same port and protocol", "api-service-port-duplicate"),
    Row(_SVC, _VS, "spec.loadBalancerSourceRanges only on a LoadBalancer Service (the API server writes the path "
        "`spec.LoadBalancerSourceRanges`)", "api-service-source-ranges-type"),
    Row(_SVC, _VS + " (IsValidCIDRForLegacyField)", "each loadBalancerSourceRanges value (spaces trimmed) is a CIDR",
        "api-service-source-ranges"),
    Row(_SVC, _VS, "without the field, the service.beta.kubernetes.io/load-balancer-source-ranges annotation only "
        "on a LoadBalancer Service", "api-service-source-ranges-annotation-type"),
    Row(_SVC, _VS + " (IsValidCIDRForLegacyField)", "each comma-separated CIDR of that annotation is a CIDR",
        "api-service-source-ranges-annotation"),
    Row(_SVC, _VS, "allocateLoadBalancerNodePorts only on a LoadBalancer Service", "api-service-allocate-node-ports"),
    Row(_SVC, _VS, "allocateLoadBalancerNodePorts is required for a LoadBalancer Service", None,
        _DEFAULTED + ": true"),
    Row(_SVC, "core: validateLoadBalancerClassField", "loadBalancerClass is a qualified name", "api-service-lb-class"),
    Row(_SVC, "core: validateLoadBalancerClassField", "loadBalancerClass only on a LoadBalancer Service",
        "api-service-lb-class-type"),
    Row(_SVC, "core: validateServiceExternalTrafficPolicy", "externalTrafficPolicy only on an externally accessible "
        "Service (NodePort, LoadBalancer, or ClusterIP with externalIPs)", "api-service-etp-not-external"),
    Row(_SVC, "core: validateServiceExternalTrafficPolicy", "externalTrafficPolicy is Cluster or Local",
        "api-service-etp-value"),
    Row(_SVC, "core: validateServiceExternalTrafficPolicy", "externalTrafficPolicy is required for an externally "
        "accessible Service", None, _DEFAULTED + ": Cluster"),
    Row(_SVC, "core: validateServiceExternalTrafficPolicy", "healthCheckNodePort only on a LoadBalancer Service "
        "with externalTrafficPolicy Local", "api-service-hc-node-port-unneeded"),
    Row(_SVC, "core: validateServiceExternalTrafficPolicy (IsValidPortNum)", "healthCheckNodePort is 1-65535",
        "api-service-hc-node-port-range"),
    Row(_SVC, "core: validateServiceExternalTrafficPolicy", "healthCheckNodePort is required for a LoadBalancer "
        "Service with externalTrafficPolicy Local", None,
        "filled on create: the API server allocates one before it validates"),
    Row(_SVC, "core: validateServiceInternalTrafficFieldsValue", "internalTrafficPolicy is Cluster or Local",
        "api-service-itp-value"),
    Row(_SVC, "core: validateServiceInternalTrafficFieldsValue", "internalTrafficPolicy is required for ClusterIP, "
        "NodePort and LoadBalancer", None, _DEFAULTED + ": Cluster"),
    Row(_SVC, "core: validateServiceTrafficDistribution", "trafficDistribution is PreferClose, PreferSameZone or "
        "PreferSameNode (PreferClose only before 1.34, when PreferSameTrafficDistribution was off)",
        "api-service-traffic-distribution"),
    Row(_SVC, "core: ValidateServiceUpdate", "clusterIPs, ipFamilies, loadBalancerClass and healthCheckNodePort do "
        "not change (dual-stack upgrade and downgrade rules)", None,
        "update only (`immutable-field` in `validate --changed` covers what GitOps changes)"),
    Row(_SVC, "core: ValidateServiceStatusUpdate", "status.loadBalancer", None,
        "status is written by controllers, not by manifests"),
)
