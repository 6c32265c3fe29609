"""The pod's security settings: core's validatePodSpecSecurityContext, the
profile and Windows-options validators it shares with container security
contexts, validateOS with the fields each OS forbids, validateHostUsers and
validateWindowsHostProcessPod.

In the API server's internal type hostNetwork, hostPID, hostIPC,
shareProcessNamespace and hostUsers live in the pod's security context; some
of its messages name them there (`spec.securityContext.shareProcessNamespace`)
or in its own spelling (`spec.HostPID`). The paths below are the ones it prints.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list
from scripts.stages.apivalidation.pod_volumes import relative_path_problems

SECCOMP_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")
APPARMOR_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")
APPARMOR_PROFILE_MAX = 4095  # PATH_MAX - 1
FSGROUP_CHANGE_POLICIES = ("Always", "OnRootMismatch")
SUPPLEMENTAL_GROUPS_POLICIES = ("Merge", "Strict")
OS_NAMES = ("linux", "windows")
SYSCTL_NAME_MAX = 253
_SYSCTL_SEGMENT = r"[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_NAME = re.compile(rf"({_SYSCTL_SEGMENT}[./])*{_SYSCTL_SEGMENT}")
# Namespaced sysctls (k8s.io/component-helpers node/util/sysctl): a pod
# sharing the host's namespace may not set them.
_IPC_SYSCTLS = ("kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
                "kernel.shm", "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.msg")
GMSA_SPEC_MAX = 64 * 1024
RUN_AS_DOMAIN_MAX = 256
RUN_AS_USER_MAX = 104
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NETBIOS = re.compile(r'[^\\/:*?"<>|.][^\\/:*?"<>|]{0,14}')
_DNS_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_WINDOWS_DNS = re.compile(rf"{_DNS_PART}(?:\.{_DNS_PART})*")
_USER_BAD_CHARS = re.compile(r'["/\\:;|=,+*?<>@\[\]]')
_USER_DOTS_SPACES = re.compile(r"[. ]+")
# What a windows pod may not set in its security context.
_WINDOWS_POD_FORBIDDEN = ("appArmorProfile", "seLinuxOptions", "seccompProfile", "fsGroup", "fsGroupChangePolicy",
                          "sysctls", "runAsUser", "runAsGroup", "supplementalGroups", "supplementalGroupsPolicy",
                          "seLinuxChangePolicy")


def containers_with_paths(spec: dict[str, Any], path: FieldPath) -> Iterator[tuple[dict[str, Any], FieldPath]]:
    """Every container of the spec with its path, init containers first (the
    API server's VisitContainersWithPath order)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in enumerate(as_list(spec.get(key))):
            yield as_dict(container), path.child(key).index(index)


# ---- profiles and Windows options (also used by container security contexts) --

def validate_seccomp_profile(profile: Any, path: FieldPath, errs: Errors, check: str = "api-pod-seccomp-profile") \
        -> None:
    """validateSeccompProfileField."""
    if not isinstance(profile, dict):
        return
    kind, local = profile.get("type"), profile.get("localhostProfile")
    if kind == "":
        errs.required(check, path.child("type"), "set type to RuntimeDefault, Localhost or Unconfined")
    elif isinstance(kind, str) and kind not in SECCOMP_TYPES:
        errs.not_supported(check, path.child("type"), kind, SECCOMP_TYPES)
    if kind == "Localhost":
        if local is None:
            errs.required(check, path.child("localhostProfile"), "type Localhost needs the profile's file, "
                          "relative to the kubelet's seccomp directory")
        elif isinstance(local, str):
            errs.each(check, path.child("localhostProfile"), local, relative_path_problems(local))
    elif local is not None:
        errs.invalid(check, path.child("localhostProfile"), profile, "may only be set with type Localhost")


def validate_apparmor_profile(profile: Any, path: FieldPath, errs: Errors, check: str = "api-pod-apparmor-profile") \
        -> None:
    """ValidateAppArmorProfileField."""
    if not isinstance(profile, dict):
        return
    kind, local = profile.get("type"), profile.get("localhostProfile")
    if kind == "Localhost":
        if local is None:
            errs.required(check, path.child("localhostProfile"), "type Localhost needs the loaded profile's name")
        elif isinstance(local, str):
            if local.strip() != local:
                errs.invalid(check, path.child("localhostProfile"), local, "must not start or end with whitespace")
            elif not local:
                errs.required(check, path.child("localhostProfile"), "type Localhost needs the loaded profile's name")
            if len(local.encode()) > APPARMOR_PROFILE_MAX:
                errs.too_long(check, path.child("localhostProfile"), APPARMOR_PROFILE_MAX)
    elif kind in ("RuntimeDefault", "Unconfined"):
        if local is not None:
            errs.invalid(check, path.child("localhostProfile"), local, "may only be set with type Localhost")
    elif kind == "":
        errs.required(check, path.child("type"), "set type to RuntimeDefault, Localhost or Unconfined")
    elif isinstance(kind, str):
        errs.not_supported(check, path.child("type"), kind, APPARMOR_TYPES)


def windows_user_name_problems(name: str) -> list[str]:
    """The runAsUserName rules: DOMAIN\\USER or USER, with the Windows limits."""
    if not name:
        return ["must not be empty"]
    if _CONTROL.search(name):
        return ["must not contain control characters"]
    parts = name.split("\\")
    if len(parts) > 2:
        return ["may contain at most one backslash (DOMAIN\\USER)"]
    domain, user = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    out = []
    if len(domain.encode()) >= RUN_AS_DOMAIN_MAX:
        out.append(f"the domain must be shorter than {RUN_AS_DOMAIN_MAX} characters")
    if len(parts) == 2 and not (_NETBIOS.fullmatch(domain) or _WINDOWS_DNS.fullmatch(domain)):
        out.append("the domain is neither a NetBIOS name nor a DNS name")
    if not user:
        out.append("the user must not be empty")
    elif len(user.encode()) > RUN_AS_USER_MAX:
        out.append(f"the user must be at most {RUN_AS_USER_MAX} characters")
    if _USER_DOTS_SPACES.fullmatch(user):
        out.append("the user must not be only periods or spaces")
    if _USER_BAD_CHARS.search(user):
        out.append('the user must not contain any of "/\\:;|=,+*?<>@[]')
    return out


def validate_windows_options(options: Any, path: FieldPath, errs: Errors, check: str = "api-pod-windows-options") \
        -> None:
    """validateWindowsSecurityContextOptions."""
    if not isinstance(options, dict):
        return
    name = options.get("gmsaCredentialSpecName")
    if isinstance(name, str):
        errs.each(check, path.child("gmsaCredentialSpecName"), name, formats.dns_subdomain_problems(name))
    spec = options.get("gmsaCredentialSpec")
    if isinstance(spec, str):
        if not spec:
            errs.invalid(check, path.child("gmsaCredentialSpec"), spec, "must not be empty")
        elif len(spec.encode()) > GMSA_SPEC_MAX:
            errs.invalid(check, path.child("gmsaCredentialSpec"), spec, "must be at most 64 KiB")
    user = options.get("runAsUserName")
    if isinstance(user, str):
        errs.each(check, path.child("runAsUserName"), user, windows_user_name_problems(user))


# ---- the pod security context -----------------------------------------------------

def _sysctl_namespace(name: str) -> str:
    # NormalizeName: a name whose first separator is '/' uses '/' and '.' swapped.
    first = re.search(r"[./]", name)
    if first and first.group() == "/":
        name = name.translate(str.maketrans("./", "/."))
    name = name.split("*", 1)[0]
    if name in _IPC_SYSCTLS:
        return "IPC"
    if name.startswith("net."):
        return "Net"
    if name.startswith("fs.mqueue."):
        return "IPC"
    return ""


def _sysctls(spec: dict[str, Any], context: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    seen: set[str] = set()
    for index, sysctl in enumerate(as_list(context.get("sysctls"))):
        name = as_dict(sysctl).get("name")
        if not isinstance(name, str):
            continue
        at = path.index(index).child("name")
        if not name:
            errs.required("api-pod-sysctl-name", at, "the sysctl's name, e.g. net.ipv4.ip_local_port_range")
        elif len(name) > SYSCTL_NAME_MAX or not _SYSCTL_NAME.fullmatch(name):
            errs.invalid("api-pod-sysctl-name", at, name, f"must be at most {SYSCTL_NAME_MAX} characters of "
                         "dot- or slash-separated segments of lowercase letters, digits, '-' and '_'")
        elif name in seen:
            errs.duplicate("api-pod-sysctl-duplicate", at, name)
        namespace = _sysctl_namespace(name)
        if spec.get("hostNetwork") is True and namespace == "Net":
            errs.invalid("api-pod-sysctl-host-namespace", at, name,
                         "a pod in the host's network namespace (hostNetwork) may not set network sysctls")
        elif spec.get("hostIPC") is True and namespace == "IPC":
            errs.invalid("api-pod-sysctl-host-namespace", at, name,
                         "a pod in the host's IPC namespace (hostIPC) may not set IPC sysctls")
        seen.add(name)


def validate_pod_security_context(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    """validatePodSpecSecurityContext; `path` is the pod spec's."""
    context = as_dict(spec.get("securityContext"))
    at = path.child("securityContext")
    for key, problems in (("fsGroup", formats.user_id_problems), ("runAsUser", formats.user_id_problems),
                          ("runAsGroup", formats.user_id_problems)):
        value = context.get(key)
        if formats.is_int(value):
            errs.each("api-pod-security-ids", at.child(key), value, problems(value))
    for index, group in enumerate(as_list(context.get("supplementalGroups"))):
        if formats.is_int(group):
            errs.each("api-pod-security-ids", at.child("supplementalGroups").index(index), group,
                      formats.user_id_problems(group))
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        errs.invalid("api-pod-share-process-namespace", at.child("shareProcessNamespace"), True,
                     "shareProcessNamespace and hostPID exclude each other")
    _sysctls(spec, context, at.child("sysctls"), errs)
    policy = context.get("fsGroupChangePolicy")
    if isinstance(policy, str) and policy not in FSGROUP_CHANGE_POLICIES:
        errs.not_supported("api-pod-fsgroup-change-policy", at.child("fsGroupChangePolicy"), policy,
                           FSGROUP_CHANGE_POLICIES)
    validate_seccomp_profile(context.get("seccompProfile"), at.child("seccompProfile"), errs)
    validate_windows_options(context.get("windowsOptions"), at.child("windowsOptions"), errs)
    validate_apparmor_profile(context.get("appArmorProfile"), at.child("appArmorProfile"), errs)
    groups_policy = context.get("supplementalGroupsPolicy")
    # SupplementalGroupsPolicy is on by default since 1.33 (dropped before).
    if ctx.at_least(33) and isinstance(groups_policy, str) and groups_policy not in SUPPLEMENTAL_GROUPS_POLICIES:
        errs.not_supported("api-pod-supplemental-groups-policy", at.child("supplementalGroupsPolicy"), groups_policy,
                           SUPPLEMENTAL_GROUPS_POLICIES)
    change = context.get("seLinuxChangePolicy")
    # SELinuxChangePolicy is on by default since 1.32; MountOption needs
    # SELinuxMount, which is off by default at 1.34, so only Recursive passes.
    if ctx.at_least(32) and isinstance(change, str) and change != "Recursive":
        errs.not_supported("api-pod-selinux-change-policy", at.child("seLinuxChangePolicy"), change, ["Recursive"])


# ---- OS, user namespaces, Windows host process -------------------------------------

def validate_os(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    """validateOS, then the fields the named OS forbids."""
    os = spec.get("os")
    if not isinstance(os, dict):
        return
    name = os.get("name")
    if name == "":
        errs.required("api-pod-os-name", path.child("os", "name"), "linux or windows")
        return
    if not isinstance(name, str):
        return
    if name not in OS_NAMES:
        errs.not_supported("api-pod-os-name", path.child("os"), name, OS_NAMES)
    elif name == "linux":
        _linux_only(spec, path, errs)
    else:
        _windows_only(spec, path, errs)


def _linux_only(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    # The containers' part of validateLinux is the Containers section's.
    if as_dict(spec.get("securityContext")).get("windowsOptions") is not None:
        errs.forbidden("api-pod-os-linux-forbidden", path.child("securityContext", "windowsOptions"),
                       "a linux pod may not set windowsOptions: remove it or set os.name to windows")


def _windows_only(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    detail = "a windows pod may not set this Linux-only field: remove it or set os.name to linux"
    context = as_dict(spec.get("securityContext"))
    for key in _WINDOWS_POD_FORBIDDEN:
        value = context.get(key)
        if value is not None and not (key == "sysctls" and value == []):
            errs.forbidden("api-pod-os-windows-forbidden", path.child("securityContext", key), detail)
    for key in ("hostUsers", "shareProcessNamespace"):
        if spec.get(key) is not None:
            errs.forbidden("api-pod-os-windows-forbidden", path.child(key), detail)
    for key in ("hostPID", "hostIPC"):
        if spec.get(key) is True:
            errs.forbidden("api-pod-os-windows-forbidden", path.child(key), detail)
    # The containers' part of validateWindows is the Containers section's.


def validate_host_users(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    """validateHostUsers: a pod in its own user namespace shares no other
    namespace with the host. UserNamespacesSupport is on by default since
    1.33; before, the API server drops hostUsers."""
    if not ctx.at_least(33) or spec.get("hostUsers") is not False:
        return
    detail = "a pod with hostUsers: false may not share the host's namespaces"
    for key, reported_as in (("hostNetwork", "hostNetwork"), ("hostPID", "HostPID"), ("hostIPC", "HostIPC")):
        if spec.get(key) is True:
            errs.forbidden("api-pod-host-users", path.child(reported_as), detail)


def validate_host_process(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    """validateWindowsHostProcessPod: all containers or none are host
    processes, the pod's and a container's setting agree, and host process
    pods use the host's network."""
    pod_value = as_dict(as_dict(spec.get("securityContext")).get("windowsOptions")).get("hostProcess")
    pod_value = pod_value if isinstance(pod_value, bool) else None
    count = host_process = 0
    for container, at in containers_with_paths(spec, path):
        count += 1
        value = as_dict(as_dict(container.get("securityContext")).get("windowsOptions")).get("hostProcess")
        value = value if isinstance(value, bool) else None
        if pod_value is not None and value is not None and pod_value != value:
            errs.invalid("api-pod-host-process", at.child("securityContext", "windowsOptions", "hostProcess"), value,
                         f"must match the pod's hostProcess ({str(pod_value).lower()}) when both are set")
        if value is True or (value is None and pod_value is True):
            host_process += 1
    if host_process:
        if host_process != count:
            errs.invalid("api-pod-host-process", path, "",
                         "a pod with any hostProcess container must run only hostProcess containers")
        if spec.get("hostNetwork") is not True:
            errs.invalid("api-pod-host-process", path.child("hostNetwork"), False,
                         "hostProcess containers need hostNetwork: true")


_SC = "core: validatePodSpecSecurityContext"
ROWS = (
    Row((POD_TEMPLATE,), _SC + " (IsValidUserID, IsValidGroupID)", "runAsUser, runAsGroup, fsGroup and each "
        "supplementalGroups entry are between 0 and 2147483647", "api-pod-security-ids"),
    Row((POD_TEMPLATE,), _SC, "shareProcessNamespace and hostPID are not both true (reported at "
        "spec.securityContext.shareProcessNamespace)", "api-pod-share-process-namespace"),
    Row((POD_TEMPLATE,), "core: validateSysctls", "a sysctl's name is set, at most 253 characters of segments "
        "separated by '.' or '/'", "api-pod-sysctl-name"),
    Row((POD_TEMPLATE,), "core: validateSysctls", "sysctl names are unique", "api-pod-sysctl-duplicate"),
    Row((POD_TEMPLATE,), "core: ValidateHostSysctl", "no network sysctl with hostNetwork, no IPC sysctl with "
        "hostIPC", "api-pod-sysctl-host-namespace"),
    Row((POD_TEMPLATE,), "core: validateSysctls", "a sysctl is safe, or allowed by the kubelet's "
        "--allowed-unsafe-sysctls", None, "the kubelet's configuration on each node, not the API server: an "
        "unsafe sysctl is refused when the pod starts"),
    Row((POD_TEMPLATE,), "core: validateFSGroupChangePolicy", "fsGroupChangePolicy is OnRootMismatch or Always",
        "api-pod-fsgroup-change-policy"),
    Row((POD_TEMPLATE,), "core: validateSeccompProfileField", "seccompProfile.type is RuntimeDefault, Localhost or "
        "Unconfined; Localhost needs a relative localhostProfile without '..'; others take none (also the "
        "containers' profiles when called from there)", "api-pod-seccomp-profile"),
    Row((POD_TEMPLATE,), "core: ValidateAppArmorProfileField", "appArmorProfile.type is RuntimeDefault, Localhost "
        "or Unconfined; Localhost needs a localhostProfile without surrounding whitespace, at most 4095 bytes; "
        "others take none", "api-pod-apparmor-profile"),
    Row((POD_TEMPLATE,), "core: validateWindowsSecurityContextOptions", "windowsOptions: gmsaCredentialSpecName a "
        "DNS subdomain, gmsaCredentialSpec not empty and at most 64 KiB, runAsUserName a valid DOMAIN\\USER",
        "api-pod-windows-options"),
    Row((POD_TEMPLATE,), "core: validateSupplementalGroupsPolicy", "supplementalGroupsPolicy is Merge or Strict "
        "(SupplementalGroupsPolicy, on by default since 1.33)", "api-pod-supplemental-groups-policy"),
    Row((POD_TEMPLATE,), "core: validateSELinuxChangePolicy", "seLinuxChangePolicy is Recursive: MountOption needs "
        "SELinuxMount, off by default at 1.34", "api-pod-selinux-change-policy"),
    Row((POD_TEMPLATE,), "core: validateOS", "os.name is set, linux or windows", "api-pod-os-name"),
    Row((POD_TEMPLATE,), "core: validateLinux", "a linux pod sets no windowsOptions in its security context (the "
        "containers' are the Containers section's)", "api-pod-os-linux-forbidden"),
    Row((POD_TEMPLATE,), "core: validateWindows", "a windows pod sets none of the Linux-only fields: in its "
        "security context appArmorProfile, seLinuxOptions, seccompProfile, fsGroup, fsGroupChangePolicy, "
        "sysctls, runAsUser, runAsGroup, supplementalGroups(Policy), seLinuxChangePolicy; hostUsers, "
        "shareProcessNamespace, hostPID, hostIPC (the containers' are the Containers section's)",
        "api-pod-os-windows-forbidden"),
    Row((POD_TEMPLATE,), "core: validateHostUsers", "with hostUsers: false, none of hostNetwork, hostPID, hostIPC "
        "(UserNamespacesSupport, on by default since 1.33)", "api-pod-host-users"),
    Row((POD_TEMPLATE,), "core: validateWindowsHostProcessPod", "the pod's and a container's hostProcess agree; "
        "with any host process container all are, and hostNetwork is true", "api-pod-host-process"),
    Row((POD_TEMPLATE,), "core: validateWindowsHostProcessPod", "host process containers are allowed by cluster "
        "policy", None, "depends on the API server's --allow-privileged flag (true on EKS and kubeadm clusters)"),
)
