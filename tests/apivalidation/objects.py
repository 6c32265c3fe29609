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
