"""autoscaling/v2: HorizontalPodAutoscaler."""

from __future__ import annotations

from tests.apivalidation.cases import DELETE, fail, ok

INVALID, REQUIRED, FORBIDDEN, UNSUPPORTED = "Invalid value", "Required value", "Forbidden", "Unsupported value"
M = "spec.metrics[0]"
REF = "spec.scaleTargetRef"
DOWN = "spec.behavior.scaleDown"


def _metric(metric):
    return {"spec.metrics": [metric]}


def _object(target, described=None):
    return _metric({"type": "Object", "object": {
        "describedObject": described or {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
        "metric": {"name": "requests-per-second"}, "target": target}})


def _external(target):
    return _metric({"type": "External", "external": {"metric": {"name": "queue_messages_ready"}, "target": target}})


def _pods(target, name="inference_requests"):
    return _metric({"type": "Pods", "pods": {"metric": {"name": name}, "target": target}})


def _resource(target, name="cpu"):
    return _metric({"type": "Resource", "resource": {"name": name, "target": target}})


def _container(target, name="cpu", container="server"):
    return _metric({"type": "ContainerResource",
                    "containerResource": {"name": name, "container": container, "target": target}})


UTIL = {"type": "Utilization", "averageUtilization": 70}

CASES = [
    fail("hpa-min-replicas-zero", "api-hpa-min-replicas", "hpa", {"spec.minReplicas": 0}, "spec.minReplicas",
         INVALID),
    ok("hpa-min-replicas-one", "api-hpa-min-replicas", "hpa", {"spec.minReplicas": 1}),
    fail("hpa-max-replicas-zero", "api-hpa-max-replicas", "hpa", {"spec.maxReplicas": 0, "spec.minReplicas": DELETE},
         "spec.maxReplicas", INVALID),
    ok("hpa-max-replicas-one", "api-hpa-max-replicas", "hpa", {"spec.maxReplicas": 1, "spec.minReplicas": DELETE}),
    fail("hpa-max-below-min", "api-hpa-max-below-min", "hpa", {"spec.maxReplicas": 1}, "spec.maxReplicas", INVALID),
    ok("hpa-max-equals-min", "api-hpa-max-below-min", "hpa", {"spec.maxReplicas": 2}),
    fail("hpa-target-kind-empty", "api-hpa-object-reference", "hpa", {f"{REF}.kind": ""}, f"{REF}.kind", REQUIRED),
    fail("hpa-target-name-slash", "api-hpa-object-reference", "hpa", {f"{REF}.name": "demo/v2"}, f"{REF}.name",
         INVALID),
    fail("hpa-described-object-name-percent", "api-hpa-object-reference", "hpa",
         _object({"type": "Value", "value": "10"}, {"apiVersion": "v1", "kind": "Service", "name": "a%b"}),
         f"{M}.object.describedObject.name", INVALID),
    ok("hpa-target-name-dots", "api-hpa-object-reference", "hpa", {f"{REF}.name": "demo.v2"}),
    fail("hpa-target-api-version-missing", "api-hpa-api-version", "hpa", {f"{REF}.apiVersion": DELETE},
         f"{REF}.apiVersion", INVALID),
    fail("hpa-target-api-version-core", "api-hpa-api-version", "hpa", {f"{REF}.apiVersion": "v1"},
         f"{REF}.apiVersion", INVALID),
    fail("hpa-target-api-version-two-slashes", "api-hpa-api-version", "hpa", {f"{REF}.apiVersion": "apps/v1/x"},
         f"{REF}.apiVersion", INVALID),
    ok("hpa-target-replication-controller-core", "api-hpa-api-version", "hpa",
       {REF: {"apiVersion": "v1", "kind": "ReplicationController", "name": "demo"}}),
    ok("hpa-described-object-core-service", "api-hpa-api-version", "hpa",
       _object({"type": "Value", "value": "10"}, {"apiVersion": "v1", "kind": "Service", "name": "demo"})),
    fail("hpa-metric-type-unknown", "api-hpa-metric-type", "hpa", _metric({"type": "Custom", "pods": {
        "metric": {"name": "x"}, "target": {"type": "AverageValue", "averageValue": "1"}}}), f"{M}.type", UNSUPPORTED),
    fail("hpa-metric-type-empty", "api-hpa-metric-type", "hpa", _metric({"type": ""}), f"{M}.type", REQUIRED),
    ok("hpa-metric-type-pods", "api-hpa-metric-type", "hpa", _pods({"type": "AverageValue", "averageValue": "10"})),
    fail("hpa-metric-source-missing", "api-hpa-metric-source", "hpa", _metric({"type": "Resource"}),
         f"{M}.resource", REQUIRED),
    fail("hpa-metric-source-other", "api-hpa-metric-source", "hpa", _metric({
        "type": "Resource", "resource": {"name": "cpu", "target": UTIL},
        "pods": {"metric": {"name": "x"}, "target": {"type": "AverageValue", "averageValue": "1"}}}),
        f"{M}.pods", FORBIDDEN),
    ok("hpa-metric-source-container", "api-hpa-metric-source", "hpa", _container(UTIL)),
    fail("hpa-metric-name-empty", "api-hpa-metric-name", "hpa",
         _pods({"type": "AverageValue", "averageValue": "1"}, name=""), f"{M}.pods.metric.name", REQUIRED),
    fail("hpa-metric-name-slash", "api-hpa-metric-name", "hpa",
         _pods({"type": "AverageValue", "averageValue": "1"}, name="http/requests"), f"{M}.pods.metric.name", INVALID),
    ok("hpa-metric-name-prometheus", "api-hpa-metric-name", "hpa",
       _pods({"type": "AverageValue", "averageValue": "1"}, name="http_requests_per_second")),
    fail("hpa-resource-name-empty", "api-hpa-resource-name", "hpa", _resource(UTIL, name=""), f"{M}.resource.name",
         REQUIRED),
    fail("hpa-container-resource-name-unknown", "api-hpa-resource-name", "hpa", _container(UTIL, name="gpu"),
         f"{M}.containerResource.name", INVALID),
    fail("hpa-container-name-upper", "api-hpa-resource-name", "hpa", _container(UTIL, container="Server"),
         f"{M}.containerResource.container", INVALID),
    fail("hpa-container-name-empty", "api-hpa-resource-name", "hpa", _container(UTIL, container=""),
         f"{M}.containerResource.container", REQUIRED),
    ok("hpa-container-resource-extended", "api-hpa-resource-name", "hpa",
       _container({"type": "AverageValue", "averageValue": "1"}, name="nvidia.com/gpu")),
    ok("hpa-container-resource-memory", "api-hpa-resource-name", "hpa", _container(UTIL, name="memory")),
    fail("hpa-target-type-unknown", "api-hpa-target-type", "hpa", _resource({"type": "Percent",
                                                                            "averageUtilization": 70}),
         f"{M}.resource.target.type", INVALID),
    fail("hpa-target-type-empty", "api-hpa-target-type", "hpa", _resource({"type": "", "averageUtilization": 70}),
         f"{M}.resource.target.type", REQUIRED),
    ok("hpa-target-type-average-value", "api-hpa-target-type", "hpa",
       _resource({"type": "AverageValue", "averageValue": "500m"})),
    fail("hpa-target-utilization-zero", "api-hpa-target-positive", "hpa",
         _resource({"type": "Utilization", "averageUtilization": 0}), f"{M}.resource.target.averageUtilization",
         INVALID),
    fail("hpa-target-average-value-zero", "api-hpa-target-positive", "hpa",
         _pods({"type": "AverageValue", "averageValue": "0"}), f"{M}.pods.target.averageValue", INVALID),
    fail("hpa-target-value-negative", "api-hpa-target-positive", "hpa", _object({"type": "Value", "value": "-1"}),
         f"{M}.object.target.value", INVALID),
    ok("hpa-target-utilization-one", "api-hpa-target-positive", "hpa",
       _resource({"type": "Utilization", "averageUtilization": 1})),
    ok("hpa-target-value-1m", "api-hpa-target-positive", "hpa", _object({"type": "Value", "value": "1m"})),
    fail("hpa-target-quantity-unit", "api-hpa-target-quantity", "hpa", _pods({"type": "AverageValue",
                                                                             "averageValue": "8Gb"}),
         f"{M}.pods.target.averageValue", INVALID),
    ok("hpa-target-quantity-binary", "api-hpa-target-quantity", "hpa", _pods({"type": "AverageValue",
                                                                             "averageValue": "8Gi"})),
    fail("hpa-object-target-utilization-only", "api-hpa-object-target", "hpa",
         _object({"type": "Utilization", "averageUtilization": 50}), f"{M}.object.target.averageValue", REQUIRED),
    ok("hpa-object-target-average-value", "api-hpa-object-target", "hpa",
       _object({"type": "AverageValue", "averageValue": "100"})),
    fail("hpa-external-target-none", "api-hpa-external-target", "hpa", _external({"type": "Value"}),
         f"{M}.external.target.averageValue", REQUIRED),
    fail("hpa-external-target-both", "api-hpa-external-target", "hpa",
         _external({"type": "Value", "value": "30", "averageValue": "3"}), f"{M}.external.target.value", FORBIDDEN),
    ok("hpa-external-target-value", "api-hpa-external-target", "hpa", _external({"type": "Value", "value": "30"})),
    fail("hpa-pods-target-value", "api-hpa-pods-target", "hpa", _pods({"type": "Value", "value": "1"}),
         f"{M}.pods.target.averageValue", REQUIRED),
    ok("hpa-pods-target-average-value", "api-hpa-pods-target", "hpa", _pods({"type": "AverageValue",
                                                                            "averageValue": "1"})),
    fail("hpa-resource-target-none", "api-hpa-resource-target", "hpa", _resource({"type": "Utilization"}),
         f"{M}.resource.target.averageUtilization", REQUIRED),
    fail("hpa-resource-target-both", "api-hpa-resource-target", "hpa",
         _container({"type": "Utilization", "averageUtilization": 70, "averageValue": "1"}),
         f"{M}.containerResource.target.averageValue", FORBIDDEN),
    ok("hpa-resource-target-value", "api-hpa-resource-target", "hpa",
       _resource({"type": "AverageValue", "averageValue": "512Mi"}, name="memory")),
    fail("hpa-stabilization-3601", "api-hpa-stabilization-window", "hpa",
         {f"{DOWN}.stabilizationWindowSeconds": 3601}, f"{DOWN}.stabilizationWindowSeconds", INVALID),
    fail("hpa-stabilization-negative", "api-hpa-stabilization-window", "hpa",
         {"spec.behavior.scaleUp": {"stabilizationWindowSeconds": -1}},
         "spec.behavior.scaleUp.stabilizationWindowSeconds", INVALID),
    ok("hpa-stabilization-3600", "api-hpa-stabilization-window", "hpa", {f"{DOWN}.stabilizationWindowSeconds": 3600}),
    fail("hpa-select-policy-unknown", "api-hpa-select-policy", "hpa", {f"{DOWN}.selectPolicy": "Average"},
         f"{DOWN}.selectPolicy", UNSUPPORTED),
    ok("hpa-select-policy-disabled", "api-hpa-select-policy", "hpa", {f"{DOWN}.selectPolicy": "Disabled"}),
    fail("hpa-policies-empty", "api-hpa-policies-required", "hpa", {f"{DOWN}.policies": []}, f"{DOWN}.policies",
         REQUIRED),
    ok("hpa-policies-left-out", "api-hpa-policies-required", "hpa", {f"{DOWN}.policies": DELETE}),
    fail("hpa-policy-type-unknown", "api-hpa-policy-type", "hpa", {f"{DOWN}.policies[0].type": "Replicas"},
         f"{DOWN}.policies[0].type", UNSUPPORTED),
    ok("hpa-policy-type-percent", "api-hpa-policy-type", "hpa", {f"{DOWN}.policies[0].type": "Percent"}),
    fail("hpa-policy-value-zero", "api-hpa-policy-value", "hpa", {f"{DOWN}.policies[0].value": 0},
         f"{DOWN}.policies[0].value", INVALID),
    ok("hpa-policy-value-one", "api-hpa-policy-value", "hpa", {f"{DOWN}.policies[0].value": 1}),
    fail("hpa-policy-period-zero", "api-hpa-policy-period", "hpa", {f"{DOWN}.policies[0].periodSeconds": 0},
         f"{DOWN}.policies[0].periodSeconds", INVALID),
    fail("hpa-policy-period-1801", "api-hpa-policy-period", "hpa", {f"{DOWN}.policies[0].periodSeconds": 1801},
         f"{DOWN}.policies[0].periodSeconds", INVALID),
    ok("hpa-policy-period-1800", "api-hpa-policy-period", "hpa", {f"{DOWN}.policies[0].periodSeconds": 1800}),
]
