"""Containers of a pod template."""

from __future__ import annotations

from tests.apivalidation.cases import fail, ok

INVALID = "Invalid value"
PORT = "spec.template.spec.containers[0].ports[0].name"

CASES = [
    fail("container-port-name-16", "api-container-port-name", "deployment", {PORT: "grpc-inference-api"},
         PORT, INVALID),
    ok("container-port-name-15", "api-container-port-name", "deployment", {PORT: "grpc-inferences"}),
    fail("container-port-name-digits-only", "api-container-port-name", "deployment", {PORT: "8080"},
         PORT, INVALID),
    fail("container-port-name-double-hyphen", "api-container-port-name", "deployment", {PORT: "http--x"},
         PORT, INVALID),
    fail("container-port-name-uppercase", "api-container-port-name", "deployment", {PORT: "HTTP"},
         PORT, INVALID),
]
