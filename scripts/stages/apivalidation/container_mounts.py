"""A container's volumeMounts and volumeDevices (core's ValidateVolumeMounts,
ValidateVolumeDevices, validateMountPropagation, validateMountRecursiveReadOnly).

Some of these errors name the list, not the entry (`volumeMounts.subPath`,
`volumeMounts.mountPropagation`): that is how the API server writes them, so
that is how we write them.
"""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
RECURSIVE_READ_ONLY = ("Disabled", "Enabled", "IfPossible")
# Volume sources that can back a block device (volumeDevices).
BLOCK_SOURCES = ("persistentVolumeClaim", "ephemeral")


def local_descending_path(check: str, value: str, path: FieldPath, errs: Errors) -> None:
    """A path that stays below its root: relative, with no '..' element."""
    if value.startswith("/"):
        errs.invalid(check, path, value, "must be a relative path")
    if ".." in value.split("/"):
        errs.invalid(check, path, value, "must not contain a '..' element")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _names_and_paths(entries: Any, path_key: str) -> dict[str, str]:
    # The last entry of a name wins, as in the API server's map.
    out: dict[str, str] = {}
    for entry in as_list(entries):
        entry = as_dict(entry)
        out[_str(entry.get("name"))] = _str(entry.get(path_key))
    return out


def validate_volume_mounts(container: dict[str, Any], volumes: dict[str, dict[str, Any]], path: FieldPath,
                           errs: Errors) -> None:
    """`path`: the container's path. `volumes`: the pod's valid volumes by name."""
    mounts_path = path.child("volumeMounts")
    devices = _names_and_paths(container.get("volumeDevices"), "devicePath")
    privileged = as_dict(container.get("securityContext")).get("privileged") is True
    seen: set[str] = set()
    for index, mount in enumerate(as_list(container.get("volumeMounts"))):
        if not isinstance(mount, dict):
            continue
        at = mounts_path.index(index)
        name, mount_path = _str(mount.get("name")), _str(mount.get("mountPath"))
        if not name:
            errs.required("api-container-mount-name-required", at.child("name"), "name the volume to mount")
        if name not in volumes:
            errs.not_found("api-container-mount-volume", at.child("name"), name)
        if not mount_path:
            errs.required("api-container-mount-path-required", at.child("mountPath"),
                          "give the path to mount the volume at")
        if mount_path in seen:
            errs.invalid("api-container-mount-path-unique", at.child("mountPath"), mount_path,
                         "two mounts of this container use this path: give each its own")
        seen.add(mount_path)
        if name in devices:
            errs.invalid("api-container-mount-device-name", at.child("name"), name,
                         "this volume is also a volumeDevice of this container: use it as one or the other")
        if mount_path in devices.values():
            errs.invalid("api-container-mount-device-path", at.child("mountPath"), mount_path,
                         "a volumeDevice of this container uses this path")
        sub_path, sub_path_expr = _str(mount.get("subPath")), _str(mount.get("subPathExpr"))
        if sub_path:
            local_descending_path("api-container-mount-subpath", sub_path, mounts_path.child("subPath"), errs)
        if sub_path_expr:
            if sub_path:
                errs.invalid("api-container-mount-subpath-exclusive", at.child("subPathExpr"), sub_path_expr,
                             "set subPath or subPathExpr, not both")
            local_descending_path("api-container-mount-subpath", sub_path_expr, mounts_path.child("subPathExpr"),
                                  errs)
        propagation = mount.get("mountPropagation")
        if isinstance(propagation, str):
            if propagation not in PROPAGATIONS:
                errs.not_supported("api-container-mount-propagation", mounts_path.child("mountPropagation"),
                                   propagation, PROPAGATIONS)
            if propagation == "Bidirectional" and not privileged:
                errs.forbidden("api-container-mount-propagation-privileged", mounts_path.child("mountPropagation"),
                               "Bidirectional propagation needs securityContext.privileged: true")
        _recursive_read_only(mount, mounts_path.child("recursiveReadOnly"), errs)


def _recursive_read_only(mount: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    value = mount.get("recursiveReadOnly")
    if not isinstance(value, str) or value == "Disabled":
        return
    if value in ("Enabled", "IfPossible"):
        if mount.get("readOnly") is not True:
            errs.forbidden("api-container-mount-rro-read-only", path, "needs readOnly: true")
        propagation = mount.get("mountPropagation")
        if isinstance(propagation, str) and propagation != "None":
            errs.forbidden("api-container-mount-rro-propagation", path,
                           "needs mountPropagation None (or unset)")
    else:
        errs.not_supported("api-container-mount-rro", path, value, RECURSIVE_READ_ONLY)


def validate_volume_devices(container: dict[str, Any], volumes: dict[str, dict[str, Any]], path: FieldPath,
                            errs: Errors) -> None:
    devices_path = path.child("volumeDevices")
    mounts = _names_and_paths(container.get("volumeMounts"), "mountPath")
    names: set[str] = set()
    device_paths: set[str] = set()
    for index, device in enumerate(as_list(container.get("volumeDevices"))):
        if not isinstance(device, dict):
            continue
        at = devices_path.index(index)
        name, device_path = _str(device.get("name")), _str(device.get("devicePath"))
        if not name:
            errs.required("api-container-device-name-required", at.child("name"), "name the volume")
        if name in names:
            errs.invalid("api-container-device-name-unique", at.child("name"), name,
                         "this volume is already a volumeDevice of this container")
        if name in volumes:
            source = as_dict(volumes[name])
            if not any(isinstance(source.get(key), dict) for key in BLOCK_SOURCES):
                errs.invalid("api-container-device-volume-type", at.child("name"), name,
                             "a block device needs a persistentVolumeClaim or ephemeral volume")
        else:
            errs.not_found("api-container-device-volume", at.child("name"), name)
        if not device_path:
            errs.required("api-container-device-path-required", at.child("devicePath"),
                          "give the path of the device in the container")
        if device_path in device_paths:
            errs.invalid("api-container-device-path-unique", at.child("devicePath"), device_path,
                         "two volumeDevices of this container use this path")
        if device_path and ".." in device_path.split("/"):
            errs.invalid("api-container-device-path-backsteps", at.child("devicePath"), device_path,
                         "must not contain a '..' element")
        else:
            device_paths.add(device_path)
        if name in mounts:
            errs.invalid("api-container-device-mount-name", at.child("name"), name,
                         "this volume is also a volumeMount of this container")
        if device_path in mounts.values():
            errs.invalid("api-container-device-mount-path", at.child("devicePath"), device_path,
                         "a volumeMount of this container uses this path")
        if name:
            names.add(name)


_MOUNTS = "core: ValidateVolumeMounts"
_DEVICES = "core: ValidateVolumeDevices"
ROWS = (
    Row((POD_TEMPLATE,), _MOUNTS, "a volumeMount names a volume (not empty)", "api-container-mount-name-required"),
    Row((POD_TEMPLATE,), _MOUNTS + " (IsMatchedVolume)", "a volumeMount names a volume of the pod (one that "
        "passed validation)", "api-container-mount-volume"),
    Row((POD_TEMPLATE,), _MOUNTS, "mountPath is not empty", "api-container-mount-path-required"),
    Row((POD_TEMPLATE,), _MOUNTS, "each mountPath of a container is unique", "api-container-mount-path-unique"),
    Row((POD_TEMPLATE,), _MOUNTS + " (mountNameAlreadyExists)", "a volume is not both a volumeMount and a "
        "volumeDevice of a container", "api-container-mount-device-name"),
    Row((POD_TEMPLATE,), _MOUNTS + " (mountPathAlreadyExists)", "a mountPath is not also a devicePath of the "
        "container", "api-container-mount-device-path"),
    Row((POD_TEMPLATE,), _MOUNTS, "subPath and subPathExpr are refused on an image volume", None,
        "behind ImageVolume, off by default at 1.34: the API server drops image volumes before validating (and "
        "1.33 lifted this rule for image volumes)"),
    Row((POD_TEMPLATE,), _MOUNTS + " (validateLocalDescendingPath)", "subPath and subPathExpr are relative paths "
        "with no '..' element", "api-container-mount-subpath"),
    Row((POD_TEMPLATE,), _MOUNTS, "subPath and subPathExpr exclude each other",
        "api-container-mount-subpath-exclusive"),
    Row((POD_TEMPLATE,), "core: validateMountPropagation", "mountPropagation is Bidirectional, HostToContainer or "
        "None", "api-container-mount-propagation"),
    Row((POD_TEMPLATE,), "core: validateMountPropagation", "Bidirectional propagation needs a privileged container",
        "api-container-mount-propagation-privileged"),
    Row((POD_TEMPLATE,), "core: validateMountRecursiveReadOnly", "recursiveReadOnly Enabled or IfPossible needs "
        "readOnly: true", "api-container-mount-rro-read-only"),
    Row((POD_TEMPLATE,), "core: validateMountRecursiveReadOnly", "recursiveReadOnly Enabled or IfPossible needs "
        "mountPropagation None or unset", "api-container-mount-rro-propagation"),
    Row((POD_TEMPLATE,), "core: validateMountRecursiveReadOnly", "recursiveReadOnly is Disabled, Enabled or "
        "IfPossible", "api-container-mount-rro"),
    Row((POD_TEMPLATE,), _DEVICES, "a volumeDevice names a volume (not empty)", "api-container-device-name-required"),
    Row((POD_TEMPLATE,), _DEVICES, "a volume is a volumeDevice of a container at most once",
        "api-container-device-name-unique"),
    Row((POD_TEMPLATE,), _DEVICES + " (isMatchedDevice)", "a volumeDevice's volume is a persistentVolumeClaim or "
        "an ephemeral volume", "api-container-device-volume-type"),
    Row((POD_TEMPLATE,), _DEVICES + " (isMatchedDevice)", "a volumeDevice names a volume of the pod",
        "api-container-device-volume"),
    Row((POD_TEMPLATE,), _DEVICES, "devicePath is not empty", "api-container-device-path-required"),
    Row((POD_TEMPLATE,), _DEVICES, "each devicePath of a container is unique", "api-container-device-path-unique"),
    Row((POD_TEMPLATE,), _DEVICES + " (validatePathNoBacksteps)", "devicePath has no '..' element",
        "api-container-device-path-backsteps"),
    Row((POD_TEMPLATE,), _DEVICES + " (deviceNameAlreadyExists)", "a volume is not both a volumeDevice and a "
        "volumeMount of a container", "api-container-device-mount-name"),
    Row((POD_TEMPLATE,), _DEVICES + " (devicePathAlreadyExists)", "a devicePath is not also a mountPath of the "
        "container", "api-container-device-mount-path"),
)
