"""policy/v1: PodDisruptionBudget (Kubernetes' pkg/apis/policy/validation)."""

from __future__ import annotations

COVERAGE: tuple = ()
COVERAGE_TITLE = "policy/v1: PodDisruptionBudget"
VALIDATORS: dict = {}
