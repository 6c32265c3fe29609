"""batch/v1: Job and CronJob (Kubernetes' pkg/apis/batch/validation)."""

from __future__ import annotations

COVERAGE: tuple = ()
COVERAGE_TITLE = "batch/v1: Job, CronJob"
VALIDATORS: dict = {}
