"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding
(Kubernetes' pkg/apis/rbac/validation)."""

from __future__ import annotations

COVERAGE: tuple = ()
COVERAGE_TITLE = "rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding"
VALIDATORS: dict = {}
