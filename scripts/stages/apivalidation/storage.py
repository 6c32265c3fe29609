"""v1 PersistentVolumeClaim (core's ValidatePersistentVolumeClaim and
ValidatePersistentVolumeClaimSpec), and the claim-spec check that pod
templates (ephemeral volumes) and StatefulSets (volumeClaimTemplates) reuse."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from scripts.stages.apivalidation import formats, meta
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
READ_WRITE_ONCE_POD = "ReadWriteOncePod"
VOLUME_MODES = ("Block", "Filesystem")
CORE_CLAIM_KIND = "PersistentVolumeClaim"
SNAPSHOT = ("VolumeSnapshot", "snapshot.storage.k8s.io")
STORAGE = "storage"


def validate_pvc(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    validate_pvc_spec(as_dict(doc.get("spec")), ROOT.child("spec"), ctx, errs)


def validate_pvc_spec(spec: Any, path: FieldPath, ctx: Context, errs: Errors, prepare: bool = True) -> None:
    """What the API server refuses in a PersistentVolumeClaimSpec on create.

    validate_pvc_spec(spec, path, ctx, errs, prepare=True)
      spec: the claim spec as written (any shape; never modified).
      path: where the spec is, e.g. `ROOT.child("spec")` for a claim,
            `spec.volumeClaimTemplates[0].spec` for a StatefulSet, or
            `spec.template.spec.volumes[0].ephemeral.volumeClaimTemplate.spec`.
      ctx: the cluster's Kubernetes minor (volumeAttributesClassName is only
           judged from 1.34, when VolumeAttributesClass is on by default).
      errs: where the errors go, with the `api-pvc-*` check ids of this module.
      prepare: also do what the claim's registry does before validating on
           create: drop a dataSourceRef that names a namespace
           (CrossNamespaceVolumeDataSource is off), drop a dataSource that is
           neither a claim nor a VolumeSnapshot when there is no dataSourceRef,
           and copy whichever of dataSource and dataSourceRef is set into the
           other. A caller whose registry does not (check its PrepareForCreate)
           passes False.
    The claim template's metadata is the caller's to check."""
    spec = as_dict(spec)
    _access_modes(spec.get("accessModes"), path.child("accessModes"), errs)
    if spec.get("selector") is not None:
        meta.validate_label_selector(spec.get("selector"), path.child("selector"), errs)
    _resources(as_dict(spec.get("resources")), path.child("resources"), errs)
    class_name = spec.get("storageClassName")
    if isinstance(class_name, str) and class_name:
        errs.each("api-pvc-storage-class", path.child("storageClassName"), class_name,
                  formats.dns_subdomain_problems(class_name))
    mode = spec.get("volumeMode")  # unset is defaulted to Filesystem
    if isinstance(mode, str) and mode not in VOLUME_MODES:
        errs.not_supported("api-pvc-volume-mode", path.child("volumeMode"), mode, VOLUME_MODES)
    _data_sources(spec, path, errs, prepare)
    attributes_class = spec.get("volumeAttributesClassName")
    # VolumeAttributesClass is GA and on from 1.34; before, the API server drops the field unread.
    if ctx.at_least(34) and isinstance(attributes_class, str) and attributes_class:
        errs.each("api-pvc-volume-attributes-class", path.child("volumeAttributesClassName"), attributes_class,
                  formats.dns_subdomain_problems(attributes_class))


def _access_modes(modes: Any, path: FieldPath, errs: Errors) -> None:
    if modes is None or modes == []:
        errs.required("api-pvc-access-modes-required", path,
                      "a claim needs at least one access mode (e.g. ReadWriteOnce)")
        return
    known = [mode for mode in as_list(modes) if mode in ACCESS_MODES]
    for mode in as_list(modes):
        if isinstance(mode, str) and mode not in ACCESS_MODES:
            # The API server names the list, not the entry.
            errs.not_supported("api-pvc-access-mode", path, mode, ACCESS_MODES)
    if READ_WRITE_ONCE_POD in known and any(mode != READ_WRITE_ONCE_POD for mode in known):
        errs.forbidden("api-pvc-read-write-once-pod", path,
                       "ReadWriteOncePod excludes every other access mode: keep it alone, or drop it")


def _quantity(value: Any) -> Decimal | None:
    # A null quantity decodes as zero.
    return Decimal(0) if value is None else formats.parse_quantity(value)


def _resources(resources: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    parsed: dict[str, Decimal | None] = {}
    for group in ("requests", "limits"):
        for name, value in as_dict(resources.get(group)).items():
            if not (value is None or isinstance(value, (str, int, float))) or isinstance(value, bool):
                continue  # the JSON schema's finding
            quantity = _quantity(value)
            if quantity is None:
                errs.invalid("api-pvc-quantity", path.child(group).key(str(name)), value, formats.QUANTITY_FORMAT)
            if group == "requests":
                parsed[str(name)] = quantity
    requests = as_dict(resources.get("requests"))
    # The API server writes this path without `requests`.
    at = path.key(STORAGE)
    if STORAGE not in requests:
        errs.required("api-pvc-storage-required", at, "a claim requests its size in resources.requests.storage "
                      "(e.g. 8Gi)")
        return
    storage = parsed.get(STORAGE)
    if storage is not None and storage <= 0:
        value = requests[STORAGE]
        errs.invalid("api-pvc-storage-positive", at, "0" if value is None else str(value),
                     "must be greater than zero")


def _api_group(reference: dict[str, Any]) -> str | None:
    group = reference.get("apiGroup")
    return group if isinstance(group, str) else None


def _is_claim_or_snapshot(source: dict[str, Any] | None) -> bool:
    if source is None:
        return False
    kind, group = source.get("kind"), _api_group(source) or ""
    return (kind == CORE_CLAIM_KIND and group == "") or (kind, group) == SNAPSHOT


def _copy_reference(source: dict[str, Any]) -> dict[str, Any]:
    out = {"kind": source.get("kind"), "name": source.get("name")}
    if _api_group(source) is not None:
        out["apiGroup"] = _api_group(source)
    return out


def _data_sources(spec: dict[str, Any], path: FieldPath, errs: Errors, prepare: bool) -> None:
    source = spec.get("dataSource") if isinstance(spec.get("dataSource"), dict) else None
    ref = spec.get("dataSourceRef") if isinstance(spec.get("dataSourceRef"), dict) else None
    if ref is not None and ref.get("namespace"):
        if prepare:
            ref = None  # CrossNamespaceVolumeDataSource (alpha) is off: the API server drops it unread
        else:
            return  # its rules are behind that gate
    if prepare:
        if ref is None and not _is_claim_or_snapshot(source):
            source = None  # silently dropped, as before dataSourceRef existed
        if source is not None and ref is None:
            ref = _copy_reference(source)
        elif ref is not None and source is None:
            source = _copy_reference(ref)
    for reference, at in ((source, path.child("dataSource")), (ref, path.child("dataSourceRef"))):
        if reference is not None:
            _reference(reference, at, errs)
    if source is not None and ref is not None and (
            _api_group(source), source.get("kind"), source.get("name")) != (
            _api_group(ref), ref.get("kind"), ref.get("name")):
        errs.invalid("api-pvc-data-source-match", path, str(path.child("dataSource")),
                     "dataSource and dataSourceRef name different objects: keep one of them, or make them equal")


def _reference(reference: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    if not reference.get("name"):
        errs.required("api-pvc-data-source-name", path.child("name"), "the name of the object to copy from")
    kind = reference.get("kind")
    if not kind:
        errs.required("api-pvc-data-source-kind", path.child("kind"), "the kind of the object to copy from")
    group = _api_group(reference) or ""
    if not group and kind != CORE_CLAIM_KIND:
        errs.invalid("api-pvc-data-source-core-kind", path, kind if isinstance(kind, str) else "",
                     f"without an apiGroup the source must be a {CORE_CLAIM_KIND}: set apiGroup for other kinds "
                     f"(e.g. {SNAPSHOT[1]} for a {SNAPSHOT[0]})")
    if group:
        errs.each("api-pvc-data-source-api-group", path.child("apiGroup"), group,
                  formats.dns_subdomain_problems(group))


_PVC = ("PersistentVolumeClaim",)
_SPEC = "core: ValidatePersistentVolumeClaimSpec"
_REF = "core: validateDataSource, validateDataSourceRef"
COVERAGE = (
    Row(_PVC, _SPEC, "accessModes has at least one entry", "api-pvc-access-modes-required"),
    Row(_PVC, _SPEC, "each access mode is ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod",
        "api-pvc-access-mode"),
    Row(_PVC, _SPEC, "ReadWriteOncePod is not combined with another access mode", "api-pvc-read-write-once-pod"),
    Row(_PVC, "decoding (resource.ParseQuantity)", "every resources.requests and resources.limits quantity parses "
        "('8Gi' does, '8Gb' does not)", "api-pvc-quantity"),
    Row(_PVC, _SPEC, "resources.requests.storage is set (reported at `spec.resources[storage]`)",
        "api-pvc-storage-required"),
    Row(_PVC, _SPEC + " (ValidatePositiveQuantityValue)", "resources.requests.storage is greater than zero",
        "api-pvc-storage-positive"),
    Row(_PVC, _SPEC + " (ValidateClassName)", "storageClassName, when not empty, is a DNS subdomain",
        "api-pvc-storage-class"),
    Row(_PVC, _SPEC, "volumeMode is Filesystem or Block", "api-pvc-volume-mode"),
    Row(_PVC, _SPEC, "volumeMode is required", None,
        "filled by defaulting (SetDefaults_PersistentVolumeClaimSpec): Filesystem"),
    Row(_PVC, _REF, "dataSource and dataSourceRef have a name", "api-pvc-data-source-name"),
    Row(_PVC, _REF, "dataSource and dataSourceRef have a kind", "api-pvc-data-source-kind"),
    Row(_PVC, _REF, "without an apiGroup, the kind is PersistentVolumeClaim (a dataSource of another kind without "
        "a dataSourceRef is dropped on create, not refused)", "api-pvc-data-source-core-kind"),
    Row(_PVC, _REF + " (IsDNS1123Subdomain)", "a non-empty apiGroup is a DNS subdomain",
        "api-pvc-data-source-api-group"),
    Row(_PVC, _SPEC, "when both are set, dataSource and dataSourceRef name the same object (apiGroup, kind, name)",
        "api-pvc-data-source-match"),
    Row(_PVC, _REF + ", " + _SPEC, "dataSourceRef.namespace is a DNS label, and dataSource is not set with it", None,
        "behind CrossNamespaceVolumeDataSource, off by default at 1.34 (the API server drops a dataSourceRef that "
        "names a namespace)"),
    Row(_PVC, _SPEC + " (ValidateClassName)", "volumeAttributesClassName, when not empty, is a DNS subdomain (from "
        "1.34, when VolumeAttributesClass is on by default; before, the field is dropped)",
        "api-pvc-volume-attributes-class"),
    Row(_PVC, "admission: ResourceQuota, LimitRange", "the claim fits the namespace's quota and its LimitRange's "
        "storage minimum and maximum", None, "needs the cluster's state (the namespace's ResourceQuota and "
        "LimitRange objects)"),
    Row(_PVC, "core: ValidatePersistentVolumeClaimUpdate", "the spec is immutable except a bound claim's storage "
        "request (which may not shrink) and volumeAttributesClassName", None,
        "update only (`immutable-field` in `validate --changed` covers what GitOps changes)"),
    Row(_PVC, "core: ValidatePersistentVolumeClaimStatusUpdate", "status capacity, conditions and resize status",
        None, "status is written by controllers, not by manifests"),
)
COVERAGE_TITLE = "v1: PersistentVolumeClaim"
COVERAGE_INTRO = (
    "Read from kubernetes/kubernetes `pkg/apis/core/validation/validation.go` at commit 000f26050b9b (a 1.33 "
    "development snapshot; the claim rules did not change by 1.34 but for VolumeAttributesClass going GA) and "
    "`pkg/api/persistentvolumeclaim/util.go` at 008ef699 (what the registry does before it validates a new "
    "claim: it drops fields of gates that are off, drops a dataSource that is neither a claim nor a "
    "VolumeSnapshot when no dataSourceRef is set, then copies dataSource and dataSourceRef into each other). "
    "The claim's name is a DNS subdomain (the every-kind row) and its selector follows the label-selector rows. "
    "Not checked by the API server on create: volumeName (any name; an unknown volume leaves the claim Pending), "
    "resource names other than storage, and limits beyond parsing. `validate_pvc_spec` is the same check for a "
    "StatefulSet's volumeClaimTemplates and a pod's ephemeral volumes."
)
VALIDATORS = {("v1", "PersistentVolumeClaim"): validate_pvc}
