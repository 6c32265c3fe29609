"""One valid object of each kind the API validation covers: small, but with
the fields a case needs to break (a container with ports, probes, env, a
volume). Each passes the strict JSON schema of Kubernetes 1.34 and the API
validation with no error (tests/test_apivalidation.py proves both)."""

from __future__ import annotations

from typing import Any

LABELS = {"app.kubernetes.io/name": "demo"}


def _container(name: str = "server") -> dict[str, Any]:
    return {
        "name": name,
        "image": "ghcr.io/example-org/demo:1.0.0",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "1", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 10001, "capabilities": {"drop": ["ALL"]}},
    }


def pod_spec() -> dict[str, Any]:
    return {
        "serviceAccountName": "demo",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "init", "image": "ghcr.io/example-org/init:1.0.0",
                            "command": ["sh", "-c", "true"],
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
        "containers": [_container()],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }


def _template() -> dict[str, Any]:
    return {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec()}


def _meta(name: str = "demo", namespace: str | None = "demo") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace:
        meta["namespace"] = namespace
    return meta


OBJECTS: dict[str, dict[str, Any]] = {
    "deployment": {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(),
        "spec": {"replicas": 2, "selector": {"matchLabels": dict(LABELS)}, "template": _template()},
    },
    "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(), "spec": pod_spec()},
    # core kinds and claims (scripts/stages/apivalidation/core.py, core_service.py, storage.py)
    "namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(namespace=None),
                  "spec": {"finalizers": ["kubernetes"]}},
    "serviceaccount": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(),
                       "automountServiceAccountToken": False, "secrets": [{"name": "demo-token"}],
                       "imagePullSecrets": [{"name": "registry"}]},
    "configmap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(),
                  "data": {"app.properties": "log.level=info\n"},
                  "binaryData": {"logo.png": "iVBORw0KGgo="}},
    "secret": {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(), "type": "Opaque",
               "data": {"password": "c2VjcmV0"}, "stringData": {"username": "demo"}},
    "service": {"apiVersion": "v1", "kind": "Service", "metadata": _meta(),
                "spec": {"type": "ClusterIP", "selector": dict(LABELS),
                         "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP",
                                    "appProtocol": "http"},
                                   {"name": "metrics", "port": 9090, "targetPort": 9090}]}},
    "pvc": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta(),
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3", "volumeMode": "Filesystem",
                     "resources": {"requests": {"storage": "8Gi"}}}},
}


# ---- the API groups (apps, batch, autoscaling, policy, networking, rbac) ----------------

def _job_template() -> dict[str, Any]:
    template = _template()
    template["spec"]["restartPolicy"] = "Never"
    return template


def _workload(kind: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": _meta(),
            "spec": {"selector": {"matchLabels": dict(LABELS)}, "template": _template(), **spec}}


def _statefulset() -> dict[str, Any]:
    doc = _workload("StatefulSet", replicas=2, serviceName="demo")
    doc["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].append({"name": "data", "mountPath": "/data"})
    doc["spec"]["volumeClaimTemplates"] = [{
        "metadata": {"name": "data", "labels": dict(LABELS)},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }]
    return doc


_RBAC = "rbac.authorization.k8s.io/v1"
_BACKEND = {"service": {"name": "demo", "port": {"name": "http"}}}

OBJECTS.update({
    "statefulset": _statefulset(),
    "daemonset": _workload("DaemonSet"),
    "replicaset": _workload("ReplicaSet", replicas=1),
    "job": {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(),
            "spec": {"backoffLimit": 2, "template": _job_template()}},
    "cronjob": {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta(),
                "spec": {"schedule": "*/15 * * * *", "timeZone": "Etc/UTC",
                         "jobTemplate": {"spec": {"template": _job_template()}}}},
    "hpa": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta(),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                     "minReplicas": 2, "maxReplicas": 6,
                     "metrics": [{"type": "Resource",
                                  "resource": {"name": "cpu",
                                               "target": {"type": "Utilization", "averageUtilization": 70}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300,
                                                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}}},
    "pdb": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(),
            "spec": {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
                     "selector": {"matchLabels": dict(LABELS)}}},
    "networkpolicy": {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(),
        "spec": {"podSelector": {"matchLabels": dict(LABELS)}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "gateway"}}}],
                              "ports": [{"port": "http", "protocol": "TCP"}]}],
                 "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                             "ports": [{"port": 443, "protocol": "TCP"}]}]},
    },
    "ingress": {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta(),
        "spec": {"ingressClassName": "nginx",
                 "rules": [{"host": "demo.example.com",
                            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": dict(_BACKEND)}]}}],
                 "tls": [{"hosts": ["demo.example.com"], "secretName": "demo-tls"}]},
    },
    "ingressclass": {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": _meta("nginx", None),
                     "spec": {"controller": "k8s.io/ingress-nginx"}},
    "role": {"apiVersion": _RBAC, "kind": "Role", "metadata": _meta(),
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
    "clusterrole": {"apiVersion": _RBAC, "kind": "ClusterRole", "metadata": _meta("demo-reader", None),
                    "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
                              {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]},
    "rolebinding": {"apiVersion": _RBAC, "kind": "RoleBinding", "metadata": _meta(),
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "demo"},
                    "subjects": [{"kind": "ServiceAccount", "name": "demo"}]},
    "clusterrolebinding": {"apiVersion": _RBAC, "kind": "ClusterRoleBinding", "metadata": _meta("demo-reader", None),
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                       "name": "demo-reader"},
                           "subjects": [{"kind": "ServiceAccount", "name": "demo", "namespace": "demo"},
                                        {"kind": "Group", "name": "oncall",
                                         "apiGroup": "rbac.authorization.k8s.io"}]},
})
