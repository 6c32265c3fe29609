"""The monitoring graph of one render: which series exist for the platform
Prometheus (recorded by a rule it loads, exported by a target it scrapes, or
exported by a job config/policy.yaml declares), and which series each alert,
recording rule and dashboard query reads, with its label matchers.

What the Prometheus Operator does, as this module assumes (v0.93):
- it loads a PrometheusRule whose labels its `ruleSelector` selects, in a
  namespace its `ruleNamespaceSelector` selects (null: its own namespace);
  ServiceMonitors likewise with the serviceMonitor selectors;
- a ServiceMonitor's targets carry `job` = the Service's name, or the value
  of the Service's label named by `jobLabel` when it has one; `namespace` =
  the Service's namespace; `service` = its name; endpoint relabelings may
  replace any of them;
- with `enforcedNamespaceLabel`, every selector of a rule gets that
  namespace's matcher, so a rule only sees series of its own namespace, a
  recorded series included.

Grafana sends a dashboard query after replacing its variables: the interval
built-ins by durations, a template variable by its current value (a matcher
value that still holds a variable reads as "any value").
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import promql_parser

from scripts.core.model import Render, Resource
from scripts.stages.monitoring_settings import MonitoringSettings
from scripts.stages.policy_support import selector_matches

# What each type of series puts in the exposition, by suffix.
SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("", "_sum", "_count")}
# Series Prometheus itself writes: per scraped target, and per alert.
PER_TARGET = ("up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
              "scrape_series_added")
PER_ALERT = ("ALERTS", "ALERTS_FOR_STATE")
_BUILTINS = {"__rate_interval": "5m", "__interval": "5m", "__range": "5m", "__auto": "5m",
             "__interval_ms": "300000", "__range_ms": "300000", "__range_s": "300"}
# $name, ${name}, ${name:format}, [[name]], [[name:format]]
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
PLACEHOLDER = "__grafana_variable_"
_LABEL_VALUES = re.compile(r"^\s*(?:label_values|query_result)\s*\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # =, !=, =~, !~
    value: str

    def accepts(self, actual: str | None) -> bool:
        """Could a series whose label has `actual` match? Unknown values and
        values that still hold a Grafana variable match anything."""
        if actual is None or "$" in self.value or "[[" in self.value or PLACEHOLDER in self.value:
            return True
        if self.op in ("=", "!="):
            equal = actual == self.value
        else:
            try:
                equal = re.fullmatch(self.value, actual) is not None
            except re.error:
                return True
        return equal if self.op in ("=", "=~") else not equal


@dataclass(frozen=True)
class Selector:
    """One vector selector of an expression: the series name it reads (None
    when only a regex on __name__ says) and its matchers."""

    name: str | None
    matchers: tuple[Matcher, ...]
    name_pattern: str | None = None

    @property
    def recorded_style(self) -> bool:
        return bool(self.name) and ":" in self.name  # level:metric:operations


_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


@functools.lru_cache(maxsize=4096)
def selectors(expr: str) -> tuple[Selector, ...] | None:
    """Every vector selector of a PromQL expression; None when it does not parse."""
    try:
        tree = promql_parser.parse(expr)
    except (ValueError, TypeError):
        return None
    found: list[Selector] = []

    def visit(node) -> None:  # noqa: ANN001 - the parser's node types
        if isinstance(node, promql_parser.VectorSelector):
            matchers = []
            pattern = None
            for m in node.matchers.matchers:
                op = _OPS.get(str(m.op).rsplit(".", 1)[-1], "=")
                if m.name == "__name__":
                    if op == "=":
                        continue
                    pattern = m.value if op == "=~" else None
                    continue
                matchers.append(Matcher(m.name, op, m.value))
            name = node.name or next((m.value for m in node.matchers.matchers
                                      if m.name == "__name__" and str(m.op).endswith("Equal")
                                      and not str(m.op).endswith("NotEqual")), None)
            found.append(Selector(name, tuple(matchers), pattern))

    promql_parser.walk(tree, visit)
    return tuple(found)


def grafana_expr(expr: str, variables: dict[str, str]) -> str:
    """A dashboard query as Grafana sends it: interval built-ins become
    durations, template variables their current value; a variable with no
    value becomes a duration inside [...] and a placeholder elsewhere."""
    if "$" not in expr and "[[" not in expr:
        return expr
    return _substituted(expr, tuple(sorted(variables.items())))


@functools.lru_cache(maxsize=4096)  # every overlay and Flux build repeats the same dashboard
def _substituted(expr: str, pairs: tuple[tuple[str, str], ...]) -> str:
    variables = dict(pairs)
    out: list[str] = []
    quote: str | None = None
    depth = 0  # inside [...]
    index = 0
    while index < len(expr):
        char = expr[index]
        if quote:
            out.append(char)
            if char == "\\" and index + 1 < len(expr):
                out.append(expr[index + 1])
                index += 2
                continue
            if char == quote:
                quote = None
            index += 1
            continue
        match = _VARIABLE.match(expr, index)
        if match:
            name = match.group(1) or match.group(2) or match.group(3)
            value = _BUILTINS.get(name) or variables.get(name)
            if value is None or (depth and not re.fullmatch(r"\d+(ms|s|m|h|d|w|y)", value)):
                value = "5m" if depth else PLACEHOLDER + name
            out.append(value)
            index = match.end()
            continue
        if char in "\"'`":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        out.append(char)
        index += 1
    return "".join(out)


def dashboard_variables(dashboard: dict) -> dict[str, str]:
    """Each template variable's current value (a single one), when the JSON holds it."""
    values: dict[str, str] = {}
    for variable in ((dashboard.get("templating") or {}).get("list")) or []:
        if not isinstance(variable, dict) or not variable.get("name"):
            continue
        current = (variable.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if len(current) == 1 else None
        if isinstance(current, str) and current and current != "$__all":
            values[str(variable["name"])] = current
        elif variable.get("type") == "interval":
            values[str(variable["name"])] = "5m"
        elif variable.get("type") == "constant" and isinstance(variable.get("query"), str):
            values[str(variable["name"])] = variable["query"]
    return values


@dataclass(frozen=True)
class Query:
    """One PromQL expression of the render, and who reads through it."""

    obj: Resource
    where: str  # "alert AIInferenceHighErrorRate", "dashboard x.json panel 'Latency'"
    expr: str
    dashboard: bool


def _panels(panels: list) -> Iterator[dict]:
    for panel in panels or []:
        if isinstance(panel, dict):
            yield panel
            yield from _panels(panel.get("panels") or [])


def dashboards(render: Render) -> Iterator[tuple[Resource, str, dict]]:
    for obj in render.objects:
        if obj.kind == "ConfigMap" and obj.labels.get("grafana_dashboard"):
            for key, value in (obj.doc.get("data") or {}).items():
                try:
                    dashboard = json.loads(value)
                except (TypeError, json.JSONDecodeError):
                    continue  # dashboard_valid reports it
                if isinstance(dashboard, dict):
                    yield obj, key, dashboard


def queries(render: Render) -> list[Query]:
    """Every expression the render's rules and dashboards evaluate."""
    out = []
    for obj in (o for o in render.objects if o.kind == "PrometheusRule"):
        for group in (obj.doc.get("spec") or {}).get("groups") or []:
            for rule in (group or {}).get("rules") or []:
                if isinstance(rule, dict) and rule.get("expr") is not None:
                    kind = "alert" if "alert" in rule else "recording rule"
                    out.append(Query(obj, f"{kind} {rule.get('alert') or rule.get('record')}", str(rule["expr"]),
                                     False))
    for obj, key, dashboard in dashboards(render):
        variables = dashboard_variables(dashboard)
        for panel in _panels(dashboard.get("panels") or []):
            for target in panel.get("targets") or []:
                if isinstance(target, dict) and target.get("expr"):
                    out.append(Query(obj, f"{key} panel {panel.get('title')!r}",
                                     grafana_expr(str(target["expr"]), variables), True))
        for variable in ((dashboard.get("templating") or {}).get("list")) or []:
            query = (variable or {}).get("query") if isinstance(variable, dict) else None
            query = query.get("query") if isinstance(query, dict) else query
            match = _LABEL_VALUES.match(str(query or "")) if variable.get("type") == "query" else None
            if match:
                inner = match.group(1)
                # label_values(selector, label): the selector is everything before the last comma.
                head, _, tail = inner.rpartition(",")
                expr = head if head and re.fullmatch(r"\s*\w+\s*", tail) else inner
                out.append(Query(obj, f"{key} variable {variable.get('name')!r}",
                                 grafana_expr(expr, variables), True))
    return out


@dataclass(frozen=True)
class Producer:
    """Where a series comes from and the labels its targets give it (None: not known)."""

    what: str  # "ServiceMonitor/x scraping Service/y", "job kube-state-metrics (config)"
    job: str | None
    service: str | None
    namespace: str | None
    loaded: bool = True
    why_not: str = ""
    unscraped: bool = False  # no ServiceMonitor selects the Service at all (else: one the Prometheus does not load)


@dataclass
class Graph:
    # series name -> (the PrometheusRule recording it, is it loaded, why not)
    recorded: dict[str, list[tuple[Resource, bool, str]]] = field(default_factory=dict)
    exported: dict[str, list[Producer]] = field(default_factory=dict)


def _namespace_labels(render: Render, namespace: str | None) -> dict[str, str]:
    found = next((o for o in render.objects if o.kind == "Namespace" and o.name == namespace), None)
    labels = dict(found.labels) if found else {}
    if namespace:
        labels.setdefault("kubernetes.io/metadata.name", namespace)  # the API server sets it on every namespace
    return labels


def loaded(render: Render, obj: Resource, settings: MonitoringSettings, kind: str) -> str:
    """Why the platform Prometheus does not load obj (empty: it does)."""
    prom = settings.prometheus
    selector, ns_selector, field_name = (
        (prom.rule_selector, prom.rule_namespace_selector, "ruleSelector") if kind == "rule"
        else (prom.service_monitor_selector, prom.service_monitor_namespace_selector, "serviceMonitorSelector"))
    if not selector_matches(selector, obj.labels):
        return f"its labels {obj.labels} do not match the Prometheus {field_name} {selector}"
    if ns_selector is None:
        if obj.namespace != prom.namespace:
            return (f"the Prometheus selects {kind}s in its own namespace {prom.namespace} only "
                    f"(null {field_name.replace('Selector', 'NamespaceSelector')}), not in {obj.namespace}")
    elif not selector_matches(ns_selector, _namespace_labels(render, obj.namespace)):
        return f"its namespace {obj.namespace} does not match the Prometheus's namespace selector {ns_selector}"
    return ""


def _relabelled(endpoint: dict, label: str, default: str | None) -> str | None:
    """A target label after the endpoint's relabelings: a static replace sets
    it, anything else touching it makes it unknown."""
    value = default
    for step in endpoint.get("relabelings") or []:
        if not isinstance(step, dict) or step.get("targetLabel") != label:
            continue
        action = str(step.get("action", "replace")).lower()
        replacement = step.get("replacement")
        if action == "replace" and not step.get("sourceLabels") and isinstance(replacement, str) \
                and "$" not in replacement:
            value = replacement
        else:
            value = None
    return value


def build(render: Render, settings: MonitoringSettings) -> Graph:
    graph = Graph()
    for obj in (o for o in render.objects if o.kind == "PrometheusRule"):
        why = loaded(render, obj, settings, "rule")
        for group in (obj.doc.get("spec") or {}).get("groups") or []:
            for rule in (group or {}).get("rules") or []:
                if isinstance(rule, dict) and rule.get("record"):
                    graph.recorded.setdefault(str(rule["record"]), []).append((obj, not why, why))
    services = [o for o in render.objects if o.kind == "Service"]
    scraped: set[int] = set()
    for monitor in (o for o in render.objects if o.kind == "ServiceMonitor"):
        spec = monitor.doc.get("spec") or {}
        why = loaded(render, monitor, settings, "servicemonitor")
        scope = spec.get("namespaceSelector") or {}
        for service in services:
            in_scope = scope.get("any") or (service.namespace in (scope.get("matchNames") or [])
                                            if scope.get("matchNames") else service.namespace == monitor.namespace)
            if not in_scope or not selector_matches(spec.get("selector") or {}, service.labels):
                continue
            job_label = spec.get("jobLabel")
            job = service.labels.get(job_label) if job_label and service.labels.get(job_label) else service.name
            ports = {p.get("name") for p in (service.doc.get("spec") or {}).get("ports") or []}
            for endpoint in spec.get("endpoints") or []:
                if not isinstance(endpoint, dict) or (endpoint.get("port") and endpoint["port"] not in ports):
                    continue
                producer = Producer(f"ServiceMonitor/{monitor.name} scraping Service/{service.name}",
                                    _relabelled(endpoint, "job", job), _relabelled(endpoint, "service", service.name),
                                    _relabelled(endpoint, "namespace", service.namespace), not why, why)
                scraped.add(id(service))
                names = [n + s for n, kind in settings.exports.get(service.name, {}).items() for s in SUFFIXES[kind]]
                for name in names + list(PER_TARGET):
                    graph.exported.setdefault(name, []).append(producer)
    for service in services:
        if id(service) not in scraped and service.name in settings.exports:
            producer = Producer(f"Service/{service.name}", service.name, service.name, service.namespace, False,
                                "no ServiceMonitor selects it", unscraped=True)
            for name, kind in settings.exports[service.name].items():
                for suffix in SUFFIXES[kind]:
                    graph.exported.setdefault(name + suffix, []).append(producer)
    for job, exports in settings.jobs.items():
        producer = Producer(f"job {job} (config/policy.yaml monitoring.jobs: {exports.reason})", job,
                            exports.service, None)
        names = [n + s for n, kind in exports.series.items() for s in SUFFIXES[kind]]
        for name in names + list(PER_TARGET):
            graph.exported.setdefault(name, []).append(producer)
    return graph


def known_names(graph: Graph) -> list[str]:
    return sorted(set(graph.recorded) | set(graph.exported) | set(PER_ALERT))
