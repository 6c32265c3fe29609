"""ObjectMeta and label selectors (apimachinery's pkg/api/validation and
pkg/apis/meta/v1/validation), shared by every kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.coverage import EVERY_KIND, SELECTOR, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath

ANNOTATIONS_MAX_BYTES = 256 * 1024
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
# A finalizer without a domain must be one of the API server's own.
STANDARD_FINALIZERS = ("kubernetes", ORPHAN_FINALIZER, FOREGROUND_FINALIZER)


@dataclass(frozen=True)
class NameRule:
    """How a kind's names are validated: the check id and the format."""

    check: str
    problems: Callable[[str, bool], list[str]]


# The default; kinds with another name format define their NameRule (and its row) in their own module.
SUBDOMAIN_NAME = NameRule("api-meta-name-subdomain", formats.name_is_dns_subdomain)


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is a mapping; {} otherwise (a wrong type is the schema stage's finding)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def validate_object_meta(meta: Any, path: FieldPath, errs: Errors, name: NameRule = SUBDOMAIN_NAME) -> None:
    """What every object's metadata must satisfy on create. A missing
    namespace is not checked: kubectl and Flux fill it in from the request."""
    meta = as_dict(meta)
    generate = meta.get("generateName")
    if isinstance(generate, str) and generate:
        errs.each("api-meta-generate-name", path.child("generateName"), generate, name.problems(generate, True))
    value = meta.get("name")
    if not value:
        errs.required("api-meta-name-required", path.child("name"), "name or generateName is required")
    elif isinstance(value, str):
        errs.each(name.check, path.child("name"), value, name.problems(value, False))
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace:
        errs.each("api-meta-namespace-format", path.child("namespace"), namespace,
                  formats.name_is_dns_label(namespace))
    generation = meta.get("generation")
    if formats.is_int(generation) and generation < 0:
        errs.invalid("api-meta-generation", path.child("generation"), generation,
                     "must be greater than or equal to 0")
    validate_labels(meta.get("labels"), path.child("labels"), errs)
    validate_annotations(meta.get("annotations"), path.child("annotations"), errs)
    _owner_references(meta.get("ownerReferences"), path.child("ownerReferences"), errs)
    _finalizers(meta.get("finalizers"), path.child("finalizers"), errs)
    _managed_fields(meta.get("managedFields"), path.child("managedFields"), errs)


def validate_label_key(key: str, path: FieldPath, errs: Errors, check: str = "api-meta-label-key") -> None:
    errs.each(check, path, key, formats.qualified_name_problems(key))


def validate_labels(labels: Any, path: FieldPath, errs: Errors) -> None:
    """Keys are qualified names, values label values. The API server names
    the map, not the key, in these errors (`metadata.labels: Invalid value: "k"`)."""
    for key, value in as_dict(labels).items():
        validate_label_key(str(key), path, errs)
        if isinstance(value, str):
            errs.each("api-meta-label-value", path, value, formats.label_value_problems(value))


def validate_annotations(annotations: Any, path: FieldPath, errs: Errors) -> None:
    annotations = as_dict(annotations)
    total = 0
    for key, value in annotations.items():
        # Annotation keys are compared in lower case: 'Example.com/X' is allowed.
        errs.each("api-meta-annotation-key", path, key, formats.qualified_name_problems(str(key).lower()))
        total += len(str(key).encode()) + (len(value.encode()) if isinstance(value, str) else 0)
    if total > ANNOTATIONS_MAX_BYTES:
        errs.too_long("api-meta-annotations-size", path, ANNOTATIONS_MAX_BYTES)


def _owner_references(refs: Any, path: FieldPath, errs: Errors) -> None:
    controller = None
    for ref in as_list(refs):
        ref = as_dict(ref)
        api_version = ref.get("apiVersion")
        if isinstance(api_version, str) and not api_version.rpartition("/")[2]:
            errs.invalid("api-meta-owner-reference", path.child("apiVersion"), api_version,
                         "version must not be empty")
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.invalid("api-meta-owner-reference", path.child(key), ref.get(key) or "", "must not be empty")
        if api_version == "v1" and ref.get("kind") == "Event":
            errs.invalid("api-meta-owner-reference", path, ref, "an Event may not be an owner")
        if ref.get("controller") is True:
            this = f"{ref.get('kind')}/{ref.get('name')}"
            if controller is not None:
                errs.invalid("api-meta-owner-controller", path, refs,
                             f"only one reference may set controller: true (found {controller} and {this})")
            else:
                controller = this


def _finalizers(finalizers: Any, path: FieldPath, errs: Errors) -> None:
    names = [f for f in as_list(finalizers) if isinstance(f, str)]
    for name in names:
        errs.each("api-meta-finalizer-name", path, name, formats.qualified_name_problems(name))
    for index, name in enumerate(as_list(finalizers)):
        if isinstance(name, str) and "/" not in name and name not in STANDARD_FINALIZERS:
            errs.invalid("api-meta-finalizer-standard", path.index(index), name,
                         "a finalizer without a domain prefix must be one of " + ", ".join(STANDARD_FINALIZERS))
    if ORPHAN_FINALIZER in names and FOREGROUND_FINALIZER in names:
        errs.invalid("api-meta-finalizers-exclusive", path, names,
                     f"finalizers {ORPHAN_FINALIZER} and {FOREGROUND_FINALIZER} cannot both be set")


def _managed_fields(entries: Any, path: FieldPath, errs: Errors) -> None:
    for index, entry in enumerate(as_list(entries)):
        entry = as_dict(entry)
        at = path.index(index)
        if entry.get("operation") not in ("Apply", "Update"):
            errs.invalid("api-meta-managed-fields", at.child("operation"), entry.get("operation") or "",
                         "must be `Apply` or `Update`")
        fields_type = entry.get("fieldsType")
        if fields_type and fields_type != "FieldsV1":
            errs.invalid("api-meta-managed-fields", at.child("fieldsType"), fields_type, "must be `FieldsV1`")
        manager = entry.get("manager")
        if isinstance(manager, str) and len(manager) > 128:
            errs.too_long("api-meta-managed-fields", at.child("manager"), 128)


# ---- label selectors (metav1.LabelSelector) ----------------------------------

def validate_label_selector(selector: Any, path: FieldPath, errs: Errors) -> None:
    """matchLabels as labels; each matchExpressions entry a key, a known
    operator, and values exactly when the operator needs them."""
    selector = as_dict(selector)
    validate_labels(selector.get("matchLabels"), path.child("matchLabels"), errs)
    for index, requirement in enumerate(as_list(selector.get("matchExpressions"))):
        requirement = as_dict(requirement)
        at = path.child("matchExpressions").index(index)
        operator, values = requirement.get("operator"), as_list(requirement.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                errs.required("api-selector-values", at.child("values"),
                              "must be specified when `operator` is 'In' or 'NotIn'")
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.forbidden("api-selector-values", at.child("values"),
                               "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        else:
            errs.invalid("api-selector-operator", at.child("operator"), operator if operator is not None else "",
                         "not a valid selector operator")
        key = requirement.get("key")
        validate_label_key(key if isinstance(key, str) else "", at.child("key"), errs, "api-selector-key")
        for position, value in enumerate(values):
            if isinstance(value, str):
                errs.each("api-selector-value", at.child("values").index(position), value,
                          formats.label_value_problems(value))


def selector_is_empty(selector: Any) -> bool:
    selector = as_dict(selector)
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


_META = "apimachinery: ValidateObjectMetaAccessor"
COVERAGE = (
    Row((EVERY_KIND,), _META, "metadata.name is required (kubectl and Flux apply by name; generateName alone "
        "cannot be applied)", "api-meta-name-required"),
    Row((EVERY_KIND,), "apimachinery: NameIsDNSSubdomain", "the name of most kinds is a DNS subdomain "
        "(253 characters)", SUBDOMAIN_NAME.check),
    Row((EVERY_KIND,), _META, "generateName follows the kind's name format (a trailing '-' allowed)",
        "api-meta-generate-name"),
    Row((EVERY_KIND,), _META + " (ValidateNamespaceName)", "metadata.namespace, when set, is a DNS label",
        "api-meta-namespace-format"),
    Row((EVERY_KIND,), _META, "metadata.namespace is required for a namespaced kind", None,
        "kubectl and Flux fill in the namespace from the request (the default namespace or the Kustomization's "
        "targetNamespace), so a manifest without one is never refused for it"),
    Row((EVERY_KIND,), _META, "metadata.namespace is forbidden on a cluster-scoped kind", None,
        "the API server clears the namespace of a cluster-scoped object before it validates, so it is never "
        "refused"),
    Row((EVERY_KIND,), "apimachinery: ValidateNonnegativeField", "metadata.generation is not negative",
        "api-meta-generation"),
    Row((EVERY_KIND, SELECTOR), "meta/v1: ValidateLabels (ValidateLabelName)", "label keys are qualified names "
        "(optional DNS-subdomain prefix, then 63 characters)", "api-meta-label-key"),
    Row((EVERY_KIND, SELECTOR), "meta/v1: ValidateLabels (IsValidLabelValue)", "label values are empty or 63 "
        "characters of alphanumerics, '-', '_', '.', alphanumeric at both ends", "api-meta-label-value"),
    Row((EVERY_KIND,), "apimachinery: ValidateAnnotations", "annotation keys are qualified names (compared in "
        "lower case)", "api-meta-annotation-key"),
    Row((EVERY_KIND,), "apimachinery: ValidateAnnotationsSize", "keys and values of all annotations together "
        "are at most 256 KiB", "api-meta-annotations-size"),
    Row((EVERY_KIND,), "apimachinery: validateOwnerReference", "an owner reference has apiVersion with a "
        "version, kind, name and uid, and is not an Event", "api-meta-owner-reference"),
    Row((EVERY_KIND,), "apimachinery: ValidateOwnerReferences", "at most one owner reference is the controller",
        "api-meta-owner-controller"),
    Row((EVERY_KIND,), "apimachinery: ValidateFinalizerName", "finalizers are qualified names",
        "api-meta-finalizer-name"),
    Row((EVERY_KIND,), "apimachinery: ValidateFinalizers", "the orphan and foregroundDeletion finalizers "
        "exclude each other", "api-meta-finalizers-exclusive"),
    Row((EVERY_KIND,), "core: ValidateObjectMeta (validateKubeFinalizerName)", "a finalizer without a '/' must be "
        "one of the standard ones (kubernetes, orphan, foregroundDeletion)", "api-meta-finalizer-standard"),
    Row((EVERY_KIND,), "meta/v1: ValidateManagedFields", "managedFields entries have operation Apply or Update, "
        "fieldsType FieldsV1 and a manager of at most 128 characters", "api-meta-managed-fields"),
    Row((EVERY_KIND,), "apimachinery: ValidateObjectMetaAccessorUpdate", "name, namespace, uid and "
        "creationTimestamp are immutable; resourceVersion is required on update", None,
        "update-only: the immutable fields that matter in GitOps are checked by `immutable-field` in "
        "`validate --changed` and `diff`"),
    Row((SELECTOR,), "meta/v1: ValidateLabelSelectorRequirement", "In and NotIn need values; Exists and "
        "DoesNotExist take none", "api-selector-values"),
    Row((SELECTOR,), "meta/v1: ValidateLabelSelectorRequirement", "the operator is In, NotIn, Exists or "
        "DoesNotExist", "api-selector-operator"),
    Row((SELECTOR,), "meta/v1: ValidateLabelSelectorRequirement (ValidateLabelName)", "each expression's key "
        "is a qualified name", "api-selector-key"),
    Row((SELECTOR,), "meta/v1: ValidateLabelSelectorRequirement (IsValidLabelValue)", "each expression's values "
        "are label values", "api-selector-value"),
)
COVERAGE_TITLE = "Metadata and label selectors (every kind)"
VALIDATORS: dict = {}
