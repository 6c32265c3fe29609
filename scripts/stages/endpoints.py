"""The endpoints outside the cluster that a pod's containers connect to,
derived from the manifests and config/policy.yaml `egress:`:

- the model store: a container that reads the bucket key of the model
  ConfigMap fetches from `model_store.host` formed with that bucket and the
  region its cloud CLI uses (`identity.region_env`, or `--region`); an
  endpoint URL the CLI is given (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
  `--endpoint-url`) replaces the formed host;
- its credentials: with IRSA (the ServiceAccount's annotation, which the pod
  identity webhook turns into AWS_ROLE_ARN and a token file in every
  container it does not skip) the CLI first calls STS
  (AssumeRoleWithWebIdentity) at `sts.<region>` (a client that honours
  AWS_STS_REGIONAL_ENDPOINTS=legacy, which the AWS CLI v2 does not, calls
  the global host then); static keys in the environment need nothing; with
  neither, the CLI asks `identity.without_irsa` (the node's instance
  metadata);
- whatever `egress.extra` declares, with its reason.

Values are read as the render has them. A Flux reference left in a plain
overlay render (`${cluster_region:=eu-west-1}`) reads as its default, which
is what a Flux build without the variable applies; each Flux build has the
value its cluster substitutes.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from scripts.core.model import Render, Resource
from scripts.stages.egress_settings import EgressSettings
from scripts.stages.policy_support import containers, pod_template_labels

# A Flux post-build reference: ${name}, with an optional default after := :- = or -.
_FLUX_REFERENCE = re.compile(r"^\$\{([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[=\-])([^}]*))?\}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
# S3 bucket naming rules (general purpose buckets).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_HASHED = r"-[a-z0-9]{10}"  # kustomize's generator suffix
SKIP_CONTAINERS = "eks.amazonaws.com/skip-containers"  # the webhook leaves these containers alone
# (host, port, protocol, why[, a better fix than opening the path])
Found = tuple


@dataclass(frozen=True)
class Needed:
    """One endpoint one container connects to."""

    host: str
    port: int
    protocol: str
    why: str
    container: str  # "init container model-fetcher"
    init: bool
    spec: dict = field(default_factory=dict, compare=False, hash=False)  # the container
    remedy: str = ""  # a better fix than opening the path, when there is one

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Unformed:
    """An endpoint the manifests do not let us (or the pod) form."""

    obj: Resource
    problem: str
    fix: str
    detail: str = ""


@dataclass(frozen=True)
class PodEndpoints:
    workload: Resource
    namespace: str | None
    labels: dict
    annotations: dict
    pod_spec: dict
    needed: tuple[Needed, ...]


def model_generator(name: str, generators: tuple[str, ...]) -> str | None:
    """The model ConfigMap generator a rendered ConfigMap name comes from, if
    any: the name itself, or the name without kustomize's hash suffix, the
    first in the settings' order. (A lookup, not a pattern per generator: a
    platform's settings list every service's generator, and every pod of
    every render asks.)"""
    order = _positions(generators)
    candidates = [name]
    if _HASH_SUFFIX.search(name):
        candidates.append(name[:-11])
    found = [c for c in candidates if c in order]
    return min(found, key=order.__getitem__) if found else None


_HASH_SUFFIX = re.compile(_HASHED + r"\Z")


@functools.lru_cache(maxsize=64)
def _positions(generators: tuple[str, ...]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for position, generator in enumerate(generators):
        positions.setdefault(generator, position)
    return positions


def _configmap(render: Render, namespace: str | None, name: str) -> Resource | None:
    return next((o for o in render.objects if o.kind == "ConfigMap" and o.name == name
                 and o.namespace == namespace), None)


def flux_value(value: str) -> tuple[str | None, str | None]:
    """(the value as applied, the variable it comes from): a Flux reference
    left unsubstituted reads as its default, None when it has none."""
    match = _FLUX_REFERENCE.match(value)
    if not match:
        return value, None
    return (match.group(3) if match.group(2) else None), match.group(1)


def flux_variables(render: Render) -> dict[str, tuple[str, str]]:
    """A Flux build's post-build variables: name -> (value, where it is set)."""
    flux = render.target.flux
    if flux is None:
        return {}
    post = (flux.kustomization.get("spec") or {}).get("postBuild") or {}
    found: dict[str, tuple[str, str]] = {}
    for ref in post.get("substituteFrom") or []:
        for source in flux.inputs:
            meta = source.get("metadata") or {}
            if source.get("kind") == ref.get("kind") == "ConfigMap" and meta.get("name") == ref.get("name"):
                for key, value in (source.get("data") or {}).items():
                    found[str(key)] = (str(value), f"ConfigMap {meta.get('namespace')}/{meta.get('name')}")
    name = (flux.kustomization.get("metadata") or {}).get("name")
    for key, value in (post.get("substitute") or {}).items():
        found[str(key)] = (str(value), f"Flux Kustomization {name}")
    return found


def region_origin(render: Render, region: str) -> str:
    """Where a Flux build's region came from, as words (empty for a plain render)."""
    for key, (value, where) in flux_variables(render).items():
        if value == region:
            return f" ({key} of {where})"
    return ""


def _env_value(render: Render, namespace: str | None, container: dict, name: str) -> tuple[bool, str | None]:
    """(is it set, its value when known) for one environment variable."""
    for entry in container.get("env") or []:
        if not isinstance(entry, dict) or entry.get("name") != name:
            continue
        if "value" in entry:
            return True, flux_value(str(entry.get("value") or ""))[0]
        ref = (entry.get("valueFrom") or {}).get("configMapKeyRef") or {}
        found = _configmap(render, namespace, str(ref.get("name"))) if ref else None
        return True, str((found.doc.get("data") or {}).get(ref.get("key"))) if found else None
    for source in container.get("envFrom") or []:
        ref = (source or {}).get("configMapRef") or {}
        found = _configmap(render, namespace, str(ref.get("name"))) if ref else None
        prefix = str((source or {}).get("prefix") or "")
        if found and name.startswith(prefix) and name[len(prefix):] in (found.doc.get("data") or {}):
            return True, str(found.doc["data"][name[len(prefix):]])
    return False, None


def _argument(container: dict, flag: str) -> str | None:
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    for index, word in enumerate(words):
        if word == flag and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def _url_endpoint(url: str) -> tuple[str, int, str] | None:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if not parts.hostname:
        return None
    secure = parts.scheme != "http"
    return parts.hostname, parts.port or (443 if secure else 80), "TLS" if secure else "HTTP"


def _model_refs(container: dict, generators: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """(ConfigMap name, key) for each read of a model ConfigMap; key None for envFrom (every key)."""
    refs: list[tuple[str, str | None]] = []
    for entry in container.get("env") or []:
        ref = ((entry or {}).get("valueFrom") or {}).get("configMapKeyRef") or {}
        if ref and model_generator(str(ref.get("name")), generators):
            refs.append((str(ref.get("name")), str(ref.get("key"))))
    for source in container.get("envFrom") or []:
        ref = (source or {}).get("configMapRef") or {}
        if ref and model_generator(str(ref.get("name")), generators):
            refs.append((str(ref.get("name")), None))
    return refs


def _template_annotations(workload: Resource) -> dict:
    if workload.kind == "Pod":
        return workload.metadata.get("annotations") or {}
    spec = workload.doc.get("spec") or {}
    if workload.kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return (((spec.get("template") or {}).get("metadata") or {}).get("annotations")) or {}


class _Deriver:
    """Endpoints of one render's pods; problems collected as they are found."""

    def __init__(self, render: Render, settings: EgressSettings):
        self.render = render
        self.settings = settings
        self.problems: list[Unformed] = []

    def region(self, workload: Resource, namespace: str | None, container: dict, label: str) -> str | None:
        identity = self.settings.identity
        flag = _argument(container, "--region")
        if flag:
            value, variable, source = flag, None, "--region"
        else:
            value, variable, source = None, None, None
            for name in identity.region_env if identity else ():
                present, known = _env_value(self.render, namespace, container, name)
                if present:
                    raw = next((str(e.get("value")) for e in container.get("env") or []
                                if isinstance(e, dict) and e.get("name") == name and "value" in e), "")
                    value, variable, source = known, flux_value(raw)[1], name
                    break
        if source is None and identity is not None and identity.region_variable:
            # The pod identity webhook injects the cluster's region where the
            # container sets none: on a Flux build, the cluster's variable.
            value, where = flux_variables(self.render).get(identity.region_variable, (None, ""))
            source = f"the cluster's region ({identity.region_variable} of {where})" if value else None
        if source is None:
            names = " or ".join(identity.region_env) if identity else "AWS_REGION"
            self.problems.append(Unformed(workload, f"sets no {names}: which regional endpoints the CLI calls "
                                                    "is decided outside the manifests (the pod identity webhook, "
                                                    "or the instance metadata)",
                                          "set env AWS_REGION from the cluster's region "
                                          "(value: ${cluster_region:=<region>})", label))
            return None
        if value is None or not _REGION.match(value):
            shown = f"${{{variable}}} with no default" if value is None and variable else repr(value)
            self.problems.append(Unformed(workload, f"{source} is {shown}, which is not an AWS region: the CLI "
                                                    "cannot form its endpoints",
                                          "set it to the region the model bucket is in, e.g. "
                                          "${cluster_region:=eu-west-1}", label))
            return None
        return value

    def model_store(self, workload: Resource, namespace: str | None, container: dict, label: str,
                    region_of: Callable[[], str | None]) -> list[Found]:
        store = self.settings.model_store
        if store is None:
            return []
        refs = _model_refs(container, store.configmaps)
        bucket_from: tuple[Resource, str] | None = None
        for name, key in refs:
            generator = model_generator(name, store.configmaps)
            configmap = _configmap(self.render, namespace, name)
            if configmap is None:
                self.problems.append(Unformed(workload, f"reads the model ConfigMap {name}, which is not in this "
                                                        "render: the pod does not start and fetches no model",
                                              f"generate {generator} (with key {store.bucket_key}) in the "
                                              "overlay", label))
                continue
            data = configmap.doc.get("data") or {}
            if key is not None and key not in data:
                what = "the model bucket" if key == store.bucket_key else "a value"
                self.problems.append(Unformed(configmap, f"has no key {key!r}, which {label} of {workload.ref} "
                                                         f"reads as {what}: the pod does not start and fetches "
                                                         "no model",
                                              f"restore {key}=<value> in the configMapGenerator {generator}, "
                                              "or read a key it has"))
            elif (key or store.bucket_key) == store.bucket_key and store.bucket_key in data:
                bucket_from = (configmap, store.bucket_key)
        if bucket_from is None:
            return []
        configmap, key = bucket_from
        data = configmap.doc.get("data") or {}
        bucket = str(data[key]).strip()
        if not _BUCKET.match(bucket) or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
            self.problems.append(Unformed(configmap, f"key {key} is {bucket!r}, which is not an S3 bucket name",
                                          "use the bucket's name: 3-63 lowercase letters, digits, dots, hyphens"))
            return []
        override = (_argument(container, "--endpoint-url")
                    or _env_value(self.render, namespace, container, "AWS_ENDPOINT_URL_S3")[1]
                    or _env_value(self.render, namespace, container, "AWS_ENDPOINT_URL")[1])
        generator = model_generator(configmap.name, store.configmaps)
        why = f"the model store: bucket {bucket} from ConfigMap {generator} key {key}"
        if override:
            parsed = _url_endpoint(override)
            return [(parsed[0], parsed[1], parsed[2], f"{why}, at the endpoint URL the CLI is given")] if parsed else []
        region = region_of()
        if region is None:
            return []
        template = store.path_style_host if "." in bucket and store.path_style_host else store.host
        return [(template.format(bucket=bucket, region=region), store.port, "TLS",
                 f"{why}, region {region}{region_origin(self.render, region)}")]

    def credentials(self, namespace: str | None, pod: dict, annotations: dict, container: dict,
                    region_of: Callable[[], str | None]) -> list[Found]:
        identity = self.settings.identity
        if identity is None:
            return []
        env = {e.get("name") for e in container.get("env") or [] if isinstance(e, dict)}
        if "AWS_ACCESS_KEY_ID" in env:
            return []  # static keys: no identity service to call
        account = str(pod.get("serviceAccountName") or pod.get("serviceAccount") or "default")
        sa = next((o for o in self.render.objects if o.kind == "ServiceAccount" and o.name == account
                   and o.namespace == namespace), None)
        role = str(((sa.metadata.get("annotations") or {}) if sa else {}).get(identity.irsa_annotation) or "")
        skipped = container.get("name") in {c.strip() for c in str(annotations.get(SKIP_CONTAINERS, "")).split(",")}
        web_identity = {"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} <= env or (role and not skipped)
        if role and sa is not None and not _ROLE_ARN.match(role):
            self.problems.append(Unformed(sa, f"annotation {identity.irsa_annotation} is {role!r}, not an IAM "
                                              "role ARN: STS refuses the web identity",
                                          "set it to arn:aws:iam::<account>:role/<name>"))
        if web_identity:
            override = (_env_value(self.render, namespace, container, "AWS_ENDPOINT_URL_STS")[1]
                        or _env_value(self.render, namespace, container, "AWS_ENDPOINT_URL")[1])
            why = (f"IRSA: the CLI exchanges {account}'s web identity token at STS "
                   "(AssumeRoleWithWebIdentity) before any other call")
            if override:
                parsed = _url_endpoint(override)
                return [(parsed[0], parsed[1], parsed[2], why)] if parsed else []
            legacy = identity.honour_legacy_sts and \
                _env_value(self.render, namespace, container, "AWS_STS_REGIONAL_ENDPOINTS")[1] == "legacy"
            if legacy:
                return [(identity.sts_global_host, 443, "TLS", why + ", global endpoint (legacy)")]
            region = region_of()
            if region is None:
                return []
            return [(identity.sts_host.format(region=region), 443, "TLS",
                     f"{why}, regional endpoint {region}{region_origin(self.render, region)}")]
        if sa is None and account != "default":
            return []  # a ServiceAccount from elsewhere: its identity is not in the manifests
        if identity.fallback_address is None:
            return []
        reason = "is skipped by the pod identity webhook" if skipped else \
            f"has no {identity.irsa_annotation} annotation" if sa is not None else "is the default one"
        return [(identity.fallback_address, identity.fallback_port, "HTTP",
                 f"credentials: ServiceAccount {account} {reason}, so the CLI asks {identity.fallback_what}",
                 f"give ServiceAccount {account} a role ({identity.irsa_annotation}) instead of opening "
                 f"{identity.fallback_what} to the pods")]

    def pod(self, workload: Resource, pod: dict) -> PodEndpoints:
        namespace = workload.namespace
        annotations = _template_annotations(workload)
        labels = pod_template_labels(workload)
        needed: list[Needed] = []
        regions: list[str] = []
        for label, container in containers(pod):
            init = label.startswith("init container")
            region_of = functools.cache(functools.partial(self.region, workload, namespace, container, label))
            found = self.model_store(workload, namespace, container, label, region_of)
            if not found:
                continue
            found += self.credentials(namespace, pod, annotations, container, region_of)
            if region_of.cache_info().currsize and region_of():
                regions.append(str(region_of()))
            needed += [Needed(*entry[:4], label, init, container, *entry[4:]) for entry in found]
        for extra in self.settings.extra:
            if extra.pod_labels and not all(labels.get(k) == v for k, v in extra.pod_labels.items()):
                continue
            if "{region}" in extra.host and not regions:
                continue
            host = extra.host.format(region=regions[0] if regions else "")
            needed.append(Needed(host, extra.port, extra.protocol, f"declared in config/policy.yaml: {extra.reason}",
                                 "pod", False, {}))
        return PodEndpoints(workload, namespace, labels, annotations, pod, tuple(dict.fromkeys(needed)))


def derive(render: Render, settings: EgressSettings, workloads: list[tuple[Resource, dict]]
           ) -> tuple[list[PodEndpoints], list[Unformed]]:
    """Every workload's endpoints, and what stops one being formed."""
    deriver = _Deriver(render, settings)
    pods = [deriver.pod(workload, pod) for workload, pod in workloads]
    store = settings.model_store
    if store is not None:
        for configmap in (o for o in render.objects if o.kind == "ConfigMap"
                          and model_generator(o.name, store.configmaps)):
            if store.bucket_key not in (configmap.doc.get("data") or {}) and not any(
                    p.obj is configmap for p in deriver.problems):
                deriver.problems.append(Unformed(
                    configmap, f"has no key {store.bucket_key!r}: the model store's host cannot be derived "
                               "(config/policy.yaml egress.model_store.bucket_key)",
                    f"name the bucket under {store.bucket_key}, or change egress.model_store.bucket_key to the key "
                    "the model fetcher reads"))
    return pods, deriver.problems


@functools.lru_cache(maxsize=1024)
def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
