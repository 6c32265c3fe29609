"""Workload hardening, images, resources and health probes."""

from __future__ import annotations

import re

from scripts.core.model import Render
from scripts.stages.policy_support import (
    PolicyConfig,
    Violation,
    assert_no_violations,
    containers,
    parse_quantity,
    plain_selector_matches,
    pod_template_labels,
    workloads,
)

# A pod may keep the API token only if it says why, with this annotation.
TOKEN_ANNOTATION = "ai-platform.io/needs-api-token"


def _effective(container: dict, pod: dict, key: str):
    """A securityContext field as the kubelet resolves it: container over pod."""
    value = (container.get("securityContext") or {}).get(key)
    return value if value is not None else (pod.get("securityContext") or {}).get(key)


def check_no_privileged(render: Render) -> list[Violation]:
    return [Violation(obj, "runs privileged", "remove securityContext.privileged or set it to false", label)
            for obj, pod in workloads(render) for label, c in containers(pod)
            if (c.get("securityContext") or {}).get("privileged") is True]


def check_no_privilege_escalation(render: Render) -> list[Violation]:
    return [Violation(obj, "allows privilege escalation",
                      "set securityContext.allowPrivilegeEscalation: false", label)
            for obj, pod in workloads(render) for label, c in containers(pod)
            if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False]


def check_run_as_non_root(render: Render) -> list[Violation]:
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            if _effective(c, pod, "runAsNonRoot") is not True:
                out.append(Violation(obj, "may run as root", "set securityContext.runAsNonRoot: true", label))
            uid = _effective(c, pod, "runAsUser")
            if uid is None or uid == 0:
                out.append(Violation(obj, "has no non-zero runAsUser",
                                     "set securityContext.runAsUser to a non-zero uid (10001 here)", label))
    return out


def check_read_only_root_filesystem(render: Render) -> list[Violation]:
    return [Violation(obj, "has a writable root filesystem",
                      "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it writes",
                      label)
            for obj, pod in workloads(render) for label, c in containers(pod)
            if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True]


def check_capabilities_dropped(render: Render) -> list[Violation]:
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            caps = (c.get("securityContext") or {}).get("capabilities") or {}
            dropped = [str(d) for d in caps.get("drop") or []]
            if "ALL" not in dropped:
                # The runtime would drop all for "all", but Pod Security
                # "restricted" (which the namespaces enforce) accepts only ALL.
                spelled = next((d for d in dropped if d.upper() == "ALL"), None)
                out.append(Violation(obj, f"drops {spelled!r}, which Pod Security restricted does not accept as ALL"
                                     if spelled else "does not drop all capabilities",
                                     'set securityContext.capabilities.drop: ["ALL"]', label))
            if caps.get("add"):
                out.append(Violation(obj, f"adds capabilities {caps['add']}",
                                     "remove securityContext.capabilities.add", label))
    return out


def check_seccomp_runtime_default(render: Render) -> list[Violation]:
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            profile = _effective(c, pod, "seccompProfile") or {}
            if profile.get("type") not in ("RuntimeDefault", "Localhost"):
                out.append(Violation(obj, f"seccomp profile is {profile.get('type') or 'unset'}",
                                     "set securityContext.seccompProfile.type: RuntimeDefault", label))
    return out


def check_no_host_access(render: Render) -> list[Violation]:
    out = []
    for obj, pod in workloads(render):
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(key) is True:
                out.append(Violation(obj, f"uses {key}", f"remove {key} from the pod spec"))
        for volume in pod.get("volumes") or []:
            if "hostPath" in volume:
                out.append(Violation(obj, f"mounts hostPath volume {volume.get('name')}",
                                     "use an emptyDir, a PVC or a projected volume instead"))
        if ((pod.get("securityContext") or {}).get("windowsOptions") or {}).get("hostProcess") is True:
            out.append(Violation(obj, "runs as a Windows HostProcess pod, with the node's network and full access "
                                      "to the host", "remove securityContext.windowsOptions.hostProcess"))
        for label, c in containers(pod):
            for port in c.get("ports") or []:
                if port.get("hostPort"):
                    out.append(Violation(obj, f"binds hostPort {port['hostPort']}",
                                         "remove hostPort; expose the port through a Service", label))
            windows = ((c.get("securityContext") or {}).get("windowsOptions") or {})
            if windows.get("hostProcess") is True:
                out.append(Violation(obj, "runs as a Windows HostProcess container, with full access to the host",
                                     "remove securityContext.windowsOptions.hostProcess", label))
    return out


def check_service_account_token_not_mounted(render: Render) -> list[Violation]:
    accounts = {o.name: o for o in render.objects if o.kind == "ServiceAccount"}
    out = []
    for obj, pod in workloads(render):
        annotations = ((obj.doc.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
        if annotations.get(TOKEN_ANNOTATION) or obj.metadata.get("annotations", {}).get(TOKEN_ANNOTATION):
            continue
        mount = pod.get("automountServiceAccountToken")
        if mount is None:
            account = accounts.get(pod.get("serviceAccountName") or "default")
            mount = account.doc.get("automountServiceAccountToken") if account else None
        if mount is not False:
            out.append(Violation(obj, "mounts a Kubernetes API token it does not declare a need for",
                                 f"set automountServiceAccountToken: false, or annotate the pod with "
                                 f"{TOKEN_ANNOTATION}: <why>"))
    return out


def _image_parts(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else None
    repository = name[: len(name) - len(tag) - 1] if tag else name
    return repository, tag, digest or None


def check_image_pinned(render: Render, config: PolicyConfig) -> list[Violation]:
    """The one image policy (config/policy.yaml `images`): pinned by digest
    when require_digest is set, as checkov's CKV_K8S_43 also demands."""
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            image = str(c.get("image") or "")
            _, tag, digest = _image_parts(image)
            if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                out.append(Violation(obj, f"image {image!r} has a malformed digest",
                                     "use @sha256: followed by 64 hex digits", label))
            elif tag == "latest":
                out.append(Violation(obj, f"image {image!r} uses the latest tag",
                                     "pin a release tag (and digest) in the overlay's images:", label))
            elif not tag and not digest:
                out.append(Violation(obj, f"image {image!r} is untagged",
                                     "pin a release tag (and digest) in the overlay's images:", label))
            elif config.require_digest and not digest:
                out.append(Violation(obj, f"image {image!r} is not pinned by digest (images.require_digest in "
                                          "config/policy.yaml; checkov CKV_K8S_43)",
                                     "add the digest next to the tag in the overlay's images: (newTag and digest)",
                                     label))
    return out


def check_image_registry_allowed(render: Render, config: PolicyConfig) -> list[Violation]:
    if config.registries is None:  # no config/policy.yaml: no allow-list to hold images to
        return []
    return [Violation(obj, f"image {c.get('image')!r} is not from an allowed registry",
                      f"use one of {config.registries} (config/policy.yaml)", label)
            for obj, pod in workloads(render) for label, c in containers(pod)
            if not any(str(c.get("image") or "").startswith(r) for r in config.registries)]


def _requests_and_limits(container: dict) -> tuple[dict, dict]:
    resources = container.get("resources") or {}
    return resources.get("requests") or {}, resources.get("limits") or {}


def check_resources_set(render: Render) -> list[Violation]:
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            requests, limits = _requests_and_limits(c)
            missing = [f"requests.{r}" for r in ("cpu", "memory") if r not in requests]
            if "memory" not in limits:
                missing.append("limits.memory")
            if missing:
                out.append(Violation(obj, f"has no {', '.join(missing)}",
                                     "set CPU and memory requests and a memory limit", label))
    return out


def check_requests_within_limits(render: Render) -> list[Violation]:
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            requests, limits = _requests_and_limits(c)
            for name, limit in limits.items():
                if name not in requests:
                    continue
                req_q, lim_q = parse_quantity(requests[name]), parse_quantity(limit)
                if req_q is not None and lim_q is not None and req_q > lim_q:
                    out.append(Violation(obj, f"requests {name} {requests[name]} above its limit {limit}",
                                         "lower the request or raise the limit", label))
    return out


def check_hpa_cpu_needs_requests(render: Render) -> list[Violation]:
    by_name = {(o.kind, o.name): o for o in render.objects}
    out = []
    for hpa in (o for o in render.objects if o.kind == "HorizontalPodAutoscaler"):
        spec = hpa.doc.get("spec") or {}
        uses_cpu = any(m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
                       for m in spec.get("metrics") or [])
        if not uses_cpu:
            continue
        ref = spec.get("scaleTargetRef") or {}
        target = by_name.get((ref.get("kind"), ref.get("name")))
        if target is None:
            continue  # scale_targets_exist reports it
        pod = ((target.doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        for label, c in containers(pod, init=False):
            if "cpu" not in ((c.get("resources") or {}).get("requests") or {}):
                out.append(Violation(hpa, f"scales on CPU but {target.ref} {label} has no CPU request",
                                     "set resources.requests.cpu on every container of the target"))
    return out


def _selected_by_a_service(render: Render, obj) -> bool:
    labels = pod_template_labels(obj)
    return any(plain_selector_matches((s.doc.get("spec") or {}).get("selector"), labels)
               for s in render.objects if s.kind == "Service" and s.namespace == obj.namespace)


def _probe_check(probe: dict) -> tuple | None:
    """What a probe asks, without its timings: the handler and its target."""
    for handler in ("httpGet", "tcpSocket", "grpc", "exec"):
        action = probe.get(handler)
        if isinstance(action, dict):
            return handler, sorted((k, str(v)) for k, v in action.items())
    return None


def check_probes_set(render: Render) -> list[Violation]:
    """A container that serves (declares ports, or is the main container of
    pods a Service selects) has readiness and liveness probes, and they ask
    different things: a liveness probe that is the readiness check restarts
    a pod that is only busy, instead of taking it out of rotation until it
    recovers (kube-score pod-probes, pod-probes-identical)."""
    out = []
    for obj, pod in workloads(render):
        behind_service = _selected_by_a_service(render, obj)
        for index, (label, c) in enumerate(containers(pod, init=False)):
            if not (c.get("ports") or (behind_service and index == 0)):
                continue
            for probe in ("readinessProbe", "livenessProbe"):
                if not c.get(probe):
                    out.append(Violation(obj, f"serves traffic without a {probe}",
                                         f"add a {probe} (/readyz for readiness, /healthz for liveness)", label))
        for label, c in containers(pod, init=False):
            ready, live = c.get("readinessProbe"), c.get("livenessProbe")
            if isinstance(ready, dict) and isinstance(live, dict) and _probe_check(ready) is not None \
                    and _probe_check(ready) == _probe_check(live):
                out.append(Violation(obj, "its livenessProbe is the same check as its readinessProbe, so a pod that "
                                          "is only busy is restarted instead of taken out of rotation",
                                     "make liveness ask only whether the process is alive (/healthz), readiness "
                                     "whether it can serve (/readyz)", label))
    return out


def check_startup_probe_for_model(render: Render, config: PolicyConfig) -> list[Violation]:
    """A container that loads a model (MODEL_* env) needs a startup probe
    whose budget (failureThreshold x periodSeconds) covers the model load
    time in config/policy.yaml, so liveness does not kill it while loading."""
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod, init=False):
            loads_model = any(str(e.get("name", "")).startswith("MODEL_") for e in c.get("env") or [])
            if not loads_model:
                continue
            probe = c.get("startupProbe")
            if not probe:
                out.append(Violation(obj, "loads a model but has no startupProbe",
                                     "add a startupProbe whose failureThreshold x periodSeconds covers the model "
                                     "load time", label))
                continue
            budget = int(probe.get("failureThreshold", 3)) * int(probe.get("periodSeconds", 10)) \
                + int(probe.get("initialDelaySeconds", 0))
            if budget < config.model_load_seconds:
                out.append(Violation(obj, f"startupProbe allows {budget}s, less than the {config.model_load_seconds}s "
                                          "a model may take to load (model_load_seconds in config/policy.yaml)",
                                     "raise startupProbe.failureThreshold", label))
    return out


def check_ephemeral_storage_set(render: Render) -> list[Violation]:
    """Every container, init containers included, requests and limits
    ephemeral storage: without a request the scheduler places the pod
    without counting the disk its logs, writable layer and emptyDirs use,
    and without a limit one container can fill the node's disk and get every
    pod on it evicted. A pod's limits also cover its disk emptyDirs'
    sizeLimits, or the kubelet evicts it before the volume is full
    (kube-score container-ephemeral-storage-request-and-limit)."""
    out = []
    for obj, pod in workloads(render):
        total = 0
        for label, c in containers(pod, ephemeral=False):
            requests, limits = _requests_and_limits(c)
            for kind, values in (("request", requests), ("limit", limits)):
                if "ephemeral-storage" not in values:
                    out.append(Violation(obj, f"has no ephemeral-storage {kind}",
                                         f"set resources.{kind}s.ephemeral-storage (room for its logs, writable "
                                         "layer and the emptyDirs it writes)", label))
            if label.startswith("container "):  # init containers run before, not beside, the others
                total += parse_quantity(limits.get("ephemeral-storage")) or 0
        disk = [v for v in pod.get("volumes") or [] if isinstance(v, dict) and isinstance(v.get("emptyDir"), dict)
                and v["emptyDir"].get("medium") != "Memory"]
        needed = sum(parse_quantity(v["emptyDir"].get("sizeLimit")) or 0 for v in disk)
        if total and needed and total < needed:
            out.append(Violation(obj, "its containers' ephemeral-storage limits add up to less than its emptyDir "
                                      "sizeLimits, so the kubelet evicts it before the volume is full",
                                 "raise the limits to at least the sum of the sizeLimits"))
    return out


_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _port_name_problem(name: str) -> str | None:
    """Why a name is not an IANA service name, as the API server requires of
    container port names (and a Service's named targetPort resolves)."""
    if len(name) > 15:
        return f"port name {name!r} is {len(name)} characters, more than the 15 allowed"
    if not _PORT_NAME.match(name) or "--" in name or not re.search("[a-z]", name):
        return (f"port name {name!r} is not a valid port name (lowercase letters, digits and single '-', "
                "at least one letter, no '-' at either end)")
    return None


def check_container_ports_valid(render: Render) -> list[Violation]:
    """Each container's ports have a number and distinct, valid names: the
    API server refuses a duplicate or malformed name and a port without a
    number (kube-score container-ports-check)."""
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod, ephemeral=False):
            seen: set[str] = set()
            for port in c.get("ports") or []:
                if not isinstance(port, dict):
                    continue
                name, number = port.get("name"), port.get("containerPort")
                if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 65536:
                    out.append(Violation(obj, f"port {name or '(unnamed)'} has containerPort {number!r}",
                                         "set containerPort to the port the process listens on (1-65535)", label))
                if not name:
                    continue
                name = str(name)
                if name in seen:
                    out.append(Violation(obj, f"names two ports {name!r}", "give each port its own name", label))
                seen.add(name)
                problem = _port_name_problem(name)
                if problem:
                    out.append(Violation(obj, problem, "use a short name such as http or http-metrics; a Service "
                                                       "targetPort that uses it must change with it", label))
    return out


def test_no_privileged(render):
    assert_no_violations(check_no_privileged(render))


def test_no_privilege_escalation(render):
    assert_no_violations(check_no_privilege_escalation(render))


def test_run_as_non_root(render):
    assert_no_violations(check_run_as_non_root(render))


def test_read_only_root_filesystem(render):
    assert_no_violations(check_read_only_root_filesystem(render))


def test_capabilities_dropped(render):
    assert_no_violations(check_capabilities_dropped(render))


def test_seccomp_runtime_default(render):
    assert_no_violations(check_seccomp_runtime_default(render))


def test_no_host_access(render):
    assert_no_violations(check_no_host_access(render))


def test_service_account_token_not_mounted(render):
    assert_no_violations(check_service_account_token_not_mounted(render))


def test_image_pinned(render, config):
    assert_no_violations(check_image_pinned(render, config))


def test_image_registry_allowed(render, config):
    assert_no_violations(check_image_registry_allowed(render, config))


def test_resources_set(render):
    assert_no_violations(check_resources_set(render))


def test_requests_within_limits(render):
    assert_no_violations(check_requests_within_limits(render))


def test_hpa_cpu_needs_requests(render):
    assert_no_violations(check_hpa_cpu_needs_requests(render))


def test_probes_set(render):
    assert_no_violations(check_probes_set(render))


def test_startup_probe_for_model(render, config):
    assert_no_violations(check_startup_probe_for_model(render, config))


def test_ephemeral_storage_set(render):
    assert_no_violations(check_ephemeral_storage_set(render))


def test_container_ports_valid(render):
    assert_no_violations(check_container_ports_valid(render))
