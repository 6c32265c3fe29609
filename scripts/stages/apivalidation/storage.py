"""v1 PersistentVolumeClaim (core's ValidatePersistentVolumeClaim)."""

from __future__ import annotations

COVERAGE: tuple = ()
COVERAGE_TITLE = "v1: PersistentVolumeClaim"
VALIDATORS: dict = {}
