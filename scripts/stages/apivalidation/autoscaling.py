"""autoscaling/v2: HorizontalPodAutoscaler (Kubernetes' pkg/apis/autoscaling/validation)."""

from __future__ import annotations

COVERAGE: tuple = ()
COVERAGE_TITLE = "autoscaling/v2: HorizontalPodAutoscaler"
VALIDATORS: dict = {}
