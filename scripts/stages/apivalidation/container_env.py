"""A container's env and envFrom (core's ValidateEnv, validateEnvVarValueFrom,
validateObjectFieldSelector, validateContainerResourceFieldSelector,
validateConfigMapKeySelector, validateSecretKeySelector, ValidateEnvFrom)."""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.container_resources import quantity_text
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_list

# The pod fields an env var may read (validEnvDownwardAPIFieldPathExpressions).
ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
# Every pod field the downward API converts (pods.ConvertDownwardAPIFieldLabel); the
# others above are refused in conversion, these below only by the env list.
CONVERTIBLE_FIELD_PATHS = ENV_FIELD_PATHS + ("metadata.annotations", "metadata.labels", "spec.restartPolicy",
                                             "spec.schedulerName", "status.phase")
FIELD_PATH_ALIASES = {"spec.host": "spec.nodeName"}  # what old clients send
SUBSCRIPTED_FIELDS = ("metadata.annotations", "metadata.labels")
ENV_RESOURCES = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                 "requests.ephemeral-storage", "requests.memory")
HUGEPAGE_RESOURCE_PREFIXES = ("requests.hugepages-", "limits.hugepages-")
CPU_DIVISORS = ("1m", "1")
BYTE_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")
VALUE_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def env_name_problems(name: str, ctx: Context) -> list[str]:
    # RelaxedEnvironmentVariableValidation is on by default since 1.32.
    return formats.relaxed_env_var_name_problems(name) if ctx.at_least(32) else formats.env_var_name_problems(name)


def validate_env(env: Any, path: FieldPath, ctx: Context, errs: Errors) -> None:
    """`path`: the container's `env`."""
    for index, var in enumerate(as_list(env)):
        if not isinstance(var, dict):
            continue
        at = path.index(index)
        name = var.get("name")
        if name == "":
            errs.required("api-container-env-name-required", at.child("name"), "name the variable")
        elif isinstance(name, str):
            errs.each("api-container-env-name", at.child("name"), name, env_name_problems(name, ctx))
        source = var.get("valueFrom")
        if isinstance(source, dict):
            _value_from(source, _str(var.get("value")), at.child("valueFrom"), errs)


def _value_from(source: dict[str, Any], value: str, path: FieldPath, errs: Errors) -> None:
    # fileKeyRef (EnvFiles) is alpha and off by default at 1.34: the API server drops
    # it first, so it is not a source here.
    sources = [key for key in VALUE_SOURCES if isinstance(source.get(key), dict)]
    if "fieldRef" in sources:
        _field_ref(source["fieldRef"], path.child("fieldRef"), errs)
    if "resourceFieldRef" in sources:
        _resource_field_ref(source["resourceFieldRef"], path.child("resourceFieldRef"), errs)
    for key in ("configMapKeyRef", "secretKeyRef"):
        if key in sources:
            _key_selector(source[key], path.child(key), errs)
    if not sources:
        errs.invalid("api-container-env-source-missing", path, "",
                     "valueFrom needs one of fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef")
    elif value:
        errs.invalid("api-container-env-value-and-source", path, "",
                     "set value or valueFrom, not both")
    elif len(sources) > 1:
        errs.invalid("api-container-env-sources-several", path, "",
                     "valueFrom takes one source; this one has " + " and ".join(sources))


def _split_subscript(field_path: str) -> tuple[str, str] | None:
    """'metadata.labels['app']' -> ('metadata.labels', 'app')."""
    if not field_path.endswith("']"):
        return None
    head, sep, key = field_path[:-2].partition("['")
    return (head, key) if sep and head else None


def _field_ref(ref: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    # apiVersion defaults to v1, so it is never missing.
    version = _str(ref.get("apiVersion")) or "v1"
    field_path = ref.get("fieldPath")
    if not isinstance(field_path, str):
        return
    at = path.child("fieldPath")
    if not field_path:
        errs.required("api-container-env-field-path-required", at, "name the pod field to read")
        return
    if version != "v1":
        errs.invalid("api-container-env-field-path", at, field_path,
                     f"apiVersion {version!r} is not supported: pod fields are read at v1")
        return
    subscripted = _split_subscript(field_path)
    if subscripted is not None:
        field, key = subscripted
        if field not in SUBSCRIPTED_FIELDS:
            errs.invalid("api-container-env-field-path", at, field_path,
                         "only metadata.labels['<key>'] and metadata.annotations['<key>'] take a key")
            return
        key = key.lower() if field == "metadata.annotations" else key
        # The API server names the fieldRef, not its fieldPath, in this error.
        errs.each("api-container-env-field-key", path, key, formats.qualified_name_problems(key))
        return
    field = FIELD_PATH_ALIASES.get(field_path, field_path)
    if field not in CONVERTIBLE_FIELD_PATHS:
        errs.invalid("api-container-env-field-path", at, field_path, "not a pod field the downward API provides")
    elif field not in ENV_FIELD_PATHS:
        errs.not_supported("api-container-env-field-path-supported", at, field, sorted(ENV_FIELD_PATHS))


def _resource_field_ref(ref: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    resource = ref.get("resource")
    if not isinstance(resource, str):
        return
    if not resource:
        errs.required("api-container-env-resource-required", path.child("resource"),
                      "name the resource to read, e.g. limits.memory")
    elif resource not in ENV_RESOURCES and not resource.startswith(HUGEPAGE_RESOURCE_PREFIXES):
        errs.not_supported("api-container-env-resource", path.child("resource"), resource, ENV_RESOURCES)
    divisor = ref.get("divisor")
    if divisor is None or isinstance(divisor, bool) or not isinstance(divisor, (str, int, float)):
        return
    value = formats.parse_quantity(divisor)
    if value is None:
        errs.invalid("api-container-quantity", path.child("divisor"), divisor, formats.QUANTITY_FORMAT)
        return
    if value == 0:
        return  # unset
    text = quantity_text(divisor)
    if resource in ("limits.cpu", "requests.cpu"):
        allowed: tuple[str, ...] | None = CPU_DIVISORS
    elif resource in ("limits.memory", "requests.memory", "limits.ephemeral-storage", "requests.ephemeral-storage") \
            or resource.startswith(HUGEPAGE_RESOURCE_PREFIXES):
        allowed = BYTE_DIVISORS
    else:
        allowed = None
    if allowed is not None and text not in allowed:
        # The API server shows the resource, not the divisor, as the value.
        errs.invalid("api-container-env-resource-divisor", path.child("divisor"), resource,
                     f"divisor {text} is not one of " + ", ".join(allowed))


def _key_selector(ref: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    name = _str(ref.get("name"))
    # An empty name is refused too: it is not a DNS subdomain.
    errs.each("api-container-env-ref-name", path.child("name"), name, formats.dns_subdomain_problems(name))
    key = ref.get("key")
    if key == "":
        errs.required("api-container-env-ref-key-required", path.child("key"), "name the key to read")
    elif isinstance(key, str):
        errs.each("api-container-env-ref-key", path.child("key"), key, formats.config_key_problems(key))


def validate_env_from(sources: Any, path: FieldPath, ctx: Context, errs: Errors) -> None:
    """`path`: the container's `envFrom`. The count errors name the list."""
    for index, source in enumerate(as_list(sources)):
        if not isinstance(source, dict):
            continue
        at = path.index(index)
        prefix = source.get("prefix")
        if isinstance(prefix, str) and prefix:
            errs.each("api-container-env-from-prefix", at.child("prefix"), prefix, env_name_problems(prefix, ctx))
        refs = [key for key in ("configMapRef", "secretRef") if isinstance(source.get(key), dict)]
        for key in refs:
            name = _str(source[key].get("name"))
            if not name:
                errs.required("api-container-env-from-name-required", at.child(key, "name"),
                              "name the ConfigMap or Secret")
            else:
                # Checked as a name prefix: a trailing '-' passes here.
                errs.each("api-container-env-from-name", at.child(key, "name"), name,
                          formats.name_is_dns_subdomain(name, True))
        if not refs:
            errs.invalid("api-container-env-from-source-missing", path, "", "each envFrom entry needs configMapRef "
                         "or secretRef")
        elif len(refs) > 1:
            errs.invalid("api-container-env-from-sources-several", path, "",
                         "each envFrom entry takes one of configMapRef or secretRef; split it in two")


_ENV = "core: ValidateEnv"
_FROM = "core: validateEnvVarValueFrom"
_FIELD = "core: validateObjectFieldSelector"
_RESOURCE = "core: validateContainerResourceFieldSelector"
_KEY = "core: validateConfigMapKeySelector, validateSecretKeySelector"
_ENV_FROM = "core: ValidateEnvFrom"
ROWS = (
    Row((POD_TEMPLATE,), _ENV, "an env var's name is not empty", "api-container-env-name-required"),
    Row((POD_TEMPLATE,), _ENV + " (IsRelaxedEnvVarName)", "an env var's name is printable ASCII without '=' "
        "(RelaxedEnvironmentVariableValidation, on by default since 1.32; before, a C-like name)",
        "api-container-env-name"),
    Row((POD_TEMPLATE,), _FROM, "valueFrom names a source", "api-container-env-source-missing"),
    Row((POD_TEMPLATE,), _FROM, "valueFrom is refused next to a non-empty value", "api-container-env-value-and-source"),
    Row((POD_TEMPLATE,), _FROM, "valueFrom holds one source only", "api-container-env-sources-several"),
    Row((POD_TEMPLATE,), _FROM, "fileKeyRef: its volume, path and key", None,
        "behind EnvFiles, alpha and off by default at 1.34: the API server drops fileKeyRef before validating "
        "(a valueFrom that held only it is then refused by api-container-env-source-missing)"),
    Row((POD_TEMPLATE,), _FIELD, "fieldRef.apiVersion is required", None,
        "filled by defaulting (v1)"),
    Row((POD_TEMPLATE,), _FIELD, "fieldRef.fieldPath is not empty", "api-container-env-field-path-required"),
    Row((POD_TEMPLATE,), _FIELD + " (ConvertDownwardAPIFieldLabel)", "fieldRef converts: apiVersion v1, a known "
        "pod field, a ['key'] only on metadata.labels and metadata.annotations", "api-container-env-field-path"),
    Row((POD_TEMPLATE,), _FIELD + " (ValidateQualifiedName)", "the key of metadata.labels['key'] or "
        "metadata.annotations['key'] is a qualified name (annotations compared in lower case)",
        "api-container-env-field-key"),
    Row((POD_TEMPLATE,), _FIELD, "a subscripted fieldPath other than labels and annotations", None,
        "unreachable: the conversion above refuses it first"),
    Row((POD_TEMPLATE,), _FIELD, "fieldPath is one env vars may read: metadata.name, namespace, uid, "
        "spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s)",
        "api-container-env-field-path-supported"),
    Row((POD_TEMPLATE,), _RESOURCE, "resourceFieldRef.containerName is required", None,
        "only for downward API volumes; an env var reads its own container"),
    Row((POD_TEMPLATE,), _RESOURCE, "resourceFieldRef.resource is not empty", "api-container-env-resource-required"),
    Row((POD_TEMPLATE,), _RESOURCE, "resourceFieldRef.resource is limits or requests of cpu, memory, "
        "ephemeral-storage or hugepages-<size>", "api-container-env-resource"),
    Row((POD_TEMPLATE,), _RESOURCE + " (validateContainerResourceDivisor)", "a divisor is 1m or 1 for cpu, and "
        "1, 1k ... 1E or 1Ki ... 1Ei for memory, ephemeral-storage and hugepages",
        "api-container-env-resource-divisor"),
    Row((POD_TEMPLATE,), _KEY, "configMapKeyRef.name and secretKeyRef.name are DNS subdomains (empty is refused)",
        "api-container-env-ref-name"),
    Row((POD_TEMPLATE,), _KEY, "configMapKeyRef.key and secretKeyRef.key are not empty",
        "api-container-env-ref-key-required"),
    Row((POD_TEMPLATE,), _KEY + " (IsConfigMapKey)", "the key is a config key: alphanumerics, '-', '_', '.', at "
        "most 253, not '.' or '..'", "api-container-env-ref-key"),
    Row((POD_TEMPLATE,), _ENV_FROM + " (IsRelaxedEnvVarName)", "envFrom prefix is a valid env var name",
        "api-container-env-from-prefix"),
    Row((POD_TEMPLATE,), _ENV_FROM, "each envFrom entry names configMapRef or secretRef",
        "api-container-env-from-source-missing"),
    Row((POD_TEMPLATE,), _ENV_FROM, "an envFrom entry holds only one of configMapRef and secretRef",
        "api-container-env-from-sources-several"),
    Row((POD_TEMPLATE,), "core: validateConfigMapEnvSource, validateSecretEnvSource", "configMapRef.name and "
        "secretRef.name are not empty", "api-container-env-from-name-required"),
    Row((POD_TEMPLATE,), "core: validateConfigMapEnvSource, validateSecretEnvSource (NameIsDNSSubdomain, as a "
        "prefix)", "configMapRef.name and secretRef.name are DNS subdomains (a trailing '-' passes)",
        "api-container-env-from-name"),
)
