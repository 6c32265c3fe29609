"""config/policy.yaml `monitoring:`: which PrometheusRules and ServiceMonitors
the platform Prometheus loads, and which series each scraped job exports.

Read by the monitoring-graph rules of tests/policy/test_monitoring.py. Every
wrong-typed key is one InputError line naming config/policy.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scripts.core.errors import InputError

CONFIG_FILE = "config/policy.yaml"
SERIES_TYPES = ("counter", "gauge", "histogram", "summary")
_METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # exporters' names have no colon (rules' do)
_SELECTOR_KEYS = {"matchLabels", "matchExpressions"}


@dataclass(frozen=True)
class PrometheusSelection:
    """The Prometheus object's selectors (a LabelSelector each). A namespace
    selector of None selects only the Prometheus's own namespace, as the
    operator does for a null selector; `{}` selects every namespace."""

    namespace: str
    rule_selector: dict[str, Any]
    rule_namespace_selector: dict[str, Any] | None
    service_monitor_selector: dict[str, Any]
    service_monitor_namespace_selector: dict[str, Any] | None
    enforced_namespace_label: str | None


@dataclass(frozen=True)
class JobExports:
    """Series a job outside this tree exports (kube-state-metrics, ...)."""

    series: dict[str, str]  # name -> type
    reason: str
    service: str | None = None  # the `service` label its targets carry, when known


@dataclass(frozen=True)
class MonitoringSettings:
    prometheus: PrometheusSelection
    exports: dict[str, dict[str, str]]  # Service name -> {series name: type}
    jobs: dict[str, JobExports]  # job -> what it exports


def _fail(message: str) -> InputError:
    return InputError(message[:300], CONFIG_FILE)


def _selector(value: Any, where: str, nullable: bool) -> dict[str, Any] | None:
    if value is None:
        if nullable:
            return None
        raise _fail(f"`{where}` must be a label selector ({{}} selects everything)")
    if not isinstance(value, dict) or set(value) - _SELECTOR_KEYS:
        raise _fail(f"`{where}` must be a label selector with matchLabels and/or matchExpressions, found {value!r}")
    labels = value.get("matchLabels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise _fail(f"`{where}.matchLabels` must map label names to string values")
    expressions = value.get("matchExpressions") or []
    if not isinstance(expressions, list) or not all(
            isinstance(e, dict) and e.get("key") and e.get("operator") in ("In", "NotIn", "Exists", "DoesNotExist")
            for e in expressions):
        raise _fail(f"`{where}.matchExpressions` must be a list of {{key, operator, values}}")
    return dict(value)


def _series(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise _fail(f"`{where}` must map each series name to its type ({', '.join(SERIES_TYPES)})")
    for name, kind in value.items():
        if not isinstance(name, str) or not _METRIC_NAME.match(name):
            raise _fail(f"`{where}`: {name!r} is not a metric name")
        if kind not in SERIES_TYPES:
            raise _fail(f"`{where}.{name}` must be one of {', '.join(SERIES_TYPES)}, found {kind!r}")
    return dict(value)


def parse_monitoring(data: Any) -> MonitoringSettings | None:
    """The `monitoring:` block, or None when config/policy.yaml has none
    (the monitoring-graph rules then have nothing to resolve against)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise _fail(f"`monitoring` must be a mapping, found {type(data).__name__}")
    prom = data.get("prometheus")
    if not isinstance(prom, dict):
        raise _fail("`monitoring.prometheus` must be a mapping (namespace and the Prometheus object's selectors)")
    namespace = prom.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise _fail("`monitoring.prometheus.namespace` must be the namespace the Prometheus object runs in")
    enforced = prom.get("enforced_namespace_label")
    if enforced is not None and not isinstance(enforced, str):
        raise _fail("`monitoring.prometheus.enforced_namespace_label` must be a label name or null")
    where = "monitoring.prometheus"
    selection = PrometheusSelection(
        namespace=namespace,
        rule_selector=_selector(prom.get("rule_selector"), f"{where}.rule_selector", False) or {},
        rule_namespace_selector=_selector(prom.get("rule_namespace_selector"),
                                          f"{where}.rule_namespace_selector", True),
        service_monitor_selector=_selector(prom.get("service_monitor_selector"),
                                           f"{where}.service_monitor_selector", False) or {},
        service_monitor_namespace_selector=_selector(prom.get("service_monitor_namespace_selector"),
                                                     f"{where}.service_monitor_namespace_selector", True),
        enforced_namespace_label=enforced)
    exports_raw = data.get("exports") or {}
    if not isinstance(exports_raw, dict):
        raise _fail("`monitoring.exports` must map a Service name to the series it exports")
    exports = {str(svc): _series(series, f"monitoring.exports.{svc}") for svc, series in exports_raw.items()}
    jobs_raw = data.get("jobs") or {}
    if not isinstance(jobs_raw, dict):
        raise _fail("`monitoring.jobs` must map a job name to {reason, series}")
    jobs = {}
    for job, entry in jobs_raw.items():
        if not isinstance(entry, dict) or not str(entry.get("reason") or "").strip():
            raise _fail(f"`monitoring.jobs.{job}` must be a mapping with a non-empty `reason`")
        service = entry.get("service")
        if service is not None and not isinstance(service, str):
            raise _fail(f"`monitoring.jobs.{job}.service` must be a string")
        jobs[str(job)] = JobExports(series=_series(entry.get("series"), f"monitoring.jobs.{job}.series"),
                                    reason=str(entry["reason"]), service=service)
    return MonitoringSettings(prometheus=selection, exports=exports, jobs=jobs)
