"""A container's securityContext (core's ValidateSecurityContext and what it
calls: the seccomp and AppArmor profile rules, the Windows options).

The profile and Windows-options functions take no container-specific
argument: the pod's securityContext has the same fields with the same rules
(validatePodSpecSecurityContext calls the same upstream functions), so
pods.py may call them too.
"""

from __future__ import annotations

import re
from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.container_mounts import local_descending_path
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

PROFILE_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")
PROC_MOUNT_TYPES = ("Default", "Unmasked")
APPARMOR_PROFILE_MAX = 4095  # PATH_MAX - 1
GMSA_SPEC_MAX_BYTES = 64 * 1024
RUN_AS_DOMAIN_MAX = 256  # the domain must be shorter than this
RUN_AS_USER_MAX = 104

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A NetBIOS domain: 1 to 15 characters, none of \ / : * ? " < > |, not starting with '.'.
_NETBIOS = re.compile(r'[^\\/:*?"<>|.][^\\/:*?"<>|]{0,14}')
_DNS_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_DNS_DOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_USER_BAD_CHARS = re.compile(r'["/\\:;|=,+*?<>@\[\]]')
_USER_DOTS_SPACES = re.compile(r"[. ]+")


def validate_security_context(sc: Any, path: FieldPath, ctx: Context, errs: Errors, host_users: bool) -> None:
    """`host_users`: the pod's hostUsers after defaulting (true unless the
    pod asks for a user namespace)."""
    if not isinstance(sc, dict):
        return
    for key, check in (("runAsUser", "api-container-run-as-user"), ("runAsGroup", "api-container-run-as-group")):
        value = sc.get(key)
        if formats.is_int(value):
            errs.each(check, path.child(key), value, formats.user_id_problems(value))
    proc_mount = sc.get("procMount")
    # ProcMountType is on by default since 1.33; before, the API server drops the field.
    if isinstance(proc_mount, str) and ctx.at_least(33):
        if proc_mount not in PROC_MOUNT_TYPES:
            errs.not_supported("api-container-proc-mount", path.child("procMount"), proc_mount, PROC_MOUNT_TYPES)
        elif proc_mount == "Unmasked" and host_users:
            errs.invalid("api-container-proc-mount-unmasked", path.child("procMount"), proc_mount,
                         "Unmasked needs a user namespace: set spec.hostUsers: false")
    validate_seccomp_profile(sc.get("seccompProfile"), path.child("seccompProfile"), errs)
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            errs.invalid("api-container-escalation-privileged", path, sc,
                         "privileged: true always allows privilege escalation: drop one of privileged: true "
                         "and allowPrivilegeEscalation: false")
        for capability in as_list(as_dict(sc.get("capabilities")).get("add")):
            # The API server compares the exact string; "SYS_ADMIN" is not caught.
            if capability == "CAP_SYS_ADMIN":
                errs.invalid("api-container-escalation-sys-admin", path, sc,
                             "adding CAP_SYS_ADMIN always allows privilege escalation: drop one of it and "
                             "allowPrivilegeEscalation: false")
    validate_windows_options(sc.get("windowsOptions"), path.child("windowsOptions"), errs)
    validate_apparmor_profile(sc.get("appArmorProfile"), path.child("appArmorProfile"), errs)


def validate_seccomp_profile(profile: Any, path: FieldPath, errs: Errors) -> None:
    if not isinstance(profile, dict):
        return
    kind = profile.get("type")
    kind = kind if isinstance(kind, str) else ""
    if not kind:
        errs.required("api-seccomp-type-required", path.child("type"), "a seccompProfile needs a type: "
                      + ", ".join(PROFILE_TYPES))
    elif kind not in PROFILE_TYPES:
        errs.not_supported("api-seccomp-type", path.child("type"), kind, PROFILE_TYPES)
    local = profile.get("localhostProfile")
    if kind == "Localhost":
        if local is None:
            errs.required("api-seccomp-localhost-required", path.child("localhostProfile"),
                          "type Localhost needs localhostProfile (a file under the kubelet's seccomp directory)")
        elif isinstance(local, str):
            local_descending_path("api-seccomp-localhost-path", local, path.child("localhostProfile"), errs)
    elif local is not None:
        errs.invalid("api-seccomp-localhost-forbidden", path.child("localhostProfile"), profile,
                     "localhostProfile may only be set with type Localhost")


def validate_apparmor_profile(profile: Any, path: FieldPath, errs: Errors) -> None:
    if not isinstance(profile, dict):
        return
    kind = profile.get("type")
    kind = kind if isinstance(kind, str) else ""
    local = profile.get("localhostProfile")
    if kind == "Localhost":
        at = path.child("localhostProfile")
        if local is None:
            errs.required("api-apparmor-localhost-required", at,
                          "type Localhost needs localhostProfile (the name of a profile loaded on the node)")
        elif isinstance(local, str):
            if local.strip() != local:
                errs.invalid("api-apparmor-localhost-whitespace", at, local,
                             "must not begin or end with whitespace")
            elif not local:
                errs.required("api-apparmor-localhost-required", at,
                              "type Localhost needs a non-empty localhostProfile")
            if len(local.encode()) > APPARMOR_PROFILE_MAX:
                errs.too_long("api-apparmor-localhost-length", at, APPARMOR_PROFILE_MAX)
    elif kind in ("RuntimeDefault", "Unconfined"):
        if local is not None:
            errs.invalid("api-apparmor-localhost-forbidden", path.child("localhostProfile"), local,
                         "localhostProfile may only be set with type Localhost")
    elif not kind:
        errs.required("api-apparmor-type-required", path.child("type"),
                      "an appArmorProfile needs a type: " + ", ".join(PROFILE_TYPES))
    else:
        errs.not_supported("api-apparmor-type", path.child("type"), kind, PROFILE_TYPES)


def validate_windows_options(options: Any, path: FieldPath, errs: Errors) -> None:
    if not isinstance(options, dict):
        return
    spec_name = options.get("gmsaCredentialSpecName")
    if isinstance(spec_name, str):
        errs.each("api-windows-gmsa-spec-name", path.child("gmsaCredentialSpecName"), spec_name,
                  formats.dns_subdomain_problems(spec_name))
    spec = options.get("gmsaCredentialSpec")
    if isinstance(spec, str):
        at = path.child("gmsaCredentialSpec")
        if not spec:
            errs.invalid("api-windows-gmsa-spec-empty", at, spec, "must not be empty: omit it or give the spec")
        elif len(spec.encode()) > GMSA_SPEC_MAX_BYTES:
            errs.invalid("api-windows-gmsa-spec-size", at, spec, "must be at most 64 KiB")
    user_name = options.get("runAsUserName")
    if isinstance(user_name, str):
        _run_as_user_name(user_name, path.child("runAsUserName"), errs)


def _run_as_user_name(value: str, path: FieldPath, errs: Errors) -> None:
    """runAsUserName is USER or DOMAIN\\USER, with Windows' naming rules."""
    if not value:
        errs.invalid("api-windows-user-empty", path, value, "must not be empty: omit it or name a user")
        return
    if _CONTROL.search(value):
        errs.invalid("api-windows-user-control", path, value, "must not contain control characters")
        return
    parts = value.split("\\")
    if len(parts) > 2:
        errs.invalid("api-windows-user-backslash", path, value, "may hold at most one '\\' (DOMAIN\\USER)")
        return
    domain, user = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    if len(domain.encode()) >= RUN_AS_DOMAIN_MAX:
        errs.invalid("api-windows-domain-length", path, value,
                     f"the domain must be shorter than {RUN_AS_DOMAIN_MAX} characters")
    if len(parts) == 2 and not (_NETBIOS.fullmatch(domain) or _DNS_DOMAIN.fullmatch(domain)):
        errs.invalid("api-windows-domain-format", path, value,
                     "the domain must be a NetBIOS name (1-15 characters, none of \\ / : * ? \" < > |, not "
                     "starting with '.') or a DNS name")
    if not user:
        errs.invalid("api-windows-user-missing", path, value, "the user part must not be empty")
    elif len(user.encode()) > RUN_AS_USER_MAX:
        errs.invalid("api-windows-user-length", path, value,
                     f"the user part must be at most {RUN_AS_USER_MAX} characters")
    if _USER_DOTS_SPACES.fullmatch(user):
        errs.invalid("api-windows-user-dots", path, value, "the user part must not be only dots and spaces")
    if _USER_BAD_CHARS.search(user):
        errs.invalid("api-windows-user-chars", path, value,
                     'the user part must not contain any of " / \\ : ; | = , + * ? < > @ [ ]')


_SC = "core: ValidateSecurityContext"
_SECCOMP = "core: validateSeccompProfileField"
_APPARMOR = "core: ValidateAppArmorProfileField"
_WINDOWS = "core: validateWindowsSecurityContextOptions"
ROWS = (
    Row((POD_TEMPLATE,), _SC, "privileged: true is refused when the API server runs without "
        "--allow-privileged", None, "depends on the API server's flags (the cluster's configuration, not the "
        "manifest); the platform's own policy rules cover privileged containers"),
    Row((POD_TEMPLATE,), _SC + " (IsValidUserID)", "runAsUser is between 0 and 2147483647",
        "api-container-run-as-user"),
    Row((POD_TEMPLATE,), _SC + " (IsValidGroupID)", "runAsGroup is between 0 and 2147483647",
        "api-container-run-as-group"),
    Row((POD_TEMPLATE,), _SC + " (ValidateProcMountType)", "procMount is Default or Unmasked (ProcMountType, on "
        "by default since 1.33; before, the field is dropped)", "api-container-proc-mount"),
    Row((POD_TEMPLATE,), _SC, "procMount: Unmasked needs spec.hostUsers: false", "api-container-proc-mount-unmasked"),
    Row((POD_TEMPLATE,), _SC, "allowPrivilegeEscalation: false contradicts privileged: true",
        "api-container-escalation-privileged"),
    Row((POD_TEMPLATE,), _SC, "allowPrivilegeEscalation: false contradicts capabilities.add CAP_SYS_ADMIN (the "
        "exact string)", "api-container-escalation-sys-admin"),
    Row((POD_TEMPLATE,), _SECCOMP + " (validateSeccompProfileType)", "seccompProfile.type is set",
        "api-seccomp-type-required"),
    Row((POD_TEMPLATE,), _SECCOMP + " (validateSeccompProfileType)", "seccompProfile.type is Localhost, "
        "RuntimeDefault or Unconfined", "api-seccomp-type"),
    Row((POD_TEMPLATE,), _SECCOMP, "type Localhost needs localhostProfile", "api-seccomp-localhost-required"),
    Row((POD_TEMPLATE,), _SECCOMP + " (validateLocalDescendingPath)", "localhostProfile is a relative path with "
        "no '..' element", "api-seccomp-localhost-path"),
    Row((POD_TEMPLATE,), _SECCOMP, "localhostProfile only with type Localhost", "api-seccomp-localhost-forbidden"),
    Row((POD_TEMPLATE,), _APPARMOR, "appArmorProfile.type is set", "api-apparmor-type-required"),
    Row((POD_TEMPLATE,), _APPARMOR, "appArmorProfile.type is Localhost, RuntimeDefault or Unconfined",
        "api-apparmor-type"),
    Row((POD_TEMPLATE,), _APPARMOR, "type Localhost needs a non-empty localhostProfile",
        "api-apparmor-localhost-required"),
    Row((POD_TEMPLATE,), _APPARMOR, "localhostProfile has no leading or trailing whitespace",
        "api-apparmor-localhost-whitespace"),
    Row((POD_TEMPLATE,), _APPARMOR, "localhostProfile is at most 4095 bytes", "api-apparmor-localhost-length"),
    Row((POD_TEMPLATE,), _APPARMOR, "localhostProfile only with type Localhost", "api-apparmor-localhost-forbidden"),
    Row((POD_TEMPLATE,), _WINDOWS, "gmsaCredentialSpecName is a DNS subdomain (the name of a "
        "GMSACredentialSpec)", "api-windows-gmsa-spec-name"),
    Row((POD_TEMPLATE,), _WINDOWS, "gmsaCredentialSpec, when set, is not empty", "api-windows-gmsa-spec-empty"),
    Row((POD_TEMPLATE,), _WINDOWS, "gmsaCredentialSpec is at most 64 KiB", "api-windows-gmsa-spec-size"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName, when set, is not empty", "api-windows-user-empty"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName has no control characters", "api-windows-user-control"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName has at most one backslash (DOMAIN\\USER)",
        "api-windows-user-backslash"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName's domain is shorter than 256 characters",
        "api-windows-domain-length"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName's domain is a NetBIOS or a DNS name", "api-windows-domain-format"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName's user part is not empty", "api-windows-user-missing"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName's user part is at most 104 characters", "api-windows-user-length"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName's user part is not only dots and spaces", "api-windows-user-dots"),
    Row((POD_TEMPLATE,), _WINDOWS, "runAsUserName's user part has none of \" / \\ : ; | = , + * ? < > @ [ ]",
        "api-windows-user-chars"),
)
