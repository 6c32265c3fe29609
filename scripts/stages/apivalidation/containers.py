"""Containers of a pod spec: containers, initContainers and ephemeralContainers
(core's validateContainers, validateInitContainers, validateEphemeralContainers,
validateContainerCommon and validateContainersOnlyForPod, the container parts
of ValidatePodSpec (hostNetwork ports, the pod's OS), ValidatePodTemplateSpec
and ValidatePodCreate (ephemeral containers)).

Each part of a container has its own module: env (container_env), mounts
(container_mounts), probes and hooks (container_probes), resources
(container_resources), securityContext (container_security). This one walks
the lists, checks what a container is as a whole, and reads from the pod spec
what those checks depend on (`PodFacts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scripts.stages.apivalidation import (
    container_env,
    container_mounts,
    container_probes,
    container_resources,
    container_security,
    formats,
)
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
DEFAULT_GRACE_PERIOD = 30
# Windows has no use for these; validateWindows refuses them per container.
LINUX_ONLY_SECURITY = ("appArmorProfile", "seLinuxOptions", "seccompProfile", "capabilities",
                       "readOnlyRootFilesystem", "privileged", "allowPrivilegeEscalation", "procMount", "runAsUser",
                       "runAsGroup")


@dataclass(frozen=True)
class PodFacts:
    """What the container checks read from the pod spec, after the API defaults."""

    is_pod: bool  # a Pod object (some checks skip pod templates)
    grace_period: int | None  # terminationGracePeriodSeconds; None when it is not a number
    restart_policy: str
    host_users: bool
    host_network: bool
    os_name: str | None  # linux or windows, when spec.os.name is one of them
    claim_names: frozenset[str] | None  # spec.resourceClaims names; None when the API server drops claims


def pod_facts(spec: dict[str, Any], ctx: Context, is_pod: bool) -> PodFacts:
    grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD)
    restart = spec.get("restartPolicy")
    os_name = as_dict(spec.get("os")).get("name")
    claims = None
    # DynamicResourceAllocation is on by default since 1.34; before, claims are dropped.
    if ctx.at_least(34):
        claims = frozenset(name for claim in as_list(spec.get("resourceClaims"))
                           if isinstance(name := as_dict(claim).get("name"), str) and name)
    return PodFacts(
        is_pod=is_pod,
        grace_period=grace if formats.is_int(grace) else (DEFAULT_GRACE_PERIOD if grace is None else None),
        restart_policy=restart if isinstance(restart, str) and restart else "Always",
        # UserNamespacesSupport is on by default since 1.33; before, hostUsers is dropped.
        host_users=not (spec.get("hostUsers") is False and ctx.at_least(33)),
        host_network=spec.get("hostNetwork") is True,
        os_name=os_name if os_name in ("linux", "windows") else None,
        claim_names=claims,
    )


def validate_containers(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors,
                        volumes: dict[str, dict[str, Any]], *, resource_is_pod: bool | None = None) -> None:
    """Every container list of a pod spec at `path` (the pod spec's path).
    `volumes`: the pod's volumes by name, those that passed validation (a
    mount of any other is "Not found", as on the API server).
    `resource_is_pod`: whether the spec is a Pod's rather than a template's;
    by default, a spec at the top-level `spec` is a Pod's."""
    is_pod = resource_is_pod if resource_is_pod is not None else path.parts == ("spec",)
    facts = pod_facts(spec, ctx, is_pod)
    containers = [c for c in as_list(spec.get("containers")) if isinstance(c, dict)]
    inits = [c for c in as_list(spec.get("initContainers")) if isinstance(c, dict)]
    if spec.get("containers") is None or spec.get("containers") == []:
        errs.required("api-container-list-required", path.child("containers"), "a pod needs at least one container")
    _regular(containers, path.child("containers"), ctx, errs, volumes, facts)
    _init(inits, containers, path.child("initContainers"), ctx, errs, volumes, facts)
    _ephemeral_refused(spec, path, facts, errs)
    if facts.host_network:
        _host_network_ports(containers, path.child("containers"), errs)
    if facts.os_name:
        _os_specific(spec, path, facts.os_name, errs)


def _regular(containers: list[dict[str, Any]], path: FieldPath, ctx: Context, errs: Errors,
             volumes: dict[str, dict[str, Any]], facts: PodFacts) -> None:
    names: set[str] = set()
    for index, container in enumerate(containers):
        at = path.index(index)
        _common(container, at, ctx, errs, volumes, facts)
        _pod_only_image(container, at, facts, errs)
        name = container.get("name")
        if isinstance(name, str):
            if name in names:
                errs.duplicate("api-container-name-unique", at.child("name"), name)
            names.add(name)
        _lifecycle_and_probes(container, at, ctx, errs, facts)
        # ContainerRestartRules is alpha and off at 1.34: the API server drops a regular
        # container's restartPolicy before validating; earlier releases refuse it.
        if container.get("restartPolicy") is not None and not ctx.at_least(34):
            errs.forbidden("api-container-restart-policy", at.child("restartPolicy"),
                           "only init containers take a restartPolicy (Always, for a sidecar)")
    _host_port_conflicts(containers, path, errs)


def _init(inits: list[dict[str, Any]], containers: list[dict[str, Any]], path: FieldPath, ctx: Context,
          errs: Errors, volumes: dict[str, dict[str, Any]], facts: PodFacts) -> None:
    names = {c["name"] for c in containers if isinstance(c.get("name"), str)}
    for index, container in enumerate(inits):
        at = path.index(index)
        _common(container, at, ctx, errs, volumes, facts)
        _pod_only_image(container, at, facts, errs)
        policy = container.get("restartPolicy")
        sidecar = policy == "Always"
        # At 1.34 the API server drops any other value (ContainerRestartRules is off);
        # earlier releases refuse it.
        if policy is not None and not sidecar and not ctx.at_least(34):
            errs.not_supported("api-container-init-restart-policy", at.child("restartPolicy"), policy, ("Always",))
        name = container.get("name")
        if isinstance(name, str) and name in names:
            errs.duplicate("api-container-name-unique", at.child("name"), name)
        elif isinstance(name, str) and name:
            names.add(name)
        # Init containers run one at a time, so each is checked on its own; the API
        # server then names every one of them initContainers[0].
        _host_port_conflicts([container], path, errs)
        if sidecar:
            _lifecycle_and_probes(container, at, ctx, errs, facts)
        else:
            for key in ("lifecycle",) + container_probes.PROBES:
                if isinstance(container.get(key), dict):
                    errs.forbidden("api-container-init-forbidden", at.child(key),
                                   "only a sidecar (restartPolicy: Always) init container may set it")


def _ephemeral_refused(spec: dict[str, Any], spec_path: FieldPath, facts: PodFacts, errs: Errors) -> None:
    """Ephemeral containers are added to a running Pod (kubectl debug), never
    created with a manifest: a template may not hold any, a Pod may not be
    created with any. Their contents are not judged further (see the rows)."""
    ephemerals = spec.get("ephemeralContainers")
    if not isinstance(ephemerals, list) or not ephemerals:
        return
    at = spec_path.child("ephemeralContainers")
    if facts.is_pod:
        errs.forbidden("api-container-ephemeral-create", at,
                       "ephemeral containers are added to a running pod (kubectl debug), not created with it")
    else:
        errs.forbidden("api-container-ephemeral-template", at,
                       "a pod template may not hold ephemeral containers (they are added with kubectl debug)")


def _lifecycle_and_probes(container: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors,
                          facts: PodFacts) -> None:
    if isinstance(container.get("lifecycle"), dict):
        container_probes.validate_lifecycle(container["lifecycle"], path.child("lifecycle"), facts.grace_period,
                                            ctx, errs)
    for key in container_probes.PROBES:
        container_probes.validate_probe(container.get(key), key, path.child(key), facts.grace_period, ctx, errs)


def _common(container: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors,
            volumes: dict[str, dict[str, Any]], facts: PodFacts) -> None:
    """What every kind of container must satisfy (validateContainerCommon)."""
    name = container.get("name")
    if name == "":
        errs.required("api-container-name-required", path.child("name"), "name the container")
    elif isinstance(name, str):
        errs.each("api-container-name-format", path.child("name"), name, formats.dns_label_problems(name))
    image = container.get("image")
    if image is None or image == "":
        errs.required("api-container-image-required", path.child("image"), "give the image to run")
    # Both policies have defaults (File; Always for :latest or no tag, else IfNotPresent).
    policy = container.get("terminationMessagePolicy")
    if isinstance(policy, str) and policy and policy not in TERMINATION_MESSAGE_POLICIES:
        errs.not_supported("api-container-termination-message-policy", path.child("terminationMessagePolicy"),
                           policy, TERMINATION_MESSAGE_POLICIES)
    pull = container.get("imagePullPolicy")
    if isinstance(pull, str) and pull and pull not in PULL_POLICIES:
        errs.not_supported("api-container-pull-policy", path.child("imagePullPolicy"), pull, PULL_POLICIES)
    _ports(container.get("ports"), path.child("ports"), errs)
    container_env.validate_env(container.get("env"), path.child("env"), ctx, errs)
    container_env.validate_env_from(container.get("envFrom"), path.child("envFrom"), ctx, errs)
    container_mounts.validate_volume_mounts(container, volumes, path, errs)
    container_mounts.validate_volume_devices(container, volumes, path, errs)
    container_resources.validate_resources(container.get("resources"), facts.claim_names, path.child("resources"),
                                           errs)
    # InPlacePodVerticalScaling is on by default since 1.33; before, resizePolicy is dropped.
    if ctx.at_least(33):
        container_resources.validate_resize_policy(container.get("resizePolicy"), path.child("resizePolicy"),
                                                   facts.restart_policy, errs)
    container_security.validate_security_context(container.get("securityContext"), path.child("securityContext"),
                                                 ctx, errs, facts.host_users)


def _pod_only_image(container: dict[str, Any], path: FieldPath, facts: PodFacts, errs: Errors) -> None:
    # validateContainersOnlyForPod: pod templates keep their historical leniency.
    image = container.get("image")
    if facts.is_pod and isinstance(image, str) and image != image.strip():
        errs.invalid("api-container-image-whitespace", path.child("image"), image,
                     "must not begin or end with whitespace")


def _ports(ports: Any, path: FieldPath, errs: Errors) -> None:
    names: set[str] = set()
    for index, port in enumerate(as_list(ports)):
        if not isinstance(port, dict):
            continue
        at = path.index(index)
        name = port.get("name")
        if isinstance(name, str) and name:
            problems = formats.port_name_problems(name)
            errs.each("api-container-port-name", at.child("name"), name, problems)
            if not problems and name in names:
                errs.duplicate("api-container-port-name-unique", at.child("name"), name)
            names.add(name)
        number = port.get("containerPort")
        if number == 0 and formats.is_int(number):
            errs.required("api-container-port-required", at.child("containerPort"), "give the port number")
        elif formats.is_int(number):
            errs.each("api-container-port-number", at.child("containerPort"), number,
                      formats.port_number_problems(number))
        host = port.get("hostPort")
        if formats.is_int(host) and host != 0:
            errs.each("api-container-host-port-number", at.child("hostPort"), host, formats.port_number_problems(host))
        protocol = port.get("protocol")
        if isinstance(protocol, str) and protocol and protocol not in PROTOCOLS:
            errs.not_supported("api-container-port-protocol", at.child("protocol"), protocol, PROTOCOLS)


def _host_port_conflicts(containers: list[dict[str, Any]], path: FieldPath, errs: Errors) -> None:
    """AccumulateUniqueHostPorts: a protocol, host IP and host port used twice."""
    used: set[str] = set()
    for index, container in enumerate(containers):
        for port_index, port in enumerate(as_list(container.get("ports"))):
            port = as_dict(port)
            host = port.get("hostPort")
            if not formats.is_int(host) or host == 0:
                continue
            protocol = port.get("protocol") or "TCP"
            host_ip = port.get("hostIP") or ""
            key = f"{protocol}/{host_ip}/{host}"
            if key in used:
                errs.duplicate("api-container-host-port-unique",
                               path.index(index).child("ports").index(port_index).child("hostPort"), key)
            used.add(key)


def _host_network_ports(containers: list[dict[str, Any]], path: FieldPath, errs: Errors) -> None:
    """validatePodHostNetworkDeps: with hostNetwork the host port is the container port.
    A hostPort of 0 is allowed (a Pod's is defaulted to the containerPort)."""
    for index, container in enumerate(containers):
        for port_index, port in enumerate(as_list(container.get("ports"))):
            port = as_dict(port)
            host, number = port.get("hostPort"), port.get("containerPort")
            if formats.is_int(host) and host != 0 and host != number:
                errs.invalid("api-container-host-network-port",
                             path.index(index).child("ports").index(port_index).child("hostPort"), host,
                             f"with hostNetwork: true, hostPort must equal containerPort ({number}) or be unset")


def _os_specific(spec: dict[str, Any], path: FieldPath, os_name: str, errs: Errors) -> None:
    """The per-container parts of validateLinux and validateWindows, in the
    API server's order (ephemeral containers are refused as a whole)."""
    for key in ("initContainers", "containers"):
        for index, container in enumerate(as_list(spec.get(key))):
            security = as_dict(as_dict(container).get("securityContext"))
            at = path.child(key).index(index).child("securityContext")
            if os_name == "linux":
                if security.get("windowsOptions") is not None:
                    errs.forbidden("api-container-linux-windows-options", at.child("windowsOptions"),
                                   "windowsOptions cannot be set for a linux pod (spec.os.name: linux)")
                continue
            for field in LINUX_ONLY_SECURITY:
                if security.get(field) is not None:
                    errs.forbidden("api-container-windows-forbidden", at.child(field),
                                   "cannot be set for a windows pod (spec.os.name: windows)")


_CONTAINERS = "core: validateContainers"
_INITS = "core: validateInitContainers"
_EPHEMERALS = "core: validateEphemeralContainers"
_COMMON = "core: validateContainerCommon"
_PORTS = "core: validateContainerPorts"
_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
_ROWS = (
    Row((POD_TEMPLATE,), _CONTAINERS, "a pod spec has at least one container", "api-container-list-required"),
    Row((POD_TEMPLATE,), _COMMON, "a container's name is not empty", "api-container-name-required"),
    Row((POD_TEMPLATE,), _COMMON + " (ValidateDNS1123Label)", "a container's name is a DNS label",
        "api-container-name-format"),
    Row((POD_TEMPLATE,), _CONTAINERS + ", " + _INITS, "container names are unique across containers and "
        "initContainers", "api-container-name-unique"),
    Row((POD_TEMPLATE,), _COMMON, "a container's image is not empty", "api-container-image-required"),
    Row(("Pod",), "core: validateContainersOnlyForPod", "a Pod's container and init container images have no "
        "leading or trailing whitespace (pod templates are not checked)", "api-container-image-whitespace"),
    Row((POD_TEMPLATE,), _COMMON, "terminationMessagePolicy is required", None, "filled by defaulting (File)"),
    Row((POD_TEMPLATE,), _COMMON, "terminationMessagePolicy is File or FallbackToLogsOnError",
        "api-container-termination-message-policy"),
    Row((POD_TEMPLATE,), "core: validatePullPolicy", "imagePullPolicy is required", None,
        "filled by defaulting (Always for :latest or no tag, else IfNotPresent)"),
    Row((POD_TEMPLATE,), "core: validatePullPolicy", "imagePullPolicy is Always, IfNotPresent or Never",
        "api-container-pull-policy"),
    Row((POD_TEMPLATE,), _PORTS + " (IsValidPortName)", "a container port's name, when set, "
        "is an IANA service name: at most 15 characters, lowercase letters, digits and '-', at least one letter, "
        "no '--', no '-' at either end", "api-container-port-name"),
    Row((POD_TEMPLATE,), _PORTS, "a port name is used once within a container (other containers may reuse it)",
        "api-container-port-name-unique"),
    Row((POD_TEMPLATE,), _PORTS, "containerPort is not 0", "api-container-port-required"),
    Row((POD_TEMPLATE,), _PORTS + " (IsValidPortNum)", "containerPort is between 1 and 65535",
        "api-container-port-number"),
    Row((POD_TEMPLATE,), _PORTS + " (IsValidPortNum)", "hostPort, when not 0, is between 1 and 65535",
        "api-container-host-port-number"),
    Row((POD_TEMPLATE,), _PORTS, "protocol is required", None, "filled by defaulting (TCP)"),
    Row((POD_TEMPLATE,), _PORTS, "protocol is TCP, UDP or SCTP", "api-container-port-protocol"),
    Row((POD_TEMPLATE,), "core: AccumulateUniqueHostPorts (checkHostPortConflicts)", "a protocol, hostIP and "
        "hostPort is used once across the containers (and once within each init container)",
        "api-container-host-port-unique"),
    Row((POD_TEMPLATE,), "core: validatePodHostNetworkDeps", "with hostNetwork: true, a container's hostPort is 0 "
        "or equals its containerPort", "api-container-host-network-port"),
    Row((POD_TEMPLATE,), _CONTAINERS, "a regular container sets no restartPolicy (refused before 1.34)",
        "api-container-restart-policy"),
    Row((POD_TEMPLATE,), _CONTAINERS + ", " + _INITS, "restartPolicy of a regular container, restartPolicyRules",
        None, "behind ContainerRestartRules, alpha and off by default at 1.34: the API server drops a regular "
        "container's restartPolicy, an init container's restartPolicy other than Always, and every "
        "restartPolicyRules before validating"),
    Row((POD_TEMPLATE,), "core: validateInitContainerRestartPolicy", "an init container's restartPolicy is Always "
        "(refused before 1.34; dropped at 1.34, see above)", "api-container-init-restart-policy"),
    Row((POD_TEMPLATE,), _INITS, "an init container without restartPolicy: Always sets no lifecycle, "
        "livenessProbe, readinessProbe or startupProbe", "api-container-init-forbidden"),
    Row((POD_TEMPLATE,), _INITS, "an init container sets no resizePolicy", None,
        "never refused at a default gate: before 1.33 InPlacePodVerticalScaling is off and resizePolicy is dropped; "
        "from 1.33 it is on and init containers may set it"),
    Row(_WORKLOADS, "core: ValidatePodTemplateSpec", "a pod template holds no ephemeral containers",
        "api-container-ephemeral-template"),
    Row(("Pod",), "core: ValidatePodCreate", "a Pod is not created with ephemeral containers",
        "api-container-ephemeral-create"),
    Row((POD_TEMPLATE,), _EPHEMERALS + ", validateContainerOnlyForPod", "an ephemeral container passes the common "
        "container checks, has a unique name, a targetContainerName that names a container, no ports, resources, "
        "probes, lifecycle or resizePolicy (validateFieldAllowList), no subPath or subPathExpr mounts, and an image "
        "without surrounding whitespace, and follows the spec.os.name rules", None,
        "any ephemeral container in a manifest is refused whatever it holds (api-container-ephemeral-template, "
        "api-container-ephemeral-create): the fix is to remove it, so its contents are not judged further"),
    Row((POD_TEMPLATE,), "core: validateWindows", "with spec.os.name windows, no container sets appArmorProfile, "
        "seLinuxOptions, seccompProfile, capabilities, readOnlyRootFilesystem, privileged, allowPrivilegeEscalation, "
        "procMount, runAsUser or runAsGroup", "api-container-windows-forbidden"),
    Row((POD_TEMPLATE,), "core: validateLinux", "with spec.os.name linux, no container sets windowsOptions",
        "api-container-linux-windows-options"),
    Row((POD_TEMPLATE,), "core: ValidateContainerUpdates, ValidatePodEphemeralContainersUpdate, ValidatePodResize",
        "what a Pod update may change in its containers (image only; ephemeral containers added; resources "
        "through the resize subresource)", None, "update only: a Pod's containers are immutable but for these; a "
        "workload's template change makes new Pods"),
)
COVERAGE = (_ROWS + container_env.ROWS + container_mounts.ROWS + container_probes.ROWS + container_resources.ROWS
            + container_security.ROWS)
COVERAGE_TITLE = "Containers (every pod template)"
COVERAGE_INTRO = (
    "Read from kubernetes/kubernetes `pkg/apis/core/validation/validation.go` at commit 000f26050b9b, a commit of "
    "the 1.33 development line: it has the sidecar resizePolicy option (AllowSidecarResizePolicy) but not yet "
    "lifecycle.stopSignal (ContainerStopSignals, 1.33). What the 1.34 release changes for containers is behind "
    "gates off by default at 1.34 and dropped before validation (restartPolicy of regular containers and "
    "restartPolicyRules, ContainerRestartRules; env fileKeyRef, EnvFiles; lifecycle.stopSignal; image volumes, "
    "ImageVolume), as `pkg/api/pod/util.go` (dropDisabledPodFields) shows; those rows say so. Gate defaults "
    "(from the versioned specs of `pkg/features/kube_features.go`) applied by minor: "
    "RelaxedEnvironmentVariableValidation from 1.32; PodLifecycleSleepActionAllowZero, InPlacePodVerticalScaling, "
    "ProcMountType, UserNamespacesSupport from 1.33; DynamicResourceAllocation from 1.34. A minor above 1.34 is "
    "judged with the 1.34 defaults of the gates above (1.35 turns on ContainerRestartRules, EnvFiles and "
    "ImageVolume, whose rules are not ported). "
    "Values are judged after the API defaults (port protocol TCP, terminationMessagePolicy File, imagePullPolicy "
    "from the tag, probe timeout 1/period 10/success 1/failure 3, httpGet path / and scheme HTTP, "
    "terminationGracePeriodSeconds 30, restartPolicy Always). stdin, stdinOnce, tty, workingDir, "
    "terminationMessagePath, command, args and seLinuxOptions have no condition of their own on create. A named "
    "port in a probe is not checked against the container's ports by the API server (the kubelet fails it), so "
    "not here either. Field paths are the API server's, including where it names a list instead of an entry "
    "(`volumeMounts.subPath`, `envFrom`, `httpGet.httpHeaders`) and where it names every init container "
    "`initContainers[0]` in a hostPort conflict."
)
VALIDATORS: dict = {}
