"""Containers of a pod template: the container as a whole, its ports, the
init container and ephemeral container rules, the pod's OS.

Boundaries follow upstream's validation_test.go where it has them (a 63-character
container name passes, 64 fails; port 65535 passes, 65536 fails)."""

from __future__ import annotations

from tests.apivalidation.cases import DELETE, fail, ok

INVALID, REQUIRED, FORBIDDEN = "Invalid value", "Required value", "Forbidden"
NOT_SUPPORTED, DUPLICATE, NOT_FOUND = "Unsupported value", "Duplicate value", "Not found"

T = "spec.template.spec"
C = f"{T}.containers[0]"
C1 = f"{T}.containers[1]"
I0 = f"{T}.initContainers[0]"
I1 = f"{T}.initContainers[1]"
POD = "spec.containers[0]"
PORT = f"{C}.ports[0].name"
IMAGE = "ghcr.io/example-org/sidecar:1.0.0"


def sidecar(**fields) -> dict:
    """A second, minimal container."""
    return {"name": "sidecar", "image": IMAGE, **fields}


def init(**fields) -> dict:
    return {"name": "init-2", "image": IMAGE, **fields}


WINDOWS = {f"{T}.os": {"name": "windows"}, f"{T}.securityContext": {"runAsNonRoot": True},
           f"{C}.securityContext": {"runAsNonRoot": True}}

CASES = [
    # ---- the lists and names --------------------------------------------------
    fail("container-list-empty", "api-container-list-required", "deployment", {f"{T}.containers": []},
         f"{T}.containers", REQUIRED),
    ok("container-list-two", "api-container-list-required", "deployment", {C1: sidecar()}),
    fail("container-name-empty", "api-container-name-required", "deployment", {f"{C}.name": ""},
         f"{C}.name", REQUIRED),
    fail("container-name-empty-init", "api-container-name-required", "deployment", {f"{I0}.name": ""},
         f"{I0}.name", REQUIRED),
    ok("container-name-one-character", "api-container-name-required", "deployment", {f"{C}.name": "a"}),
    fail("container-name-64", "api-container-name-format", "deployment", {f"{C}.name": "a" * 64},
         f"{C}.name", INVALID),
    fail("container-name-uppercase", "api-container-name-format", "deployment", {f"{C}.name": "Server"},
         f"{C}.name", INVALID),
    fail("container-name-dots", "api-container-name-format", "deployment", {f"{I0}.name": "init.v1"},
         f"{I0}.name", INVALID),
    ok("container-name-63", "api-container-name-format", "deployment", {f"{C}.name": "a" * 63}),
    ok("container-name-digits-and-dashes", "api-container-name-format", "deployment", {f"{C}.name": "1-server-2"}),
    fail("container-name-duplicate", "api-container-name-unique", "deployment", {C1: sidecar(name="server")},
         f"{C1}.name", DUPLICATE),
    fail("container-name-init-as-container", "api-container-name-unique", "deployment", {f"{I0}.name": "server"},
         f"{I0}.name", DUPLICATE),
    fail("container-name-two-inits", "api-container-name-unique", "deployment", {I1: init(name="init")},
         f"{I1}.name", DUPLICATE),
    ok("container-name-unique", "api-container-name-unique", "deployment", {C1: sidecar(), I1: init()}),
    fail("container-image-empty", "api-container-image-required", "deployment", {f"{C}.image": ""},
         f"{C}.image", REQUIRED),
    fail("container-image-missing-init", "api-container-image-required", "deployment", {f"{I0}.image": DELETE},
         f"{I0}.image", REQUIRED),
    ok("container-image-untagged", "api-container-image-required", "deployment", {f"{C}.image": "nginx"}),
    fail("pod-image-leading-space", "api-container-image-whitespace", "pod",
         {f"{POD}.image": " ghcr.io/example-org/demo:1.0.0"}, f"{POD}.image", INVALID),
    fail("pod-image-trailing-space-init", "api-container-image-whitespace", "pod",
         {"spec.initContainers[0].image": "ghcr.io/example-org/init:1.0.0 "}, "spec.initContainers[0].image",
         INVALID),
    ok("template-image-trailing-space", "api-container-image-whitespace", "deployment",
       {f"{C}.image": "ghcr.io/example-org/demo:1.0.0 "}),
    ok("pod-image-trimmed", "api-container-image-whitespace", "pod", {f"{POD}.image": "nginx:1.27"}),
    # ---- policies -------------------------------------------------------------------
    fail("container-termination-message-policy", "api-container-termination-message-policy", "deployment",
         {f"{C}.terminationMessagePolicy": "Always"}, f"{C}.terminationMessagePolicy", NOT_SUPPORTED),
    ok("container-termination-message-fallback", "api-container-termination-message-policy", "deployment",
       {f"{C}.terminationMessagePolicy": "FallbackToLogsOnError"}),
    fail("container-pull-policy-typo", "api-container-pull-policy", "deployment",
         {f"{C}.imagePullPolicy": "IfNotPresnt"}, f"{C}.imagePullPolicy", NOT_SUPPORTED),
    fail("container-pull-policy-lowercase-init", "api-container-pull-policy", "deployment",
         {f"{I0}.imagePullPolicy": "always"}, f"{I0}.imagePullPolicy", NOT_SUPPORTED),
    ok("container-pull-policy-never", "api-container-pull-policy", "deployment", {f"{C}.imagePullPolicy": "Never"}),
    # ---- ports ------------------------------------------------------------------------
    fail("container-port-name-16", "api-container-port-name", "deployment", {PORT: "grpc-inference-api"},
         PORT, INVALID),
    ok("container-port-name-15", "api-container-port-name", "deployment", {PORT: "grpc-inferences"}),
    fail("container-port-name-digits-only", "api-container-port-name", "deployment", {PORT: "8080"},
         PORT, INVALID),
    fail("container-port-name-double-hyphen", "api-container-port-name", "deployment", {PORT: "http--x"},
         PORT, INVALID),
    fail("container-port-name-uppercase", "api-container-port-name", "deployment", {PORT: "HTTP"},
         PORT, INVALID),
    fail("container-port-name-duplicate", "api-container-port-name-unique", "deployment",
         {f"{C}.ports[1]": {"name": "http", "containerPort": 8081}}, f"{C}.ports[1].name", DUPLICATE),
    ok("container-port-name-reused-by-another-container", "api-container-port-name-unique", "deployment",
       {C1: sidecar(ports=[{"name": "http", "containerPort": 9000}])}),
    fail("container-port-zero", "api-container-port-required", "deployment", {f"{C}.ports[0].containerPort": 0},
         f"{C}.ports[0].containerPort", REQUIRED),
    ok("container-port-one", "api-container-port-required", "deployment", {f"{C}.ports[0].containerPort": 1}),
    fail("container-port-65536", "api-container-port-number", "deployment",
         {f"{C}.ports[0].containerPort": 65536}, f"{C}.ports[0].containerPort", INVALID),
    fail("container-port-negative", "api-container-port-number", "deployment",
         {f"{C}.ports[0].containerPort": -1}, f"{C}.ports[0].containerPort", INVALID),
    ok("container-port-65535", "api-container-port-number", "deployment", {f"{C}.ports[0].containerPort": 65535}),
    fail("container-host-port-65536", "api-container-host-port-number", "deployment",
         {f"{C}.ports[0].hostPort": 65536}, f"{C}.ports[0].hostPort", INVALID),
    fail("container-host-port-negative", "api-container-host-port-number", "deployment",
         {f"{C}.ports[0].hostPort": -1}, f"{C}.ports[0].hostPort", INVALID),
    ok("container-host-port-65535", "api-container-host-port-number", "deployment",
       {f"{C}.ports[0].hostPort": 65535}),
    ok("container-host-port-zero", "api-container-host-port-number", "deployment", {f"{C}.ports[0].hostPort": 0}),
    fail("container-port-protocol-lowercase", "api-container-port-protocol", "deployment",
         {f"{C}.ports[0].protocol": "tcp"}, f"{C}.ports[0].protocol", NOT_SUPPORTED),
    fail("container-port-protocol-http", "api-container-port-protocol", "deployment",
         {f"{C}.ports[0].protocol": "HTTP"}, f"{C}.ports[0].protocol", NOT_SUPPORTED),
    ok("container-port-protocol-sctp", "api-container-port-protocol", "deployment",
       {f"{C}.ports[0].protocol": "SCTP"}),
    ok("container-port-protocol-defaulted", "api-container-port-protocol", "deployment",
       {f"{C}.ports[0].protocol": DELETE}),
    fail("container-host-port-conflict", "api-container-host-port-unique", "deployment",
         {f"{C}.ports[0].hostPort": 80, C1: sidecar(ports=[{"containerPort": 9000, "hostPort": 80}])},
         f"{C1}.ports[0].hostPort", DUPLICATE),
    ok("container-host-port-other-protocol", "api-container-host-port-unique", "deployment",
       {f"{C}.ports[0].hostPort": 80, C1: sidecar(ports=[{"containerPort": 9000, "hostPort": 80, "protocol": "UDP"}])}),
    ok("container-host-port-other-host-ip", "api-container-host-port-unique", "deployment",
       {f"{C}.ports[0].hostPort": 80,
        C1: sidecar(ports=[{"containerPort": 9000, "hostPort": 80, "hostIP": "10.0.0.1"}])}),
    # The API server checks each init container alone and names it initContainers[0].
    fail("container-host-port-conflict-in-second-init", "api-container-host-port-unique", "deployment",
         {I1: init(ports=[{"containerPort": 81, "hostPort": 81}, {"containerPort": 82, "hostPort": 81}])},
         f"{I0}.ports[1].hostPort", DUPLICATE),
    ok("container-host-port-shared-by-inits", "api-container-host-port-unique", "deployment",
       {f"{I0}.ports": [{"containerPort": 81, "hostPort": 81}],
        I1: init(ports=[{"containerPort": 81, "hostPort": 81}])}),
    fail("container-host-network-port-differs", "api-container-host-network-port", "deployment",
         {f"{T}.hostNetwork": True, f"{C}.ports[0].hostPort": 9000}, f"{C}.ports[0].hostPort", INVALID),
    ok("container-host-network-port-equal", "api-container-host-network-port", "deployment",
       {f"{T}.hostNetwork": True, f"{C}.ports[0].hostPort": 8080}),
    ok("container-host-network-port-unset", "api-container-host-network-port", "deployment",
       {f"{T}.hostNetwork": True}),
    ok("container-host-port-without-host-network", "api-container-host-network-port", "deployment",
       {f"{C}.ports[0].hostPort": 9000}),
    # ---- restart policies, init containers --------------------------------------------------
    fail("container-restart-policy-1-33", "api-container-restart-policy", "deployment",
         {f"{C}.restartPolicy": "Always"}, f"{C}.restartPolicy", FORBIDDEN, version="1.33"),
    ok("container-restart-policy-dropped-1-34", "api-container-restart-policy", "deployment",
       {f"{C}.restartPolicy": "Always"}),
    fail("init-restart-policy-never-1-33", "api-container-init-restart-policy", "deployment",
         {f"{I0}.restartPolicy": "Never"}, f"{I0}.restartPolicy", NOT_SUPPORTED, version="1.33"),
    ok("init-restart-policy-never-dropped-1-34", "api-container-init-restart-policy", "deployment",
       {f"{I0}.restartPolicy": "Never"}),
    ok("init-restart-policy-always-1-33", "api-container-init-restart-policy", "deployment",
       {f"{I0}.restartPolicy": "Always"}, version="1.33"),
    fail("init-liveness-probe", "api-container-init-forbidden", "deployment",
         {f"{I0}.livenessProbe": {"exec": {"command": ["true"]}}}, f"{I0}.livenessProbe", FORBIDDEN),
    fail("init-lifecycle", "api-container-init-forbidden", "deployment",
         {f"{I0}.lifecycle": {"preStop": {"exec": {"command": ["true"]}}}}, f"{I0}.lifecycle", FORBIDDEN),
    fail("init-startup-probe-restart-never-1-34", "api-container-init-forbidden", "deployment",
         {f"{I0}.restartPolicy": "Never", f"{I0}.startupProbe": {"exec": {"command": ["true"]}}},
         f"{I0}.startupProbe", FORBIDDEN),
    ok("init-sidecar-probes-and-lifecycle", "api-container-init-forbidden", "deployment",
       {f"{I0}.restartPolicy": "Always", f"{I0}.readinessProbe": {"exec": {"command": ["true"]}},
        f"{I0}.lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}),
    # ---- ephemeral containers -------------------------------------------------------
    fail("template-ephemeral-container", "api-container-ephemeral-template", "deployment",
         {f"{T}.ephemeralContainers": [{"name": "debug", "image": IMAGE}]}, f"{T}.ephemeralContainers", FORBIDDEN),
    ok("template-ephemeral-containers-empty", "api-container-ephemeral-template", "deployment",
       {f"{T}.ephemeralContainers": []}),
    fail("pod-ephemeral-container", "api-container-ephemeral-create", "pod",
         {"spec.ephemeralContainers": [{"name": "debug", "image": IMAGE, "targetContainerName": "server"}]},
         "spec.ephemeralContainers", FORBIDDEN),
    ok("pod-ephemeral-containers-empty", "api-container-ephemeral-create", "pod", {"spec.ephemeralContainers": []}),
    # ---- the pod's OS -----------------------------------------------------------------------
    fail("windows-container-privileged", "api-container-windows-forbidden", "deployment",
         {**WINDOWS, f"{C}.securityContext": {"runAsNonRoot": True, "privileged": False}},
         f"{C}.securityContext.privileged", FORBIDDEN),
    fail("windows-init-run-as-user", "api-container-windows-forbidden", "deployment",
         {**WINDOWS, f"{I0}.securityContext": {"runAsUser": 1000}}, f"{I0}.securityContext.runAsUser", FORBIDDEN),
    fail("windows-container-capabilities", "api-container-windows-forbidden", "deployment",
         {**WINDOWS, f"{C}.securityContext": {"capabilities": {"drop": ["ALL"]}}},
         f"{C}.securityContext.capabilities", FORBIDDEN),
    ok("windows-container-run-as-non-root", "api-container-windows-forbidden", "deployment",
       {**WINDOWS, f"{C}.securityContext.windowsOptions": {"runAsUserName": "ContainerUser"}}),
    ok("no-os-container-linux-fields", "api-container-windows-forbidden", "deployment",
       {f"{C}.securityContext.windowsOptions": {"runAsUserName": "ContainerUser"}}),
    fail("linux-container-windows-options", "api-container-linux-windows-options", "deployment",
         {f"{T}.os": {"name": "linux"}, f"{C}.securityContext.windowsOptions": {"runAsUserName": "ContainerUser"}},
         f"{C}.securityContext.windowsOptions", FORBIDDEN),
    ok("linux-container-linux-fields", "api-container-linux-windows-options", "deployment",
       {f"{T}.os": {"name": "linux"}}),
]
