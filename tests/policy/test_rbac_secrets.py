"""Secrets stay out of Git; RBAC stays least-privilege."""

from __future__ import annotations

from scripts.core.model import Render
from scripts.stages.policy_support import Violation, assert_no_violations

ADMIN_ROLES = {"cluster-admin", "admin", "edit", "system:masters"}


def check_no_secret_data(render: Render) -> list[Violation]:
    return [Violation(o, "is a Secret with data committed to Git",
                      "deliver it with an ExternalSecret or SealedSecret, or use workload identity")
            for o in render.objects
            if o.kind == "Secret" and (o.doc.get("data") or o.doc.get("stringData"))]


def check_rbac_no_wildcards(render: Render) -> list[Violation]:
    out = []
    for role in (o for o in render.objects if o.kind in ("Role", "ClusterRole")):
        for index, rule in enumerate(role.doc.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs"):
                if "*" in (rule.get(field) or []):
                    out.append(Violation(role, f"rules[{index}].{field} contains '*'",
                                         f"list the {field} the subject needs"))
    return out


def check_no_admin_bindings(render: Render) -> list[Violation]:
    return [Violation(b, f"binds the built-in {b.doc['roleRef']['name']} role",
                      "bind a Role that grants only what the subject needs")
            for b in render.objects
            if b.kind in ("RoleBinding", "ClusterRoleBinding")
            and (b.doc.get("roleRef") or {}).get("name") in ADMIN_ROLES
            and (b.doc.get("roleRef") or {}).get("kind") == "ClusterRole"]


def test_no_secret_data(render):
    assert_no_violations(check_no_secret_data(render))


def test_rbac_no_wildcards(render):
    assert_no_violations(check_rbac_no_wildcards(render))


def test_no_admin_bindings(render):
    assert_no_violations(check_no_admin_bindings(render))
