"""The volumes of a pod spec: core's ValidateVolumes, validateVolumeSource and
every validate*VolumeSource it calls.

A volume whose validation fails is left out of the volumes handed to the
container checks, as the API server does (a mount of it is then reported
"Not found" as well).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from scripts.stages.apivalidation import formats, storage
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import ANNOTATIONS_MAX_BYTES, as_dict, as_list

FILE_MODE_MAX = 0o777
FILE_MODE_DETAIL = "must be a file mode between 0 and 0777 (octal; 511 in decimal), both inclusive"
TOKEN_EXPIRATION_MIN = 10 * 60
TOKEN_EXPIRATION_MAX = 1 << 32
CSI_DRIVER_MAX = 63
# The volume sources in the order the API server tries them: a second one
# set on the same volume is reported at its own key. `forbidden_at` is the
# key the API server names in that report (two are misspelt upstream).
_SOURCE_ORDER = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"), ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"), ("cinder", "cinder"), ("cephfs", "cephFS"),
    ("quobyte", "quobyte"), ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"), ("storageos", "storageos"), ("projected", "projected"), ("scaleIO", "scaleIO"),
    ("csi", "csi"), ("ephemeral", "ephemeral"), ("image", "image"),
)
SOURCE_KEYS = tuple(key for key, _ in _SOURCE_ORDER)
# Fields of the in-tree sources that must not be empty, and the path segment
# the API server reports them under (gcePersistentDisk is checked as "persistentDisk").
_LEGACY_REQUIRED = {
    "gcePersistentDisk": ("persistentDisk", ("pdName",)),
    "awsElasticBlockStore": ("awsElasticBlockStore", ("volumeID",)),
    "glusterfs": ("glusterfs", ("endpoints", "path")),
    "rbd": ("rbd", ("monitors", "image")),
    "cinder": ("cinder", ("volumeID",)),
    "cephfs": ("cephfs", ("monitors",)),
    "azureFile": ("azureFile", ("secretName", "shareName")),
    "vsphereVolume": ("vsphereVolume", ("volumePath",)),
    "photonPersistentDisk": ("photonPersistentDisk", ("pdID",)),
    "portworxVolume": ("portworxVolume", ("volumeID",)),
    "scaleIO": ("scaleIO", ("gateway", "system", "volumeName")),
    "flexVolume": ("flexVolume", ("driver",)),
    "azureDisk": ("azureDisk", ("diskName", "diskURI")),
}
_HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate",
                    "Socket")
_AZURE_CACHING_MODES = ("None", "ReadOnly", "ReadWrite")
_AZURE_DISK_KINDS = ("Dedicated", "Managed", "Shared")
# Searched, not anchored at the start, as the API server's pattern is.
_ISCSI_IQN = re.compile(r"iqn\.[0-9]{4}-[0-9]{2}\.([-.A-Za-z0-9]+)(:[^,;*&$|\t\n\f\r ]+)\Z")
_ISCSI_EUI = re.compile(r"eui.[A-Za-z0-9]{16}\Z")
_ISCSI_NAA = re.compile(r"naa.[A-Za-z0-9]{32}\Z")
_ISCSI_NAME_MAX = 64
# What a downwardAPI volume file may project with fieldRef (env vars may use more).
VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid")
# What the API server's field label conversion accepts for pods at all.
_POD_FIELD_LABELS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
                     "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
                     "status.phase", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs", "spec.host")
RESOURCE_FIELD_PATHS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                        "requests.ephemeral-storage", "requests.memory")
_HUGEPAGES_FIELD_PREFIXES = ("limits.hugepages-", "requests.hugepages-")
_CLAIM_TEMPLATE_META = ("labels", "annotations")


@dataclass(frozen=True)
class VolumeScope:
    """What the pod around the volumes tells: a Pod's own name (its generic
    ephemeral volumes name their claims after it); empty for templates."""

    pod_name: str = ""


def validate_volumes(volumes: Any, path: FieldPath, ctx: Context, errs: Errors,
                     scope: VolumeScope = VolumeScope()) -> dict[str, dict[str, Any]]:
    """Every volume at `path` (spec.volumes); returns the volumes that passed,
    by name, for the mount checks of the containers."""
    valid: dict[str, dict[str, Any]] = {}
    names: set[str] = set()
    volumes = [as_dict(volume) for volume in as_list(volumes)]
    created_claims = {f"{scope.pod_name}-{volume.get('name')}" for volume in volumes
                      if scope.pod_name and isinstance(volume.get("ephemeral"), dict)}
    for index, volume in enumerate(volumes):
        at = path.index(index)
        name = volume.get("name")
        name = name if isinstance(name, str) else ""
        if isinstance(volume.get("image"), dict) and not ctx.at_least(35):
            # ImageVolume is off by default before 1.35: the API server drops
            # the volume and its mounts before validating. Keep it for the
            # mount checks so they do not report what the API server removed.
            valid.setdefault(name, volume)
            continue
        own = Errors()
        _volume_source(volume, at, name, ctx, own, scope)
        if not name:
            own.required("api-pod-volume-name", at.child("name"), "every volume needs a name")
        else:
            own.each("api-pod-volume-name", at.child("name"), name, formats.dns_label_problems(name))
        if name in names:
            own.duplicate("api-pod-volume-name-duplicate", at.child("name"), name)
        if own.items:
            errs.items.extend(own.items)
        else:
            names.add(name)
            valid[name] = volume
        claim = as_dict(volume.get("persistentVolumeClaim")).get("claimName")
        if isinstance(claim, str) and claim in created_claims:
            errs.invalid("api-pod-volume-claim-ephemeral", at.child("persistentVolumeClaim", "claimName"), claim,
                         "names the claim the API server creates for this pod's ephemeral volume; mount that "
                         "volume instead")
    return valid


def _volume_source(volume: dict[str, Any], path: FieldPath, name: str, ctx: Context, errs: Errors,
                   scope: VolumeScope) -> None:
    found = 0
    for key, forbidden_at in _SOURCE_ORDER:
        source = volume.get(key)
        if source is None:
            continue
        if found:
            errs.forbidden("api-pod-volume-source-count", path.child(forbidden_at),
                           "a volume has exactly one source: remove this one or move it to its own volume")
            continue
        found += 1
        _SOURCE_CHECKS.get(key, _no_check)(as_dict(source), path, ctx, errs)
        if key == "iscsi":
            _iscsi_name_length(as_dict(source), path, name, errs)
        if key == "ephemeral" and scope.pod_name and name:
            claim = f"{scope.pod_name}-{name}"
            errs.each("api-pod-volume-ephemeral-claim-name", path.child("name"), name,
                      [f"the claim this volume creates, {claim!r}, {problem}"
                       for problem in formats.dns_subdomain_problems(claim)])
    if not found:
        errs.required("api-pod-volume-source-count", path,
                      "a volume needs a source (emptyDir, configMap, secret, persistentVolumeClaim, ...)")


# ---- paths and modes shared by the sources ---------------------------------

def relative_path_problems(value: str) -> list[str]:
    """validateLocalDescendingPath: not absolute, no '..' element."""
    out = ["must be a relative path"] if value.startswith("/") else []
    if ".." in value.split("/"):
        out.append("must not contain '..'")
    return out


def no_backsteps_problems(value: str) -> list[str]:
    return ["must not contain '..'"] if ".." in value.split("/") else []


def local_path_problems(value: str) -> list[str]:
    """ValidateLocalNonReservedPath: relative, no '..' element, and not a
    name starting with '..' (the kubelet keeps its own '..data' entries there)."""
    out = relative_path_problems(value)
    if value.startswith("..") and not value.startswith("../"):
        out.append("must not start with '..'")
    return out


def _mode(value: Any, path: FieldPath, errs: Errors) -> None:
    if formats.is_int(value) and not 0 <= value <= FILE_MODE_MAX:
        errs.invalid("api-pod-volume-mode", path, value, FILE_MODE_DETAIL)


def _key_to_path(item: Any, path: FieldPath, errs: Errors) -> None:
    item = as_dict(item)
    if item.get("key") == "":
        errs.required("api-pod-volume-items", path.child("key"), "the key of the ConfigMap or Secret to project")
    target = item.get("path")
    if target == "":
        errs.required("api-pod-volume-items", path.child("path"), "the file name to project the key to")
    if isinstance(target, str):
        errs.each("api-pod-volume-item-path", path.child("path"), target, local_path_problems(target))
    _mode(item.get("mode"), path.child("mode"), errs)


def _empty(value: Any) -> bool:
    return value in ("", None) or value == []


# ---- the sources -------------------------------------------------------------

def _no_check(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    return None


def _empty_dir(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    limit = source.get("sizeLimit")
    if limit is None:
        return
    at = path.child("emptyDir", "sizeLimit")
    value = formats.parse_quantity(limit)
    if value is None:
        errs.invalid("api-pod-volume-empty-dir-size", at, limit, formats.QUANTITY_FORMAT)
    elif value < 0:
        errs.forbidden("api-pod-volume-empty-dir-size", at, f"sizeLimit must not be negative (got {limit})")


def _host_path(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("hostPath")
    target = source.get("path")
    if target == "":
        errs.required("api-pod-volume-host-path", at.child("path"), "the path on the node to mount")
        return
    if isinstance(target, str):
        errs.each("api-pod-volume-host-path", at.child("path"), target, no_backsteps_problems(target))
    kind = source.get("type")
    if isinstance(kind, str) and kind not in _HOST_PATH_TYPES:
        errs.not_supported("api-pod-volume-host-path-type", at.child("type"), kind, _HOST_PATH_TYPES)


def _git_repo(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("gitRepo")
    if source.get("repository") == "":
        errs.required("api-pod-volume-git-repo", at.child("repository"), "the repository URL to clone")
    directory = source.get("directory")
    if isinstance(directory, str):
        errs.each("api-pod-volume-git-repo", at.child("directory"), directory, relative_path_problems(directory))


def _secret(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("secret")
    if _empty(source.get("secretName")):
        errs.required("api-pod-volume-secret-name", at.child("secretName"), "the name of the Secret to mount")
    _mode(source.get("defaultMode"), at.child("defaultMode"), errs)
    for index, item in enumerate(as_list(source.get("items"))):
        _key_to_path(item, at.child("items").index(index), errs)


def _config_map(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("configMap")
    if _empty(source.get("name")):
        errs.required("api-pod-volume-config-map-name", at.child("name"), "the name of the ConfigMap to mount")
    _mode(source.get("defaultMode"), at.child("defaultMode"), errs)
    for index, item in enumerate(as_list(source.get("items"))):
        _key_to_path(item, at.child("items").index(index), errs)


def _claim(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    if source.get("claimName") == "":
        errs.required("api-pod-volume-claim-name", path.child("persistentVolumeClaim", "claimName"),
                      "the name of the PersistentVolumeClaim to mount")


def _nfs(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("nfs")
    if source.get("server") == "":
        errs.required("api-pod-volume-nfs", at.child("server"), "the NFS server's host name or IP")
    target = source.get("path")
    if target == "":
        errs.required("api-pod-volume-nfs", at.child("path"), "the exported path on the server")
    if isinstance(target, str) and not target.startswith("/"):
        errs.invalid("api-pod-volume-nfs", at.child("path"), target, "must be an absolute path")


def _iscsi_name_problems(value: str, with_prefix_detail: bool) -> list[str]:
    if not value.startswith(("iqn", "eui", "naa")):
        return ["must be valid format starting with iqn, eui, or naa" if with_prefix_detail else "must be valid format"]
    if value.startswith("iqn"):
        return [] if _ISCSI_IQN.search(value) else ["must be valid format"]
    pattern = _ISCSI_EUI if value.startswith("eui") else _ISCSI_NAA
    return [] if pattern.match(value) else ["must be valid format"]


def _iscsi(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("iscsi")
    if source.get("targetPortal") == "":
        errs.required("api-pod-volume-iscsi", at.child("targetPortal"), "the iSCSI target's host:port")
    iqn = source.get("iqn")
    if iqn == "":
        errs.required("api-pod-volume-iscsi", at.child("iqn"), "the target's iSCSI qualified name")
    elif isinstance(iqn, str):
        errs.each("api-pod-volume-iscsi", at.child("iqn"), iqn, _iscsi_name_problems(iqn, True))
    lun = source.get("lun")
    if formats.is_int(lun):
        errs.each("api-pod-volume-iscsi", at.child("lun"), lun, formats.in_range_problems(lun, 0, 255))
    if (source.get("chapAuthDiscovery") is True or source.get("chapAuthSession") is True) \
            and source.get("secretRef") is None:
        errs.required("api-pod-volume-iscsi", at.child("secretRef"), "CHAP authentication needs the Secret with "
                      "its credentials")
    initiator = source.get("initiatorName")
    if isinstance(initiator, str):
        # Reported at iscsi.initiatorname, as the API server spells it.
        errs.each("api-pod-volume-iscsi", at.child("initiatorname"), initiator, _iscsi_name_problems(initiator, True))


def _iscsi_name_length(source: dict[str, Any], path: FieldPath, name: str, errs: Errors) -> None:
    portal = source.get("targetPortal")
    if isinstance(source.get("initiatorName"), str) and isinstance(portal, str) \
            and len(f"{name}:{portal}") > _ISCSI_NAME_MAX:
        errs.invalid("api-pod-volume-iscsi", path.child("name"), name,
                     f"with iscsi.initiatorName set, '<volume name>:<iscsi.targetPortal>' must be at most "
                     f"{_ISCSI_NAME_MAX} characters")


def _fc(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("fc")
    wwns, wwids = as_list(source.get("targetWWNs")), as_list(source.get("wwids"))
    if not wwns and not wwids:
        errs.required("api-pod-volume-fc", at.child("targetWWNs"), "set targetWWNs (with lun) or wwids")
    if wwns and wwids:
        errs.invalid("api-pod-volume-fc", at.child("targetWWNs"), wwns, "targetWWNs and wwids exclude each other")
    if wwns:
        lun = source.get("lun")
        if lun is None:
            errs.required("api-pod-volume-fc", at.child("lun"), "targetWWNs need a lun")
        elif formats.is_int(lun):
            errs.each("api-pod-volume-fc", at.child("lun"), lun, formats.in_range_problems(lun, 0, 255))


def _flocker(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("flocker")
    name, uuid = source.get("datasetName") or "", source.get("datasetUUID") or ""
    if not name and not uuid:
        errs.required("api-pod-volume-flocker", at, "set one of datasetName and datasetUUID")
    if name and uuid:
        errs.invalid("api-pod-volume-flocker", at, "resource", "datasetName and datasetUUID exclude each other")
    if isinstance(name, str) and "/" in name:
        errs.invalid("api-pod-volume-flocker", at.child("datasetName"), name, "must not contain '/'")


def _quobyte(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("quobyte")
    registry, tenant = source.get("registry"), source.get("tenant")
    pairs = "must be a host:port pair or several separated by commas"
    if registry == "":
        errs.required("api-pod-volume-quobyte", at.child("registry"), pairs)
    elif isinstance(tenant, str) and len(tenant) >= 65:
        errs.required("api-pod-volume-quobyte", at.child("tenant"), "must be a UUID of at most 64 characters")
    elif isinstance(registry, str):
        for pair in registry.split(","):
            if not _host_port(pair):
                errs.invalid("api-pod-volume-quobyte", at.child("registry"), registry, pairs)
    if source.get("volume") == "":
        errs.required("api-pod-volume-quobyte", at.child("volume"), "the Quobyte volume to mount")


def _host_port(pair: str) -> bool:
    # net.SplitHostPort: "host:port" or "[v6]:port"; the port may be empty or a name.
    if pair.startswith("["):
        end = pair.find("]")
        return end > 0 and pair[end + 1:end + 2] == ":" and ":" not in pair[end + 2:] \
            and "[" not in pair[1:] and "]" not in pair[end + 1:]
    host, sep, port = pair.rpartition(":")
    return bool(sep) and ":" not in host and "[" not in pair and "]" not in pair and ":" not in port


def _flex(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("flexVolume")
    for key in as_dict(source.get("options")):
        domain = str(key).split("/", 1)[0] if "/" in str(key) else str(key)
        normalized = "." + domain.lower()
        if normalized.endswith((".kubernetes.io", ".k8s.io")):
            errs.invalid("api-pod-volume-flex-options", at.child("options").key(str(key)), key,
                         "option names in the kubernetes.io and k8s.io domains are reserved")


def _azure_disk(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("azureDisk")
    # Defaulting fills cachingMode ReadWrite and kind Shared when left out.
    caching, kind, uri = source.get("cachingMode"), source.get("kind") or "Shared", source.get("diskURI")
    if isinstance(caching, str) and caching not in _AZURE_CACHING_MODES:
        errs.not_supported("api-pod-volume-azure-disk", at.child("cachingMode"), caching, _AZURE_CACHING_MODES)
    if isinstance(kind, str) and kind not in _AZURE_DISK_KINDS:
        errs.not_supported("api-pod-volume-azure-disk", at.child("kind"), kind, _AZURE_DISK_KINDS)
    if isinstance(kind, str) and isinstance(uri, str):
        if kind == "Managed" and not uri.startswith("/subscriptions/"):
            errs.not_supported("api-pod-volume-azure-disk", at.child("diskURI"), uri,
                               ["/subscriptions/{sub-id}/resourcegroups/{group-name}/providers/microsoft.compute/"
                                "disks/{disk-id}"])
        if kind != "Managed" and not uri.startswith("https://"):
            errs.not_supported("api-pod-volume-azure-disk", at.child("diskURI"), uri,
                               ["https://{account-name}.blob.core.windows.net/{container-name}/{disk-name}.vhd"])


def _storageos(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("storageos")
    name, namespace = source.get("volumeName"), source.get("volumeNamespace")
    if _empty(name):
        errs.required("api-pod-volume-storageos", at.child("volumeName"), "the StorageOS volume to mount")
    elif isinstance(name, str):
        errs.each("api-pod-volume-storageos", at.child("volumeName"), name, formats.dns_label_problems(name))
    if isinstance(namespace, str) and namespace:
        errs.each("api-pod-volume-storageos", at.child("volumeNamespace"), namespace,
                  formats.dns_label_problems(namespace))
    ref = source.get("secretRef")
    if isinstance(ref, dict) and _empty(ref.get("name")):
        errs.required("api-pod-volume-storageos", at.child("secretRef", "name"), "the Secret's name")


def _cinder(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    ref = source.get("secretRef")
    if isinstance(ref, dict) and _empty(ref.get("name")):
        errs.required("api-pod-volume-legacy-required", path.child("cinder", "secretRef", "name"), "the Secret's name")


def _partition(key: str, reported_as: str) -> Callable[[dict[str, Any], FieldPath, Context, Errors], None]:
    def check(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
        value = source.get("partition")
        if formats.is_int(value) and not 0 <= value <= 255:
            errs.invalid("api-pod-volume-partition", path.child(reported_as, "partition"), value,
                         "must be between 0 and 255, inclusive")
    return check


def _legacy(key: str, then: Callable[[dict[str, Any], FieldPath, Context, Errors], None] = _no_check) \
        -> Callable[[dict[str, Any], FieldPath, Context, Errors], None]:
    reported_as, fields = _LEGACY_REQUIRED[key]

    def check(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
        for name in fields:
            if _empty(source.get(name)):
                errs.required("api-pod-volume-legacy-required", path.child(reported_as, name),
                              f"a {key} volume needs {name}")
        then(source, path, ctx, errs)
    return check


# ---- downwardAPI ---------------------------------------------------------------

def split_subscript(field_path: str) -> tuple[str, str] | None:
    """"metadata.labels['app']" -> ("metadata.labels", "app"); None when not subscripted."""
    if not field_path.endswith("']"):
        return None
    head, sep, key = field_path[:-2].partition("['")
    return (head, key) if sep and head else None


def field_ref_problems(ref: dict[str, Any], allowed: tuple[str, ...]) -> list[tuple[str, str, Any, str]]:
    """The problems of an ObjectFieldSelector (validateObjectFieldSelector) as
    (segment, reason, value, detail); segment "" is the selector itself.
    apiVersion is defaulted to v1, so it is only wrong when set to another."""
    version, field_path = ref.get("apiVersion") or "v1", ref.get("fieldPath")
    if not isinstance(field_path, str) or not isinstance(version, str):
        return []
    if field_path == "":
        return [("fieldPath", "required", None, "the pod field to project, e.g. metadata.name")]
    if version != "v1":
        return [("fieldPath", "invalid", field_path, f"the API server converts only v1 field paths, not {version}")]
    subscripted = split_subscript(field_path)
    if subscripted is not None:
        head, key = subscripted
        if head not in ("metadata.annotations", "metadata.labels"):
            return [("fieldPath", "invalid", field_path, f"{head} takes no subscript; only metadata.labels and "
                                                         "metadata.annotations do")]
        name = key.lower() if head == "metadata.annotations" else key
        return [("", "invalid", name, problem) for problem in formats.qualified_name_problems(name)]
    if field_path not in _POD_FIELD_LABELS:
        return [("fieldPath", "invalid", field_path, "not a pod field the API server can project")]
    internal = "spec.nodeName" if field_path == "spec.host" else field_path
    if internal not in allowed:
        return [("fieldPath", "not_supported", internal, allowed)]
    return []


def _report(errs: Errors, check: str, path: FieldPath, problems: list[tuple[str, str, Any, Any]]) -> None:
    for segment, reason, value, detail in problems:
        at = path.child(segment) if segment else path
        if reason == "required":
            errs.required(check, at, detail)
        elif reason == "not_supported":
            errs.not_supported(check, at, value, detail)
        else:
            errs.invalid(check, at, value, detail)


def _canonical_divisor(value: Any) -> str | None:
    """The divisor as the API server prints it, when it is one of the forms
    the divisor lists hold ("1", "1m", "1k" ... "1E", "1Ki" ... "1Ei"): the
    printed form keeps the unit family the value was written in."""
    number = formats.parse_quantity(value)
    text = str(value).strip()
    if number is None or number <= 0 or re.fullmatch(r"[+-]?[0-9.]*[eE][-+]?[0-9]+", text):
        return None  # an exponent form prints as one, which no list holds
    if re.search(r"[KMGTPE]i$", text):
        for exponent, suffix in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")):
            if number == 1024 ** exponent:
                return "1" + suffix
        return None
    for suffix, scale in (("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)):
        if number == Decimal(1).scaleb(scale):
            return "1" + suffix
    return None


_CPU_DIVISORS = ("1m", "1")
_BYTE_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")


def resource_ref_problems(ref: dict[str, Any], in_volume: bool) -> list[tuple[str, str, Any, Any]]:
    """validateContainerResourceFieldSelector for a downwardAPI volume file."""
    resource = ref.get("resource")
    resource = resource if isinstance(resource, str) else ""
    out: list[tuple[str, str, Any, Any]] = []
    if in_volume and _empty(ref.get("containerName")):
        out.append(("containerName", "required", None, "a downwardAPI volume must name the container whose "
                    "resources it projects"))
    elif resource == "":
        out.append(("resource", "required", None, "the resource to project, e.g. limits.memory"))
    elif resource not in RESOURCE_FIELD_PATHS and not resource.startswith(_HUGEPAGES_FIELD_PREFIXES):
        out.append(("resource", "not_supported", resource, RESOURCE_FIELD_PATHS))
    divisor = ref.get("divisor")
    number = formats.parse_quantity(divisor) if divisor is not None else None
    if divisor is not None and number is None:
        out.append(("divisor", "invalid", divisor, formats.QUANTITY_FORMAT))
    elif number is not None and number != 0:
        canonical = _canonical_divisor(divisor)
        cpu = resource in ("limits.cpu", "requests.cpu")
        in_bytes = resource in ("limits.memory", "requests.memory", "limits.ephemeral-storage",
                                "requests.ephemeral-storage") or resource.startswith(_HUGEPAGES_FIELD_PREFIXES)
        if cpu and canonical not in _CPU_DIVISORS:
            out.append(("divisor", "invalid", resource, "the cpu resource takes a divisor of 1m or 1"))
        elif in_bytes and canonical not in _BYTE_DIVISORS:
            out.append(("divisor", "invalid", resource,
                        "this resource takes a divisor of 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi or 1Ei"))
    return out


def _downward_file(item: Any, path: FieldPath, errs: Errors) -> None:
    """validateDownwardAPIVolumeFile: `path` is where the API server reports
    the file (the source, not the item, for a projected downwardAPI)."""
    item = as_dict(item)
    target = item.get("path")
    if target == "":
        errs.required("api-pod-volume-items", path.child("path"), "the file name to project to")
    if isinstance(target, str):
        errs.each("api-pod-volume-item-path", path.child("path"), target, local_path_problems(target))
    field_ref, resource_ref = item.get("fieldRef"), item.get("resourceFieldRef")
    if isinstance(field_ref, dict):
        _report(errs, "api-pod-volume-downward-api-field", path.child("fieldRef"),
                field_ref_problems(field_ref, VOLUME_FIELD_PATHS))
        if resource_ref is not None:
            errs.invalid("api-pod-volume-downward-api-source", path, "resource",
                         "fieldRef and resourceFieldRef exclude each other")
    elif isinstance(resource_ref, dict):
        _report(errs, "api-pod-volume-downward-api-resource", path.child("resourceFieldRef"),
                resource_ref_problems(resource_ref, in_volume=True))
    elif field_ref is None and resource_ref is None:
        errs.required("api-pod-volume-downward-api-source", path, "set fieldRef or resourceFieldRef")
    _mode(item.get("mode"), path.child("mode"), errs)


def _downward_api(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("downwardAPI")
    _mode(source.get("defaultMode"), at.child("defaultMode"), errs)
    # The API server reports every file at the source's path, not at items[i].
    for item in as_list(source.get("items")):
        _downward_file(item, at, errs)


# ---- projected -----------------------------------------------------------------

def _projected(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("projected")
    _mode(source.get("defaultMode"), at.child("defaultMode"), errs)
    seen: set[str] = set()

    def claim(target: Any, shown: Any) -> None:
        if isinstance(target, str) and target:
            if target in seen:
                errs.invalid("api-pod-volume-projected-duplicate-path", at, shown,
                             f"two sources project to the same path {target!r}")
            seen.add(target)

    for index, entry in enumerate(as_list(source.get("sources"))):
        entry = as_dict(entry)
        source_at = at.child("sources").index(index)
        # clusterTrustBundle and podCertificate are dropped before validation
        # at 1.34 (their gates are off), so they count for nothing here.
        kinds = [key for key in ("secret", "configMap", "downwardAPI", "serviceAccountToken")
                 if entry.get(key) is not None]
        for key in ("secret", "configMap"):
            if not isinstance(entry.get(key), dict):
                continue
            projection, where = entry[key], source_at.child(key)
            if _empty(projection.get("name")):
                errs.required("api-pod-volume-projected-name", where.child("name"),
                              f"the name of the {'Secret' if key == 'secret' else 'ConfigMap'} to project")
            for position, item in enumerate(as_list(projection.get("items"))):
                _key_to_path(item, where.child("items").index(position), errs)
                claim(as_dict(item).get("path"), projection.get("name", ""))
        if isinstance(entry.get("downwardAPI"), dict):
            where = source_at.child("downwardAPI")
            for item in as_list(entry["downwardAPI"].get("items")):
                _downward_file(item, where, errs)
                target = as_dict(item).get("path")
                claim(target, target)
        if isinstance(entry.get("serviceAccountToken"), dict):
            _service_account_token(entry["serviceAccountToken"], source_at.child("serviceAccountToken"), at, errs)
        if len(kinds) > 1:
            errs.forbidden("api-pod-volume-projected-source-count", source_at,
                           "each entry of sources projects one thing: split " + " and ".join(kinds) +
                           " into separate entries")


def _service_account_token(token: dict[str, Any], path: FieldPath, projected: FieldPath, errs: Errors) -> None:
    # expirationSeconds is defaulted to 3600 when absent.
    seconds = token.get("expirationSeconds")
    if formats.is_int(seconds):
        if seconds < TOKEN_EXPIRATION_MIN:
            errs.invalid("api-pod-volume-projected-token-expiration", path.child("expirationSeconds"), seconds,
                         f"must be at least {TOKEN_EXPIRATION_MIN} (10 minutes)")
        if seconds > TOKEN_EXPIRATION_MAX:
            errs.invalid("api-pod-volume-projected-token-expiration", path.child("expirationSeconds"), seconds,
                         f"must be at most {TOKEN_EXPIRATION_MAX} (2^32 seconds)")
    target = token.get("path")
    # The API server reports the token's path at the projected volume, not at the source.
    if target == "":
        errs.required("api-pod-volume-projected-token-path", projected.child("path"),
                      "the file name to write the token to")
    elif isinstance(target, str):
        errs.each("api-pod-volume-projected-token-path", projected.child("path"), target,
                  local_path_problems(target))


# ---- csi and ephemeral -------------------------------------------------------------

def csi_driver_problems(driver: str) -> list[tuple[str, str]]:
    """ValidateCSIDriverName: (reason, detail)."""
    out = []
    if not driver:
        out.append(("required", "the CSI driver's name"))
    if len(driver) > CSI_DRIVER_MAX:
        out.append(("too_long", ""))
    out += [("invalid", problem) for problem in formats.dns_subdomain_problems(driver.lower())] if driver else []
    return out


def _csi(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("csi")
    driver = source.get("driver")
    if isinstance(driver, str):
        for reason, detail in csi_driver_problems(driver):
            if reason == "required":
                errs.required("api-pod-volume-csi-driver", at.child("driver"), detail)
            elif reason == "too_long":
                errs.too_long("api-pod-volume-csi-driver", at.child("driver"), CSI_DRIVER_MAX)
            else:
                errs.invalid("api-pod-volume-csi-driver", at.child("driver"), driver, detail)
    ref = source.get("nodePublishSecretRef")
    if isinstance(ref, dict):
        name = ref.get("name")
        if _empty(name):
            errs.required("api-pod-volume-csi-secret", at.child("nodePublishSecretRef", "name"), "the Secret's name")
        elif isinstance(name, str):
            # Reported at csi.name, as the API server does.
            errs.each("api-pod-volume-csi-secret", at.child("name"), name, formats.name_is_dns_subdomain(name))


def _ephemeral(source: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    at = path.child("ephemeral", "volumeClaimTemplate")
    template = source.get("volumeClaimTemplate")
    if template is None:
        errs.required("api-pod-volume-ephemeral-template", at, "an ephemeral volume needs the claim to create")
        return
    metadata = as_dict(as_dict(template).get("metadata"))
    meta_at = at.child("metadata")
    for key, value in metadata.items():
        # Unset is the zero value; an empty list is set (it decodes to a non-nil slice).
        if key not in _CLAIM_TEMPLATE_META and value is not None and value != "" \
                and not (formats.is_int(value) and value == 0):
            errs.forbidden("api-pod-volume-ephemeral-metadata", meta_at.child("uID" if key == "uid" else key),
                           "a claim template's metadata takes only labels and annotations")
    for key, value in as_dict(metadata.get("labels")).items():
        errs.each("api-pod-volume-ephemeral-metadata", meta_at.child("labels"), key,
                  formats.qualified_name_problems(str(key)))
        if isinstance(value, str):
            errs.each("api-pod-volume-ephemeral-metadata", meta_at.child("labels"), value,
                      formats.label_value_problems(value))
    annotations = as_dict(metadata.get("annotations"))
    size = 0
    for key, value in annotations.items():
        errs.each("api-pod-volume-ephemeral-metadata", meta_at.child("annotations"), key,
                  formats.qualified_name_problems(str(key).lower()))
        size += len(str(key).encode()) + (len(value.encode()) if isinstance(value, str) else 0)
    if size > ANNOTATIONS_MAX_BYTES:
        errs.too_long("api-pod-volume-ephemeral-metadata", meta_at.child("annotations"), ANNOTATIONS_MAX_BYTES)
    # The claim's spec is held to the PersistentVolumeClaim rules (the pod's
    # registry does not prepare its data sources as the claim's does); its
    # errors are this row's.
    claim_errors = Errors()
    storage.validate_pvc_spec(as_dict(template).get("spec"), at.child("spec"), ctx, claim_errors, prepare=False)
    errs.items += [replace(error, check="api-pod-volume-ephemeral-spec") for error in claim_errors.items]


_SOURCE_CHECKS: dict[str, Callable[[dict[str, Any], FieldPath, Context, Errors], None]] = {
    "emptyDir": _empty_dir, "hostPath": _host_path, "gitRepo": _git_repo, "secret": _secret, "configMap": _config_map,
    "persistentVolumeClaim": _claim, "nfs": _nfs, "iscsi": _iscsi, "fc": _fc, "flocker": _flocker,
    "quobyte": _quobyte, "downwardAPI": _downward_api, "projected": _projected, "csi": _csi, "ephemeral": _ephemeral,
    "storageos": _storageos,
    "gcePersistentDisk": _legacy("gcePersistentDisk", _partition("gcePersistentDisk", "persistentDisk")),
    "awsElasticBlockStore": _legacy("awsElasticBlockStore", _partition("awsElasticBlockStore",
                                                                       "awsElasticBlockStore")),
    "glusterfs": _legacy("glusterfs"), "rbd": _legacy("rbd"), "cinder": _legacy("cinder", _cinder),
    "cephfs": _legacy("cephfs"), "azureFile": _legacy("azureFile"), "vsphereVolume": _legacy("vsphereVolume"),
    "photonPersistentDisk": _legacy("photonPersistentDisk"), "portworxVolume": _legacy("portworxVolume"),
    "scaleIO": _legacy("scaleIO"), "flexVolume": _legacy("flexVolume", _flex),
    "azureDisk": _legacy("azureDisk", _azure_disk),
}

_V = "core: ValidateVolumes"
_S = "core: validateVolumeSource"
ROWS = (
    Row((POD_TEMPLATE,), _V, "a volume's name is set and is a DNS label (63 characters)", "api-pod-volume-name"),
    Row((POD_TEMPLATE,), _V, "volume names are unique in the pod", "api-pod-volume-name-duplicate"),
    Row((POD_TEMPLATE,), _S, "a volume has exactly one source: none is `Required`, a second is `Forbidden` at its "
        "key (the API server spells two of those keys `cephFS` and `downwarAPI`)", "api-pod-volume-source-count"),
    Row((POD_TEMPLATE,), _V + " (Pod)", "on a Pod, a persistentVolumeClaim volume does not name the claim the "
        "API server creates for one of the pod's ephemeral volumes (`<pod>-<volume>`)",
        "api-pod-volume-claim-ephemeral"),
    Row((POD_TEMPLATE,), _S + " (emptyDir)", "emptyDir.sizeLimit is a quantity and not negative",
        "api-pod-volume-empty-dir-size"),
    Row((POD_TEMPLATE,), "core: validateHostPathVolumeSource", "hostPath.path is not empty and has no '..' "
        "element", "api-pod-volume-host-path"),
    Row((POD_TEMPLATE,), "core: validateHostPathType", "hostPath.type is empty or one of DirectoryOrCreate, "
        "Directory, FileOrCreate, File, Socket, CharDevice, BlockDevice", "api-pod-volume-host-path-type"),
    Row((POD_TEMPLATE,), "core: validateGitRepoVolumeSource", "gitRepo.repository is not empty; gitRepo.directory "
        "is relative with no '..' element", "api-pod-volume-git-repo"),
    Row((POD_TEMPLATE,), "core: validateSecretVolumeSource", "secret.secretName is set",
        "api-pod-volume-secret-name"),
    Row((POD_TEMPLATE,), "core: validateConfigMapVolumeSource", "configMap.name is set",
        "api-pod-volume-config-map-name"),
    Row((POD_TEMPLATE,), "core: validateKeyToPath, validateDownwardAPIVolumeFile", "an item's key and path (a "
        "downwardAPI file's path) are not empty", "api-pod-volume-items"),
    Row((POD_TEMPLATE,), "core: ValidateLocalNonReservedPath", "an item's or file's path is relative, has no '..' "
        "element and does not start with '..'", "api-pod-volume-item-path"),
    Row((POD_TEMPLATE,), "core: validate{Secret,ConfigMap,DownwardAPI,Projected}VolumeSource, validateKeyToPath",
        "defaultMode and each item's mode are between 0 and 0777 (octal)", "api-pod-volume-mode"),
    Row((POD_TEMPLATE,), "core: validatePersistentClaimVolumeSource", "persistentVolumeClaim.claimName is not "
        "empty", "api-pod-volume-claim-name"),
    Row((POD_TEMPLATE,), "core: validateDownwardAPIVolumeFile", "a downwardAPI file sets exactly one of fieldRef "
        "and resourceFieldRef", "api-pod-volume-downward-api-source"),
    Row((POD_TEMPLATE,), "core: validateObjectFieldSelector (volume)", "a downwardAPI file's fieldRef names "
        "metadata.name, metadata.namespace, metadata.uid, metadata.labels or metadata.annotations (a subscript "
        "only on the last two, and a qualified name)", "api-pod-volume-downward-api-field"),
    Row((POD_TEMPLATE,), "core: validateObjectFieldSelector", "fieldRef.apiVersion is required", None,
        "filled by defaulting (v1)"),
    Row((POD_TEMPLATE,), "core: validateContainerResourceFieldSelector (volume)", "a downwardAPI file's "
        "resourceFieldRef names its container and a resource of limits/requests cpu, memory, ephemeral-storage "
        "or hugepages-*, with a divisor that resource allows", "api-pod-volume-downward-api-resource"),
    Row((POD_TEMPLATE,), "core: validateProjectionSources", "each entry of projected.sources sets one kind of "
        "source", "api-pod-volume-projected-source-count"),
    Row((POD_TEMPLATE,), "core: validateProjectionSources", "a projected secret's or configMap's name is set",
        "api-pod-volume-projected-name"),
    Row((POD_TEMPLATE,), "core: validateProjectionSources", "no two projected items (secret, configMap, "
        "downwardAPI) write the same path", "api-pod-volume-projected-duplicate-path"),
    Row((POD_TEMPLATE,), "core: validateProjectionSources (serviceAccountToken)", "expirationSeconds is between "
        "600 (10 minutes) and 2^32", "api-pod-volume-projected-token-expiration"),
    Row((POD_TEMPLATE,), "core: validateProjectionSources (serviceAccountToken)", "expirationSeconds is "
        "required", None, "filled by defaulting (3600)"),
    Row((POD_TEMPLATE,), "core: validateProjectionSources (serviceAccountToken)", "the token's path is not empty "
        "and is a local path (reported at projected.path)", "api-pod-volume-projected-token-path"),
    Row((POD_TEMPLATE,), "core: validateProjectionSources (clusterTrustBundle)", "exactly one of name and "
        "signerName, a valid bundle or signer name, a label selector only with signerName, a local path", None,
        "behind ClusterTrustBundleProjection, off by default at 1.34 (beta): the API server drops the source "
        "before validating"),
    Row((POD_TEMPLATE,), "core: validateProjectionSources (podCertificate)", "signer name, key type, paths and "
        "expiration of a podCertificate source", None,
        "behind PodCertificateRequest, off by default at 1.34 (alpha): the API server drops the source"),
    Row((POD_TEMPLATE,), "core: ValidateCSIDriverName", "csi.driver is set, at most 63 characters and a DNS "
        "subdomain (compared in lower case)", "api-pod-volume-csi-driver"),
    Row((POD_TEMPLATE,), "core: validateCSIVolumeSource", "csi.nodePublishSecretRef.name is set and a valid "
        "Secret name (reported at csi.name)", "api-pod-volume-csi-secret"),
    Row((POD_TEMPLATE,), "core: validateEphemeralVolumeSource", "ephemeral.volumeClaimTemplate is set",
        "api-pod-volume-ephemeral-template"),
    Row((POD_TEMPLATE,), "core: ValidateTemplateObjectMeta", "the claim template's metadata sets only valid "
        "labels and annotations", "api-pod-volume-ephemeral-metadata"),
    Row((POD_TEMPLATE,), "core: ValidatePersistentVolumeClaimTemplate (ValidatePersistentVolumeClaimSpec)",
        "the claim template's spec is a valid PersistentVolumeClaim spec (every rule of the PersistentVolumeClaim "
        "section, storage.py)", "api-pod-volume-ephemeral-spec"),
    Row((POD_TEMPLATE,), _S + " (Pod)", "on a Pod, the claim name an ephemeral volume creates (`<pod>-<volume>`) "
        "is a DNS subdomain", "api-pod-volume-ephemeral-claim-name"),
    Row((POD_TEMPLATE,), "core: validateImageVolumeSource", "a Pod's image volume sets reference; pullPolicy is "
        "Always, Never or IfNotPresent", None, "behind ImageVolume, off by default at 1.34 (beta; on from 1.35): "
        "the API server drops image volumes and their mounts before validating, so they are neither refused nor "
        "mounted"),
    Row((POD_TEMPLATE,), "core: validateNFSVolumeSource", "nfs.server and nfs.path are not empty; the path is "
        "absolute", "api-pod-volume-nfs"),
    Row((POD_TEMPLATE,), "core: validateISCSIVolumeSource", "iscsi: targetPortal and iqn set, iqn and "
        "initiatorName in iqn/eui/naa form, lun 0..255, CHAP needs secretRef, `<volume>:<targetPortal>` at most "
        "64 characters with an initiatorName", "api-pod-volume-iscsi"),
    Row((POD_TEMPLATE,), "core: validateFCVolumeSource", "fc: exactly one of targetWWNs and wwids; targetWWNs "
        "need a lun of 0..255", "api-pod-volume-fc"),
    Row((POD_TEMPLATE,), "core: validateFlockerVolumeSource", "flocker: exactly one of datasetName and "
        "datasetUUID; the name has no '/'", "api-pod-volume-flocker"),
    Row((POD_TEMPLATE,), "core: validateQuobyteVolumeSource", "quobyte: registry is host:port pairs, tenant at "
        "most 64 characters, volume set", "api-pod-volume-quobyte"),
    Row((POD_TEMPLATE,), "core: validateFlexVolumeSource", "flexVolume option names are not in the "
        "kubernetes.io or k8s.io domains", "api-pod-volume-flex-options"),
    Row((POD_TEMPLATE,), "core: validateAzureDisk", "azureDisk: cachingMode None/ReadOnly/ReadWrite, kind "
        "Shared/Dedicated/Managed, a diskURI of the kind's form (kind defaults to Shared: an https:// blob URI)",
        "api-pod-volume-azure-disk"),
    Row((POD_TEMPLATE,), "core: validateStorageOSVolumeSource", "storageos: volumeName set and a DNS label, "
        "volumeNamespace a DNS label, secretRef.name set", "api-pod-volume-storageos"),
    Row((POD_TEMPLATE,), "core: validate{GCEPersistentDisk,AWSElasticBlockStore}VolumeSource", "the partition is "
        "between 0 and 255 (gcePersistentDisk reported as persistentDisk)", "api-pod-volume-partition"),
    Row((POD_TEMPLATE,), "core: validate{GCEPersistentDisk,AWSElasticBlockStore,Glusterfs,RBD,Cinder,CephFS,"
        "AzureFile,VsphereVolume,PhotonPersistentDisk,Portworx,ScaleIO,FlexVolume,AzureDisk}VolumeSource",
        "the in-tree sources' identifying fields are not empty (pdName, volumeID, endpoints and path, monitors "
        "and image, secretName and shareName, volumePath, pdID, gateway/system/volumeName, driver, diskName "
        "and diskURI, cinder's secretRef.name); their kubelet plugins are mostly removed, but the API server "
        "still validates them", "api-pod-volume-legacy-required"),
)

