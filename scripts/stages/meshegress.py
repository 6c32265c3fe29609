"""Istio's egress path for one pod and one endpoint, as istiod builds the
pod's proxy configuration (Istio 1.30):

- injection: hostNetwork pods are never injected; the pod's
  `sidecar.istio.io/inject` label (or, without it, the annotation) says
  true/false; otherwise the namespace's `istio-injection=enabled` or
  `istio.io/rev` label injects, and a pod label `true` alone does too;
- capture: the proxy sees the connection unless the pod excludes its port or
  addresses (`traffic.sidecar.istio.io/*` annotations) or the container runs
  as the proxy's own user (1337); an init container's connection reaches a
  running proxy only when the proxy is a native sidecar (with the CNI the
  redirect is in place before any init container runs);
- the Sidecar resource: one whose workloadSelector selects the pod, else
  the namespace's one without a selector, else the mesh defaults; its
  outboundTrafficPolicy (or the mesh's) decides what happens to a host the
  registry does not know: REGISTRY_ONLY drops it, ALLOW_ANY passes it through;
- the registry a proxy sees: ServiceEntries exported to the pod's namespace
  (exportTo, or the mesh's default) and imported by one of the Sidecar's
  egress listeners (`namespace/host`, `.` the Sidecar's namespace, `*` any;
  a listener with a port imports that port only);
- TLS to a ServiceEntry with resolution DNS is routed by SNI on the port's
  listener, so the host must be declared exactly (or by a wildcard) on the
  endpoint's port with protocol TLS or HTTPS; a port declared HTTP makes the
  proxy parse the TLS bytes as HTTP, whatever the outbound policy.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from scripts.core.model import Render, Resource
from scripts.stages.egress_settings import MeshDefaults
from scripts.stages.policy_support import plain_selector_matches

PROXY_UID = 1337
# What the proxy must be told a port carries for it to pass the client's bytes as sent.
COMPATIBLE = {"TLS": {"TLS", "HTTPS"}, "HTTP": {"HTTP", "HTTP2"}, "TCP": {"TCP", "TLS", "HTTPS"}}


@dataclass(frozen=True)
class MeshEndpoint:
    host: str
    port: int
    protocol: str  # what the client speaks: TLS, HTTP or TCP

    @property
    def is_address(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MeshBlock:
    """A mesh layer that stops the connection: the object to fix, the problem, the fix."""

    obj: Resource
    problem: str
    fix: str
    field: tuple[str, ...] = ()  # the field of obj to fix, e.g. ("spec", "hosts")


@dataclass(frozen=True)
class MeshView:
    """The objects of a render the mesh layers read, sorted out once."""

    namespaces: dict[str, Resource]
    sidecars: tuple[Resource, ...]
    entries: tuple[Resource, ...]
    anchor: Resource | None  # what a finding with no better object is about

    @classmethod
    def of(cls, render: Render) -> MeshView:
        objects = render.objects
        return cls(namespaces={o.name: o for o in objects if o.kind == "Namespace"},
                   sidecars=tuple(o for o in objects if o.kind == "Sidecar"),
                   entries=tuple(o for o in objects if o.kind == "ServiceEntry"),
                   anchor=next((o for o in objects if o.kind == "Namespace"), objects[0] if objects else None))


def _namespace_labels(view: MeshView, namespace: str | None) -> dict[str, str] | None:
    found = view.namespaces.get(namespace or "")
    return found.labels if found is not None else None


def injected(view: MeshView, namespace: str | None, pod_spec: dict, labels: dict, annotations: dict) -> bool:
    """Does the injection webhook give this pod a proxy?"""
    if pod_spec.get("hostNetwork"):
        return False
    key = "sidecar.istio.io/inject"
    choice = labels[key] if key in labels else annotations.get(key)
    ns_labels = _namespace_labels(view, namespace) or {}
    if ns_labels.get("istio-injection") == "disabled" or choice == "false":
        return False
    if ns_labels.get("istio-injection") == "enabled" or "istio.io/rev" in ns_labels:
        return True
    return labels.get(key) == "true"


def native_sidecar(annotations: dict, defaults: MeshDefaults) -> bool:
    value = annotations.get("sidecar.istio.io/nativeSidecar")
    return defaults.native_sidecars if value is None else str(value) != "false"


def _covers(ranges: str, endpoint: MeshEndpoint) -> bool:
    """Does a comma-separated CIDR list (or `*`) cover every address the endpoint may have?"""
    entries = [r.strip() for r in str(ranges).split(",") if r.strip()]
    if "*" in entries:
        return True
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    if endpoint.is_address:
        address = ipaddress.ip_address(endpoint.host)
        return any(address in n for n in networks)
    return any(n.prefixlen == 0 and n.version == 4 for n in networks)


def captured(annotations: dict, container: dict, endpoint: MeshEndpoint) -> bool:
    """Is the container's connection redirected to the proxy?"""
    if ((container.get("securityContext") or {}).get("runAsUser")) == PROXY_UID:
        return False
    excluded_ports = str(annotations.get("traffic.sidecar.istio.io/excludeOutboundPorts", ""))
    if str(endpoint.port) in {p.strip() for p in excluded_ports.split(",")}:
        return False
    excluded = annotations.get("traffic.sidecar.istio.io/excludeOutboundIPRanges")
    if excluded and _covers(excluded, endpoint):
        return False
    included = annotations.get("traffic.sidecar.istio.io/includeOutboundIPRanges")
    return included is None or _covers(included, endpoint)


def sidecar_for(view: MeshView, namespace: str | None, labels: dict) -> Resource | None:
    """The Sidecar resource that configures the pod's proxy (None: the mesh's defaults)."""
    sidecars = [o for o in view.sidecars if o.namespace == namespace]
    selecting = [s for s in sidecars if ((s.doc.get("spec") or {}).get("workloadSelector") or {}).get("labels")]
    chosen = next((s for s in selecting if plain_selector_matches(
        (s.doc["spec"]["workloadSelector"] or {}).get("labels"), labels)), None)
    if chosen is not None:
        return chosen
    return next((s for s in sidecars if s not in selecting), None)


def _host_matches(pattern: str, host: str) -> bool:
    """Istio host matching: exact, `*`, or `*.suffix` covering any name under the suffix."""
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) or (host.startswith("*.") and host[1:].endswith(suffix))
    return False


def _spec(obj: Resource) -> dict:
    spec = obj.doc.get("spec")
    return spec if isinstance(spec, dict) else {}


def exported_to(entry: Resource, namespace: str | None, defaults: MeshDefaults) -> bool:
    export = _spec(entry).get("exportTo")
    targets = [str(e) for e in export] if isinstance(export, list) and export else list(defaults.export_to)
    for target in targets:
        if target == "*" or target == namespace or (target == "." and entry.namespace == namespace):
            return True
    return False


def imports(sidecar: Resource | None, entry: Resource, host: str, port: int) -> bool:
    """Does one of the Sidecar's egress listeners import `host` of the
    ServiceEntry on `port`? No Sidecar, or one without egress listeners,
    imports everything exported to the namespace."""
    if sidecar is None:
        return True
    listeners = _spec(sidecar).get("egress")
    if not listeners:
        return True
    for listener in listeners:
        if not isinstance(listener, dict):
            continue
        listener_port = (listener.get("port") or {}).get("number")
        if listener_port and listener_port != port and \
                str((listener.get("port") or {}).get("protocol", "")).upper() != "HTTP_PROXY":
            continue
        for item in listener.get("hosts") or []:
            ns, sep, name = str(item).partition("/")
            if not sep:
                continue
            ns = sidecar.namespace if ns == "." else ns
            if (ns == "*" or ns == entry.namespace) and _host_matches(name, host):
                return True
    return False


def _declares(entry: Resource, endpoint: MeshEndpoint) -> str | None:
    """The entry's host that covers the endpoint, if any."""
    spec = _spec(entry)
    for host in spec.get("hosts") or []:
        if _host_matches(str(host), endpoint.host):
            return str(host)
    if endpoint.is_address:
        address = ipaddress.ip_address(endpoint.host)
        for cidr in spec.get("addresses") or []:
            try:
                if address in ipaddress.ip_network(str(cidr), strict=False):
                    return str(cidr)
            except ValueError:
                continue
    return None


def _port_of(entry: Resource, number: int) -> dict | None:
    return next((p for p in _spec(entry).get("ports") or [] if isinstance(p, dict) and p.get("number") == number),
                None)


def outbound_policy(sidecar: Resource | None, defaults: MeshDefaults) -> str:
    mode = ((_spec(sidecar).get("outboundTrafficPolicy") or {}).get("mode")) if sidecar is not None else None
    return str(mode or defaults.outbound_traffic_policy)


def _entry_problem(entry: Resource, sidecar: Resource | None, namespace: str | None, endpoint: MeshEndpoint,
                   host: str, defaults: MeshDefaults, registry_only: bool) -> MeshBlock | None:
    """What stops the endpoint on an entry that declares its host; None when it works."""
    spec = _spec(entry)
    where = f"ServiceEntry/{entry.name} ({entry.namespace})"
    if not exported_to(entry, namespace, defaults):
        if not registry_only:
            return None  # hidden, so the proxy passes the host through
        export = spec.get("exportTo") or list(defaults.export_to)
        return MeshBlock(entry, f"declares {host} but its exportTo {export} hides it from namespace {namespace}",
                         f"export it to the pods' namespace (exportTo: [\".\"] when it is in {namespace})",
                         ("spec", "exportTo"))
    if not imports(sidecar, entry, host, endpoint.port):
        if not registry_only:
            return None
        assert sidecar is not None
        hosts = [h for listener in _spec(sidecar).get("egress") or [] for h in (listener or {}).get("hosts") or []]
        return MeshBlock(sidecar, f"egress hosts {hosts} do not import {where}, which declares {host}",
                         f"add \"{entry.namespace}/{host}\" (or \"./*\" for its own namespace) to the egress hosts",
                         ("spec", "egress"))
    port = _port_of(entry, endpoint.port)
    if port is None:
        if not registry_only:
            return None
        return MeshBlock(entry, f"declares {host} but not port {endpoint.port}",
                         f"add port {endpoint.port} with protocol {endpoint.protocol} to spec.ports", ("spec", "ports"))
    protocol = str(port.get("protocol") or "").upper()
    if protocol not in COMPATIBLE[endpoint.protocol]:
        return MeshBlock(entry, f"declares port {endpoint.port} as {protocol or 'no protocol'}, but the client "
                                f"speaks {endpoint.protocol} to {host} on it: the proxy "
                                + ("parses the TLS handshake as HTTP and fails it" if protocol.startswith("HTTP")
                                   else "cannot route it by SNI"),
                         f"set the port's protocol to {sorted(COMPATIBLE[endpoint.protocol])[-1]}", ("spec", "ports"))
    if spec.get("resolution") == "STATIC" and not spec.get("endpoints"):
        return MeshBlock(entry, "has resolution STATIC and no endpoints: the proxy has nowhere to send it",
                         "use resolution: DNS, or list the endpoints", ("spec", "resolution"))
    return None


def closest_entry(view: MeshView, namespace: str | None, host: str) -> Resource | None:
    """The ServiceEntry a missing host most likely belongs in: the one whose
    hosts share the longest domain suffix with it, the pod's namespace first."""
    def shared(entry: Resource) -> tuple[int, int]:
        best = 0
        for declared in _spec(entry).get("hosts") or []:
            a, b = str(declared).lower().split(".")[::-1], host.lower().split(".")[::-1]
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            best = max(best, n)
        return best, int(entry.namespace == namespace)
    ranked = sorted(view.entries, key=shared, reverse=True)
    return ranked[0] if ranked and shared(ranked[0])[0] >= 2 else None


def check_mesh(view: MeshView, namespace: str | None, labels: dict, endpoint: MeshEndpoint,
               defaults: MeshDefaults) -> list[MeshBlock]:
    """What in the mesh stops the pod's proxy from reaching the endpoint (empty: nothing)."""
    sidecar = sidecar_for(view, namespace, labels)
    registry_only = outbound_policy(sidecar, defaults) == "REGISTRY_ONLY"
    problems: list[MeshBlock] = []
    for entry in view.entries:
        host = _declares(entry, endpoint)
        if host is None:
            continue
        problem = _entry_problem(entry, sidecar, namespace, endpoint, host, defaults, registry_only)
        if problem is None:
            if registry_only:
                return []  # one working entry is enough
            continue
        problems.append(problem)
    if problems or not registry_only:
        return problems
    sets_mode = sidecar is not None and (_spec(sidecar).get("outboundTrafficPolicy") or {}).get("mode")
    policy_from = f"Sidecar/{sidecar.name}'s" if sets_mode and sidecar is not None else "the mesh config's"
    anchor = closest_entry(view, namespace, endpoint.host)
    own = f"declare it in a ServiceEntry exported to {namespace}"
    if anchor is not None:
        return [MeshBlock(anchor, f"does not declare {endpoint}, nor does any other ServiceEntry the pods' proxy "
                                  f"sees, so {policy_from} REGISTRY_ONLY outbound policy drops it",
                          f"add {endpoint.host} to its hosts (port {endpoint.port}, protocol {endpoint.protocol}), "
                          f"or {own}", ("spec", "hosts"))]
    problem = f"REGISTRY_ONLY outbound policy drops {endpoint}: no ServiceEntry the pods' proxy sees declares it"
    fix = f"{own} (host {endpoint.host}, port {endpoint.port}, protocol {endpoint.protocol})"
    if sets_mode and sidecar is not None:
        return [MeshBlock(sidecar, f"its {problem}", fix, ("spec", "outboundTrafficPolicy"))]
    anchor = sidecar if sidecar is not None else view.anchor
    assert anchor is not None
    return [MeshBlock(anchor, f"the mesh config's default {problem}", fix)]
