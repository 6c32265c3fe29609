"""Containers of a pod spec: containers, initContainers and ephemeralContainers
(core's validateContainers, validateInitContainers, validateEphemeralContainers
and what they call: ports, env, resources, probes, lifecycle, security context,
volume mounts)."""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list


def validate_containers(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors,
                        volumes: dict[str, dict[str, Any]]) -> None:
    """Every container list of a pod spec at `path` (the pod spec's path).
    `volumes`: the pod's volumes by name, as validated, for mount checks."""
    for index, container in enumerate(as_list(spec.get("containers"))):
        _container(as_dict(container), path.child("containers").index(index), ctx, errs)
    for index, container in enumerate(as_list(spec.get("initContainers"))):
        _container(as_dict(container), path.child("initContainers").index(index), ctx, errs)


def _container(container: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors) -> None:
    _ports(container.get("ports"), path.child("ports"), errs)


def _ports(ports: Any, path: FieldPath, errs: Errors) -> None:
    for index, port in enumerate(as_list(ports)):
        port = as_dict(port)
        at = path.index(index)
        name = port.get("name")
        if isinstance(name, str) and name:
            errs.each("api-container-port-name", at.child("name"), name, formats.port_name_problems(name))


COVERAGE = (
    Row((POD_TEMPLATE,), "core: validateContainerPorts (IsValidPortName)", "a container port's name, when set, "
        "is an IANA service name: at most 15 characters, lowercase letters, digits and '-', at least one letter, "
        "no '--', no '-' at either end", "api-container-port-name"),
)
COVERAGE_TITLE = "Containers (every pod template)"
VALIDATORS: dict = {}
