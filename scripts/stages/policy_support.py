"""What the policy tests in tests/policy share: the platform config, pod
walking helpers, Kubernetes quantity parsing, and the violation type that
carries each offending object back into `validate`'s report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from scripts.core.errors import InputError
from scripts.core.model import Render, Resource
from scripts.core.yamlio import load_file
from scripts.stages.egress_settings import EgressSettings, parse_egress
from scripts.stages.imageautomation import ImageAutomationSettings
from scripts.stages.monitoring_settings import MonitoringSettings, parse_monitoring

# The clusters' Kubernetes minor when config/policy.yaml does not say.
DEFAULT_KUBERNETES_VERSION = "1.34"
CONFIG_FILE = "config/policy.yaml"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


@dataclass(frozen=True)
class Violation:
    """One object breaking one rule: what is wrong and how to fix it."""

    obj: Resource
    problem: str
    fix: str
    detail: str = ""  # e.g. "container server"

    def line(self) -> str:
        where = f" {self.detail}" if self.detail else ""
        return f"{self.obj.ref}{where}: {self.problem}; fix: {self.fix}"


class PolicyFailure(AssertionError):
    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__("\n".join(v.line() for v in violations))


def assert_no_violations(violations: list[Violation]) -> None:
    """Fail with every offending object named, one per line."""
    if violations:
        raise PolicyFailure(violations)


@dataclass
class PolicyConfig:
    # Allowed image registries (prefixes); None when the repository has no
    # config/policy.yaml: the defaults then allow any registry.
    registries: list[str] | None
    environments: dict[str, dict[str, Any]]
    ha_min_replicas: int = 3
    gpu_resource: str = "nvidia.com/gpu"
    gpu_taint_key: str = "nvidia.com/gpu"
    gpu_node_label: str = "nvidia.com/gpu.present"
    deprecated_apis: dict[str, dict[str, str]] = field(default_factory=dict)
    require_digest: bool = True
    cluster: dict[str, Any] = field(default_factory=dict)  # what every cluster provides (istio_cni, ...)
    open_ports: dict[str, str] = field(default_factory=dict)  # port -> why any caller may reach it
    egress_wildcards: list[str] = field(default_factory=list)  # ServiceEntry hosts allowed to be wildcards
    model_load_seconds: int = 300
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION  # what the clusters run
    # The model path (egress:) and the monitoring graph (monitoring:); None when not configured.
    egress: EgressSettings | None = None
    monitoring: MonitoringSettings | None = None
    # Flux image automation: its cluster, the slot it moves, each environment's tags.
    image_automation: ImageAutomationSettings = field(default_factory=ImageAutomationSettings)

    def env(self, render: Render) -> dict[str, Any]:
        name = environment_of(render)
        return self.environments.get(name, {}) if name else {}

    @classmethod
    def load(cls, repo: Path) -> PolicyConfig:
        if not (repo / CONFIG_FILE).is_file():
            # The documented defaults for a repository without this project's
            # config: no registry allow-list and no environment rules (ha,
            # strict_mtls, gpu); every other rule as the file's defaults say.
            return cls(registries=None, environments={})
        data = load_file(repo / CONFIG_FILE, CONFIG_FILE)
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise InputError("expected a mapping", CONFIG_FILE)
        registries = _typed(data, "registries", list, [], "a list of registry prefixes")
        if not all(isinstance(r, str) and r.strip() for r in registries):
            # A string here would be iterated letter by letter and let almost any image pass.
            raise InputError("`registries` must be a list of non-empty strings (registry prefixes)", CONFIG_FILE)
        environments = _typed(data, "environments", dict, {}, "a mapping of environment name to settings")
        for name, settings in environments.items():
            if not isinstance(settings, dict) and settings is not None:
                raise InputError(f"`environments.{name}` must be a mapping of settings, found "
                                 f"{type(settings).__name__}", CONFIG_FILE)
            for key, value in (settings or {}).items():
                if key in ("ha", "strict_mtls", "gpu") and not isinstance(value, bool):
                    raise InputError(f"`environments.{name}.{key}` must be true or false, found {value!r}",
                                     CONFIG_FILE)
            _check_scheduling_settings(name, settings or {})
        environments = {name: dict(settings or {}) for name, settings in environments.items()}
        ha_min = data.get("ha_min_replicas", 3)
        if isinstance(ha_min, bool) or not isinstance(ha_min, int) or ha_min < 1:
            raise InputError(f"`ha_min_replicas` must be a whole number of at least 1, found {ha_min!r}", CONFIG_FILE)
        gpu = _typed(data, "gpu", dict, {}, "a mapping")
        for key in ("resource", "taint_key", "node_label"):
            if key in gpu and not isinstance(gpu[key], str):
                raise InputError(f"`gpu.{key}` must be a string", CONFIG_FILE)
        deprecated = _typed(data, "deprecated_apis", dict, {}, "a mapping of apiVersion to {removed_in, use}")
        if not all(isinstance(v, dict) for v in deprecated.values()):
            raise InputError("`deprecated_apis` entries must be mappings with removed_in and use", CONFIG_FILE)
        images = _typed(data, "images", dict, {}, "a mapping")
        require_digest = images.get("require_digest", True)
        if not isinstance(require_digest, bool):
            raise InputError("`images.require_digest` must be true or false", CONFIG_FILE)
        cluster = _typed(data, "cluster", dict, {}, "a mapping of cluster prerequisites")
        mesh = _typed(data, "mesh", dict, {}, "a mapping")
        open_ports = mesh.get("open_ports") or {}
        if not isinstance(open_ports, dict) or not all(str(v).strip() for v in open_ports.values()):
            raise InputError("`mesh.open_ports` must map a port to the reason any caller may reach it", CONFIG_FILE)
        wildcards = mesh.get("egress_wildcards") or []
        if not isinstance(wildcards, list) or not all(isinstance(w, str) for w in wildcards):
            raise InputError("`mesh.egress_wildcards` must be a list of hosts", CONFIG_FILE)
        load = data.get("model_load_seconds", 300)
        if isinstance(load, bool) or not isinstance(load, int) or load < 0:
            raise InputError(f"`model_load_seconds` must be a whole number of seconds, found {load!r}", CONFIG_FILE)
        version = str(cluster.get("kubernetes_version") or DEFAULT_KUBERNETES_VERSION)
        if not re.fullmatch(r"\d+\.\d+", version):
            raise InputError(f"`cluster.kubernetes_version` must be MAJOR.MINOR, e.g. \"1.34\", found {version!r}",
                             CONFIG_FILE)
        provides = cluster.get("provides") or []
        if not isinstance(provides, list) or not all(isinstance(p, dict) and p.get("reason") for p in provides):
            raise InputError("`cluster.provides` must be a list of {kind, name, reason}", CONFIG_FILE)
        # The model path and the monitoring graph, each parsed by its own module.
        path_settings = {"egress": parse_egress(data.get("egress")),
                         "monitoring": parse_monitoring(data.get("monitoring"))}
        image_automation = ImageAutomationSettings.load(data.get("image_automation"), environments, CONFIG_FILE)
        return cls(
            **path_settings,
            image_automation=image_automation,
            egress_wildcards=list(wildcards), model_load_seconds=load,
            require_digest=require_digest, cluster=dict(cluster), kubernetes_version=version,
            open_ports={str(k): str(v) for k, v in open_ports.items()},
            registries=list(registries),
            environments=environments,
            ha_min_replicas=ha_min,
            gpu_resource=gpu.get("resource", "nvidia.com/gpu"),
            gpu_taint_key=gpu.get("taint_key", "nvidia.com/gpu"),
            gpu_node_label=gpu.get("node_label", "nvidia.com/gpu.present"),
            deprecated_apis=dict(deprecated),
        )


# Per-environment settings of the scheduling and isolation rules
# (tests/policy/test_scheduling.py, networkpolicy_isolates_pods).
NETWORK_DIRECTIONS = ("Ingress", "Egress")


def _check_scheduling_settings(name: str, settings: dict[str, Any]) -> None:
    where = f"`environments.{name}"
    classes = settings.get("priority_classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) and c.strip() for c in classes):
        raise InputError(f"{where}.priority_classes` must be a list of PriorityClass names, found {classes!r}",
                         CONFIG_FILE)
    if not isinstance(settings.get("guaranteed_qos", False), bool):
        raise InputError(f"{where}.guaranteed_qos` must be true or false, found {settings['guaranteed_qos']!r}",
                         CONFIG_FILE)
    directions = settings.get("network_isolation", list(NETWORK_DIRECTIONS))
    if not isinstance(directions, list) or not set(directions) <= set(NETWORK_DIRECTIONS):
        raise InputError(f"{where}.network_isolation` must be a list of Ingress and/or Egress, found "
                         f"{directions!r}", CONFIG_FILE)


def _typed(data: dict, key: str, kind: type, default: Any, what: str) -> Any:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise InputError(f"`{key}` must be {what}, found {type(value).__name__} {value!r}"[:200], CONFIG_FILE)
    return value


def environment_of(render: Render) -> str | None:
    """The environment a target deploys: the name of its overlay directory
    (`.../overlays/<env>`); Flux builds carry the overlay they build."""
    directory = Path(render.target.directory)
    if directory.parent.name == "overlays":
        return directory.name
    return None


def pod_spec(obj: Resource) -> dict[str, Any] | None:
    # Called for every object by nearly every rule: the kind is read once,
    # and most objects (not workloads) leave at the first test.
    kind = obj.kind
    if kind not in WORKLOAD_KINDS:
        return None
    spec = obj.doc.get("spec")
    if not isinstance(spec, dict):
        return None
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    template = spec.get("template")
    if isinstance(template, dict):
        inner = template.get("spec")
        return inner if isinstance(inner, dict) else None
    return None


def pod_template_labels(obj: Resource) -> dict[str, str]:
    if obj.kind == "Pod":
        return obj.labels
    spec = obj.doc.get("spec") or {}
    if obj.kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}


def workloads(render: Render) -> Iterator[tuple[Resource, dict[str, Any]]]:
    for obj in render.objects:
        spec = pod_spec(obj)
        if spec is not None:
            yield obj, spec


def containers(spec: dict[str, Any], init: bool = True,
               ephemeral: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, container) for every container, init and ephemeral included.
    `ephemeral=False` leaves out the ephemeral (debug) containers, which the
    API server allows no resources or ports."""
    keys = ("initContainers", "containers", "ephemeralContainers") if init else ("containers",)
    if not ephemeral:
        keys = tuple(k for k in keys if k != "ephemeralContainers")
    for key in keys:
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                prefix = "init container" if key == "initContainers" else "container"
                yield f"{prefix} {container.get('name')}", container


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels."""
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def plain_selector_matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """A map selector (Service, Istio) against labels; empty selects nothing here."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX = {None: 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
           "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity as a number, or None if it does not parse."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if not match or match.group(1) in (".", "+", "-"):
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    suffix = match.group(2)
    if suffix and suffix[0] in "eE":
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * Decimal(_SUFFIX[suffix])
