"""networking.k8s.io/v1: NetworkPolicy, Ingress, IngressClass (Kubernetes'
pkg/apis/networking/validation)."""

from __future__ import annotations

COVERAGE: tuple = ()
COVERAGE_TITLE = "networking.k8s.io/v1: NetworkPolicy, Ingress, IngressClass"
VALIDATORS: dict = {}
