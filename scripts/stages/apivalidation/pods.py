"""Pod templates and pod specs (core's ValidatePodTemplateSpec, ValidatePodSpec
and what they call besides the containers: volumes, scheduling, DNS, security
context, and the pod-level fields)."""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import containers, meta
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.errors import ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list


def validate_pod_template(template: Any, path: FieldPath, ctx: Context, errs: Errors) -> None:
    """A workload's `spec.template` (or a Job template's): its metadata's
    labels and annotations, then its spec. The template's name is not checked
    (the controller names the pods)."""
    template = as_dict(template)
    metadata = as_dict(template.get("metadata"))
    meta.validate_labels(metadata.get("labels"), path.child("metadata", "labels"), errs)
    meta.validate_annotations(metadata.get("annotations"), path.child("metadata", "annotations"), errs)
    validate_pod_spec(as_dict(template.get("spec")), path.child("spec"), ctx, errs)


def validate_pod_spec(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    volumes: dict[str, dict[str, Any]] = {
        volume["name"]: volume for volume in as_list(spec.get("volumes"))
        if isinstance(volume, dict) and isinstance(volume.get("name"), str)}
    containers.validate_containers(spec, path, ctx, errs, volumes)


def validate_pod(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    validate_pod_spec(as_dict(doc.get("spec")), ROOT.child("spec"), ctx, errs)


COVERAGE: tuple = ()
COVERAGE_TITLE = "Pod templates and pod specs"
VALIDATORS = {("v1", "Pod"): validate_pod}
