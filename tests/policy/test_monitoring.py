"""Monitoring: rules and dashboards that Prometheus and Grafana will accept,
and a graph that resolves: every series a rule or a dashboard reads exists
for the platform Prometheus, with the labels its targets carry, and the
Prometheus loads the rules and ServiceMonitors at all."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import promql_parser
import pytest
import yaml

from scripts.core.model import Render, Resource
from scripts.core.yamlio import _Dumper
from scripts.stages import promgraph
from scripts.stages.origins import generated_file_origin, located
from scripts.stages.policy_support import PolicyConfig, Violation, assert_no_violations


@functools.lru_cache(maxsize=4096)  # each overlay and Flux build of a service repeats the same expressions
def _parse_error(expr: str) -> str | None:
    try:
        promql_parser.parse(expr)
    except (ValueError, TypeError) as exc:
        return str(exc).splitlines()[0]
    return None


def _rule_objects(render: Render) -> list[Resource]:
    return [o for o in render.objects if o.kind == "PrometheusRule"]


def check_prometheus_rules_parse(render: Render) -> list[Violation]:
    out = []
    for obj in _rule_objects(render):
        for group in (obj.doc.get("spec") or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                name = rule.get("alert") or rule.get("record")
                error = _parse_error(str(rule.get("expr", "")))
                if error:
                    out.append(Violation(obj, f"rule {name} in group {group.get('name')}: expr does not parse: {error}",
                                         "fix the PromQL expression"))
    return out


def check_alerts_have_severity_and_docs(render: Render) -> list[Violation]:
    out = []
    for obj in _rule_objects(render):
        for group in (obj.doc.get("spec") or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" not in rule:
                    continue
                if not (rule.get("labels") or {}).get("severity"):
                    out.append(Violation(obj, f"alert {rule['alert']} has no severity label",
                                         "add labels.severity: critical|warning"))
                annotations = rule.get("annotations") or {}
                if not (annotations.get("runbook_url") or annotations.get("description")):
                    out.append(Violation(obj, f"alert {rule['alert']} has neither runbook_url nor description",
                                         "add annotations.runbook_url (and a description)"))
    return out


def _digest(groups: list) -> str:
    return hashlib.sha256(json.dumps(groups, sort_keys=True).encode()).hexdigest()


def promtool_check(renders: list[Render]) -> dict[str, str]:
    """`promtool check rules` once over every distinct PrometheusRule of the
    run; returns content hash -> error text (absent when it passed)."""
    promtool = shutil.which("promtool")
    if not promtool:
        return {}
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="promtool-") as tmp:
        for render in renders:
            for obj in _rule_objects(render):
                groups = (obj.doc.get("spec") or {}).get("groups") or []
                digest = _digest(groups)
                if digest not in files:
                    path = Path(tmp, f"{digest}.yaml")
                    path.write_text(yaml.dump({"groups": groups}, Dumper=_Dumper))
                    files[digest] = str(path)
        if not files:
            return {}
        proc = subprocess.run([promtool, "check", "rules", *files.values()], capture_output=True, text=True)
        failures: dict[str, str] = {}
        by_path = {path: digest for digest, path in files.items()}
        for line in proc.stderr.splitlines():
            for path, digest in by_path.items():
                if line.startswith(path):
                    message = line[len(path):].lstrip(": ").strip()
                    failures[digest] = (failures.get(digest, "") + "; " + message).strip("; ")
        if proc.returncode != 0 and not failures:
            # Not attributable to one file from the batch output: ask per file.
            for digest, path in files.items():
                single = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
                if single.returncode != 0:
                    failures[digest] = " ".join(single.stderr.replace(path, "").split()) or "FAILED"
    return failures


@pytest.fixture(scope="session")
def promtool_failures(policy) -> dict[str, str]:
    return promtool_check(policy.renders)


# Computed once per run from every render, for `validate`'s direct calls
# (pytest has the fixture above).
SESSION_INPUTS = {"failures": promtool_check}


def check_promtool_rules(render: Render, failures: dict[str, str]) -> list[Violation]:
    out = []
    for obj in _rule_objects(render):
        error = failures.get(_digest((obj.doc.get("spec") or {}).get("groups") or []))
        if error:
            out.append(Violation(obj, f"promtool check rules: {error}", "fix the rule promtool names"))
    return out


check_promtool_rules.requires = "promtool"  # type: ignore[attr-defined]


def _dashboards(render: Render):
    for obj in render.objects:
        if obj.kind == "ConfigMap" and obj.labels.get("grafana_dashboard"):
            for key, value in (obj.doc.get("data") or {}).items():
                yield obj, key, value


def _queries(panels: list) -> list[tuple[str, str]]:
    found = []
    for panel in panels or []:
        for target in panel.get("targets") or []:
            if target.get("expr"):
                found.append((str(panel.get("title")), target["expr"]))
        found.extend(_queries(panel.get("panels") or []))
    return found


def check_dashboard_valid(render: Render) -> list[Violation]:
    out = []
    for obj, key, value in _dashboards(render):
        try:
            dashboard = json.loads(value)
        except json.JSONDecodeError as exc:
            out.append(Violation(obj, f"{key} is not valid JSON: {exc.msg} at line {exc.lineno}",
                                 "fix the dashboard JSON"))
            continue
        if not isinstance(dashboard, dict) or not dashboard.get("title") \
                or not isinstance(dashboard.get("panels"), list):
            out.append(Violation(obj, f"{key} is not a Grafana dashboard (no title or panels)",
                                 "export the dashboard JSON from Grafana"))
            continue
        queries = _queries(dashboard["panels"])
        if not queries:
            out.append(Violation(obj, f"{key} has no queries", "add panels with Prometheus targets"))
        variables = promgraph.dashboard_variables(dashboard)
        for title, expr in queries:
            # As Grafana sends it: built-in intervals and template variables replaced.
            error = _parse_error(promgraph.grafana_expr(expr, variables))
            if error:
                out.append(Violation(obj, f"{key} panel {title!r}: query does not parse: {error}",
                                     "fix the panel's PromQL"))
    return out


def _located(render: Render, query: promgraph.Query, repo: Path) -> Resource:
    """The object to report: a dashboard finding points at the dashboard's
    JSON file and panel (the ConfigMap holding it is generated)."""
    if not query.dashboard:
        return query.obj
    key, _, rest = query.where.partition(" ")
    needle = rest.split("'")[1] if "'" in rest else ""
    generator = re.sub(r"-[a-z0-9]{10}$", "", query.obj.name)
    return located(query.obj, generated_file_origin(repo, render.target, generator, key, needle))


def _suggest(name: str, graph: promgraph.Graph) -> str:
    close = difflib.get_close_matches(name, promgraph.known_names(graph), n=1, cutoff=0.8)
    return f" (did you mean {close[0]}?)" if close else ""


def _reads(render: Render, config: PolicyConfig):
    """(query, selector, graph) for every selector of every rule and
    dashboard query the platform Prometheus evaluates; rules of a
    PrometheusRule it does not load are left to prometheus_loads_monitoring."""
    settings = config.monitoring
    if settings is None:
        return
    found = promgraph.queries(render)
    if not found:
        return
    graph = promgraph.build(render, settings)
    unloaded = {id(o) for o in render.objects if o.kind == "PrometheusRule"
                and promgraph.loaded(render, o, settings, "rule")}
    for query in found:
        if not query.dashboard and id(query.obj) in unloaded:
            continue
        for selector in promgraph.selectors(query.expr) or ():
            if selector.name is None or not selector.name.startswith(promgraph.PLACEHOLDER):
                yield query, selector, graph


def check_monitoring_series_exist(render: Render, config: PolicyConfig, repo: Path) -> list[Violation]:
    """Every series an alert, a recording rule or a dashboard query reads
    exists for the platform Prometheus: a `level:metric:operations` name is
    recorded by a rule it loads (in the reader's namespace, under
    enforcedNamespaceLabel), any other is exported by a target it scrapes
    (config/policy.yaml monitoring.exports) or by a job config declares
    (monitoring.jobs). A series nothing produces never matches: its alert
    never fires, its panel stays empty."""
    out = []
    enforced = config.monitoring.prometheus.enforced_namespace_label if config.monitoring else None
    for query, selector, graph in _reads(render, config):
        name = selector.name
        if name is None:
            pattern = selector.name_pattern
            known = promgraph.known_names(graph)
            if pattern and not any(_fullmatch(pattern, n) for n in known):
                out.append(Violation(_located(render, query, repo), f"{query.where} reads series matching "
                                     f"__name__=~{pattern!r}, and no series the Prometheus has matches",
                                     "name a series a rule records or a scraped job exports"))
            continue
        if name in promgraph.PER_ALERT:
            continue
        records = graph.recorded.get(name, [])
        if selector.recorded_style or records:
            # A rule the Prometheus does not load counts as recording here:
            # prometheus_loads_monitoring reports that rule once.
            usable = [r for r in records if query.dashboard or enforced is None
                      or r[0].namespace == query.obj.namespace]
            if usable:
                continue
            if records:
                problem = f"is recorded in namespace {records[0][0].namespace} only, and enforcedNamespaceLabel " \
                          f"limits a rule of {query.obj.namespace} to its own namespace's series"
            else:
                problem = f"is not recorded by any recording rule the Prometheus loads{_suggest(name, graph)}"
            out.append(Violation(_located(render, query, repo), f"{query.where} reads {name}, which {problem}: "
                                 "it never has a value", "read the series a recording rule records, or record it"))
            continue
        producers = graph.exported.get(name, [])
        if not producers:
            out.append(Violation(_located(render, query, repo),
                                 f"{query.where} reads {name}, which no scraped job exports and no rule records"
                                 f"{_suggest(name, graph)}: it never has a value",
                                 "read a series the service exports, or declare it in config/policy.yaml "
                                 "monitoring.exports (or monitoring.jobs for another job)"))
        elif all(p.unscraped for p in producers):
            out.append(Violation(_located(render, query, repo),
                                 f"{query.where} reads {name}, exported by {producers[0].what}, which the "
                                 f"Prometheus does not scrape: {producers[0].why_not}",
                                 "let a ServiceMonitor the Prometheus loads select the Service"))
    return _unique(out)


def _unique(violations: list[Violation]) -> list[Violation]:
    """One finding per object and problem: a query often reads a series twice (a ratio)."""
    seen: set[tuple[str, str, str | None]] = set()
    out = []
    for violation in violations:
        key = (violation.obj.ref, violation.problem, violation.obj.source.file if violation.obj.source else None)
        if key not in seen:
            seen.add(key)
            out.append(violation)
    return out


def _fullmatch(pattern: str, name: str) -> bool:
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return True


TARGET_LABELS = ("job", "namespace", "service")


def check_monitoring_matchers_match_targets(render: Render, config: PolicyConfig, repo: Path) -> list[Violation]:
    """An alert's, recording rule's or dashboard query's `job`, `namespace`
    and `service` matchers on a scraped series match what its targets carry:
    job = the Service's name (or the value of its jobLabel label), namespace
    = the Service's, service = its name; for a job config declares, its name
    and service."""
    out = []
    for query, selector, graph in _reads(render, config):
        matchers = [m for m in selector.matchers if m.label in TARGET_LABELS]
        producers = [p for p in graph.exported.get(selector.name or "", []) if not p.unscraped]
        if not matchers or not producers or selector.name in graph.recorded:
            continue
        if any(all(m.accepts(getattr(p, m.label)) for m in matchers) for p in producers):
            continue
        wanted = ", ".join(f'{m.label}{m.op}"{m.value}"' for m in matchers)
        have = "; ".join(f"{p.what}: " + ", ".join(f'{label}="{getattr(p, label)}"' for label in TARGET_LABELS
                                                   if getattr(p, label) is not None) for p in producers[:2])
        out.append(Violation(_located(render, query, repo),
                             f"{query.where} selects {selector.name}{{{wanted}}}, but its targets carry {have}: "
                             "the selector matches nothing",
                             "match the labels the ServiceMonitor gives (job is the Service's name, or its "
                             "jobLabel's value)"))
    return _unique(out)


def check_prometheus_loads_monitoring(render: Render, config: PolicyConfig) -> list[Violation]:
    """The platform Prometheus loads every PrometheusRule and ServiceMonitor
    of the render: their labels match its ruleSelector and
    serviceMonitorSelector (config/policy.yaml monitoring.prometheus), and
    their namespaces its namespace selectors."""
    settings = config.monitoring
    if settings is None:
        return []
    out = []
    for obj in render.objects:
        kind = {"PrometheusRule": "rule", "ServiceMonitor": "servicemonitor"}.get(obj.kind)
        if kind is None:
            continue
        why = promgraph.loaded(render, obj, settings, kind)
        if why:
            selector = settings.prometheus.rule_selector if kind == "rule" \
                else settings.prometheus.service_monitor_selector
            effect = "none of its alerts or recording rules run" if kind == "rule" else "nothing it selects is scraped"
            out.append(Violation(obj, f"the platform Prometheus does not load it ({why}), so {effect}",
                                 f"give it the labels {selector.get('matchLabels') or selector} "
                                 "(config/policy.yaml monitoring.prometheus)"))
    return out


# It reads the repository only to locate fields in the render's own build files (Rule.reads).
check_monitoring_series_exist.reads = "build"  # type: ignore[attr-defined]


def test_monitoring_series_exist(render, config, repo):
    assert_no_violations(check_monitoring_series_exist(render, config, repo))


# It reads the repository only to locate fields in the render's own build files (Rule.reads).
check_monitoring_matchers_match_targets.reads = "build"  # type: ignore[attr-defined]


def test_monitoring_matchers_match_targets(render, config, repo):
    assert_no_violations(check_monitoring_matchers_match_targets(render, config, repo))


def test_prometheus_loads_monitoring(render, config):
    assert_no_violations(check_prometheus_loads_monitoring(render, config))


@pytest.fixture(scope="session")
def repo(policy) -> Path:
    return policy.repo


def test_prometheus_rules_parse(render):
    assert_no_violations(check_prometheus_rules_parse(render))


def test_promtool_rules(render, promtool_failures):
    if not shutil.which(check_promtool_rules.requires):  # type: ignore[attr-defined]
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed, and CI must run this rule (Debian package prometheus)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    assert_no_violations(check_promtool_rules(render, promtool_failures))


def test_alerts_have_severity_and_docs(render):
    assert_no_violations(check_alerts_have_severity_and_docs(render))


def test_dashboard_valid(render):
    assert_no_violations(check_dashboard_valid(render))
