"""Monitoring: rules and dashboards that Prometheus and Grafana will accept."""

from __future__ import annotations

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
from scripts.stages.policy_support import Violation, assert_no_violations

# Grafana's built-in interval variables stand where PromQL wants a duration.
_GRAFANA_DURATIONS = re.compile(r"\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?")


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
        for title, expr in queries:
            error = _parse_error(_GRAFANA_DURATIONS.sub("5m", expr))
            if error:
                out.append(Violation(obj, f"{key} panel {title!r}: query does not parse: {error}",
                                     "fix the panel's PromQL"))
    return out


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
