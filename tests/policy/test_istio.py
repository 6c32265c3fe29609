"""Offline equivalents of the `istioctl analyze` analyzers that apply to the
kinds this repository uses, named after their IST codes so users coming from
istioctl can map them (docs/validation.md has the table)."""

from __future__ import annotations

import json

import yaml

from scripts.core.model import Render, Resource
from scripts.stages.policy_support import (
    PolicyConfig,
    Violation,
    assert_no_violations,
    plain_selector_matches,
    pod_template_labels,
    workloads,
)

ISTIO_GROUPS = ("networking.istio.io", "security.istio.io", "telemetry.istio.io")
CURRENT_VERSION = "v1"
# Service port name prefixes and appProtocol values Istio understands.
PROTOCOLS = ("http", "http2", "https", "grpc", "grpc-web", "h2c", "mongo", "mysql", "redis", "tcp", "tls",
             "udp")
# Pod annotations Istio reads (a subset of istio.io/latest/docs/reference/config/annotations/ that matters
# for workloads); a `*.istio.io/` key outside it is most likely a typo that does nothing.
POD_ANNOTATIONS = {
    "sidecar.istio.io/inject", "sidecar.istio.io/nativeSidecar", "sidecar.istio.io/proxyCPU",
    "sidecar.istio.io/proxyCPULimit", "sidecar.istio.io/proxyMemory", "sidecar.istio.io/proxyMemoryLimit",
    "sidecar.istio.io/proxyImage", "sidecar.istio.io/logLevel", "sidecar.istio.io/componentLogLevel",
    "sidecar.istio.io/statsInclusionPrefixes", "sidecar.istio.io/statsInclusionRegexps",
    "sidecar.istio.io/interceptionMode", "sidecar.istio.io/agentLogLevel", "sidecar.istio.io/rewriteAppHTTPProbers",
    "sidecar.istio.io/userVolume", "sidecar.istio.io/userVolumeMount", "sidecar.istio.io/bootstrapOverride",
    "proxy.istio.io/config", "proxy.istio.io/overrides", "prometheus.istio.io/merge-metrics",
    "traffic.sidecar.istio.io/includeOutboundIPRanges", "traffic.sidecar.istio.io/excludeOutboundIPRanges",
    "traffic.sidecar.istio.io/includeInboundPorts", "traffic.sidecar.istio.io/excludeInboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundPorts", "traffic.sidecar.istio.io/includeOutboundPorts",
    "traffic.sidecar.istio.io/kubevirtInterfaces", "status.sidecar.istio.io/port",
    "readiness.status.sidecar.istio.io/initialDelaySeconds", "readiness.status.sidecar.istio.io/periodSeconds",
    "readiness.status.sidecar.istio.io/failureThreshold", "readiness.status.sidecar.istio.io/applicationPorts",
    "ambient.istio.io/redirection", "istio.io/rev",
}
# Annotations that only act on the pod template, never on the workload object itself.
POD_ONLY = {a for a in POD_ANNOTATIONS if a.startswith(("sidecar.", "proxy.", "traffic.", "readiness."))}
# The label that asks for injection per pod (also accepted as an annotation by older Istio).
INJECT = "sidecar.istio.io/inject"


def _istio(render: Render) -> list[Resource]:
    return [o for o in render.objects if o.api_version.split("/")[0] in ISTIO_GROUPS]


def _of(render: Render, kind: str) -> list[Resource]:
    return [o for o in _istio(render) if o.kind == kind]


def _pods(render: Render) -> list[tuple[Resource, dict[str, str]]]:
    return [(obj, pod_template_labels(obj)) for obj, _ in workloads(render)]


def _short(host: str) -> str:
    return str(host).split(".")[0]


def check_ist0102_namespace_injection(render: Render, config: PolicyConfig) -> list[Violation]:
    """IST0102 (namespace not injected) and IST0123 (several injection labels):
    a namespace with Istio objects and workloads has the mesh switched on, in
    one way; injected pods under Pod Security "restricted" need Istio's CNI."""
    if not _istio(render):
        return []
    out = []
    namespaces = {o.name: o for o in render.objects if o.kind == "Namespace"}
    for obj, labels in _pods(render):
        annotations = ((((obj.doc.get("spec") or {}).get("template") or {}).get("metadata") or {})
                       .get("annotations") or {})
        pod_says = labels.get(INJECT, annotations.get(INJECT))
        if str(pod_says).lower() == "false":
            out.append(Violation(obj, "opts out of sidecar injection in a meshed namespace, so mTLS and the "
                                      "AuthorizationPolicy do not cover it", f"remove the {INJECT}: \"false\" label"))
            continue
        namespace = namespaces.get(obj.namespace or "")
        if namespace is None:
            if str(pod_says).lower() != "true":
                out.append(Violation(obj, "its namespace is not in this render and its pods do not ask for "
                                          "injection (IST0102)", f"label the pod template {INJECT}: \"true\""))
            continue
        ns_labels = namespace.labels
        injection, revision = ns_labels.get("istio-injection"), ns_labels.get("istio.io/rev")
        if injection and revision:
            out.append(Violation(namespace, "has both istio-injection and istio.io/rev labels (IST0123)",
                                 "keep one: istio-injection: enabled, or istio.io/rev: <revision>"))
        elif injection != "enabled" and not revision and str(pod_says).lower() != "true":
            out.append(Violation(namespace, "has Istio objects but injection is off: no sidecar, so STRICT mTLS, "
                                            "AuthorizationPolicy and Sidecar do nothing (IST0102)",
                                 "label the namespace istio-injection: enabled (or istio.io/rev)"))
            continue
        if ns_labels.get("pod-security.kubernetes.io/enforce") in ("restricted", "baseline") \
                and not config.cluster.get("istio_cni"):
            out.append(Violation(namespace, "injects sidecars under Pod Security "
                                            f"{ns_labels['pod-security.kubernetes.io/enforce']!r}, which rejects "
                                            "the istio-init container (NET_ADMIN)",
                                 "run Istio's CNI node agent and declare it: cluster.istio_cni: true in "
                                 "config/policy.yaml"))
    return out


def check_ist0101_references(render: Render) -> list[Violation]:
    """IST0101 (referenced resource not found) and IST0112 (destination port
    required): a VirtualService's gateways exist, its destination subsets are
    defined, and a destination on a Service with several ports names one of
    them."""
    out = []
    gateways = {(g.namespace, g.name) for g in _of(render, "Gateway")}
    services = {(s.namespace, s.name): s for s in render.objects if s.kind == "Service"}
    subsets: dict[str, set[str]] = {}
    for rule in _of(render, "DestinationRule"):
        spec = rule.doc.get("spec") or {}
        subsets.setdefault(_short(spec.get("host", "")), set()).update(
            s.get("name") for s in spec.get("subsets") or [] if isinstance(s, dict))
    for vs in _of(render, "VirtualService"):
        spec = vs.doc.get("spec") or {}
        for gateway in spec.get("gateways") or []:
            if gateway == "mesh":
                continue
            namespace, _, name = str(gateway).rpartition("/")
            if "." in name:  # gateway.namespace.svc.cluster.local form
                name, namespace = name.split(".")[0], name.split(".")[1]
            if (namespace or vs.namespace, name) not in gateways and (not namespace or namespace == vs.namespace):
                out.append(Violation(vs, f"gateway {gateway!r} is not a Gateway in this render (IST0101)",
                                     "fix the name, or add the Gateway"))
        for kind in ("http", "tcp", "tls"):
            for index, route in enumerate(spec.get(kind) or []):
                destinations = [r.get("destination") or {} for r in route.get("route") or []]
                if route.get("mirror"):
                    destinations.append(route["mirror"])
                for dest in destinations:
                    host = _short(dest.get("host", ""))
                    subset = dest.get("subset")
                    if subset and subset not in subsets.get(host, set()):
                        out.append(Violation(vs, f"{kind}[{index}] routes to subset {subset!r} of {host}, which no "
                                                 "DestinationRule defines (IST0101)",
                                             "add the subset to the host's DestinationRule"))
                    service = services.get((vs.namespace, host))
                    if service is None:
                        continue
                    ports = [p.get("port") for p in (service.doc.get("spec") or {}).get("ports") or []]
                    number = (dest.get("port") or {}).get("number")
                    if number is None and len(ports) > 1:
                        out.append(Violation(vs, f"{kind}[{index}] routes to {host}, which has ports {ports}, "
                                                 "without naming one (IST0112)", "set destination.port.number"))
                    elif number is not None and number not in ports:
                        out.append(Violation(vs, f"{kind}[{index}] routes to {host}:{number}, but the Service "
                                                 f"has ports {ports} (IST0101)", "use one of the Service's ports"))
    return out


def _host_matches(pattern: str, host: str) -> bool:
    pattern = str(pattern).split("/")[-1]
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return str(host).endswith(pattern[1:])
    return pattern == host


def check_ist0132_gateway_serves_host(render: Render) -> list[Violation]:
    """IST0132: a VirtualService bound to a Gateway lists hosts that the
    Gateway serves; the others are ignored at the edge."""
    out = []
    gateways = {g.name: g for g in _of(render, "Gateway")}
    for vs in _of(render, "VirtualService"):
        spec = vs.doc.get("spec") or {}
        bound = [gateways[g] for g in spec.get("gateways") or [] if g in gateways]
        if not bound:
            continue
        served = [h for g in bound for s in (g.doc.get("spec") or {}).get("servers") or []
                  for h in s.get("hosts") or []]
        meshed = "mesh" in (spec.get("gateways") or [])
        for host in spec.get("hosts") or []:
            if any(_host_matches(p, host) for p in served):
                continue
            if meshed and "." not in str(host):  # a short name is for the mesh gateway
                continue
            out.append(Violation(vs, f"host {host!r} is not served by its Gateway {[g.name for g in bound]} "
                                     "(IST0132)", "add the host to the Gateway's servers, or remove it"))
    return out


def check_ist0118_service_port_protocol(render: Render) -> list[Violation]:
    """IST0118: Istio picks a port's protocol from appProtocol or the port
    name's prefix (http-, grpc-, tcp-, ...); otherwise it sniffs, or treats
    the port as opaque TCP."""
    out = []
    for service in (o for o in render.objects if o.kind == "Service"):
        for port in (service.doc.get("spec") or {}).get("ports") or []:
            name, protocol = str(port.get("name") or ""), port.get("appProtocol")
            if protocol or name.split("-")[0] in PROTOCOLS:
                continue
            out.append(Violation(service, f"port {port.get('port')} ({name or 'unnamed'}) names no protocol "
                                          "(IST0118)", "set appProtocol, or name it <protocol>[-suffix], e.g. http"))
    return out


def check_ist0127_selectors_select_pods(render: Render) -> list[Violation]:
    """IST0127 and kin: the workload selector of an AuthorizationPolicy,
    PeerAuthentication, RequestAuthentication, Sidecar or Telemetry selects
    pods of this render; one that selects none protects nothing."""
    pods = [labels for _, labels in _pods(render)]
    out = []
    for obj in _istio(render):
        spec = obj.doc.get("spec") or {}
        if obj.kind in ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "Telemetry"):
            labels = (spec.get("selector") or {}).get("matchLabels")
        elif obj.kind == "Sidecar":
            labels = (spec.get("workloadSelector") or {}).get("labels")
        else:
            continue
        if labels and pods and not any(plain_selector_matches(labels, p) for p in pods):
            out.append(Violation(obj, f"selects no pod of this render ({labels}) (IST0127)",
                                 "fix the selector to match the pod template's labels"))
    return out


def check_destinationrule_tls_matches_mtls(render: Render) -> list[Violation]:
    """A DestinationRule that sends plain text (tls.mode DISABLE) to pods
    whose PeerAuthentication is STRICT makes every call fail: an outage."""
    strict = []
    for policy in _of(render, "PeerAuthentication"):
        spec = policy.doc.get("spec") or {}
        if (spec.get("mtls") or {}).get("mode") == "STRICT":
            strict.append((spec.get("selector") or {}).get("matchLabels") or {})
    if not strict:
        return []
    services = {s.name: s for s in render.objects if s.kind == "Service"}
    pods = [labels for _, labels in _pods(render)]
    out = []
    for rule in _of(render, "DestinationRule"):
        spec = rule.doc.get("spec") or {}
        mode = ((spec.get("trafficPolicy") or {}).get("tls") or {}).get("mode")
        if mode != "DISABLE":
            continue
        service = services.get(_short(spec.get("host", "")))
        if service is None:
            continue
        selected = [p for p in pods if plain_selector_matches((service.doc.get("spec") or {}).get("selector"), p)]
        if any(not sel or plain_selector_matches(sel, p) for sel in strict for p in selected):
            out.append(Violation(rule, "sends plain text (tls.mode DISABLE) to pods that require STRICT mTLS",
                                 "use tls.mode ISTIO_MUTUAL (or remove the tls setting)"))
    return out


def check_ist0002_deprecated_istio_api(render: Render) -> list[Violation]:
    """IST0002: networking/security v1alpha3 and v1beta1 are deprecated in
    favour of v1 (served since Istio 1.22)."""
    return [Violation(o, f"uses deprecated {o.api_version} (IST0002)",
                      f"use {o.api_version.split('/')[0]}/{CURRENT_VERSION}")
            for o in _istio(render) if o.api_version.split("/")[-1] in ("v1alpha3", "v1beta1")
            and o.api_version.split("/")[0] in ("networking.istio.io", "security.istio.io")]


def check_ist0108_istio_annotations(render: Render) -> list[Violation]:
    """IST0108 (unknown annotation), IST0107 (annotation on the wrong object)
    and IST0125 (invalid value, proxy.istio.io/config included)."""
    out = []
    for obj, _ in workloads(render):
        template = ((obj.doc.get("spec") or {}).get("template") or {}).get("metadata") or {}
        for key in obj.metadata.get("annotations") or {}:
            if key in POD_ONLY:
                out.append(Violation(obj, f"annotation {key} is on the {obj.kind}, where Istio ignores it "
                                          "(IST0107)", "move it to spec.template.metadata.annotations"))
        for key, value in (template.get("annotations") or {}).items():
            if not str(key).split("/")[0].endswith("istio.io"):
                continue
            if key not in POD_ANNOTATIONS:
                out.append(Violation(obj, f"pod annotation {key} is not one Istio knows (IST0108)",
                                     "fix the name (see Istio's annotation reference)"))
            elif key == "proxy.istio.io/config":
                try:
                    parsed = json.loads(value) if str(value).lstrip().startswith("{") else yaml.safe_load(value)
                except (ValueError, yaml.YAMLError) as exc:
                    parsed = exc
                if not isinstance(parsed, dict):
                    out.append(Violation(obj, f"proxy.istio.io/config is not a ProxyConfig mapping: {value!r} "
                                              "(IST0125)", "give a JSON or YAML mapping"))
            elif key in (INJECT, "sidecar.istio.io/nativeSidecar", "sidecar.istio.io/rewriteAppHTTPProbers") \
                    and str(value).lower() not in ("true", "false"):
                out.append(Violation(obj, f"{key} is {value!r}, not \"true\" or \"false\" (IST0125)",
                                     'use "true" or "false"'))
    return out


def check_ist0130_reachable_routes(render: Render) -> list[Violation]:
    """IST0130 (unreachable rule) and IST0131 (ineffective match): a route
    after a catch-all, or with a match an earlier route already takes, never
    gets traffic. Header routes for testers must come before the weighted one."""
    out = []
    for vs in _of(render, "VirtualService"):
        seen: list[str] = []
        catch_all = None
        for index, route in enumerate((vs.doc.get("spec") or {}).get("http") or []):
            label = route.get("name") or f"http[{index}]"
            if catch_all is not None:
                out.append(Violation(vs, f"route {label} comes after the catch-all route {catch_all}, so it is "
                                         "never used (IST0130)", "move it before the route without a match"))
                continue
            matches = route.get("match") or []
            if not matches:
                catch_all = label
                continue
            for match in matches:
                key = json.dumps({k: v for k, v in match.items() if k != "name"}, sort_keys=True)
                if key in seen:
                    out.append(Violation(vs, f"route {label} repeats a match an earlier route takes (IST0131)",
                                         "remove the duplicate match"))
                seen.append(key)
    return out


def test_ist0102_namespace_injection(render, config):
    assert_no_violations(check_ist0102_namespace_injection(render, config))


def test_ist0101_references(render):
    assert_no_violations(check_ist0101_references(render))


def test_ist0132_gateway_serves_host(render):
    assert_no_violations(check_ist0132_gateway_serves_host(render))


def test_ist0118_service_port_protocol(render):
    assert_no_violations(check_ist0118_service_port_protocol(render))


def test_ist0127_selectors_select_pods(render):
    assert_no_violations(check_ist0127_selectors_select_pods(render))


def test_destinationrule_tls_matches_mtls(render):
    assert_no_violations(check_destinationrule_tls_matches_mtls(render))


def test_ist0002_deprecated_istio_api(render):
    assert_no_violations(check_ist0002_deprecated_istio_api(render))


def test_ist0108_istio_annotations(render):
    assert_no_violations(check_ist0108_istio_annotations(render))


def test_ist0130_reachable_routes(render):
    assert_no_violations(check_ist0130_reachable_routes(render))

