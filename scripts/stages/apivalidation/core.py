"""v1: Namespace, ServiceAccount, ConfigMap, Secret, Service (core's validation)."""

from __future__ import annotations

COVERAGE: tuple = ()
COVERAGE_TITLE = "v1: Namespace, ServiceAccount, ConfigMap, Secret, Service"
VALIDATORS: dict = {}
