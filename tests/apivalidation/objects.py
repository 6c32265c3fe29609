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
}
