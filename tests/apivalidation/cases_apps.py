"""apps/v1."""

from __future__ import annotations

from tests.apivalidation.cases import fail, ok

REQUIRED = "Required value"

CASES = [
    fail("deployment-selector-empty", "api-deployment-selector-required", "deployment",
         {"spec.selector": {}}, "spec.selector", REQUIRED),
    ok("deployment-selector-expression-only", "api-deployment-selector-required", "deployment",
       {"spec.selector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "Exists"}]}}),
]
