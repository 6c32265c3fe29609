"""The API server's handwritten validation, for the kinds this repository
renders or its users would reasonably add, run on every rendered object by
the schema stage.

The JSON schemas (kubeconform's and the schema stage's check) describe
shapes; the API server then runs code: a port name of 16 characters, a
PodDisruptionBudget with both minAvailable and maxUnavailable, a probe with
two handlers all pass a schema and are refused on create. Each module here
ports one API group's `Validate*` functions, declares its coverage rows
(`COVERAGE`, see coverage.py) and its validators by (apiVersion, kind).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scripts.stages.apivalidation import (
    apps,
    autoscaling,
    batch,
    containers,
    core,
    meta,
    networking,
    pods,
    policy,
    rbac,
    storage,
)
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.errors import Errors, FieldError

# In the order the coverage document lists them.
MODULES = (meta, pods, containers, core, storage, apps, batch, autoscaling, policy, networking, rbac)
# What the rows were read from: the upstream code at the clusters' Kubernetes minor.
SOURCE = (
    "Read from: k8s.io/apimachinery v0.34.10 (`pkg/api/validation`, `pkg/apis/meta/v1/validation`, "
    "`pkg/util/validation`, `pkg/api/resource`) and kubernetes/kubernetes `pkg/apis/*/validation` as the "
    "commits each section names (core's `validation.go` at 000f26050b9b is a copy from the 1.33 development "
    "line: what changed for 1.34 is taken from the feature-gate table and `pkg/api/pod/util.go`, which drops "
    "the fields of a disabled gate before validating). Feature gates are taken at their 1.34 defaults; a "
    "condition behind a gate that is off by default at 1.34 is not ported."
)

Validator = Callable[[dict[str, Any], Context, Errors], None]


def _validators() -> dict[tuple[str, str], Validator]:
    table: dict[tuple[str, str], Validator] = {}
    for module in MODULES:
        for key, function in module.VALIDATORS.items():
            if key in table:
                raise RuntimeError(f"two validators for {key}")
            table[key] = function
    return table


VALIDATORS = _validators()


def kinds() -> frozenset[tuple[str, str]]:
    """(apiVersion, kind) of every kind validated here."""
    return frozenset(VALIDATORS)


def validate(doc: dict[str, Any], context: Context) -> list[FieldError]:
    """What the API server would refuse in this object on create; [] for a
    kind not validated here."""
    validator = VALIDATORS.get((doc.get("apiVersion"), doc.get("kind")))  # type: ignore[arg-type]
    if validator is None:
        return []
    errs = Errors()
    validator(doc, context, errs)
    return _unique(errs.items)


def _unique(items: list[FieldError]) -> list[FieldError]:
    # The API server reports a message once even when two checks reach it.
    seen: set[str] = set()
    out = []
    for item in items:
        text = item.message()
        if text not in seen:
            seen.add(text)
            out.append(item)
    return out


def rows() -> list[Row]:
    return [row for module in MODULES for row in module.COVERAGE]


def sections() -> list[tuple[str, str, tuple[Row, ...]]]:
    return [(module.COVERAGE_TITLE, getattr(module, "COVERAGE_INTRO", ""), module.COVERAGE) for module in MODULES]
