"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding
(Kubernetes' pkg/apis/rbac/validation)."""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import formats, meta
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import NameRule, as_dict, as_list

# RBAC objects (and PodDisruptionBudgets, which only get the generic metadata
# checks) need only names that can sit in a URL path.
PATH_SEGMENT_NAME = NameRule("api-meta-name-path-segment", formats.name_is_path_segment)
GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def _rule(rule: Any, namespaced: bool, path: FieldPath, errs: Errors) -> None:
    rule = as_dict(rule)
    if isinstance(rule.get("verbs"), list) and not rule["verbs"]:
        errs.required("api-rbac-rule-verbs", path.child("verbs"), "list at least one verb (e.g. get)")
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            errs.invalid("api-rbac-rule-non-resource-namespaced", path.child("nonResourceURLs"), urls,
                         "a Role is namespaced and cannot grant non-resource URLs: use a ClusterRole")
        if as_list(rule.get("apiGroups")) or as_list(rule.get("resources")) or as_list(rule.get("resourceNames")):
            errs.invalid("api-rbac-rule-non-resource-mixed", path.child("nonResourceURLs"), urls,
                         "a rule grants either resources or non-resource URLs: split it in two")
        return
    if not as_list(rule.get("apiGroups")):
        errs.required("api-rbac-rule-api-groups", path.child("apiGroups"),
                      "a resource rule lists at least one API group ('' for the core group)")
    if not as_list(rule.get("resources")):
        errs.required("api-rbac-rule-resources", path.child("resources"),
                      "a resource rule lists at least one resource")


def _rules(doc: dict[str, Any], namespaced: bool, errs: Errors) -> None:
    for index, rule in enumerate(as_list(doc.get("rules"))):
        _rule(rule, namespaced, ROOT.child("rules").index(index), errs)


def validate_role(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs, PATH_SEGMENT_NAME)
    _rules(doc, True, errs)


def validate_cluster_role(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs, PATH_SEGMENT_NAME)
    _rules(doc, False, errs)
    rule = doc.get("aggregationRule")
    if rule is None:
        return
    selectors = as_dict(rule).get("clusterRoleSelectors")
    at = ROOT.child("aggregationRule", "clusterRoleSelectors")
    if selectors is None or selectors == []:
        errs.required("api-rbac-aggregation-selectors", at,
                      "an aggregationRule needs at least one clusterRoleSelector")
    for index, selector in enumerate(as_list(selectors)):
        meta.validate_label_selector(selector, at.index(index), errs)


def _role_ref(ref: Any, kinds: tuple[str, ...], errs: Errors) -> None:
    ref = as_dict(ref)
    at = ROOT.child("roleRef")
    group = ref.get("apiGroup")
    # An empty apiGroup is defaulted to rbac.authorization.k8s.io.
    if isinstance(group, str) and group and group != GROUP:
        errs.not_supported("api-rbac-role-ref-api-group", at.child("apiGroup"), group, [GROUP])
    kind = ref.get("kind")
    if isinstance(kind, str) and kind not in kinds:
        errs.not_supported("api-rbac-role-ref-kind", at.child("kind"), kind, kinds)
    name = ref.get("name")
    if name == "":
        errs.required("api-rbac-role-ref-name", at.child("name"), "")
    elif isinstance(name, str):
        errs.each("api-rbac-role-ref-name", at.child("name"), name, formats.path_segment_name_problems(name))


def _subject(subject: Any, namespaced: bool, path: FieldPath, errs: Errors) -> None:
    subject = as_dict(subject)
    name, kind, group = subject.get("name"), subject.get("kind"), subject.get("apiGroup")
    if name == "":
        errs.required("api-rbac-subject-name", path.child("name"), "")
    if kind == "ServiceAccount":
        if isinstance(name, str) and name:
            errs.each("api-rbac-subject-service-account", path.child("name"), name,
                      formats.name_is_dns_subdomain(name))
        if isinstance(group, str) and group:
            errs.not_supported("api-rbac-subject-service-account", path.child("apiGroup"), group, [""])
        if not namespaced and not subject.get("namespace"):
            errs.required("api-rbac-subject-namespace", path.child("namespace"),
                          "a ClusterRoleBinding names the service account's namespace")
    elif kind in ("User", "Group"):
        # An empty apiGroup is defaulted to rbac.authorization.k8s.io.
        if isinstance(group, str) and group and group != GROUP:
            errs.not_supported("api-rbac-subject-api-group", path.child("apiGroup"), group, [GROUP])
    elif isinstance(kind, str):
        errs.not_supported("api-rbac-subject-kind", path.child("kind"), kind, SUBJECT_KINDS)


def _binding(doc: dict[str, Any], namespaced: bool, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs, PATH_SEGMENT_NAME)
    _role_ref(doc.get("roleRef"), ("Role", "ClusterRole") if namespaced else ("ClusterRole",), errs)
    for index, subject in enumerate(as_list(doc.get("subjects"))):
        _subject(subject, namespaced, ROOT.child("subjects").index(index), errs)


def validate_role_binding(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    _binding(doc, True, errs)


def validate_cluster_role_binding(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    _binding(doc, False, errs)


_ROLES = ("Role", "ClusterRole")
_BINDINGS = ("RoleBinding", "ClusterRoleBinding")
COVERAGE = (
    Row(_ROLES + _BINDINGS + ("PodDisruptionBudget",), "rbac: ValidateRBACName; apiserver: BeforeCreate "
        "(ValidatePathSegmentName)", "the name is a path segment: not '.' or '..', no '/' or '%'",
        PATH_SEGMENT_NAME.check),
    Row(_ROLES, "rbac: ValidatePolicyRule", "a rule lists at least one verb", "api-rbac-rule-verbs"),
    Row(("Role",), "rbac: ValidatePolicyRule", "a Role's rules have no nonResourceURLs",
        "api-rbac-rule-non-resource-namespaced"),
    Row(_ROLES, "rbac: ValidatePolicyRule", "a rule with nonResourceURLs has no apiGroups, resources or "
        "resourceNames", "api-rbac-rule-non-resource-mixed"),
    Row(_ROLES, "rbac: ValidatePolicyRule", "a resource rule lists at least one API group",
        "api-rbac-rule-api-groups"),
    Row(_ROLES, "rbac: ValidatePolicyRule", "a resource rule lists at least one resource", "api-rbac-rule-resources"),
    Row(("ClusterRole",), "rbac: ValidateClusterRole", "an aggregationRule has at least one clusterRoleSelector "
        "(each a valid label selector)", "api-rbac-aggregation-selectors"),
    Row(_ROLES + _BINDINGS, "rbac: registry (ConfirmNoEscalation, BindingAuthorized)", "a role grants, and a "
        "binding binds, only what the requester may already do", None,
        "needs the cluster's state: the permissions of whoever applies (Flux's service account)"),
    Row(_BINDINGS, "rbac: ValidateRoleBinding, ValidateClusterRoleBinding", "roleRef.apiGroup is "
        "rbac.authorization.k8s.io (when empty, it is defaulted to that)", "api-rbac-role-ref-api-group"),
    Row(_BINDINGS, "rbac: ValidateRoleBinding, ValidateClusterRoleBinding", "roleRef.kind is Role or ClusterRole "
        "(a ClusterRoleBinding: ClusterRole)", "api-rbac-role-ref-kind"),
    Row(_BINDINGS, "rbac: ValidateRoleBinding, ValidateClusterRoleBinding", "roleRef.name is set and a path "
        "segment", "api-rbac-role-ref-name"),
    Row(_BINDINGS, "rbac: ValidateRoleBindingSubject", "a subject has a name", "api-rbac-subject-name"),
    Row(_BINDINGS, "rbac: ValidateRoleBindingSubject", "a subject's kind is ServiceAccount, User or Group",
        "api-rbac-subject-kind"),
    Row(_BINDINGS, "rbac: ValidateRoleBindingSubject (ValidateServiceAccountName)", "a ServiceAccount subject's "
        "name is a DNS subdomain and its apiGroup empty", "api-rbac-subject-service-account"),
    Row(("ClusterRoleBinding",), "rbac: ValidateRoleBindingSubject", "a ServiceAccount subject of a "
        "ClusterRoleBinding names its namespace", "api-rbac-subject-namespace"),
    Row(_BINDINGS, "rbac: ValidateRoleBindingSubject", "a User or Group subject's apiGroup is "
        "rbac.authorization.k8s.io (when empty, it is defaulted to that)", "api-rbac-subject-api-group"),
    Row(_BINDINGS, "rbac: ValidateRoleBindingUpdate, ValidateClusterRoleBindingUpdate", "roleRef is immutable",
        None, "update only (the `immutable-field` rule of `validate --changed` covers roleRef)"),
)
COVERAGE_TITLE = "rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding"
COVERAGE_INTRO = (
    "Read from a current kubernetes/kubernetes `pkg/apis/rbac/validation/validation.go` (the one whose "
    "required-field errors are marked as covered by declarative validation, 1.34) and `pkg/apis/rbac/v1/"
    "defaults.go`: an empty roleRef.apiGroup, and a User or Group subject's empty apiGroup, are defaulted to "
    "rbac.authorization.k8s.io. Role and binding names need only be URL path segments."
)
VALIDATORS = {
    ("rbac.authorization.k8s.io/v1", "Role"): validate_role,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): validate_cluster_role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): validate_role_binding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): validate_cluster_role_binding,
}
