"""networking.k8s.io/v1: NetworkPolicy, Ingress, IngressClass (Kubernetes'
pkg/apis/networking/validation)."""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import batch, formats, meta
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
BAD_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
BAD_PATH_ENDINGS = ("/..", "/.")
SCOPES = ("Cluster", "Namespace")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
MAX_CONTROLLER = 250
CIDR_FORMAT = "must be a valid CIDR value (e.g. 10.9.8.0/24 or 2001:db8::/64)"

# ---- NetworkPolicy ----------------------------------------------------------------


def _port(port: Any, path: FieldPath, errs: Errors) -> None:
    port = as_dict(port)
    protocol = port.get("protocol")
    if isinstance(protocol, str) and protocol not in PROTOCOLS:
        errs.not_supported("api-netpol-port-protocol", path.child("protocol"), protocol, PROTOCOLS)
    number, end = port.get("port"), port.get("endPort")
    if formats.is_int(number):
        errs.each("api-netpol-port", path.child("port"), number, formats.port_number_problems(number))
        if formats.is_int(end):
            if end < number:
                # The API server shows the port, not endPort, as the value.
                errs.invalid("api-netpol-end-port", path.child("endPort"), number,
                             f"must be greater than or equal to `port` ({number})")
            errs.each("api-netpol-end-port", path.child("endPort"), end, formats.port_number_problems(end))
    elif isinstance(number, str):
        if formats.is_int(end):
            errs.invalid("api-netpol-end-port-needs-number", path.child("endPort"), end,
                         "may not be set when `port` is a name: a range needs a numeric port")
        errs.each("api-netpol-port", path.child("port"), number, formats.port_name_problems(number))
    elif number is None and formats.is_int(end):
        errs.invalid("api-netpol-end-port-needs-number", path.child("endPort"), end,
                     "may not be set without `port`")


def _ip_block(block: Any, path: FieldPath, errs: Errors) -> None:
    block = as_dict(block)
    cidr = block.get("cidr")
    if cidr == "":
        errs.required("api-netpol-ipblock-cidr", path.child("cidr"), "")
        return
    if not isinstance(cidr, str):
        return
    network = formats.parse_cidr(cidr)
    if network is None:
        errs.invalid("api-netpol-ipblock-cidr", path.child("cidr"), cidr, CIDR_FORMAT)
        return
    for index, text in enumerate(as_list(block.get("except"))):
        if not isinstance(text, str):
            continue
        at = path.child("except").index(index)
        excluded = formats.parse_cidr(text)
        if excluded is None:
            errs.invalid("api-netpol-ipblock-except", at, text, CIDR_FORMAT)
            continue
        inside = excluded.version == network.version and excluded.network_address in network
        if not inside or network.prefixlen >= excluded.prefixlen:
            errs.invalid("api-netpol-ipblock-except-subset", at, text,
                         f"must be a strict subset of `cidr` ({cidr})")


def _peer(peer: Any, path: FieldPath, errs: Errors) -> None:
    peer = as_dict(peer)
    count = 0
    for name in ("podSelector", "namespaceSelector"):
        if peer.get(name) is not None:
            count += 1
            meta.validate_label_selector(peer.get(name), path.child(name), errs)
    if peer.get("ipBlock") is not None:
        count += 1
        _ip_block(peer.get("ipBlock"), path.child("ipBlock"), errs)
    if count == 0:
        errs.required("api-netpol-peer", path, "a peer needs podSelector, namespaceSelector or ipBlock")
    elif count > 1 and peer.get("ipBlock") is not None:
        errs.forbidden("api-netpol-peer-ipblock", path,
                       "an ipBlock peer may not also set podSelector or namespaceSelector: make them two peers")


def validate_network_policy(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    meta.validate_label_selector(spec.get("podSelector"), path.child("podSelector"), errs)
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for index, rule in enumerate(as_list(spec.get(direction))):
            rule = as_dict(rule)
            at = path.child(direction).index(index)
            for position, port in enumerate(as_list(rule.get("ports"))):
                _port(port, at.child("ports").index(position), errs)
            for position, peer in enumerate(as_list(rule.get(peers))):
                _peer(peer, at.child(peers).index(position), errs)
    types = spec.get("policyTypes")
    if not isinstance(types, list):
        return
    if len(types) > len(POLICY_TYPES):
        errs.invalid("api-netpol-policy-types-count", path.child("policyTypes"), types,
                     "may not list more than two policyTypes")
        return
    for index, kind in enumerate(types):
        if isinstance(kind, str) and kind not in POLICY_TYPES:
            errs.not_supported("api-netpol-policy-types", path.child("policyTypes").index(index), kind, POLICY_TYPES)


# ---- Ingress ----------------------------------------------------------------------


def _host(check: str, path: FieldPath, host: str, errs: Errors) -> bool:
    """A rule's or TLS entry's host: a DNS subdomain, or '*.' and one. True
    for a wildcard."""
    if "*" in host:
        errs.each(check, path, host, formats.wildcard_subdomain_problems(host))
        return True
    errs.each(check, path, host, formats.dns_subdomain_problems(host))
    return False


def _typed_reference(ref: Any, path: FieldPath, check: str, errs: Errors) -> None:
    ref = as_dict(ref)
    group = ref.get("apiGroup")
    if isinstance(group, str):
        errs.each(check, path.child("apiGroup"), group, formats.dns_subdomain_problems(group))
    for name in ("kind", "name"):
        value = ref.get(name)
        if value == "":
            errs.required(check, path.child(name), f"{name} is required")
        elif isinstance(value, str):
            errs.each(check, path.child(name), value, formats.path_segment_name_problems(value))


def _backend(backend: Any, path: FieldPath, errs: Errors) -> None:
    backend = as_dict(backend)
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        errs.invalid("api-ingress-backend", path, "", "set a service or a resource backend, not both")
    elif resource is not None:
        _typed_reference(resource, path.child("resource"), "api-ingress-resource-backend", errs)
    elif service is not None:
        service = as_dict(service)
        name = service.get("name")
        if name == "":
            errs.required("api-ingress-service-name", path.child("service", "name"), "")
        elif isinstance(name, str):
            errs.each("api-ingress-service-name", path.child("service", "name"), name,
                      formats.name_is_dns1035_label(name))
        port = as_dict(service.get("port"))
        port_name, number = port.get("name"), port.get("number")
        has_name = isinstance(port_name, str) and port_name != ""
        has_number = formats.is_int(number) and number != 0
        if has_name and has_number:
            errs.invalid("api-ingress-service-port", path, "", "set the service port's name or number, not both")
        elif has_name:
            errs.each("api-ingress-service-port", path.child("service", "port", "name"), port_name,
                      formats.port_name_problems(port_name))
        elif has_number:
            errs.each("api-ingress-service-port", path.child("service", "port", "number"), number,
                      formats.port_number_problems(number))
        else:
            errs.required("api-ingress-service-port", path, "the service backend needs a port name or number")
    else:
        errs.invalid("api-ingress-backend", path, "", "set a service or a resource backend")


def _path(entry: Any, path: FieldPath, errs: Errors) -> None:
    entry = as_dict(entry)
    kind = entry.get("pathType")
    if not isinstance(kind, str):
        return  # a missing pathType is the JSON schema's finding
    value = entry.get("path")
    value = value if isinstance(value, str) else ""
    at = path.child("path")
    if kind in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.invalid("api-ingress-path-absolute", at, value, "must be an absolute path (start with '/')")
        for sequence in BAD_PATH_SEQUENCES:
            if sequence in value:
                errs.invalid("api-ingress-path-sequence", at, value, f"must not contain '{sequence}'")
        for ending in BAD_PATH_ENDINGS:
            if value.endswith(ending):
                errs.invalid("api-ingress-path-sequence", at, value, f"must not end with '{ending}'")
    elif kind == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.invalid("api-ingress-path-absolute", at, value, "must be an absolute path (start with '/')")
    else:
        errs.not_supported("api-ingress-path-type", path.child("pathType"), kind, PATH_TYPES)
    _backend(entry.get("backend"), path.child("backend"), errs)


def validate_ingress(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    metadata = doc.get("metadata")
    meta.validate_object_meta(metadata, ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    rules = as_list(spec.get("rules"))
    default = spec.get("defaultBackend")
    if not rules and default is None:
        errs.invalid("api-ingress-backend-or-rules", path, spec.get("rules"),
                     "set `defaultBackend` or `rules`")
    if default is not None:
        _backend(default, path.child("defaultBackend"), errs)
    for index, rule in enumerate(rules):
        rule = as_dict(rule)
        at = path.child("rules").index(index)
        host = rule.get("host")
        if isinstance(host, str) and host:
            if formats.parse_ip(host) is not None:
                errs.invalid("api-ingress-host-ip", at.child("host"), host, "must be a DNS name, not an IP address")
            _host("api-ingress-host", at.child("host"), host, errs)
        http = rule.get("http")
        if http is None:
            continue
        paths = as_dict(http).get("paths")
        if isinstance(paths, list) and not paths:
            errs.required("api-ingress-paths", at.child("http", "paths"), "list at least one path")
        for position, entry in enumerate(as_list(paths)):
            _path(entry, at.child("http", "paths").index(position), errs)
    for index, tls in enumerate(as_list(spec.get("tls"))):
        tls = as_dict(tls)
        at = path.child("tls").index(index)
        for position, host in enumerate(as_list(tls.get("hosts"))):
            if isinstance(host, str):
                _host("api-ingress-tls-host", at.child("hosts").index(position), host, errs)
        secret = tls.get("secretName")
        if isinstance(secret, str) and secret:
            errs.each("api-ingress-tls-secret-name", at.child("secretName"), secret,
                      formats.name_is_dns_subdomain(secret))
    class_name = spec.get("ingressClassName")
    if isinstance(class_name, str):
        errs.each("api-ingress-class-name", path.child("ingressClassName"), class_name,
                  formats.name_is_dns_subdomain(class_name))
        annotation = as_dict(as_dict(metadata).get("annotations")).get(CLASS_ANNOTATION)
        if isinstance(annotation, str) and annotation != class_name:
            errs.invalid("api-ingress-class-annotation", ROOT.child("annotations", CLASS_ANNOTATION), annotation,
                         f"must match `ingressClassName` ({class_name}) when both are set: drop the annotation")


# ---- IngressClass -----------------------------------------------------------------


def validate_ingress_class(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    controller = spec.get("controller")
    controller = "" if controller is None else controller
    if isinstance(controller, str):
        if len(controller) > MAX_CONTROLLER:
            errs.too_long("api-ingressclass-controller-length", path.child("controller"), MAX_CONTROLLER)
        if not controller:
            errs.required("api-ingressclass-controller", path.child("controller"),
                          "name the controller, e.g. 'example.com/ingress'")
        else:
            batch.domain_prefixed_path("api-ingressclass-controller", path.child("controller"), controller, errs)
    params = spec.get("parameters")
    if params is None:
        return
    params = as_dict(params)
    at = path.child("parameters")
    _typed_reference(params, at, "api-ingressclass-parameters", errs)
    scope = params.get("scope")
    scope = "Cluster" if scope is None else scope  # the default
    if not isinstance(scope, str):
        return
    namespace = params.get("namespace")
    if scope not in SCOPES:
        errs.not_supported("api-ingressclass-parameters-scope", at.child("scope"), scope, SCOPES)
    elif scope == "Namespace":
        if namespace is None:
            errs.required("api-ingressclass-parameters-scope", at.child("namespace"),
                          "`parameters.scope` is 'Namespace': name the namespace")
        elif isinstance(namespace, str):
            errs.each("api-ingressclass-parameters-scope", at.child("namespace"), namespace,
                      formats.name_is_dns_label(namespace))
    elif namespace is not None:
        errs.forbidden("api-ingressclass-parameters-scope", at.child("namespace"),
                       "`parameters.scope` is 'Cluster': a cluster-scoped resource has no namespace")


_NP = ("NetworkPolicy",)
_ING = ("Ingress",)
_IC = ("IngressClass",)
COVERAGE = (
    Row(_NP, "networking: ValidateNetworkPolicyPort", "a port's protocol is TCP, UDP or SCTP (TCP when unset)",
        "api-netpol-port-protocol"),
    Row(_NP, "networking: ValidateNetworkPolicyPort", "a numeric port is 1-65535; a named port is an IANA "
        "service name (15 characters)", "api-netpol-port"),
    Row(_NP, "networking: ValidateNetworkPolicyPort", "endPort is 1-65535 and at least port",
        "api-netpol-end-port"),
    Row(_NP, "networking: ValidateNetworkPolicyPort", "endPort needs a numeric port",
        "api-netpol-end-port-needs-number"),
    Row(_NP, "networking: ValidateNetworkPolicyPeer", "a peer sets podSelector, namespaceSelector or ipBlock",
        "api-netpol-peer"),
    Row(_NP, "networking: ValidateNetworkPolicyPeer", "an ipBlock peer sets no selector", "api-netpol-peer-ipblock"),
    Row(_NP, "networking: ValidateIPBlock (IsValidCIDRForLegacyField)", "ipBlock.cidr is set and a CIDR",
        "api-netpol-ipblock-cidr"),
    Row(_NP, "networking: ValidateIPBlock (IsValidCIDRForLegacyField)", "each except entry is a CIDR",
        "api-netpol-ipblock-except"),
    Row(_NP, "networking: ValidateIPBlock", "each except entry is a strict subset of cidr",
        "api-netpol-ipblock-except-subset"),
    Row(_NP, "core: IsValidCIDRForLegacyField (strict)", "CIDRs have no leading zeros, no IPv4-mapped IPv6 "
        "address and no bits set beyond the prefix", None, "behind StrictIPCIDRValidation, off by default at 1.34"),
    Row(_NP, "networking: ValidateNetworkPolicySpec", "policyTypes lists at most two types",
        "api-netpol-policy-types-count"),
    Row(_NP, "networking: ValidateNetworkPolicySpec", "each policyType is Ingress or Egress",
        "api-netpol-policy-types"),
    Row(_NP, "networking: ValidateNetworkPolicyUpdate", "the same rules on update", None, "update only"),
    Row(_ING, "networking: ValidateIngressSpec", "defaultBackend or rules is set", "api-ingress-backend-or-rules"),
    Row(_ING, "networking: validateIngressRules", "a rule's host is not an IP address", "api-ingress-host-ip"),
    Row(_ING, "networking: validateIngressRules", "a rule's host is a DNS subdomain, or '*.' and one",
        "api-ingress-host"),
    Row(_ING, "networking: validateHTTPIngressRuleValue", "an http rule lists at least one path", "api-ingress-paths"),
    Row(_ING, "networking: validateHTTPIngressPath", "pathType is set", None,
        "refused by the JSON schema (schema-invalid): pathType is required in networking.k8s.io/v1"),
    Row(_ING, "networking: validateHTTPIngressPath", "pathType is Exact, Prefix or ImplementationSpecific",
        "api-ingress-path-type"),
    Row(_ING, "networking: validateHTTPIngressPath", "an Exact or Prefix path, and a non-empty "
        "ImplementationSpecific one, starts with '/'", "api-ingress-path-absolute"),
    Row(_ING, "networking: validateHTTPIngressPath", "an Exact or Prefix path holds no '//', '/./', '/../', '%2f' "
        "and does not end in '/..' or '/.'", "api-ingress-path-sequence"),
    Row(_ING, "networking: validateIngressBackend", "a backend sets exactly one of service and resource",
        "api-ingress-backend"),
    Row(_ING, "networking: validateIngressBackend (ValidateServiceName)", "a service backend's name is set and an "
        "RFC 1035 label (a Service name)", "api-ingress-service-name"),
    Row(_ING, "networking: validateIngressBackend", "a service backend's port has a name (an IANA service name) "
        "or a number (1-65535), exactly one", "api-ingress-service-port"),
    Row(_ING, "networking: validateIngressTypedLocalObjectReference", "a resource backend's apiGroup is a DNS "
        "subdomain; kind and name are set and path segments", "api-ingress-resource-backend"),
    Row(_ING, "networking: validateIngressTLS", "each TLS host is a DNS subdomain, or '*.' and one",
        "api-ingress-tls-host"),
    Row(_ING, "networking: validateIngressTLS (ValidateSecretName)", "a TLS secretName, when set, is a DNS subdomain",
        "api-ingress-tls-secret-name"),
    Row(_ING, "networking: ValidateIngressSpec (ValidateIngressClassName)", "ingressClassName is a DNS subdomain",
        "api-ingress-class-name"),
    Row(_ING, "networking: ValidateIngressCreate", "the kubernetes.io/ingress.class annotation, when set with "
        "ingressClassName, equals it", "api-ingress-class-annotation"),
    Row(_ING, "networking: ValidateIngressUpdate", "invalid TLS secret names and wildcard-host rules already "
        "stored are kept", None, "update only"),
    Row(_ING, "networking: ValidateIngressStatusUpdate", "load-balancer status IPs and hostnames are valid", None,
        "status is written by controllers, not by manifests"),
    Row(_IC, "networking: validateIngressClassSpec", "controller has at most 250 characters",
        "api-ingressclass-controller-length"),
    Row(_IC, "networking: validateIngressClassSpec (IsDomainPrefixedPath)", "controller is set and "
        "'<DNS subdomain>/<path>'", "api-ingressclass-controller"),
    Row(_IC, "networking: validateIngressClassParametersReference", "parameters' apiGroup is a DNS subdomain; kind "
        "and name are set and path segments", "api-ingressclass-parameters"),
    Row(_IC, "networking: validateIngressClassParametersReference", "parameters.scope is Cluster (the default) or "
        "Namespace; Namespace needs a namespace (a DNS label), Cluster forbids one",
        "api-ingressclass-parameters-scope"),
    Row(_IC, "networking: validateIngressClassSpecUpdate", "controller is immutable", None, "update only"),
)
COVERAGE_TITLE = "networking.k8s.io/v1: NetworkPolicy, Ingress, IngressClass"
COVERAGE_INTRO = (
    "Read from a 1.33-or-later copy of kubernetes/kubernetes `pkg/apis/networking/validation/validation.go` (it "
    "checks CIDRs with IsValidCIDRForLegacyField, new in 1.33); StrictIPCIDRValidation is alpha at 1.34, so "
    "CIDRs are read the legacy way (leading zeros and host bits allowed). Defaulting "
    "(`pkg/apis/networking/v1/defaults.go`): a NetworkPolicy port's protocol TCP, policyTypes from the rules, "
    "an IngressClass's parameters.scope Cluster. podSelector and the peers' selectors are held to the label "
    "selector rows."
)
VALIDATORS = {
    ("networking.k8s.io/v1", "NetworkPolicy"): validate_network_policy,
    ("networking.k8s.io/v1", "Ingress"): validate_ingress,
    ("networking.k8s.io/v1", "IngressClass"): validate_ingress_class,
}
