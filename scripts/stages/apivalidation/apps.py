"""apps/v1: Deployment, StatefulSet, DaemonSet, ReplicaSet (Kubernetes'
pkg/apis/apps/validation).

Also the helpers other groups reuse from it upstream: int-or-percent values
(PodDisruptionBudget) and matching a label selector against labels (Job).
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

from scripts.stages.apivalidation import formats, meta, pods, storage
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import NameRule, as_dict, as_list

STATEFULSET_NAME = NameRule("api-statefulset-name", formats.name_is_dns_label)
# The StatefulSet controller labels each pod `controller-revision-hash: <name>-<hash>`, the
# hash being a uint32 in decimal (up to 10 characters); a label value has at most 63.
STATEFULSET_NAME_MAX = formats.LABEL_VALUE_MAX - 1 - 10
_ATOI = re.compile(r"[+-]?[0-9]+")

# ---- shared helpers -----------------------------------------------------------


def nonnegative(check: str, path: FieldPath, value: Any, errs: Errors) -> None:
    """apimachinery's ValidateNonnegativeField, for a value that is set."""
    if formats.is_int(value) and value < 0:
        errs.invalid(check, path, value, "must be greater than or equal to 0")


def int_or_percent(check: str, path: FieldPath, value: Any, errs: Errors) -> None:
    """ValidatePositiveIntOrPercent: a non-negative integer or 'N%'. Other
    types are refused by decoding (the JSON schema's finding)."""
    if isinstance(value, str):
        errs.each(check, path, value, formats.percent_problems(value))
    else:
        nonnegative(check, path, value, errs)


def percent_at_most_100(check: str, path: FieldPath, value: Any, errs: Errors) -> None:
    """IsNotMoreThan100Percent: only a well-formed percent is judged."""
    if isinstance(value, str) and not formats.percent_problems(value) and int(value[:-1]) > 100:
        errs.invalid(check, path, value, "must not be greater than 100%")


def int_or_percent_value(value: Any) -> int:
    """What the API server compares with 0: the percent's number, the integer,
    or a string read as an integer (0 when it is not one)."""
    if isinstance(value, str):
        if not formats.percent_problems(value):
            return int(value[:-1])
        return int(value) if _ATOI.fullmatch(value) else 0
    return value if formats.is_int(value) else 0


def selector_is_valid(selector: Any) -> bool:
    """Would the API server turn this selector into a label selector?"""
    probe = Errors()
    meta.validate_label_selector(selector, ROOT, probe)
    return not probe.items


def selector_matches(selector: Any, labels: dict[str, Any]) -> bool:
    """Does a (valid) LabelSelector select these labels? A missing selector
    selects nothing; an empty one everything."""
    if selector is None:
        return False
    selector = as_dict(selector)
    for key, value in as_dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for requirement in as_list(selector.get("matchExpressions")):
        requirement = as_dict(requirement)
        key, operator = requirement.get("key"), requirement.get("operator")
        values = as_list(requirement.get("values"))
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def template_labels(template: Any) -> dict[str, Any]:
    return as_dict(as_dict(as_dict(template).get("metadata")).get("labels"))


# ---- the workload specs ---------------------------------------------------------


def _selector(spec: dict[str, Any], path: FieldPath, errs: Errors, kind: str) -> None:
    """spec.selector: required, valid, not empty, and selecting the template.
    (A DaemonSet without one is refused only as selecting nothing.)"""
    at = path.child("selector")
    selector = spec.get("selector")
    if selector is None:
        if kind != "DaemonSet":
            errs.required("api-apps-selector", at, "")
    else:
        meta.validate_label_selector(selector, at, errs)
        if isinstance(selector, dict) and meta.selector_is_empty(selector):
            errs.invalid("api-apps-selector", at, selector, f"an empty selector would select every pod in the "
                         f"namespace, which a {kind} may not do: set matchLabels or matchExpressions")
    if selector is not None and not selector_is_valid(selector):
        return  # the API server cannot build the selector; the selector rows report why
    if isinstance(selector, dict) and meta.selector_is_empty(selector):
        return  # an empty selector matches everything, and is refused above
    labels = template_labels(spec.get("template"))
    if not selector_matches(selector, labels):
        errs.invalid("api-apps-selector-matches-template", path.child("template", "metadata", "labels"), labels,
                     "the selector does not select the template's labels: put every label the selector asks "
                     "for on the pod template")


def _template_restrictions(template: Any, path: FieldPath, kind: str, errs: Errors) -> None:
    """A controller that keeps its pods running: restartPolicy Always (the
    default) and no activeDeadlineSeconds."""
    spec = as_dict(as_dict(template).get("spec"))
    restart = spec.get("restartPolicy")
    if isinstance(restart, str) and restart not in ("", "Always"):
        errs.not_supported("api-apps-template-restart-policy", path.child("spec", "restartPolicy"), restart,
                           ["Always"])
    if spec.get("activeDeadlineSeconds") is not None:
        errs.forbidden("api-apps-template-active-deadline", path.child("spec", "activeDeadlineSeconds"),
                       f"activeDeadlineSeconds would end the pods of a {kind}: remove it")


def _common_counts(spec: dict[str, Any], path: FieldPath, errs: Errors, replicas: bool = True) -> None:
    if replicas:
        nonnegative("api-apps-replicas", path.child("replicas"), spec.get("replicas"), errs)
    nonnegative("api-apps-min-ready-seconds", path.child("minReadySeconds"), spec.get("minReadySeconds"), errs)


def _rolling_update_deployment(rolling: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    # Defaulting fills a missing maxUnavailable or maxSurge with 25%.
    unavailable = rolling.get("maxUnavailable", "25%")
    surge = rolling.get("maxSurge", "25%")
    unavailable = "25%" if unavailable is None else unavailable
    surge = "25%" if surge is None else surge
    int_or_percent("api-apps-int-or-percent", path.child("maxUnavailable"), unavailable, errs)
    int_or_percent("api-apps-int-or-percent", path.child("maxSurge"), surge, errs)
    if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
        errs.invalid("api-deployment-rolling-update-zero", path.child("maxUnavailable"), unavailable,
                     "may not be 0 when `maxSurge` is 0: the rollout could never replace a pod")
    percent_at_most_100("api-apps-percent-max", path.child("maxUnavailable"), unavailable, errs)


def _deployment_strategy(strategy: Any, path: FieldPath, errs: Errors) -> None:
    strategy = as_dict(strategy)
    kind = strategy.get("type") or "RollingUpdate"  # the default
    if not isinstance(kind, str):
        return
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            errs.forbidden("api-deployment-recreate-rolling-update", path.child("rollingUpdate"),
                           "may not be specified when strategy `type` is 'Recreate'")
    elif kind == "RollingUpdate":
        _rolling_update_deployment(as_dict(rolling), path.child("rollingUpdate"), errs)
    else:
        errs.not_supported("api-deployment-strategy-type", path, strategy, ["Recreate", "RollingUpdate"])


def validate_deployment(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    _common_counts(spec, path, errs)
    _selector(spec, path, errs, "Deployment")
    template = spec.get("template")
    pods.validate_pod_template(template, path.child("template"), ctx, errs)
    _template_restrictions(template, path.child("template"), "Deployment", errs)
    _deployment_strategy(spec.get("strategy"), path.child("strategy"), errs)
    history = spec.get("revisionHistoryLimit")
    nonnegative("api-apps-revision-history-limit", path.child("revisionHistoryLimit"), history, errs)
    deadline = spec.get("progressDeadlineSeconds", 600)  # the default
    deadline = 600 if deadline is None else deadline
    nonnegative("api-deployment-progress-deadline-nonnegative", path.child("progressDeadlineSeconds"), deadline,
                errs)
    ready = spec.get("minReadySeconds")
    ready = ready if formats.is_int(ready) else 0
    if formats.is_int(deadline) and deadline <= ready:
        errs.invalid("api-deployment-progress-deadline", path.child("progressDeadlineSeconds"), deadline,
                     f"must be greater than minReadySeconds ({ready}); unset, it is 600")


def validate_replicaset(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    _common_counts(spec, path, errs)
    _selector(spec, path, errs, "ReplicaSet")
    template = spec.get("template")
    pods.validate_pod_template(template, path.child("template"), ctx, errs)
    _template_restrictions(template, path.child("template"), "ReplicaSet", errs)


# ---- DaemonSet ------------------------------------------------------------------


def _daemonset_strategy(strategy: Any, path: FieldPath, errs: Errors) -> None:
    strategy = as_dict(strategy)
    kind = strategy.get("type") or "RollingUpdate"  # the default
    if kind == "OnDelete" or not isinstance(kind, str):
        return
    if kind != "RollingUpdate":
        errs.not_supported("api-daemonset-update-strategy-type", path, strategy, ["RollingUpdate", "OnDelete"])
        return
    rolling = as_dict(strategy.get("rollingUpdate"))
    at = path.child("rollingUpdate")
    # Defaulting: maxUnavailable 1, maxSurge 0.
    unavailable = 1 if rolling.get("maxUnavailable") is None else rolling["maxUnavailable"]
    surge = 0 if rolling.get("maxSurge") is None else rolling["maxSurge"]
    for name, value in (("maxUnavailable", unavailable), ("maxSurge", surge)):
        int_or_percent("api-apps-int-or-percent", at.child(name), value, errs)
    for name, value in (("maxUnavailable", unavailable), ("maxSurge", surge)):
        percent_at_most_100("api-apps-percent-max", at.child(name), value, errs)
    has_unavailable = int_or_percent_value(unavailable) != 0
    has_surge = int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        errs.invalid("api-daemonset-surge-exclusive", at.child("maxSurge"), surge,
                     "may not be set when maxUnavailable is non-zero (unset, maxUnavailable is 1): set "
                     "maxUnavailable: 0 to surge")
    elif not has_unavailable and not has_surge:
        errs.required("api-daemonset-rolling-update-zero", at.child("maxUnavailable"),
                      "cannot be 0 when maxSurge is 0: the rollout could never replace a pod")


def validate_daemonset(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    _common_counts(spec, path, errs, replicas=False)
    _selector(spec, path, errs, "DaemonSet")
    template = spec.get("template")
    pods.validate_pod_template(template, path.child("template"), ctx, errs)
    _template_restrictions(template, path.child("template"), "DaemonSet", errs)
    _daemonset_strategy(spec.get("updateStrategy"), path.child("updateStrategy"), errs)
    nonnegative("api-apps-revision-history-limit", path.child("revisionHistoryLimit"),
                spec.get("revisionHistoryLimit"), errs)


# ---- StatefulSet ----------------------------------------------------------------


def _statefulset_strategy(strategy: Any, path: FieldPath, errs: Errors) -> None:
    strategy = as_dict(strategy)
    kind = strategy.get("type") or "RollingUpdate"  # the default
    if not isinstance(kind, str):
        return
    rolling = strategy.get("rollingUpdate")
    if kind == "OnDelete":
        if rolling is not None:
            errs.invalid("api-statefulset-ondelete-rolling-update", path.child("rollingUpdate"), rolling,
                         "only allowed for updateStrategy 'RollingUpdate'")
    elif kind == "RollingUpdate":
        nonnegative("api-statefulset-partition", path.child("rollingUpdate", "partition"),
                    as_dict(rolling).get("partition"), errs)
    else:
        errs.invalid("api-statefulset-update-strategy-type", path, strategy,
                     "must be 'RollingUpdate' or 'OnDelete'")


def _claim_templates(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> list[str]:
    """The claim templates' metadata; returns the names that can become pod
    volumes. (A claim '<claim>-<set>-<ordinal>' then always fits 253 characters.)"""
    usable = []
    for index, claim in enumerate(as_list(spec.get("volumeClaimTemplates"))):
        at = path.index(index).child("metadata")
        metadata = as_dict(as_dict(claim).get("metadata"))
        claim_name = metadata.get("name")
        if not claim_name:
            errs.required("api-statefulset-claim-template-name", at.child("name"),
                          "each claim template needs a name: the pods mount it as a volume of that name")
            continue
        if not isinstance(claim_name, str):
            continue
        problems = formats.dns_label_problems(claim_name)
        errs.each("api-statefulset-claim-template-name", at.child("name"), claim_name, problems)
        meta.validate_labels(metadata.get("labels"), at.child("labels"), errs)
        meta.validate_annotations(metadata.get("annotations"), at.child("annotations"), errs)
        # The controller creates each claim with this spec: a claim's rules
        # (the claim registry prepares its data sources as for any claim).
        claim_errors = Errors()
        storage.validate_pvc_spec(as_dict(claim).get("spec"), path.index(index).child("spec"), ctx, claim_errors)
        errs.items += [replace(e, check="api-statefulset-claim-template-spec") for e in claim_errors.items]
        if not problems:
            usable.append(claim_name)
    return usable


def _with_claim_volumes(template: Any, claims: list[str], set_name: str) -> Any:
    """The template as the controller turns it into pods: one volume per claim
    template, replacing a volume of the same name."""
    if not claims or not isinstance(template, dict) or not isinstance(template.get("spec"), dict) \
            or not isinstance(template["spec"].get("volumes", []), list):
        return template
    template = copy.deepcopy(template)
    spec = template["spec"]

    def claim_volume(claim: str) -> dict[str, Any]:
        return {"name": claim, "persistentVolumeClaim": {"claimName": f"{claim}-{set_name or 'set'}-0"}}

    # Replaced in place, so that the template's own volumes keep their index in messages.
    volumes = [claim_volume(v["name"]) if isinstance(v, dict) and v.get("name") in claims else v
               for v in as_list(spec.get("volumes"))]
    named = [v.get("name") for v in volumes if isinstance(v, dict)]
    spec["volumes"] = volumes + [claim_volume(claim) for claim in claims if claim not in named]
    return template


def _pvc_retention(policy: Any, path: FieldPath, errs: Errors) -> None:
    policy = as_dict(policy)
    for name in ("whenDeleted", "whenScaled"):
        value = policy.get(name)
        # An empty value is defaulted to Retain.
        if isinstance(value, str) and value and value not in ("Retain", "Delete"):
            errs.not_supported("api-statefulset-pvc-retention-policy", path.child(name), value, ["Retain", "Delete"])


def validate_statefulset(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    metadata = doc.get("metadata")
    meta.validate_object_meta(metadata, ROOT.child("metadata"), errs, STATEFULSET_NAME)
    name = as_dict(metadata).get("name")
    if isinstance(name, str) and STATEFULSET_NAME_MAX < len(name) <= formats.DNS_LABEL_MAX:
        errs.invalid("api-statefulset-name-length", ROOT.child("metadata", "name"), name,
                     f"must be no more than {STATEFULSET_NAME_MAX} characters: the controller labels each pod "
                     "with controller-revision-hash '<name>-<hash of up to 10 characters>', and a label value "
                     "has at most 63, so its pods would be refused")
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    policy = spec.get("podManagementPolicy")
    if isinstance(policy, str) and policy and policy not in ("OrderedReady", "Parallel"):
        errs.invalid("api-statefulset-pod-management-policy", path.child("podManagementPolicy"), policy,
                     "must be 'OrderedReady' or 'Parallel'")
    _statefulset_strategy(spec.get("updateStrategy"), path.child("updateStrategy"), errs)
    _pvc_retention(spec.get("persistentVolumeClaimRetentionPolicy"),
                   path.child("persistentVolumeClaimRetentionPolicy"), errs)
    _common_counts(spec, path, errs)
    nonnegative("api-statefulset-ordinals-start", path.child("ordinals.start"),
                as_dict(spec.get("ordinals")).get("start"), errs)
    service = spec.get("serviceName")
    if isinstance(service, str) and service:
        errs.each("api-statefulset-service-name", path.child("serviceName"), service,
                  formats.dns_label_problems(service))
    _selector(spec, path, errs, "StatefulSet")
    claims = _claim_templates(spec, path.child("volumeClaimTemplates"), ctx, errs)
    template = spec.get("template")
    pods.validate_pod_template(_with_claim_volumes(template, claims, name if isinstance(name, str) else ""),
                               path.child("template"), ctx, errs)
    _template_restrictions(template, path.child("template"), "StatefulSet", errs)


_AS = "apps: ValidateDeploymentSpec, ValidateReplicaSetSpec, ValidateStatefulSetSpec"
_TEMPLATE = "apps: ValidatePodTemplateSpecForReplicaSet, ValidateDaemonSetSpec, ValidateStatefulSetSpec"
_WORKLOADS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
_CONTROLLER = ("derived from the StatefulSet controller (pkg/controller/statefulset): the API server accepts such a "
               "StatefulSet, then refuses every pod or claim the controller creates from it")
COVERAGE = (
    Row(("Deployment", "ReplicaSet", "StatefulSet"), _AS, "spec.replicas is not negative", "api-apps-replicas"),
    Row(_WORKLOADS, _AS + ", ValidateDaemonSetSpec", "spec.minReadySeconds is not negative",
        "api-apps-min-ready-seconds"),
    Row(("Deployment", "DaemonSet"), "apps: ValidateDeploymentSpec, ValidateDaemonSetSpec",
        "spec.revisionHistoryLimit, when set, is not negative (StatefulSet does not check it)",
        "api-apps-revision-history-limit"),
    Row(_WORKLOADS, _AS + ", ValidateDaemonSetSpec", "spec.selector is set (the JSON schema requires it too) and "
        "has at least one matchLabels entry or expression", "api-apps-selector"),
    Row(_WORKLOADS, _TEMPLATE, "the selector selects the template's labels", "api-apps-selector-matches-template"),
    Row(_WORKLOADS, _AS + " (LabelSelectorAsSelector)", "a selector the API server cannot convert is refused "
        "once more, as `invalid label selector`", None,
        "the same selector is already refused by the label selector rows; a second line adds nothing"),
    Row(_WORKLOADS, _TEMPLATE, "the template's restartPolicy is Always (the default)",
        "api-apps-template-restart-policy"),
    Row(_WORKLOADS, _TEMPLATE, "the template has no activeDeadlineSeconds", "api-apps-template-active-deadline"),
    Row(("Deployment",), "apps: ValidateDeploymentStrategy", "strategy.type is Recreate or RollingUpdate (unset, "
        "RollingUpdate)", "api-deployment-strategy-type"),
    Row(("Deployment",), "apps: ValidateDeploymentStrategy", "a Recreate strategy has no rollingUpdate",
        "api-deployment-recreate-rolling-update"),
    Row(("Deployment",), "apps: ValidateDeploymentStrategy", "a RollingUpdate strategy has rollingUpdate", None,
        "filled by defaulting (25% and 25%)"),
    Row(("Deployment", "DaemonSet"), "apps: ValidatePositiveIntOrPercent", "maxSurge and maxUnavailable are a "
        "non-negative integer or a percent ('25%')", "api-apps-int-or-percent"),
    Row(("Deployment", "DaemonSet"), "apps: IsNotMoreThan100Percent", "a percent maxUnavailable (and a DaemonSet's "
        "maxSurge) is at most 100%", "api-apps-percent-max"),
    Row(("Deployment",), "apps: ValidateRollingUpdateDeployment", "maxUnavailable and maxSurge are not both 0 "
        "(unset, each is 25%)", "api-deployment-rolling-update-zero"),
    Row(("Deployment",), "apps: ValidateDeploymentSpec", "progressDeadlineSeconds is not negative",
        "api-deployment-progress-deadline-nonnegative"),
    Row(("Deployment",), "apps: ValidateDeploymentSpec", "progressDeadlineSeconds (600 when unset) is greater "
        "than minReadySeconds", "api-deployment-progress-deadline"),
    Row(("Deployment",), "apps: ValidateRollback", "rollbackTo.revision is not negative", None,
        "rollbackTo is not a field of apps/v1 (extensions/v1beta1 only); the JSON schema refuses it"),
    Row(_WORKLOADS, "apps: ValidateDeploymentStatus, ValidateReplicaSetStatus, ValidateStatefulSetStatus, "
        "validateDaemonSetStatus", "status counts are consistent", None,
        "status is written by controllers, not by manifests"),
    Row(_WORKLOADS, "apps: ValidateDeploymentUpdate, ValidateStatefulSetUpdate, ValidateDaemonSetSpecUpdate",
        "the selector and, for a StatefulSet, every field but replicas, ordinals, template, updateStrategy, "
        "persistentVolumeClaimRetentionPolicy and minReadySeconds are immutable", None,
        "update only (the `immutable-field` rule of `validate --changed` covers selectors and StatefulSet specs)"),
    Row(("DaemonSet",), "apps: ValidateDaemonSetUpdateStrategy", "updateStrategy.type is RollingUpdate or OnDelete "
        "(unset, RollingUpdate)", "api-daemonset-update-strategy-type"),
    Row(("DaemonSet",), "apps: ValidateDaemonSetUpdateStrategy", "a RollingUpdate strategy has rollingUpdate", None,
        "filled by defaulting (maxUnavailable 1, maxSurge 0)"),
    Row(("DaemonSet",), "apps: ValidateRollingUpdateDaemonSet", "maxSurge is 0 when maxUnavailable is not (unset, "
        "maxUnavailable is 1)", "api-daemonset-surge-exclusive"),
    Row(("DaemonSet",), "apps: ValidateRollingUpdateDaemonSet", "maxUnavailable and maxSurge are not both 0",
        "api-daemonset-rolling-update-zero"),
    Row(("DaemonSet",), "apps: ValidateDaemonSetSpec", "templateGeneration is not negative", None,
        "templateGeneration is not a field of apps/v1; the JSON schema refuses it"),
    Row(("StatefulSet",), "apps: ValidateStatefulSetName", "the name is a DNS label (63 characters)",
        STATEFULSET_NAME.check),
    Row(("StatefulSet",), "apps/controller: the pods' controller-revision-hash label", "the name has at most 52 "
        "characters", "api-statefulset-name-length"),
    Row(("StatefulSet",), "apps: ValidateStatefulSetSpec", "podManagementPolicy is OrderedReady or Parallel",
        "api-statefulset-pod-management-policy"),
    Row(("StatefulSet",), "apps: ValidateStatefulSetSpec", "podManagementPolicy is set", None,
        "filled by defaulting (OrderedReady)"),
    Row(("StatefulSet",), "apps: ValidateStatefulSetSpec", "updateStrategy.type is RollingUpdate or OnDelete",
        "api-statefulset-update-strategy-type"),
    Row(("StatefulSet",), "apps: ValidateStatefulSetSpec", "updateStrategy.type is set", None,
        "filled by defaulting (RollingUpdate)"),
    Row(("StatefulSet",), "apps: ValidateStatefulSetSpec", "an OnDelete strategy has no rollingUpdate",
        "api-statefulset-ondelete-rolling-update"),
    Row(("StatefulSet",), "apps: validateRollingUpdateStatefulSet", "rollingUpdate.partition is not negative",
        "api-statefulset-partition"),
    Row(("StatefulSet",), "apps: validateRollingUpdateStatefulSet", "rollingUpdate.maxUnavailable is an integer "
        "or percent, not 0, and at most 100%", None,
        "behind MaxUnavailableStatefulSet, off by default at 1.34 (the API server drops the field)"),
    Row(("StatefulSet",), "apps: ValidatePersistentVolumeClaimRetentionPolicyType", "whenDeleted and whenScaled "
        "are Retain or Delete (unset, Retain)", "api-statefulset-pvc-retention-policy"),
    Row(("StatefulSet",), "apps: ValidateStatefulSetSpec", "ordinals.start is not negative",
        "api-statefulset-ordinals-start"),
    Row(("StatefulSet",), "apps/controller: the pods' subdomain", "serviceName, when set, is a DNS label (each "
        "pod's subdomain)", "api-statefulset-service-name"),
    Row(("StatefulSet",), "apps/controller: the claims and pod volumes made from volumeClaimTemplates", "each "
        "claim template has a name that is a DNS label (a pod volume name)",
        "api-statefulset-claim-template-name"),
    Row(("StatefulSet",), "apps/controller: core ValidatePersistentVolumeClaimSpec (the claims the controller "
        "creates)", "each claim template's spec is a valid PersistentVolumeClaim spec (every rule of the "
        "PersistentVolumeClaim section): the API server takes the StatefulSet, then refuses each claim",
        "api-statefulset-claim-template-spec"),
)
COVERAGE_TITLE = "apps/v1: Deployment, StatefulSet, DaemonSet, ReplicaSet"
COVERAGE_INTRO = (
    "Read from kubernetes/kubernetes `pkg/apis/apps/validation/validation.go` at commit 2dd1588c490775be (a "
    "release carrying StatefulSet ordinals and maxUnavailable, as 1.34 does), with `pkg/apis/apps/v1/defaults.go` "
    "for what defaulting fills in (Deployment strategy RollingUpdate 25%/25%, progressDeadlineSeconds 600, "
    "revisionHistoryLimit 10; DaemonSet maxUnavailable 1, maxSurge 0; StatefulSet OrderedReady, RollingUpdate "
    "partition 0, Retain/Retain). `paused` has no condition. Each template is held to the pod template rows and "
    "each selector to the label selector rows (the first section). On create the API server checks only a "
    "StatefulSet template's labels and annotations, yet every pod the controller creates from it is validated "
    "as a Pod: a bad template is a StatefulSet that never gets a pod. So its template is held to the pod "
    "template rules here (with a volume per claim template, as the controller adds them), and the rows marked "
    "`apps/controller` are " + _CONTROLLER + ". A claim template's labels and annotations are held to the "
    "metadata rows."
)
VALIDATORS = {
    ("apps/v1", "Deployment"): validate_deployment,
    ("apps/v1", "ReplicaSet"): validate_replicaset,
    ("apps/v1", "DaemonSet"): validate_daemonset,
    ("apps/v1", "StatefulSet"): validate_statefulset,
}
