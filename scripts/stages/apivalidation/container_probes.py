"""A container's probes and lifecycle hooks (core's validateLivenessProbe,
validateReadinessProbe, validateStartupProbe, validateProbe, validateHandler
and its actions, validateLifecycle, validateSleepAction).

Judged after the API defaults: a probe's timeoutSeconds, periodSeconds,
successThreshold and failureThreshold of 0 (or unset) become 1, 10, 1 and 3;
httpGet's path becomes "/" and its scheme HTTP.
"""

from __future__ import annotations

from typing import Any

from scripts.stages.apivalidation import formats
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

# In the order the API server counts them: the first is validated, the others refused.
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")
HTTP_SCHEMES = ("HTTP", "HTTPS")
PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
PROBE_COUNTERS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _after_defaults(probe: dict[str, Any], key: str) -> Any:
    value = probe.get(key)
    if key in PROBE_DEFAULTS and (value is None or value == 0) and not isinstance(value, bool):
        return PROBE_DEFAULTS[key]
    return value


def validate_port(check: str, port: Any, path: FieldPath, errs: Errors) -> None:
    """An int-or-string port: a number 1-65535 or an IANA port name."""
    if formats.is_int(port):
        errs.each(check, path, port, formats.port_number_problems(port))
    elif isinstance(port, str):
        errs.each(check, path, port, formats.port_name_problems(port))


def validate_probe(probe: Any, key: str, path: FieldPath, grace_period: int | None, ctx: Context,
                   errs: Errors) -> None:
    """`key`: livenessProbe, readinessProbe or startupProbe; `path`: the probe's."""
    if not isinstance(probe, dict):
        return
    _handler(probe, PROBE_HANDLERS, path, grace_period, ctx, errs)
    for counter in PROBE_COUNTERS:
        value = _after_defaults(probe, counter)
        if formats.is_int(value) and value < 0:
            errs.invalid("api-container-probe-negative", path.child(counter), value, "must not be negative")
    grace = probe.get("terminationGracePeriodSeconds")
    if formats.is_int(grace) and grace <= 0:
        errs.invalid("api-container-probe-grace-period", path.child("terminationGracePeriodSeconds"), grace,
                     "must be greater than 0 (omit it to use the pod's)")
    success = _after_defaults(probe, "successThreshold")
    if key in ("livenessProbe", "startupProbe") and formats.is_int(success) and success != 1:
        errs.invalid("api-container-probe-success-one", path.child("successThreshold"), success,
                     f"must be 1 for a {key}")
    if key == "readinessProbe" and grace is not None:
        errs.invalid("api-container-probe-readiness-grace", path.child("terminationGracePeriodSeconds"), grace,
                     "a readiness probe does not restart the container: remove it")


def validate_lifecycle(lifecycle: Any, path: FieldPath, grace_period: int | None, ctx: Context, errs: Errors) -> None:
    # stopSignal (ContainerStopSignals) is alpha and off by default at 1.34: dropped, not checked.
    lifecycle = as_dict(lifecycle)
    for hook in ("postStart", "preStop"):
        if isinstance(lifecycle.get(hook), dict):
            _handler(lifecycle[hook], LIFECYCLE_HANDLERS, path.child(hook), grace_period, ctx, errs)


def _handler(handler: dict[str, Any], kinds: tuple[str, ...], path: FieldPath, grace_period: int | None,
             ctx: Context, errs: Errors) -> None:
    found: str | None = None
    for kind in kinds:
        action = handler.get(kind)
        if not isinstance(action, dict):
            continue
        if found is not None:
            errs.forbidden("api-container-handler-one", path.child(kind),
                           f"only one handler may be set; {found} is already set")
            continue
        found = kind
        _action(kind, action, path.child(kind), grace_period, ctx, errs)
    if found is None:
        errs.required("api-container-handler-required", path, "set one handler: " + ", ".join(kinds))


def _action(kind: str, action: dict[str, Any], path: FieldPath, grace_period: int | None, ctx: Context,
            errs: Errors) -> None:
    if kind == "exec":
        if not as_list(action.get("command")):
            errs.required("api-container-exec-command", path.child("command"), "give the command to run")
    elif kind == "httpGet":
        validate_port("api-container-handler-port", action.get("port"), path.child("port"), errs)
        scheme = action.get("scheme") or "HTTP"
        if isinstance(scheme, str) and scheme not in HTTP_SCHEMES:
            errs.not_supported("api-container-http-scheme", path.child("scheme"), scheme, HTTP_SCHEMES)
        for header in as_list(action.get("httpHeaders")):
            name = as_dict(header).get("name")
            if isinstance(name, str):
                # The API server names the list, not the header.
                errs.each("api-container-http-header", path.child("httpHeaders"), name,
                          formats.http_header_name_problems(name))
    elif kind in ("tcpSocket", "grpc"):
        port = action.get("port")
        if kind == "grpc" and not formats.is_int(port):
            return  # an integer field: anything else is the JSON schema's finding
        validate_port("api-container-handler-port", port, path.child("port"), errs)
    elif kind == "sleep":
        _sleep(action, path, grace_period, ctx, errs)


def _sleep(action: dict[str, Any], path: FieldPath, grace_period: int | None, ctx: Context, errs: Errors) -> None:
    seconds = action.get("seconds")
    if not formats.is_int(seconds) or grace_period is None:
        return
    # PodLifecycleSleepActionAllowZero is on by default since 1.33: 0 is allowed.
    low = 0 if ctx.at_least(33) else 1
    if not low <= seconds <= grace_period:
        errs.invalid("api-container-sleep-range", path, seconds,
                     f"must be between {low} and the pod's terminationGracePeriodSeconds ({grace_period})")


_PROBE = "core: validateProbe"
_HANDLER = "core: validateHandler"
ROWS = (
    Row((POD_TEMPLATE,), _HANDLER, "a probe or lifecycle hook sets a handler", "api-container-handler-required"),
    Row((POD_TEMPLATE,), _HANDLER, "a probe or lifecycle hook sets only one handler (exec, httpGet, tcpSocket, "
        "grpc; sleep for hooks)", "api-container-handler-one"),
    Row((POD_TEMPLATE,), "core: validateExecAction", "exec.command is not empty", "api-container-exec-command"),
    Row((POD_TEMPLATE,), "core: validateHTTPGetAction", "httpGet.path is required", None,
        "filled by defaulting (\"/\")"),
    Row((POD_TEMPLATE,), "core: ValidatePortNumOrName (httpGet, tcpSocket, grpc)", "a handler's port is a number "
        "1-65535 or an IANA port name", "api-container-handler-port"),
    Row((POD_TEMPLATE,), "core: ValidatePortNumOrName", "an int-or-string port of an unknown type", None,
        "unreachable: decoding always gives an int or a string"),
    Row((POD_TEMPLATE,), "core: validateHTTPGetAction", "httpGet.scheme is HTTP or HTTPS (defaults to HTTP)",
        "api-container-http-scheme"),
    Row((POD_TEMPLATE,), "core: validateHTTPGetAction (IsHTTPHeaderName)", "an httpHeaders name is letters, digits "
        "and '-'", "api-container-http-header"),
    Row((POD_TEMPLATE,), _PROBE + " (ValidateNonnegativeField)", "initialDelaySeconds, timeoutSeconds, "
        "periodSeconds, successThreshold and failureThreshold are not negative (0 is defaulted)",
        "api-container-probe-negative"),
    Row((POD_TEMPLATE,), _PROBE, "a probe's terminationGracePeriodSeconds, when set, is greater than 0",
        "api-container-probe-grace-period"),
    Row((POD_TEMPLATE,), "core: validateLivenessProbe, validateStartupProbe", "successThreshold of a liveness or "
        "startup probe is 1", "api-container-probe-success-one"),
    Row((POD_TEMPLATE,), "core: validateReadinessProbe", "a readiness probe has no terminationGracePeriodSeconds",
        "api-container-probe-readiness-grace"),
    Row((POD_TEMPLATE,), "core: validateSleepAction", "sleep.seconds is between 0 (1 before 1.33, "
        "PodLifecycleSleepActionAllowZero) and the pod's terminationGracePeriodSeconds (default 30)",
        "api-container-sleep-range"),
    Row((POD_TEMPLATE,), "core: validateLifecycle", "lifecycle.stopSignal is a known signal and needs spec.os.name",
        None, "behind ContainerStopSignals, alpha and off by default at 1.34: the API server drops stopSignal"),
)
