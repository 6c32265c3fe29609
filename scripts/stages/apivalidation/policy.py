"""policy/v1: PodDisruptionBudget (Kubernetes' pkg/apis/policy/validation)."""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import apps, meta, rbac
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import ROOT, Errors
from scripts.stages.apivalidation.meta import as_dict

EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def validate_pdb(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    # The policy group validates no metadata of its own: only the API server's
    # generic checks apply, under which a name need only be a path segment.
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs, rbac.PATH_SEGMENT_NAME)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.invalid("api-pdb-min-and-max", path, spec,
                     "minAvailable and maxUnavailable cannot both be set: keep one")
    for name in ("minAvailable", "maxUnavailable"):
        value = spec.get(name)
        if value is not None:
            apps.int_or_percent("api-pdb-int-or-percent", path.child(name), value, errs)
            apps.percent_at_most_100("api-pdb-percent-max", path.child(name), value, errs)
    if spec.get("selector") is not None:
        meta.validate_label_selector(spec.get("selector"), path.child("selector"), errs)
    policy = spec.get("unhealthyPodEvictionPolicy")
    if isinstance(policy, str) and policy not in EVICTION_POLICIES:
        errs.not_supported("api-pdb-unhealthy-pod-eviction-policy", path.child("unhealthyPodEvictionPolicy"), policy,
                           EVICTION_POLICIES)


_PDB = ("PodDisruptionBudget",)
_SPEC = "policy: ValidatePodDisruptionBudgetSpec"
COVERAGE = (
    Row(_PDB, _SPEC, "minAvailable and maxUnavailable are not both set", "api-pdb-min-and-max"),
    Row(_PDB, _SPEC + " (apps: ValidatePositiveIntOrPercent)", "minAvailable and maxUnavailable are a "
        "non-negative integer or a percent ('50%')", "api-pdb-int-or-percent"),
    Row(_PDB, _SPEC + " (apps: IsNotMoreThan100Percent)", "a percent is at most 100%", "api-pdb-percent-max"),
    Row(_PDB, _SPEC, "unhealthyPodEvictionPolicy is AlwaysAllow or IfHealthyBudget",
        "api-pdb-unhealthy-pod-eviction-policy"),
    Row(_PDB, "policy: ValidatePodDisruptionBudgetStatusUpdate", "status counts are not negative and "
        "conditions are valid", None, "status is written by controllers, not by manifests"),
)
COVERAGE_TITLE = "policy/v1: PodDisruptionBudget"
COVERAGE_INTRO = (
    "Read from a current kubernetes/kubernetes `pkg/apis/policy/validation/validation.go` (with "
    "unhealthyPodEvictionPolicy, GA since 1.31). It validates no metadata of its own: a PodDisruptionBudget's "
    "name only gets the generic checks of every create, under which it need only be a URL path segment "
    "(its row is in the RBAC section). Its selector is held to the label selector rows (an empty one selects "
    "every pod of the namespace, and is allowed). Its spec has been mutable since 1.15, so there is no update row."
)
VALIDATORS = {("policy/v1", "PodDisruptionBudget"): validate_pdb}
