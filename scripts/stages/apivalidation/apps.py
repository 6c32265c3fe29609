"""apps/v1: Deployment, StatefulSet, DaemonSet, ReplicaSet (Kubernetes'
pkg/apis/apps/validation)."""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import meta, pods
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import ROOT, Errors
from scripts.stages.apivalidation.meta import as_dict


def validate_deployment(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    selector = spec.get("selector")
    if meta.selector_is_empty(selector):
        errs.required("api-deployment-selector-required", path.child("selector"), "")
    else:
        meta.validate_label_selector(selector, path.child("selector"), errs)
    pods.validate_pod_template(spec.get("template"), path.child("template"), ctx, errs)


COVERAGE = (
    Row(("Deployment",), "apps: ValidateDeploymentSpec", "spec.selector is required and not empty",
        "api-deployment-selector-required"),
)
COVERAGE_TITLE = "apps/v1: Deployment, StatefulSet, DaemonSet, ReplicaSet"
VALIDATORS = {("apps/v1", "Deployment"): validate_deployment}
