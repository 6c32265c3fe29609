"""config/policy.yaml `egress:`: how the endpoints a pod needs outside the
cluster are formed (the model store, the cloud's identity service), and what
the cluster admits where a manifest says nothing (mesh defaults, cluster DNS).

Read by the egress rules of tests/policy/test_egress.py. Every wrong-typed
key is one InputError line naming config/policy.yaml.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from scripts.core.errors import InputError

CONFIG_FILE = "config/policy.yaml"
PROTOCOLS = ("TCP", "UDP", "SCTP")
# What a client speaks to an endpoint, as far as the mesh cares.
ENDPOINT_PROTOCOLS = ("TLS", "HTTP", "TCP")
_PORT_SPEC = re.compile(r"^(TCP|UDP|SCTP)/(\d{1,5})$")


@dataclass(frozen=True)
class ModelStore:
    """The bucket a model-loading container reads, and how its host is formed."""

    configmaps: tuple[str, ...]  # the generators' names (one per service); the render adds a hash suffix
    bucket_key: str
    cloud: str
    host: str  # a template with {bucket} and {region}
    path_style_host: str | None  # used when the bucket name has dots (no virtual host over TLS)
    port: int


@dataclass(frozen=True)
class CloudIdentity:
    """How a container's cloud CLI finds its region and its credentials."""

    region_env: tuple[str, ...]  # in the order the CLI prefers them
    region_variable: str | None  # the Flux variable holding the cluster's region (what the webhook injects)
    irsa_annotation: str  # ServiceAccount annotation that gives the pod a web identity
    sts_host: str  # regional STS, a template with {region}
    sts_global_host: str  # AWS_STS_REGIONAL_ENDPOINTS=legacy, for a client that honours it
    honour_legacy_sts: bool  # does the containers' client read AWS_STS_REGIONAL_ENDPOINTS at all?
    fallback_address: str | None  # where credentials come from without IRSA (IMDS); None: not derived
    fallback_port: int
    fallback_what: str


@dataclass(frozen=True)
class DeclaredEndpoint:
    """An endpoint config declares, with the reason pods need it."""

    host: str
    port: int
    protocol: str
    reason: str
    pod_labels: dict[str, str] = field(default_factory=dict)  # empty: every pod that needs the model store


@dataclass(frozen=True)
class PeerPods:
    """Pods in the cluster that every pod on the model path must reach (the
    cluster DNS; istiod for a pod with a proxy), as a NetworkPolicy selects
    them, with their named ports, every one of which must be admitted."""

    namespace_labels: dict[str, str]
    pod_labels: dict[str, str]
    ports: dict[str, tuple[str, int]]  # name -> (protocol, number)
    what: str


@dataclass(frozen=True)
class MeshDefaults:
    """Istio's mesh-wide settings where a Sidecar or ServiceEntry is silent."""

    outbound_traffic_policy: str = "ALLOW_ANY"
    export_to: tuple[str, ...] = ("*",)
    native_sidecars: bool = True


@dataclass(frozen=True)
class EgressSettings:
    model_store: ModelStore | None
    identity: CloudIdentity | None
    extra: tuple[DeclaredEndpoint, ...]
    dns: PeerPods | None
    control_plane: PeerPods | None
    mesh: MeshDefaults


def _fail(message: str) -> InputError:
    return InputError(message[:300], CONFIG_FILE)


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"`{where}` must be a mapping, found {type(value).__name__}")
    return value


def _string(data: dict, key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"`{where}.{key}` must be a non-empty string, found {value!r}")
    return value


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _fail(f"`{where}` must be a port number (1-65535), found {value!r}")
    return value


def _labels(value: Any, where: str) -> dict[str, str]:
    labels = _mapping(value, where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise _fail(f"`{where}` must map label names to string values")
    return dict(labels)


def _names(value: Any, where: str) -> tuple[str, ...]:
    """A name, or a list of names (a repository with several services)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise _fail(f"`{where}` must be a ConfigMap name or a list of them, found {value!r}")
    return tuple(names)


def _flag(data: dict, key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _fail(f"`{where}.{key}` must be true or false, found {value!r}")
    return value


def _template(value: str, where: str, allowed: set[str]) -> str:
    used = set(re.findall(r"\{(\w*)\}", value))
    if used - allowed:
        raise _fail(f"`{where}` uses {{{sorted(used - allowed)[0]}}}; only {sorted(allowed)} are known")
    return value


def _model_store(data: Any) -> ModelStore | None:
    if data is None:
        return None
    data = _mapping(data, "egress.model_store")
    where = "egress.model_store"
    path_style = data.get("path_style_host")
    if path_style is not None and not isinstance(path_style, str):
        raise _fail(f"`{where}.path_style_host` must be a string")
    return ModelStore(
        configmaps=_names(data.get("configmap"), f"{where}.configmap"), bucket_key=_string(data, "bucket_key", where),
        cloud=_string(data, "cloud", where),
        host=_template(_string(data, "host", where), f"{where}.host", {"bucket", "region"}),
        path_style_host=_template(path_style, f"{where}.path_style_host", {"bucket", "region"}) if path_style else None,
        port=_port(data.get("port", 443), f"{where}.port"))


def _identity(data: Any) -> CloudIdentity | None:
    if data is None:
        return None
    where = "egress.identity"
    data = _mapping(data, where)
    region_env = data.get("region_env") or []
    if not isinstance(region_env, list) or not region_env or not all(isinstance(e, str) for e in region_env):
        raise _fail(f"`{where}.region_env` must be a non-empty list of environment variable names")
    fallback = data.get("without_irsa")
    address, port, what = None, 80, ""
    if fallback is not None:
        fallback = _mapping(fallback, f"{where}.without_irsa")
        address = _string(fallback, "address", f"{where}.without_irsa")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise _fail(f"`{where}.without_irsa.address` must be an IP address, found {address!r}") from None
        port = _port(fallback.get("port", 80), f"{where}.without_irsa.port")
        what = _string(fallback, "what", f"{where}.without_irsa")
    variable = data.get("region_variable")
    if variable is not None and (not isinstance(variable, str) or not re.fullmatch(r"[_a-zA-Z]\w*", variable)):
        raise _fail(f"`{where}.region_variable` must be a Flux variable name, found {variable!r}")
    return CloudIdentity(
        region_env=tuple(region_env), region_variable=variable, irsa_annotation=_string(data, "irsa_annotation", where),
        sts_host=_template(_string(data, "sts_host", where), f"{where}.sts_host", {"region"}),
        sts_global_host=_string(data, "sts_global_host", where),
        honour_legacy_sts=_flag(data, "honour_legacy_sts", where),
        fallback_address=address, fallback_port=port, fallback_what=what)


def _extra(data: Any) -> tuple[DeclaredEndpoint, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise _fail("`egress.extra` must be a list of {host, port, protocol, reason}")
    out = []
    for index, entry in enumerate(data):
        where = f"egress.extra[{index}]"
        entry = _mapping(entry, where)
        protocol = str(entry.get("protocol", "TLS"))
        if protocol not in ENDPOINT_PROTOCOLS:
            raise _fail(f"`{where}.protocol` must be one of {list(ENDPOINT_PROTOCOLS)}, found {protocol!r}")
        out.append(DeclaredEndpoint(
            host=_template(_string(entry, "host", where), f"{where}.host", {"region"}),
            port=_port(entry.get("port"), f"{where}.port"), protocol=protocol,
            reason=_string(entry, "reason", where), pod_labels=_labels(entry.get("pod_labels"), f"{where}.pod_labels")))
    return tuple(out)


def _peers(data: Any, where: str, what: str) -> PeerPods | None:
    if data is None:
        return None
    data = _mapping(data, where)
    ports: dict[str, tuple[str, int]] = {}
    for name, spec in _mapping(data.get("ports"), f"{where}.ports").items():
        match = _PORT_SPEC.match(str(spec))
        if not match:
            raise _fail(f"`{where}.ports.{name}` must be PROTOCOL/NUMBER such as UDP/53, found {spec!r}")
        ports[str(name)] = (match.group(1), _port(int(match.group(2)), f"{where}.ports.{name}"))
    namespace_labels = _labels(data.get("namespace_labels"), f"{where}.namespace_labels")
    pod_labels = _labels(data.get("pod_labels"), f"{where}.pod_labels")
    if not namespace_labels or not pod_labels or not ports:
        raise _fail(f"`{where}` needs namespace_labels, pod_labels and ports (how NetworkPolicies select the pods)")
    return PeerPods(namespace_labels=namespace_labels, pod_labels=pod_labels, ports=ports, what=what)


def _mesh(data: Any) -> MeshDefaults:
    where = "egress.mesh_defaults"
    data = _mapping(data, where)
    policy = data.get("outbound_traffic_policy", "ALLOW_ANY")
    if policy not in ("ALLOW_ANY", "REGISTRY_ONLY"):
        raise _fail(f"`{where}.outbound_traffic_policy` must be ALLOW_ANY or REGISTRY_ONLY, found {policy!r}")
    export_to = data.get("export_to", ["*"])
    if not isinstance(export_to, list) or not all(isinstance(e, str) for e in export_to):
        raise _fail(f"`{where}.export_to` must be a list of namespaces (\"*\", \".\", names)")
    native = data.get("native_sidecars", True)
    if not isinstance(native, bool):
        raise _fail(f"`{where}.native_sidecars` must be true or false, found {native!r}")
    return MeshDefaults(outbound_traffic_policy=policy, export_to=tuple(export_to), native_sidecars=native)


def parse_egress(data: Any) -> EgressSettings | None:
    """The `egress:` block, or None when config/policy.yaml has none (the
    egress rules then derive nothing)."""
    if data is None:
        return None
    data = _mapping(data, "egress")
    return EgressSettings(model_store=_model_store(data.get("model_store")), identity=_identity(data.get("identity")),
                          extra=_extra(data.get("extra")),
                          dns=_peers(data.get("dns"), "egress.dns", "the cluster DNS"),
                          control_plane=_peers(data.get("control_plane"), "egress.control_plane", "istiod"),
                          mesh=_mesh(data.get("mesh_defaults")))
