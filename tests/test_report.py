"""Report formats and sharding."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from scripts.core.errors import InputError, UsageError
from scripts.core.model import Finding, Render, Report, Target
from scripts.reports import report
from scripts.validate import parse_shard, shard


def sample() -> Report:
    renders = [Render(Target("overlays/prod", "overlays/prod", ("overlays/prod/kustomization.yaml",))),
               Render(Target("overlays/dev", "overlays/dev"), error="boom")]
    findings = [
        Finding("schema", "overlays/prod", "schema-invalid", "error", "spec: bad", "Deployment", "d", "ns",
                "base/workload/deployment.yaml", 1),
        Finding("lint", "overlays/prod", "yamllint/line-length", "warning", "too long", file="x.yaml", line=3),
        Finding("render", "overlays/dev", "render-failed", "error", "boom"),
    ]
    return Report("1.34", renders, findings, {"render": 1.0, "total": 2.0})


def test_json_contract():
    data = report.to_json(sample())
    assert data["ok"] is False
    assert data["targets"] == [{"path": "overlays/prod", "objects": 0, "rendered": True},
                               {"path": "overlays/dev", "objects": 0, "rendered": False}]
    assert data["timings"] == {"render": 1.0, "lint": 0.0, "schema": 0.0, "security": 0.0, "policy": 0.0,
                               "total": 2.0}
    assert data["findings"][0]["line"] == 1 and data["findings"][2]["kind"] is None


def test_junit_has_failures_for_errors_only():
    root = ET.fromstring(report.to_junit(sample()))
    failures = root.findall(".//failure")
    assert len(failures) == 2
    prod = root.find("testsuite[@name='overlays/prod']")
    assert prod.get("failures") == "1"
    assert "too long" in prod.find("testcase[@name='lint']/system-out").text


def test_sarif_locations_and_levels(tmp_path):
    sarif = report.to_sarif(sample(), tmp_path)
    results = sarif["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error", "warning", "error"]
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "base/workload/deployment.yaml"
    assert location["region"]["startLine"] == 1
    json.dumps(sarif)


def test_human_lists_each_finding(capsys):
    import io
    out = io.StringIO()
    report.human(sample(), ["render", "lint", "schema", "security", "policy"], stream=out)
    text = out.getvalue()
    assert "overlays/prod  schema/schema-invalid  Deployment/d  spec: bad  (base/workload/deployment.yaml:1)" in text
    assert "FAILED" in text


@pytest.mark.parametrize("count", [1, 2, 3, 7, 10])
def test_every_root_in_exactly_one_shard(count):
    targets = [Target(f"services/svc-{i:03d}/overlays/prod", "x") for i in range(23)]
    shards = [shard(targets, index, count) for index in range(1, count + 1)]
    paths = [t.path for s in shards for t in s]
    assert sorted(paths) == sorted(t.path for t in targets)
    assert len(paths) == len(set(paths))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    assert shards == [shard(list(reversed(targets)), i, count) for i in range(1, count + 1)]


@pytest.mark.parametrize("value", ["0/2", "3/2", "a/b", "1", "1/0"])
def test_bad_shard_values(value):
    with pytest.raises(UsageError):
        parse_shard(value)


def with_notice() -> Report:
    base = sample()
    base.findings.append(Finding("render", "overlays/prod", "helm-chart-not-rendered", "notice",
                                 "chart not rendered", "HelmRelease", "web", "ns", "apps/release.yaml", 2))
    return base


def test_a_notice_is_reported_everywhere_and_fails_nothing(tmp_path):
    only = sample()
    only.findings = [with_notice().findings[-1]]
    assert only.ok is True and report.to_json(only)["ok"] is True
    sarif = report.to_sarif(with_notice(), tmp_path)["runs"][0]["results"]
    assert sarif[-1]["level"] == "note"  # SARIF 2.1.0: shown, never a failure
    root = ET.fromstring(report.to_junit(with_notice()))
    prod = root.find("testsuite[@name='overlays/prod']")
    assert prod.get("failures") == "1"  # the schema error only
    output = prod.find("testcase[@name='render']/system-out").text
    assert "notice: overlays/prod  render/helm-chart-not-rendered" in output
    import io
    out = io.StringIO()
    report.human(only, ["render", "lint", "schema", "security", "policy"], stream=out)
    text = out.getvalue()
    assert "ok, 1 note" in text and "chart not rendered" in text and "0 errors, 0 warnings, 1 notice in" in text
    merged = report.merge([report.to_json(only), report.to_json(only)])
    assert merged["ok"] is True and len(merged["findings"]) == 2
    assert "| `overlays/prod` | 0 | ✅ ℹ️ 2 |" in report.markdown_summary(merged)


def test_a_report_with_an_unknown_severity_is_refused(tmp_path):
    data = report.to_json(with_notice())
    data["findings"][0]["severity"] = "fatal"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="malformed"):
        report.load_json_report(str(path))
