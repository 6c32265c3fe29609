"""policy/v1: PodDisruptionBudget."""

from __future__ import annotations

from tests.apivalidation.cases import DELETE, fail, ok

INVALID, UNSUPPORTED = "Invalid value", "Unsupported value"

CASES = [
    # The example: both set.
    fail("pdb-min-and-max", "api-pdb-min-and-max", "pdb", {"spec.minAvailable": 1}, "spec", INVALID),
    ok("pdb-min-only", "api-pdb-min-and-max", "pdb", {"spec.minAvailable": "50%", "spec.maxUnavailable": DELETE}),
    fail("pdb-max-unavailable-negative", "api-pdb-int-or-percent", "pdb", {"spec.maxUnavailable": -1},
         "spec.maxUnavailable", INVALID),
    fail("pdb-min-available-no-percent", "api-pdb-int-or-percent", "pdb",
         {"spec.minAvailable": "2", "spec.maxUnavailable": DELETE}, "spec.minAvailable", INVALID),
    ok("pdb-max-unavailable-zero", "api-pdb-int-or-percent", "pdb", {"spec.maxUnavailable": 0}),
    fail("pdb-max-unavailable-101-percent", "api-pdb-percent-max", "pdb", {"spec.maxUnavailable": "101%"},
         "spec.maxUnavailable", INVALID),
    ok("pdb-min-available-100-percent", "api-pdb-percent-max", "pdb",
       {"spec.minAvailable": "100%", "spec.maxUnavailable": DELETE}),
    fail("pdb-eviction-policy-unknown", "api-pdb-unhealthy-pod-eviction-policy", "pdb",
         {"spec.unhealthyPodEvictionPolicy": "Never"}, "spec.unhealthyPodEvictionPolicy", UNSUPPORTED),
    ok("pdb-eviction-policy-if-healthy", "api-pdb-unhealthy-pod-eviction-policy", "pdb",
       {"spec.unhealthyPodEvictionPolicy": "IfHealthyBudget"}),
    fail("pdb-selector-value-bad", "api-selector-value", "pdb",
         {"spec.selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a b"]}]}},
         "spec.selector.matchExpressions[0].values[0]", INVALID),
    # Its name needs only be a path segment.
    fail("pdb-name-slash", "api-meta-name-path-segment", "pdb", {"metadata.name": "demo/pdb"}, "metadata.name",
         INVALID),
    ok("pdb-name-uppercase", "api-meta-name-path-segment", "pdb", {"metadata.name": "Demo_PDB"}),
]
