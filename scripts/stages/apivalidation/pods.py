"""Pod templates and pod specs: core's ValidatePodTemplateSpec, ValidatePodSpec
and what they call besides the containers (which containers.py validates),
the pod-specific annotations, and a Pod's create-only rules.

The checks are split by subject: pod_volumes.py (volumes), pod_scheduling.py
(tolerations, affinity, topology spread), pod_security.py (security context,
OS, user namespaces, host process) and pod_resources.py (overhead and
pod-level resources); this module holds the rest and the coverage section.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scripts.stages.apivalidation import (
    containers,
    formats,
    meta,
    pod_resources,
    pod_scheduling,
    pod_security,
    pod_volumes,
)
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import ANNOTATIONS_MAX_BYTES, as_dict, as_list

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
DNS_NAMESERVERS_MAX = 3
DNS_SEARCHES_MAX = 32
DNS_SEARCH_CHARS_MAX = 2048
INT32_MAX = 2**31 - 1
IP_DETAIL = "must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TOLERATIONS_ANNOTATION = "scheduler.alpha.kubernetes.io/tolerations"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_CONTAINER_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_TOLERATION_STRINGS = ("key", "operator", "value", "effect")


@dataclass(frozen=True)
class PodIdentity:
    """What a Pod (not a template) brings to its spec's validation: its name
    (generic ephemeral volumes name their claims `<pod>-<volume>`) and its
    labels (the API server merges matchLabelKeys of affinity terms and spread
    constraints into their selectors before validating)."""

    name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def validate_pod_template(template: Any, path: FieldPath, ctx: Context, errs: Errors) -> None:
    """A workload's pod template at `path` (e.g. `spec.template`): core's
    ValidatePodTemplateSpec. The template's labels and annotations are
    reported at `<path>.labels` and `<path>.annotations`, as the API server
    writes them.
    The restartPolicy a workload kind allows is its own module's check
    (apps: Always; batch: OnFailure or Never).
    """
    template = as_dict(template)
    metadata = as_dict(template.get("metadata"))
    spec = as_dict(template.get("spec"))
    spec_path = path.child("spec")
    _template_labels(metadata.get("labels"), path.child("labels"), errs)
    _template_annotations(metadata.get("annotations"), path.child("annotations"), errs)
    annotations = _string_map(metadata.get("annotations"))
    validate_pod_annotations(annotations, spec, path.child("annotations"), errs)
    validate_pod_spec(spec, spec_path, ctx, errs)
    _seccomp_annotations_match(annotations, spec, spec_path, errs)
    _apparmor_annotations_match(annotations, spec, spec_path, errs, is_pod=False)
    # ephemeralContainers in a template: the Containers section (api-container-ephemeral-template).


def validate_pod(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    """A Pod on create: ValidatePodCreate."""
    metadata = as_dict(doc.get("metadata"))
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    spec_path = ROOT.child("spec")
    annotations = _string_map(metadata.get("annotations"))
    validate_pod_annotations(annotations, spec, ROOT.child("metadata", "annotations"), errs)
    name = metadata.get("name")
    identity = PodIdentity(name if isinstance(name, str) else "", _string_map(metadata.get("labels")))
    validate_pod_spec(spec, spec_path, ctx, errs, pod=identity)
    # ephemeralContainers on create: the Containers section (api-container-ephemeral-create).
    if spec.get("nodeName") and as_list(spec.get("schedulingGates")):
        errs.forbidden("api-pod-node-name-scheduling-gates", spec_path.child("nodeName"),
                       "a pod with schedulingGates may not be bound to a node: remove nodeName or the gates")
    _seccomp_annotations_match(annotations, spec, spec_path, errs)
    _apparmor_annotations_match(annotations, spec, spec_path, errs, is_pod=True)


def validate_pod_spec(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors, *,
                      pod: PodIdentity | None = None) -> None:
    """ValidatePodSpec at `path`. `pod`: the Pod's identity when the spec is a
    Pod's own (None for a template). terminationGracePeriodSeconds,
    restartPolicy, dnsPolicy and the security context are filled by
    defaulting when absent, so their `Required` errors cannot happen."""
    labels = pod.labels if pod is not None else None
    volumes = pod_volumes.validate_volumes(spec.get("volumes"), path.child("volumes"), ctx, errs,
                                           pod_volumes.VolumeScope(pod.name if pod is not None else ""))
    _resource_claims(spec.get("resourceClaims"), path.child("resourceClaims"), ctx, errs)
    # The containers, their list being empty, and what spec.os forbids in
    # them are the Containers section's (containers.py).
    containers.validate_containers(spec, path, ctx, errs, volumes)
    pod_resources.validate_pod_resources(spec, path, ctx, errs)
    _host_network_ports(spec, path, errs)
    _enum(spec.get("restartPolicy"), "api-pod-restart-policy", path.child("restartPolicy"), RESTART_POLICIES, errs)
    _enum(spec.get("dnsPolicy"), "api-pod-dns-policy", path.child("dnsPolicy"), DNS_POLICIES, errs)
    pod_scheduling.validate_node_selector_labels(spec.get("nodeSelector"), path.child("nodeSelector"), errs)
    pod_security.validate_pod_security_context(spec, path, ctx, errs)
    pod_scheduling.validate_affinity(spec.get("affinity"), path.child("affinity"), errs, labels)
    _dns_config(spec, path, ctx, errs)
    _readiness_gates(spec.get("readinessGates"), path.child("readinessGates"), errs)
    _scheduling_gates(spec.get("schedulingGates"), path.child("schedulingGates"), errs)
    pod_scheduling.validate_topology_spread(spec.get("topologySpreadConstraints"),
                                            path.child("topologySpreadConstraints"), ctx, errs, labels)
    pod_security.validate_host_process(spec, path, errs)
    pod_security.validate_host_users(spec, path, ctx, errs)
    _names(spec, path, errs)
    deadline = spec.get("activeDeadlineSeconds")
    if formats.is_int(deadline):
        errs.each("api-pod-active-deadline", path.child("activeDeadlineSeconds"), deadline,
                  formats.in_range_problems(deadline, 1, INT32_MAX))
    pod_scheduling.validate_tolerations(spec.get("tolerations"), path.child("tolerations"), errs)
    _host_aliases(spec.get("hostAliases"), path.child("hostAliases"), errs)
    preemption = spec.get("preemptionPolicy")
    if preemption == "":
        errs.required("api-pod-preemption-policy", path.child("preemptionPolicy"),
                      "PreemptLowerPriority or Never (leave it out for PreemptLowerPriority)")
    elif isinstance(preemption, str) and preemption not in PREEMPTION_POLICIES:
        errs.not_supported("api-pod-preemption-policy", path.child("preemptionPolicy"), preemption,
                           PREEMPTION_POLICIES)
    pod_resources.validate_overhead(spec.get("overhead"), path.child("overhead"), errs)
    pod_security.validate_os(spec, path, errs)


# ---- the template's metadata and the pod-specific annotations -------------------

def _string_map(value: Any) -> dict[str, str]:
    return {str(key): item for key, item in as_dict(value).items() if isinstance(item, str)}


def _template_labels(labels: Any, path: FieldPath, errs: Errors) -> None:
    for key, value in as_dict(labels).items():
        errs.each("api-pod-template-labels", path, key, formats.qualified_name_problems(str(key)))
        if isinstance(value, str):
            errs.each("api-pod-template-labels", path, value, formats.label_value_problems(value))


def _template_annotations(annotations: Any, path: FieldPath, errs: Errors) -> None:
    size = 0
    for key, value in as_dict(annotations).items():
        errs.each("api-pod-template-annotations", path, key, formats.qualified_name_problems(str(key).lower()))
        size += len(str(key).encode()) + (len(value.encode()) if isinstance(value, str) else 0)
    if size > ANNOTATIONS_MAX_BYTES:
        errs.too_long("api-pod-template-annotations", path, ANNOTATIONS_MAX_BYTES)


def validate_pod_annotations(annotations: dict[str, str], spec: dict[str, Any], path: FieldPath,
                             errs: Errors) -> None:
    """ValidatePodSpecificAnnotations, for a Pod's and a template's annotations."""
    if MIRROR_ANNOTATION in annotations and not spec.get("nodeName"):
        errs.invalid("api-pod-mirror-annotation", path.key(MIRROR_ANNOTATION), annotations[MIRROR_ANNOTATION],
                     "a mirror pod (of a kubelet's static pod) names its node in spec.nodeName")
    if annotations.get(TOLERATIONS_ANNOTATION):
        tolerations, problem = _annotation_tolerations(annotations[TOLERATIONS_ANNOTATION])
        if problem:
            errs.invalid("api-pod-tolerations-annotation", path, TOLERATIONS_ANNOTATION,
                         f"must be a JSON list of tolerations: {problem}")
        else:
            pod_scheduling.validate_tolerations(tolerations, path.child(TOLERATIONS_ANNOTATION), errs)
    if DELETION_COST_ANNOTATION in annotations and not _int32_text(annotations[DELETION_COST_ANNOTATION]):
        errs.invalid("api-pod-deletion-cost", path.key(DELETION_COST_ANNOTATION),
                     annotations[DELETION_COST_ANNOTATION],
                     "must be a 32-bit integer written in decimal without '+' or leading zeros")
    for key, value in annotations.items():
        if key == SECCOMP_POD_ANNOTATION or key.startswith(SECCOMP_CONTAINER_PREFIX):
            errs.each("api-pod-seccomp-annotation", path.child(key), value, _seccomp_annotation_problems(value))
        if key.startswith(APPARMOR_CONTAINER_PREFIX):
            name = key[len(APPARMOR_CONTAINER_PREFIX):]
            if not any(container.get("name") == name
                       for container, _ in pod_security.containers_with_paths(spec, ROOT)):
                errs.invalid("api-pod-apparmor-annotation", path.key(key), name,
                             "names no container of this pod")
            if value not in ("", "runtime/default", "unconfined") and not value.startswith("localhost/"):
                errs.invalid("api-pod-apparmor-annotation", path.key(key), value,
                             "must be runtime/default, unconfined or localhost/<profile>")


def _annotation_tolerations(text: str) -> tuple[list[dict[str, Any]], str]:
    """The tolerations of the annotation as the API server decodes them (a
    JSON list; field names matched in any case), or the reason it cannot."""
    try:
        decoded = json.loads(text)
    except ValueError as error:
        return [], f"not JSON ({error})"
    if decoded is None:
        return [], ""
    if not isinstance(decoded, list):
        return [], "not a list"
    out = []
    for index, entry in enumerate(decoded):
        if entry is None:
            out.append({})
            continue
        if not isinstance(entry, dict):
            return [], f"entry {index} is not an object"
        toleration: dict[str, Any] = {}
        for key, value in entry.items():
            name = next((known for known in (*_TOLERATION_STRINGS, "tolerationSeconds")
                         if known.lower() == str(key).lower()), None)
            if name is None or value is None:
                continue
            if name == "tolerationSeconds":
                if not formats.is_int(value) or not -(2**63) <= value < 2**63:
                    return [], f"entry {index}: tolerationSeconds must be an integer"
            elif not isinstance(value, str):
                return [], f"entry {index}: {name} must be a string"
            toleration[name] = value
        out.append(toleration)
    return out, ""


def _int32_text(text: str) -> bool:
    """helper.GetDeletionCostFromPodAnnotations: a decimal int32, no '+', no leading zeros."""
    if not text or not (text[0] == "-" or text == "0" or text[0] in "123456789"):
        return False
    if not re.fullmatch(r"-?[0-9]+", text):
        return False
    return -(2**31) <= int(text) <= INT32_MAX


def _seccomp_annotation_problems(value: str) -> list[str]:
    """ValidateSeccompProfile (the deprecated annotations' values)."""
    if value in ("runtime/default", "docker/default", "unconfined"):
        return []
    if value.startswith("localhost/"):
        return pod_volumes.relative_path_problems(value[len("localhost/"):])
    return ["must be runtime/default, unconfined or localhost/<profile path>"]


def _seccomp_match_problem(annotation: str, profile: dict[str, Any]) -> str | None:
    """validateSeccompAnnotationsAndFieldsMatch: "type", "localhostProfile" or None."""
    kind = profile.get("type")
    if kind == "Unconfined" and annotation != "unconfined":
        return "type"
    if kind == "RuntimeDefault" and annotation not in ("runtime/default", "docker/default"):
        return "type"
    if kind == "Localhost":
        if not annotation.startswith("localhost/"):
            return "type"
        if annotation[len("localhost/"):] != profile.get("localhostProfile"):
            return "localhostProfile"
    return None


def _seccomp_annotations_match(annotations: dict[str, str], spec: dict[str, Any], path: FieldPath,
                               errs: Errors) -> None:
    pod_profile = as_dict(spec.get("securityContext")).get("seccompProfile")
    if isinstance(pod_profile, dict) and SECCOMP_POD_ANNOTATION in annotations:
        wrong = _seccomp_match_problem(annotations[SECCOMP_POD_ANNOTATION], pod_profile)
        if wrong:
            errs.forbidden("api-pod-seccomp-annotation-match", path.child("securityContext", "seccompProfile", wrong),
                           f"the seccomp {wrong} of the field and of annotation {SECCOMP_POD_ANNOTATION} differ: "
                           "keep the field and remove the annotation")
    for container, at in pod_security.containers_with_paths(spec, path):
        profile = as_dict(container.get("securityContext")).get("seccompProfile")
        key = SECCOMP_CONTAINER_PREFIX + str(container.get("name"))
        if isinstance(profile, dict) and key in annotations:
            wrong = _seccomp_match_problem(annotations[key], profile)
            if wrong:
                errs.forbidden("api-pod-seccomp-annotation-match",
                               at.child("securityContext", "seccompProfile", wrong),
                               f"the seccomp {wrong} of the field and of annotation {key} differ: keep the field "
                               "and remove the annotation")


def _apparmor_match_problem(annotation: str, profile: dict[str, Any]) -> str | None:
    kind = profile.get("type")
    if kind == "Unconfined" and annotation != "unconfined":
        return "type"
    if kind == "RuntimeDefault" and annotation != "runtime/default":
        return "type"
    if kind == "Localhost":
        if not annotation.startswith("localhost/"):
            return "type"
        if annotation[len("localhost/"):] != profile.get("localhostProfile"):
            return "localhostProfile"
    return None


def _apparmor_annotations_match(annotations: dict[str, str], spec: dict[str, Any], path: FieldPath,
                                errs: Errors, *, is_pod: bool) -> None:
    """validateAppArmorAnnotationsAndFieldsMatchOnCreate. On a Pod the API
    server first copies an annotation into a container's unset field, so only
    a container's own field can disagree; in a template the pod's field
    counts for a container that sets none."""
    if as_dict(spec.get("os")).get("name") == "windows":
        return
    pod_profile = as_dict(spec.get("securityContext")).get("appArmorProfile")
    for container, at in pod_security.containers_with_paths(spec, path):
        own = as_dict(container.get("securityContext")).get("appArmorProfile")
        profile = own if isinstance(own, dict) else None if is_pod else pod_profile
        key = APPARMOR_CONTAINER_PREFIX + str(container.get("name"))
        if not isinstance(profile, dict) or key not in annotations:
            continue
        wrong = _apparmor_match_problem(annotations[key], profile)
        if wrong:
            errs.forbidden("api-pod-apparmor-annotation-match", at.child("securityContext", "appArmorProfile", wrong),
                           f"the AppArmor {wrong} of the field and of annotation {key} differ: keep the field and "
                           "remove the annotation")


# ---- the rest of the pod spec ---------------------------------------------------

def _enum(value: Any, check: str, path: FieldPath, allowed: tuple[str, ...], errs: Errors) -> None:
    # An empty value is defaulted before validation; only a wrong one is refused.
    if isinstance(value, str) and value and value not in allowed:
        errs.not_supported(check, path, value, allowed)


def _resource_claims(claims: Any, path: FieldPath, ctx: Context, errs: Errors) -> None:
    """validatePodResourceClaims. DynamicResourceAllocation is GA (on) from
    1.34; before, the API server drops spec.resourceClaims."""
    if not ctx.at_least(34):
        return
    names: set[str] = set()
    for index, claim in enumerate(as_list(claims)):
        claim = as_dict(claim)
        at = path.index(index)
        name = claim.get("name")
        if name == "":
            errs.required("api-pod-resource-claim-name", at.child("name"), "the name containers use for this claim")
        elif isinstance(name, str):
            if name in names:
                errs.duplicate("api-pod-resource-claim-name", at.child("name"), name)
            else:
                errs.each("api-pod-resource-claim-name", at.child("name"), name, formats.dns_label_problems(name))
                names.add(name)
        claim_name, template_name = claim.get("resourceClaimName"), claim.get("resourceClaimTemplateName")
        if claim_name is not None and template_name is not None:
            errs.invalid("api-pod-resource-claim-source", at, claim,
                         "set one of resourceClaimName and resourceClaimTemplateName, not both")
        if claim_name is None and template_name is None:
            errs.invalid("api-pod-resource-claim-source", at, claim,
                         "set one of resourceClaimName and resourceClaimTemplateName")
        for key, value in (("resourceClaimName", claim_name), ("resourceClaimTemplateName", template_name)):
            if isinstance(value, str):
                errs.each("api-pod-resource-claim-ref", at.child(key), value, formats.name_is_dns_subdomain(value))


def _host_network_ports(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    """validatePodHostNetworkDeps: with hostNetwork a container's hostPort,
    when set, is its containerPort (a Pod's unset hostPort is defaulted to
    it; a template's may stay unset)."""
    if spec.get("hostNetwork") is not True:
        return
    for index, container in enumerate(as_list(spec.get("containers"))):
        for position, port in enumerate(as_list(as_dict(container).get("ports"))):
            port = as_dict(port)
            host, target = port.get("hostPort"), port.get("containerPort")
            if formats.is_int(host) and host != 0 and host != target:
                errs.invalid("api-pod-host-network-ports",
                             path.child("containers").index(index).child("ports").index(position).child("hostPort"),
                             host, "with hostNetwork the hostPort must equal containerPort (or be left out)")


def _dns_config(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    """validatePodDNSConfig."""
    at = path.child("dnsConfig")
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if config is None:
            errs.required("api-pod-dns-none", at, "dnsPolicy None needs a dnsConfig with the nameservers to use")
            return
        if not as_list(as_dict(config).get("nameservers")):
            errs.required("api-pod-dns-none", at.child("nameservers"),
                          "dnsPolicy None needs at least one nameserver")
            return
    if not isinstance(config, dict):
        return
    nameservers = as_list(config.get("nameservers"))
    if len(nameservers) > DNS_NAMESERVERS_MAX:
        errs.invalid("api-pod-dns-nameservers", at.child("nameservers"), nameservers,
                     f"must not have more than {DNS_NAMESERVERS_MAX} nameservers")
    for index, server in enumerate(nameservers):
        if isinstance(server, str) and formats.parse_ip(server) is None:
            errs.invalid("api-pod-dns-nameservers", at.child("nameservers").index(index), server, IP_DETAIL)
    searches = [search for search in as_list(config.get("searches")) if isinstance(search, str)]
    if len(searches) > DNS_SEARCHES_MAX:
        errs.invalid("api-pod-dns-searches", at.child("searches"), searches,
                     f"must not have more than {DNS_SEARCHES_MAX} search domains")
    if len(" ".join(searches)) > DNS_SEARCH_CHARS_MAX:
        errs.invalid("api-pod-dns-searches", at.child("searches"), searches,
                     f"must not have more than {DNS_SEARCH_CHARS_MAX} characters, counting the spaces between them")
    for index, search in enumerate(searches):
        trimmed = search[:-1] if search.endswith(".") else search
        if ctx.at_least(33):
            # RelaxedDNSSearchValidation (on by default since 1.33): "." alone and '_' are allowed.
            if search != ".":
                errs.each("api-pod-dns-search", at.child("searches").index(index), trimmed,
                          formats.dns_subdomain_with_underscore_problems(trimmed))
        else:
            errs.each("api-pod-dns-search", at.child("searches").index(index), trimmed,
                      formats.dns_subdomain_problems(trimmed))
    for index, option in enumerate(as_list(config.get("options"))):
        if not as_dict(option).get("name"):
            errs.required("api-pod-dns-option-name", at.child("options").index(index), "a resolver option's name")


def _readiness_gates(gates: Any, path: FieldPath, errs: Errors) -> None:
    for index, gate in enumerate(as_list(gates)):
        condition = as_dict(gate).get("conditionType")
        if isinstance(condition, str):
            errs.each("api-pod-readiness-gate", path.index(index).child("conditionType"), condition,
                      formats.qualified_name_problems(condition))


def _scheduling_gates(gates: Any, path: FieldPath, errs: Errors) -> None:
    seen: set[str] = set()
    for index, gate in enumerate(as_list(gates)):
        name = as_dict(gate).get("name")
        if not isinstance(name, str):
            continue
        # Reported at the entry, not at its name, as the API server does.
        errs.each("api-pod-scheduling-gate", path.index(index), name, formats.qualified_name_problems(name))
        if name in seen:
            errs.duplicate("api-pod-scheduling-gate", path.index(index), name)
        seen.add(name)


def _names(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")  # the deprecated field stands in
    if isinstance(account, str) and account:
        errs.each("api-pod-service-account-name", path.child("serviceAccountName"), account,
                  formats.name_is_dns_subdomain(account))
    for key, check, problems in (
            ("nodeName", "api-pod-node-name", formats.name_is_dns_subdomain),
            ("hostname", "api-pod-hostname", formats.dns_label_problems),
            ("subdomain", "api-pod-subdomain", formats.dns_label_problems),
            ("priorityClassName", "api-pod-priority-class-name", formats.name_is_dns_subdomain)):
        value = spec.get(key)
        if isinstance(value, str) and value:
            errs.each(check, path.child(key), value, problems(value))
    runtime_class = spec.get("runtimeClassName")
    if isinstance(runtime_class, str):
        errs.each("api-pod-runtime-class-name", path.child("runtimeClassName"), runtime_class,
                  formats.name_is_dns_subdomain(runtime_class))


def _host_aliases(aliases: Any, path: FieldPath, errs: Errors) -> None:
    for index, alias in enumerate(as_list(aliases)):
        alias = as_dict(alias)
        at = path.index(index)
        address = alias.get("ip")
        # Legacy IP parsing: StrictIPCIDRValidation is off by default at 1.34.
        if isinstance(address, str) and formats.parse_ip(address) is None:
            errs.invalid("api-pod-host-alias-ip", at.child("ip"), address, IP_DETAIL)
        for position, name in enumerate(as_list(alias.get("hostnames"))):
            if isinstance(name, str):
                errs.each("api-pod-host-alias-hostname", at.child("hostnames").index(position), name,
                          formats.dns_subdomain_problems(name))


_TPL = "core: ValidatePodTemplateSpec"
_ANN = "core: ValidatePodSpecificAnnotations"
_PS = "core: ValidatePodSpec"
_CREATE = "core: ValidatePodCreate"
_DEFAULTED = "filled by defaulting"
_OWN_ROWS = (
    Row((POD_TEMPLATE,), _TPL + " (ValidateLabels)", "the template's label keys are qualified names and values "
        "label values (reported at `<template>.labels`)", "api-pod-template-labels"),
    Row((POD_TEMPLATE,), _TPL + " (ValidateAnnotations)", "the template's annotation keys are qualified names and "
        "all together at most 256 KiB (reported at `<template>.annotations`)", "api-pod-template-annotations"),
    Row((POD_TEMPLATE,), _ANN, "with the mirror pod annotation kubernetes.io/config.mirror, spec.nodeName is set",
        "api-pod-mirror-annotation"),
    Row((POD_TEMPLATE,), _ANN + " (ValidateTolerationsInPodAnnotations)", "the "
        "scheduler.alpha.kubernetes.io/tolerations annotation is a JSON list of tolerations (its tolerations are "
        "then held to the toleration rules)", "api-pod-tolerations-annotation"),
    Row((POD_TEMPLATE,), _ANN + " (GetDeletionCostFromPodAnnotations)", "controller.kubernetes.io/"
        "pod-deletion-cost is a decimal 32-bit integer without '+' or leading zeros (PodDeletionCost, on)",
        "api-pod-deletion-cost"),
    Row((POD_TEMPLATE,), _ANN + " (ValidateSeccompPodAnnotations)", "the deprecated seccomp annotations hold "
        "runtime/default, docker/default, unconfined or localhost/<relative path>", "api-pod-seccomp-annotation"),
    Row((POD_TEMPLATE,), _ANN + " (ValidateAppArmorPodAnnotations)", "a container.apparmor.security.beta."
        "kubernetes.io/<name> annotation names a container and holds runtime/default, unconfined, localhost/... "
        "or nothing", "api-pod-apparmor-annotation"),
    Row((POD_TEMPLATE,), "core: validateSeccompAnnotationsAndFields", "where a seccomp annotation and the "
        "seccompProfile field are both set, they agree", "api-pod-seccomp-annotation-match"),
    Row((POD_TEMPLATE,), "core: validateAppArmorAnnotationsAndFieldsMatchOnCreate", "where an AppArmor annotation "
        "and the appArmorProfile field (the container's, in a template else the pod's) are both set, they agree "
        "(not for windows pods)", "api-pod-apparmor-annotation-match"),
    Row((POD_TEMPLATE, "Pod"), _TPL + ", " + _CREATE, "ephemeralContainers are not set in a template nor on a "
        "Pod's create", None, "ported by the Containers section (api-container-ephemeral-template, "
        "api-container-ephemeral-create)"),
    Row(("Pod",), _CREATE, "nodeName is not set while schedulingGates remain", "api-pod-node-name-scheduling-gates"),
    Row((POD_TEMPLATE,), _PS + " (validateContainers)", "containers is not empty (the JSON schema requires the "
        "field, not an entry)", None, "ported by the Containers section (api-container-list-required)"),
    Row((POD_TEMPLATE,), _PS, "terminationGracePeriodSeconds is required", None, _DEFAULTED + " (30)"),
    Row((POD_TEMPLATE,), "core: validateRestartPolicy", "restartPolicy is Always, OnFailure or Never",
        "api-pod-restart-policy"),
    Row((POD_TEMPLATE,), "core: validateRestartPolicy", "restartPolicy is required", None, _DEFAULTED + " (Always)"),
    Row((POD_TEMPLATE,), "core: validateDNSPolicy", "dnsPolicy is ClusterFirstWithHostNet, ClusterFirst, Default or "
        "None", "api-pod-dns-policy"),
    Row((POD_TEMPLATE,), "core: validateDNSPolicy", "dnsPolicy is required", None, _DEFAULTED + " (ClusterFirst)"),
    Row((POD_TEMPLATE,), "core: validatePodDNSConfig", "dnsPolicy None needs a dnsConfig with at least one "
        "nameserver", "api-pod-dns-none"),
    Row((POD_TEMPLATE,), "core: validatePodDNSConfig", "at most 3 nameservers, each an IP address (legacy "
        "parsing: StrictIPCIDRValidation is off at 1.34)", "api-pod-dns-nameservers"),
    Row((POD_TEMPLATE,), "core: validatePodDNSConfig", "at most 32 search domains, 2048 characters with the spaces "
        "between them", "api-pod-dns-searches"),
    Row((POD_TEMPLATE,), "core: validatePodDNSConfig", "each search domain, without one trailing dot, is a DNS "
        "subdomain; '_' and a lone '.' are allowed (RelaxedDNSSearchValidation, on since 1.33, GA at 1.34)",
        "api-pod-dns-search"),
    Row((POD_TEMPLATE,), "core: validatePodDNSConfig", "each resolver option has a name", "api-pod-dns-option-name"),
    Row((POD_TEMPLATE,), "core: validatePodHostNetworkDeps", "with hostNetwork, a container's hostPort when set "
        "equals its containerPort", "api-pod-host-network-ports"),
    Row((POD_TEMPLATE,), "core: validateImagePullSecrets", "an imagePullSecrets entry sets only name", None,
        "refused by the JSON schema (schema-invalid): the entry has no other field"),
    Row((POD_TEMPLATE,), "core: validateReadinessGates", "each readiness gate's conditionType is a qualified name",
        "api-pod-readiness-gate"),
    Row((POD_TEMPLATE,), "core: validateSchedulingGates", "each scheduling gate's name is a qualified name, and "
        "the names are unique (both reported at the entry)", "api-pod-scheduling-gate"),
    Row((POD_TEMPLATE,), _PS + " (ValidateServiceAccountName)", "serviceAccountName (or the deprecated "
        "serviceAccount it is taken from) is a DNS subdomain", "api-pod-service-account-name"),
    Row(("Pod",), "core: validatePodMetadataAndSpec", "a Pod with a projected "
        "serviceAccountToken source names its service account", None, "the ServiceAccount admission plugin sets "
        "serviceAccountName to `default` before validation"),
    Row((POD_TEMPLATE,), _PS + " (ValidateNodeName)", "nodeName is a DNS subdomain", "api-pod-node-name"),
    Row((POD_TEMPLATE,), _PS, "activeDeadlineSeconds is between 1 and 2147483647", "api-pod-active-deadline"),
    Row((POD_TEMPLATE,), _PS, "hostname is a DNS label", "api-pod-hostname"),
    Row((POD_TEMPLATE,), _PS, "subdomain is a DNS label", "api-pod-subdomain"),
    Row((POD_TEMPLATE,), _PS + " (hostnameOverride)", "hostnameOverride is a DNS subdomain and excludes "
        "setHostnameAsFQDN and hostNetwork", None, "behind HostnameOverride, off by default at 1.34 (alpha): the "
        "API server drops the field"),
    Row((POD_TEMPLATE,), _PS, "setHostnameAsFQDN", None, "no condition at the API server; the kubelet refuses to "
        "start a pod whose FQDN is longer than 64 characters"),
    Row((POD_TEMPLATE,), _PS, "enableServiceLinks, automountServiceAccountToken, schedulerName", None,
        "no condition at the API server (any value is accepted)"),
    Row((POD_TEMPLATE,), "core: ValidateHostAliases", "each host alias's ip is an IP address (legacy parsing)",
        "api-pod-host-alias-ip"),
    Row((POD_TEMPLATE,), "core: ValidateHostAliases", "each host alias's hostnames are DNS subdomains",
        "api-pod-host-alias-hostname"),
    Row((POD_TEMPLATE,), _PS + " (ValidatePriorityClassName)", "priorityClassName is a DNS subdomain",
        "api-pod-priority-class-name"),
    Row((POD_TEMPLATE,), "Priority admission", "priorityClassName names an existing PriorityClass; priority is "
        "not set by hand", None, "admission with the cluster's PriorityClass objects, when the pods are created"),
    Row((POD_TEMPLATE,), _PS + " (ValidateRuntimeClassName)", "runtimeClassName, when set, is a DNS subdomain",
        "api-pod-runtime-class-name"),
    Row((POD_TEMPLATE,), "RuntimeClass admission", "runtimeClassName names an existing RuntimeClass", None,
        "admission with the cluster's RuntimeClass objects, when the pods are created"),
    Row((POD_TEMPLATE,), "core: ValidatePreemptionPolicy", "preemptionPolicy, when set, is PreemptLowerPriority or "
        "Never (an empty string is `Required`; left out it is defaulted)", "api-pod-preemption-policy"),
    Row((POD_TEMPLATE,), "core: validatePodResourceClaim", "each resource claim's name is set, unique and a DNS "
        "label (DynamicResourceAllocation, GA at 1.34)", "api-pod-resource-claim-name"),
    Row((POD_TEMPLATE,), "core: validatePodResourceClaim", "each resource claim sets exactly one of "
        "resourceClaimName and resourceClaimTemplateName", "api-pod-resource-claim-source"),
    Row((POD_TEMPLATE,), "core: validatePodResourceClaim", "resourceClaimName and resourceClaimTemplateName are "
        "DNS subdomains", "api-pod-resource-claim-ref"),
    Row((POD_TEMPLATE,), "core: PodValidationOptions (GetValidationOptionsFromPodSpecAndMeta)", "relaxations kept "
        "for objects that already hold an old invalid value (label values in selectors, hugepages, deletion cost, "
        "non-local token paths, namespaced sysctls with host namespaces)", None, "update only: on create every "
        "relaxation is off, as ported here"),
    Row((POD_TEMPLATE, "Pod"), "core: ValidatePodUpdate, ValidatePodSpecificAnnotationUpdates, "
        "ValidatePodTemplateUpdate", "what may change in a pod or template after create", None,
        "update only (the `immutable-field` rule in `validate --changed` covers what GitOps changes)"),
    Row(("Pod",), "core: ValidatePodStatusUpdate", "pod status", None,
        "status is written by controllers, not by manifests"),
)
COVERAGE = (_OWN_ROWS + pod_volumes.ROWS + pod_scheduling.ROWS + pod_security.ROWS + pod_resources.ROWS)
COVERAGE_TITLE = "Pod templates and pod specs"
COVERAGE_INTRO = (
    "Ported from kubernetes/kubernetes `pkg/apis/core/validation/validation.go` (the stored copy reads as a "
    "1.33 development snapshot: it has PodLevelResourcesEnabled and AllowSidecarResizePolicy but not the 1.33 "
    "matchLabelKeys selector merge nor 1.34's podCertificate source) with the 1.34 changes applied from "
    "`pkg/api/pod/util.go` (the validation options and the fields dropped before validation) and the 1.34 "
    "feature-gate defaults: ImageVolume off (image volumes are dropped), ClusterTrustBundleProjection off, "
    "SELinuxMount off (seLinuxChangePolicy Recursive only), StrictIPCIDRValidation off (legacy IP parsing); "
    "PodLevelResources, DynamicResourceAllocation, UserNamespacesSupport, SupplementalGroupsPolicy, "
    "RelaxedDNSSearchValidation and MatchLabelKeysInPodTopologySpreadSelectorMerge on. Each check names the "
    "minor its gate turned on at, so an older `kubernetes_version` gets the older rule. Paths are the API "
    "server's, including its oddities (`spec.template.labels`, `spec.HostPID`, `volumes[i].downwarAPI`). "
    "Deployments and Jobs run these rules on their template, but a Pod-only rule (hostPort defaulting, "
    "ephemeral volume claim names, the matchLabelKeys merge) bites only when the controller creates the pods: "
    "those are checked on kind Pod. Warnings (`GetWarningsForPod`) are not refusals and are not listed."
)
VALIDATORS = {("v1", "Pod"): validate_pod}
