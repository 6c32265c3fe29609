"""autoscaling/v2: HorizontalPodAutoscaler (Kubernetes' pkg/apis/autoscaling/validation)."""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import formats, meta
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
# type -> the field that holds its source
SOURCE_FIELDS = {"Object": "object", "Pods": "pods", "Resource": "resource", "External": "external",
                 "ContainerResource": "containerResource"}
TARGET_TYPES = ("Utilization", "Value", "AverageValue")
SELECT_POLICIES = ("Disabled", "Max", "Min")
POLICY_TYPES = ("Percent", "Pods")
CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _reference(ref: Any, path: FieldPath, errs: Errors, allow_empty_group: bool) -> None:
    """ValidateCrossVersionObjectReference: kind and name set and path
    segments; apiVersion parses and, unless allowed, names a group."""
    ref = as_dict(ref)
    for name in ("kind", "name"):
        value = ref.get(name)
        if value == "":
            errs.required("api-hpa-object-reference", path.child(name), "")
        elif isinstance(value, str):
            errs.each("api-hpa-object-reference", path.child(name), value, formats.path_segment_name_problems(value))
    version = ref.get("apiVersion")
    version = "" if version is None else version
    if not isinstance(version, str):
        return
    if version.count("/") > 1:
        errs.invalid("api-hpa-api-version", path.child("apiVersion"), version,
                     "must be '<group>/<version>' (e.g. 'apps/v1')")
        return
    group = version.partition("/")[0] if "/" in version else ""
    if not group and not allow_empty_group:
        errs.invalid("api-hpa-api-version", path.child("apiVersion"), version,
                     "must name the target's API group (e.g. 'apps/v1'): without one the autoscaler finds no "
                     "target")


def _quantity(target: dict[str, Any], name: str, path: FieldPath, errs: Errors) -> Any:
    """A target quantity as the API server decodes it; None when unset or unreadable."""
    value = target.get(name)
    if value is None:
        return None
    number = formats.parse_quantity(value)
    if number is None and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        errs.invalid("api-hpa-target-quantity", path.child(name), value, formats.QUANTITY_FORMAT)
    return number


def _target(target: Any, path: FieldPath, errs: Errors) -> dict[str, bool]:
    """validateMetricTarget; returns which of value, averageValue and
    averageUtilization are set."""
    target = as_dict(target)
    kind = target.get("type")
    if kind == "":
        errs.required("api-hpa-target-type", path.child("type"), "must be Utilization, Value or AverageValue")
    if isinstance(kind, str) and kind not in TARGET_TYPES:
        errs.invalid("api-hpa-target-type", path.child("type"), kind, "must be Utilization, Value or AverageValue")
    for name in ("value", "averageValue"):
        number = _quantity(target, name, path, errs)
        if number is not None and number <= 0:
            errs.invalid("api-hpa-target-positive", path.child(name), target[name], "must be positive")
    utilization = target.get("averageUtilization")
    if formats.is_int(utilization) and utilization < 1:
        errs.invalid("api-hpa-target-positive", path.child("averageUtilization"), utilization,
                     "must be greater than 0")
    return {name: target.get(name) is not None for name in ("value", "averageValue", "averageUtilization")}


def _metric_name(identifier: Any, path: FieldPath, errs: Errors) -> None:
    name = as_dict(identifier).get("name")
    if name == "":
        errs.required("api-hpa-metric-name", path.child("name"), "must name the metric")
    elif isinstance(name, str):
        errs.each("api-hpa-metric-name", path.child("name"), name, formats.path_segment_name_problems(name))


def _container_resource_name(name: str) -> list[str]:
    """core/v1 ValidateContainerResourceName: cpu, memory, ephemeral-storage,
    hugepages-<size>, or a domain-qualified extended resource."""
    problems = formats.qualified_name_problems(name)
    if problems:
        return problems
    if "/" not in name:
        if name in CONTAINER_RESOURCES or name.startswith("hugepages-"):
            return []
        return ["must be a container resource: cpu, memory, ephemeral-storage, hugepages-<size>, or a "
                "domain-qualified extended resource"]
    native = "kubernetes.io/" in name
    if not native and (name.startswith("requests.") or formats.qualified_name_problems("requests." + name)):
        return ["must be an extended resource name: '<domain>/<name>', not prefixed 'requests.'"]
    return []


def _source(kind: str, source: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    target_at = path.child("target")
    if kind == "object":
        _reference(source.get("describedObject"), path.child("describedObject"), errs, allow_empty_group=True)
        _metric_name(source.get("metric"), path.child("metric"), errs)
        fields = _target(source.get("target"), target_at, errs)
        if not fields["value"] and not fields["averageValue"]:
            errs.required("api-hpa-object-target", target_at.child("averageValue"),
                          "an Object metric needs a target value or averageValue")
    elif kind == "external":
        _metric_name(source.get("metric"), path.child("metric"), errs)
        fields = _target(source.get("target"), target_at, errs)
        if not fields["value"] and not fields["averageValue"]:
            errs.required("api-hpa-external-target", target_at.child("averageValue"),
                          "an External metric needs a target value or averageValue")
        if fields["value"] and fields["averageValue"]:
            errs.forbidden("api-hpa-external-target", target_at.child("value"),
                           "set a target value or averageValue, not both")
    elif kind == "pods":
        _metric_name(source.get("metric"), path.child("metric"), errs)
        fields = _target(source.get("target"), target_at, errs)
        if not fields["averageValue"]:
            errs.required("api-hpa-pods-target", target_at.child("averageValue"),
                          "a Pods metric needs a positive target averageValue")
    else:  # resource, containerResource
        name = source.get("name")
        if name == "":
            errs.required("api-hpa-resource-name", path.child("name"), "must name the resource (e.g. cpu)")
        elif kind == "containerResource" and isinstance(name, str):
            errs.each("api-hpa-resource-name", path.child("name"), name, _container_resource_name(name))
        if kind == "containerResource":
            container = source.get("container")
            if container == "":
                errs.required("api-hpa-resource-name", path.child("container"), "must name the container")
            elif isinstance(container, str):
                errs.each("api-hpa-resource-name", path.child("container"), container,
                          formats.dns_label_problems(container))
        fields = _target(source.get("target"), target_at, errs)
        if not fields["averageUtilization"] and not fields["averageValue"]:
            errs.required("api-hpa-resource-target", target_at.child("averageUtilization"),
                          "a resource metric needs a target averageUtilization or averageValue")
        if fields["averageUtilization"] and fields["averageValue"]:
            errs.forbidden("api-hpa-resource-target", target_at.child("averageValue"),
                           "set a target averageUtilization or averageValue, not both")


def _metric(metric: Any, path: FieldPath, errs: Errors) -> None:
    metric = as_dict(metric)
    kind = metric.get("type")
    if kind == "":
        errs.required("api-hpa-metric-type", path.child("type"), "must be one of " + ", ".join(METRIC_TYPES))
    if isinstance(kind, str) and kind not in METRIC_TYPES:
        errs.not_supported("api-hpa-metric-type", path.child("type"), kind, METRIC_TYPES)
    present = [field for field in ("object", "external", "pods", "resource", "containerResource")
               if metric.get(field) is not None]
    if present:
        # Only the first source set is validated, as the API server does.
        _source(present[0], as_dict(metric.get(present[0])), path.child(present[0]), errs)
    expected = SOURCE_FIELDS.get(kind) if isinstance(kind, str) else None
    if expected and metric.get(expected) is None:
        errs.required("api-hpa-metric-source", path.child(expected),
                      f"a {kind} metric needs its `{expected}` source")
    if len(present) != 1:
        for field in present:
            if field != expected:
                errs.forbidden("api-hpa-metric-source", path.child(field),
                               f"set only the source of the metric's type (`{expected or 'none'}`)")


def _scaling_rules(rules: Any, path: FieldPath, errs: Errors) -> None:
    if rules is None:
        return
    rules = as_dict(rules)
    window = rules.get("stabilizationWindowSeconds")
    if formats.is_int(window) and not 0 <= window <= MAX_STABILIZATION_WINDOW_SECONDS:
        errs.invalid("api-hpa-stabilization-window", path.child("stabilizationWindowSeconds"), window,
                     f"must be between 0 and {MAX_STABILIZATION_WINDOW_SECONDS}")
    select = rules.get("selectPolicy")
    if isinstance(select, str) and select not in SELECT_POLICIES:
        errs.not_supported("api-hpa-select-policy", path.child("selectPolicy"), select, SELECT_POLICIES)
    policies = rules.get("policies")
    # Unset policies are defaulted; an explicit empty list is kept, and refused.
    if isinstance(policies, list) and not policies:
        errs.required("api-hpa-policies-required", path.child("policies"),
                      "must list at least one policy, or leave policies out for the defaults")
    for index, policy in enumerate(as_list(policies)):
        policy = as_dict(policy)
        at = path.child("policies").index(index)
        kind = policy.get("type")
        if isinstance(kind, str) and kind not in POLICY_TYPES:
            errs.not_supported("api-hpa-policy-type", at.child("type"), kind, POLICY_TYPES)
        value = policy.get("value")
        if formats.is_int(value) and value <= 0:
            errs.invalid("api-hpa-policy-value", at.child("value"), value, "must be greater than zero")
        period = policy.get("periodSeconds")
        if formats.is_int(period) and not 0 < period <= MAX_PERIOD_SECONDS:
            errs.invalid("api-hpa-policy-period", at.child("periodSeconds"), period,
                         f"must be between 1 and {MAX_PERIOD_SECONDS}")


def validate_hpa(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    # HPAScaleToZero is alpha (off) at 1.34: minReplicas is at least 1; unset, it is 1.
    low = 1
    minimum = spec.get("minReplicas")
    minimum = 1 if minimum is None else minimum
    if formats.is_int(minimum) and minimum < low:
        errs.invalid("api-hpa-min-replicas", path.child("minReplicas"), minimum,
                     f"must be greater than or equal to {low}")
    maximum = spec.get("maxReplicas")
    if formats.is_int(maximum):
        if maximum < 1:
            errs.invalid("api-hpa-max-replicas", path.child("maxReplicas"), maximum, "must be greater than 0")
        if formats.is_int(minimum) and maximum < minimum:
            errs.invalid("api-hpa-max-below-min", path.child("maxReplicas"), maximum,
                         f"must be greater than or equal to `minReplicas` ({minimum})")
    target = as_dict(spec.get("scaleTargetRef"))
    # A ReplicationController, the only scalable core kind, needs no group.
    _reference(target, path.child("scaleTargetRef"), errs,
               allow_empty_group=target.get("kind") == "ReplicationController")
    for index, metric in enumerate(as_list(spec.get("metrics"))):
        _metric(metric, path.child("metrics").index(index), errs)
    behavior = spec.get("behavior")
    if behavior is not None:
        behavior = as_dict(behavior)
        for name in ("scaleUp", "scaleDown"):
            _scaling_rules(behavior.get(name), path.child("behavior", name), errs)


_SPEC = "autoscaling: validateHorizontalPodAutoscalerSpec"
_HPA = ("HorizontalPodAutoscaler",)
COVERAGE = (
    Row(_HPA, _SPEC, "minReplicas (1 when unset) is at least 1", "api-hpa-min-replicas"),
    Row(_HPA, _SPEC, "minReplicas may be 0 (with an Object or External metric)", None,
        "behind HPAScaleToZero, off by default at 1.34"),
    Row(_HPA, "autoscaling: validateMetrics", "with minReplicas 0, at least one Object or External metric", None,
        "behind HPAScaleToZero, off by default at 1.34 (minReplicas 0 is refused before)"),
    Row(_HPA, _SPEC, "maxReplicas is greater than 0", "api-hpa-max-replicas"),
    Row(_HPA, _SPEC, "maxReplicas is at least minReplicas", "api-hpa-max-below-min"),
    Row(_HPA, "autoscaling: ValidateCrossVersionObjectReference", "scaleTargetRef and an Object metric's "
        "describedObject have a kind and a name, each a path segment", "api-hpa-object-reference"),
    Row(_HPA, "autoscaling: ValidateAPIVersion (validationOptionsForHorizontalPodAutoscaler)", "apiVersion "
        "parses; scaleTargetRef's names a group (but for a ReplicationController)", "api-hpa-api-version"),
    Row(_HPA, "autoscaling: validateMetricSpec", "a metric's type is ContainerResource, External, Object, Pods "
        "or Resource", "api-hpa-metric-type"),
    Row(_HPA, "autoscaling: validateMetricSpec", "the source of the metric's type is set, and no other",
        "api-hpa-metric-source"),
    Row(_HPA, "autoscaling: validateMetricIdentifier", "an Object, Pods or External metric has a name that is a "
        "path segment", "api-hpa-metric-name"),
    Row(_HPA, "autoscaling: validateResourceSource, validateContainerResourceSource", "a resource metric names "
        "its resource (a container resource name for ContainerResource) and a ContainerResource metric its "
        "container (a DNS label)", "api-hpa-resource-name"),
    Row(_HPA, "autoscaling: validateMetricTarget", "target.type is Utilization, Value or AverageValue",
        "api-hpa-target-type"),
    Row(_HPA, "autoscaling: validateMetricTarget", "target value and averageValue are positive; "
        "averageUtilization is at least 1", "api-hpa-target-positive"),
    Row(_HPA, "apimachinery: resource.ParseQuantity (decoding)", "target value and averageValue are quantities",
        "api-hpa-target-quantity"),
    Row(_HPA, "autoscaling: validateObjectSource", "an Object metric's target sets value or averageValue",
        "api-hpa-object-target"),
    Row(_HPA, "autoscaling: validateExternalSource", "an External metric's target sets exactly one of value and "
        "averageValue", "api-hpa-external-target"),
    Row(_HPA, "autoscaling: validatePodsSource", "a Pods metric's target sets averageValue", "api-hpa-pods-target"),
    Row(_HPA, "autoscaling: validateResourceSource, validateContainerResourceSource", "a resource metric's "
        "target sets exactly one of averageUtilization and averageValue", "api-hpa-resource-target"),
    Row(_HPA, "autoscaling: validateScalingRules", "stabilizationWindowSeconds is between 0 and 3600",
        "api-hpa-stabilization-window"),
    Row(_HPA, "autoscaling: validateScalingRules", "selectPolicy is Disabled, Max or Min", "api-hpa-select-policy"),
    Row(_HPA, "autoscaling: validateScalingRules", "policies, when given, list at least one policy (left out, "
        "they are defaulted)", "api-hpa-policies-required"),
    Row(_HPA, "autoscaling: validateScalingPolicy", "a policy's type is Pods or Percent", "api-hpa-policy-type"),
    Row(_HPA, "autoscaling: validateScalingPolicy", "a policy's value is greater than 0", "api-hpa-policy-value"),
    Row(_HPA, "autoscaling: validateScalingPolicy", "a policy's periodSeconds is between 1 and 1800",
        "api-hpa-policy-period"),
    Row(_HPA, "autoscaling: validateScalingRules", "tolerance is not negative", None,
        "behind HPAConfigurableTolerance, off by default at 1.34 (the API server drops the field)"),
    Row(_HPA, "autoscaling: ValidateHorizontalPodAutoscalerUpdate", "minReplicas 0 is kept if the old object had "
        "it; apiVersion is not re-checked when the target does not change", None, "update only"),
    Row(_HPA, "autoscaling: ValidateHorizontalPodAutoscalerStatusUpdate", "status replica counts are not negative",
        None, "status is written by controllers, not by manifests"),
)
COVERAGE_TITLE = "autoscaling/v2: HorizontalPodAutoscaler"
COVERAGE_INTRO = (
    "Read from kubernetes/kubernetes `pkg/apis/autoscaling/validation/validation.go` at commit 0fec7b0f7e2dfd4b "
    "and the 1.33+ registry strategy (`pkg/registry/autoscaling/horizontalpodautoscaler/strategy.go`), whose "
    "options require scaleTargetRef's apiVersion to name a group (an autoscaler whose target has no group "
    "never finds it either: the controller reports no match for the kind) and drop `tolerance` while "
    "HPAConfigurableTolerance is off (it is alpha at 1.34, as is HPAScaleToZero). Defaulting "
    "(`pkg/apis/autoscaling/v2/defaults.go`): minReplicas 1, a CPU metric at 80% when metrics is empty, and, "
    "when behavior is set, the scaleUp and scaleDown rules it leaves out. The API server does not tie "
    "target.type to the field a target sets (Utilization with a value is accepted): not a refusal, so no row."
)
VALIDATORS = {("autoscaling/v2", "HorizontalPodAutoscaler"): validate_hpa}
