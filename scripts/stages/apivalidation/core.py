"""v1: Namespace, ServiceAccount, ConfigMap, Secret (core's ValidateNamespace,
ValidateServiceAccount, ValidateConfigMap, ValidateSecret) and Service (in
core_service.py), with the name rules of the kinds whose names are not DNS
subdomains."""

from __future__ import annotations

import binascii
import json
import string
from base64 import b64decode
from typing import Any

from scripts.stages.apivalidation import core_service, formats, meta
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import OMITTED, ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import NameRule, as_dict, as_list

# A Namespace name becomes a DNS label of every Service name in it; a Service
# name becomes a DNS label and an environment variable prefix, so it must also
# start with a letter.
LABEL_NAME = NameRule("api-meta-name-label", formats.name_is_dns_label)
DNS1035_NAME = NameRule("api-meta-name-dns1035", formats.name_is_dns1035_label)

# ConfigMap data and binaryData together, and a Secret's data: 1 MiB.
MAX_PAYLOAD_BYTES = 1024 * 1024
REDACTED = "<secret contents redacted>"  # what the API server shows for a secret value

# Built-in Secret types and the data keys each needs.
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"
DOCKERCFG = ("kubernetes.io/dockercfg", ".dockercfg")
DOCKER_CONFIG_JSON = ("kubernetes.io/dockerconfigjson", ".dockerconfigjson")
BASIC_AUTH = ("kubernetes.io/basic-auth", ("username", "password"))
SSH_AUTH = ("kubernetes.io/ssh-auth", "ssh-privatekey")
TLS = ("kubernetes.io/tls", ("tls.crt", "tls.key"))


# ---- Namespace -------------------------------------------------------------

def validate_namespace(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs, LABEL_NAME)
    # The API server names the list, not the entry, in these errors.
    path = ROOT.child("spec", "finalizers")
    for finalizer in as_list(as_dict(doc.get("spec")).get("finalizers")):
        if not isinstance(finalizer, str):
            continue
        errs.each("api-namespace-finalizer-name", path, finalizer, formats.qualified_name_problems(finalizer))
        if "/" not in finalizer and finalizer not in meta.STANDARD_FINALIZERS:
            errs.invalid("api-namespace-finalizer-standard", path, finalizer,
                         "a finalizer without a domain prefix must be one of " + ", ".join(meta.STANDARD_FINALIZERS)
                         + " (e.g. write 'example.com/" + finalizer + "')")


# ---- ServiceAccount --------------------------------------------------------

def validate_service_account(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    # Only the metadata: secrets and imagePullSecrets are names the API server does not check.
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)


# ---- Service (the spec's rules are in core_service.py) -----------------------

def validate_service(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs, DNS1035_NAME)
    core_service.validate_service_spec(doc, ctx, errs)


# ---- base64 payloads (ConfigMap binaryData, Secret data) -------------------

_BASE64_SYMBOLS = frozenset(string.ascii_letters + string.digits + "+/")
_LINE_BREAKS = "\r\n"


def base64_error_offset(text: str) -> int | None:
    """Where the API server's decoder (Go's standard base64, padded, which
    skips line breaks) gives up on a value, as the input byte it names in
    'illegal base64 data at input byte N'; None when the value decodes."""
    in_group = 0  # symbols read of the current group of four
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        if char in _LINE_BREAKS or char in _BASE64_SYMBOLS:
            in_group = (in_group + (char not in _LINE_BREAKS)) % 4
            index += 1
            continue
        if char != "=" or in_group < 2:
            return index  # not base64, or padding where two symbols are still missing
        index += 1
        if in_group == 2:  # one symbol missing: a second '=' must follow
            while index < end and text[index] in _LINE_BREAKS:
                index += 1
            if index == end:
                return end
            if text[index] != "=":
                return index - 1
            index += 1
        while index < end and text[index] in _LINE_BREAKS:
            index += 1
        return index if index < end else None  # nothing may follow the padding
    return end - in_group if in_group else None


class Undecodable:
    """A base64 value the API server cannot decode (it refuses the request)."""

    def __repr__(self) -> str:
        return "UNDECODABLE"


UNDECODABLE = Undecodable()


def decode_base64_map(values: Any, path: FieldPath, plain_field: str, errs: Errors,
                      check: str) -> dict[str, bytes | Undecodable]:
    """The decoded values of a `data`-like map whose values YAML holds in
    base64; each value that does not decode is an error at its key.
    `plain_field` is where plain text goes instead (for the message)."""
    out: dict[str, bytes | Undecodable] = {}
    for key, value in as_dict(values).items():
        key = str(key)
        if value is None:
            out[key] = b""
            continue
        if not isinstance(value, str):
            continue  # the JSON schema's finding
        offset = base64_error_offset(value)
        decoded: bytes | Undecodable = UNDECODABLE
        if offset is None:
            try:
                decoded = b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
            except (binascii.Error, ValueError):
                offset = 0
        if offset is not None:
            # No value in the message: it may be a secret.
            errs.invalid(check, path.key(key), OMITTED,
                         f"not valid base64 (the API server refuses the request: 'illegal base64 data at input "
                         f"byte {offset}'): encode the value, or put plain text in {plain_field}")
        out[key] = decoded
    return out


def _validate_keys(keys: list[str], path: FieldPath, errs: Errors, check: str) -> None:
    for key in keys:
        errs.each(check, path.key(key), key, formats.config_key_problems(key))


# ---- ConfigMap -------------------------------------------------------------

def validate_config_map(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    meta.validate_object_meta(doc.get("metadata"), ROOT.child("metadata"), errs)
    data = as_dict(doc.get("data"))
    binary_data = as_dict(doc.get("binaryData"))
    data_path, binary_path = ROOT.child("data"), ROOT.child("binaryData")
    _validate_keys([str(k) for k in data], data_path, errs, "api-configmap-key")
    _validate_keys([str(k) for k in binary_data], binary_path, errs, "api-configmap-key")
    for key in data:
        if key in binary_data:
            errs.invalid("api-configmap-key-in-both", data_path.key(str(key)), str(key),
                         "the key is also in binaryData: a key may be in data or binaryData, not both")
    decoded = decode_base64_map(binary_data, binary_path, "data", errs, "api-configmap-binary-base64")
    total = sum(len(v.encode()) for v in data.values() if isinstance(v, str))
    total += sum(len(v) for v in decoded.values() if isinstance(v, bytes))
    if total > MAX_PAYLOAD_BYTES:
        # The API server reports this one against the whole object.
        errs.too_long("api-configmap-size", ROOT, MAX_PAYLOAD_BYTES)


# ---- Secret ----------------------------------------------------------------

def validate_secret(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    metadata = as_dict(doc.get("metadata"))
    meta.validate_object_meta(metadata, ROOT.child("metadata"), errs)
    data_path = ROOT.child("data")
    # A SOPS-encrypted Secret holds ciphertext until Flux decrypts it: judge its keys, not its values.
    encrypted = isinstance(doc.get("sops"), dict)
    data: dict[str, bytes | Undecodable] = {}
    if encrypted:
        data = {str(key): UNDECODABLE for key in as_dict(doc.get("data"))}
    else:
        data = decode_base64_map(doc.get("data"), data_path, "stringData", errs, "api-secret-data-base64")
    # stringData is plain text, merged over data before validation (its keys are reported under data).
    for key, value in as_dict(doc.get("stringData")).items():
        if isinstance(value, str) or value is None:
            data[str(key)] = UNDECODABLE if encrypted else (value or "").encode()
    _validate_keys(sorted(data), data_path, errs, "api-secret-key")
    total = sum(len(v) for v in data.values() if isinstance(v, bytes))
    if total > MAX_PAYLOAD_BYTES:
        errs.too_long("api-secret-size", data_path, MAX_PAYLOAD_BYTES)
    secret_type = doc.get("type") or "Opaque"  # the default
    if secret_type == SERVICE_ACCOUNT_TOKEN:
        if not as_dict(metadata.get("annotations")).get(SERVICE_ACCOUNT_NAME_ANNOTATION):
            errs.required("api-secret-service-account-token",
                          ROOT.child("metadata", "annotations").key(SERVICE_ACCOUNT_NAME_ANNOTATION),
                          f"a {SERVICE_ACCOUNT_TOKEN} Secret names its ServiceAccount in this annotation")
    elif secret_type in (DOCKERCFG[0], DOCKER_CONFIG_JSON[0]):
        key = DOCKERCFG[1] if secret_type == DOCKERCFG[0] else DOCKER_CONFIG_JSON[1]
        if key not in data:
            errs.required("api-secret-docker-config-key", data_path.key(key),
                          f"a {secret_type} Secret holds the registry credentials under this key")
        elif isinstance(data[key], bytes):
            problem = json_object_problem(data[key])  # type: ignore[arg-type]
            if problem:
                errs.invalid("api-secret-docker-config-json", data_path.key(key), REDACTED,
                             f"must be a JSON object (a Docker config file): {problem}")
    elif secret_type == BASIC_AUTH[0]:
        if not any(key in data for key in BASIC_AUTH[1]):
            for key in BASIC_AUTH[1]:
                errs.required("api-secret-basic-auth", data_path.key(key),
                              f"a {BASIC_AUTH[0]} Secret needs a username or a password key (either may be empty)")
    elif secret_type == SSH_AUTH[0]:
        value = data.get(SSH_AUTH[1])
        if value is None or value == b"":
            errs.required("api-secret-ssh-auth", data_path.key(SSH_AUTH[1]),
                          f"a {SSH_AUTH[0]} Secret needs a non-empty private key")
    elif secret_type == TLS[0]:
        for key in TLS[1]:
            if key not in data:
                errs.required("api-secret-tls", data_path.key(key),
                              f"a {TLS[0]} Secret needs both {TLS[1][0]} and {TLS[1][1]} (either may be empty)")


def json_object_problem(raw: bytes) -> str | None:
    """Why the API server's JSON decoder would not read `raw` into an
    object, or None (`null` reads as an empty object)."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:
        # Go's decoder replaces bytes that are not UTF-8 instead of failing on them.
        value = json.loads(raw.decode("utf-8", errors="replace"), parse_constant=refuse)
    except json.JSONDecodeError as error:
        return f"{error.msg} at character {error.pos}"
    except (ValueError, RecursionError) as error:
        return str(error)
    if value is None or isinstance(value, dict):
        return None
    return f"it holds a JSON {type(value).__name__.replace('str', 'string').replace('list', 'array')}, not an object"


_NS, _SA, _CM, _SECRET = ("Namespace",), ("ServiceAccount",), ("ConfigMap",), ("Secret",)
_MAP = "core: ValidateConfigMap"
_SEC = "core: ValidateSecret"
_DECODE = "decoding ([]byte values are base64)"
_STATUS = "status is written by controllers, not by manifests"
_UPDATE = "update only (`immutable-field` in `validate --changed` covers what GitOps changes)"
COVERAGE = (
    Row(_NS, "apimachinery: ValidateNamespaceName (NameIsDNSLabel)", "a Namespace name is a DNS label: at most 63 "
        "lowercase letters, digits and '-', no dots", LABEL_NAME.check),
    Row(_NS, "core: ValidateNamespace (ValidateFinalizerName)", "each spec.finalizers entry is a qualified name",
        "api-namespace-finalizer-name"),
    Row(_NS, "core: ValidateNamespace (validateKubeFinalizerName)", "a spec.finalizers entry without a '/' is one of "
        "kubernetes, orphan, foregroundDeletion", "api-namespace-finalizer-standard"),
    Row(_NS, "core: ValidateNamespaceUpdate, ValidateNamespaceFinalizeUpdate", "metadata and finalizer changes",
        None, _UPDATE),
    Row(_NS, "core: ValidateNamespaceStatusUpdate", "status.phase agrees with deletionTimestamp", None, _STATUS),
    Row(("Service",), "core: ValidateServiceName (NameIsDNS1035Label)", "a Service name is an RFC 1035 label: at most "
        "63 lowercase letters, digits and '-', starting with a letter (the DNS-label form that "
        "RelaxedServiceNameValidation allows is off by default at 1.34)", DNS1035_NAME.check),
    Row(_SA, "core: ValidateServiceAccountUpdate", "metadata changes", None, _UPDATE),
    Row(_CM, _MAP + " (IsConfigMapKey)", "data and binaryData keys are at most 253 characters of alphanumerics, '-', "
        "'_' and '.', and not '.', '..' or '..'-prefixed", "api-configmap-key"),
    Row(_CM, _MAP, "a key is in data or in binaryData, not both", "api-configmap-key-in-both"),
    Row(_CM, _MAP + " (core.MaxSecretSize)", "data values and decoded binaryData values together are at most 1 MiB "
        "(1,048,576 bytes)", "api-configmap-size"),
    Row(_CM, _DECODE, "binaryData values are base64 (line breaks skipped, '=' padding required); anything else "
        "fails the request with 'illegal base64 data at input byte N'", "api-configmap-binary-base64"),
    Row(_CM, "core: ValidateConfigMapUpdate", "an immutable ConfigMap's data, binaryData and immutable flag do not "
        "change", None, _UPDATE),
    Row(_SECRET, _SEC + " (IsConfigMapKey)", "data keys (stringData's merged in) are at most 253 characters of "
        "alphanumerics, '-', '_' and '.', and not '.', '..' or '..'-prefixed", "api-secret-key"),
    Row(_SECRET, _SEC + " (core.MaxSecretSize)", "the decoded data (stringData merged in, as UTF-8) is at most 1 MiB "
        "(1,048,576 bytes)", "api-secret-size"),
    Row(_SECRET, _DECODE, "data values are base64 (line breaks skipped, '=' padding required); anything else fails "
        "the request with 'Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte "
        "N' (HTTP 400, before validation)", "api-secret-data-base64"),
    Row(_SECRET, _SEC, "a kubernetes.io/service-account-token Secret has a non-empty "
        "kubernetes.io/service-account.name annotation", "api-secret-service-account-token"),
    Row(_SECRET, _SEC, "a kubernetes.io/dockercfg Secret has data[.dockercfg], a kubernetes.io/dockerconfigjson one "
        "data[.dockerconfigjson]", "api-secret-docker-config-key"),
    Row(_SECRET, _SEC, "that key's decoded value is a JSON object (the API server answers with Go's JSON error, e.g. "
        "'unexpected end of JSON input', 'invalid character ...', 'json: cannot unmarshal array into Go value of type "
        "map[string]interface {}')", "api-secret-docker-config-json"),
    Row(_SECRET, _SEC, "a kubernetes.io/basic-auth Secret has a username or a password key (both reported when "
        "neither is there)", "api-secret-basic-auth"),
    Row(_SECRET, _SEC, "a kubernetes.io/ssh-auth Secret has a non-empty data[ssh-privatekey]", "api-secret-ssh-auth"),
    Row(_SECRET, _SEC, "a kubernetes.io/tls Secret has both data[tls.crt] and data[tls.key] (either may be empty)",
        "api-secret-tls"),
    Row(_SECRET, "core: ValidateSecretUpdate", "type does not change; an immutable Secret's data and immutable flag "
        "do not change", None, _UPDATE),
) + core_service.COVERAGE
COVERAGE_TITLE = "v1: Namespace, ServiceAccount, ConfigMap, Secret, Service"
COVERAGE_INTRO = (
    "Read from kubernetes/kubernetes `pkg/apis/core/validation/validation.go` at commit 000f26050b9b, a snapshot "
    "from the 1.33 development cycle (its IP fields call the path-taking `IsValidIP`, its trafficDistribution "
    "accepts PreferClose alone), with what changed by 1.34 applied: `PreferSameTrafficDistribution` is beta and on "
    "at 1.34 (PreferSameZone and PreferSameNode accepted), and the IP and CIDR fields of a Service are legacy "
    "fields judged loosely while `StrictIPCIDRValidation` is off (alpha at 1.34). Defaults from "
    "`pkg/apis/core/v1/defaults.go` (SetDefaults_Service, SetDefaults_Secret) and the Service create path "
    "(`pkg/registry/core/service/storage`: clusterIP copied into clusterIPs, ipFamilyPolicy defaulted to "
    "SingleStack, nodePorts allocated, all before validation) are applied before judging. What the API server "
    "does not check on create, so neither do we: a ServiceAccount's `secrets` and `imagePullSecrets` (any names), "
    "Opaque and `bootstrap.kubernetes.io/token` Secrets (no type rule; a malformed bootstrap token is ignored by "
    "the authenticator), any other Secret type string, and `externalName` on a Service that is not ExternalName "
    "(accepted and unused). Warnings (`GetWarningsForService`, e.g. non-canonical IPs) are not refusals. How "
    "three answers are shown: a value that is not base64 fails the whole request before validation (HTTP 400, "
    "'illegal base64 data at input byte N'), reported here as `Invalid value` at its key without the value; the "
    "ConfigMap size error has an empty field path upstream, `<root>` here; and a SOPS-encrypted Secret (a top-level "
    "`sops` key) has its keys judged but not its values, which are ciphertext until Flux decrypts them."
)
VALIDATORS = {
    ("v1", "Namespace"): validate_namespace,
    ("v1", "ServiceAccount"): validate_service_account,
    ("v1", "ConfigMap"): validate_config_map,
    ("v1", "Secret"): validate_secret,
    ("v1", "Service"): validate_service,
}
