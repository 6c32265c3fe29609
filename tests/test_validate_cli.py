"""`python -m scripts validate` end to end: exit codes, the JSON contract,
one broken copy of the tree per stage, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO

REPORT_KEYS = {"ok", "kubernetes_version", "targets", "findings", "timings"}
FINDING_KEYS = {"stage", "target", "rule", "severity", "message", "kind", "name", "namespace", "file", "line"}


def validate(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "scripts", "validate", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    proc = validate("--report-json", str(out / "r.json"), "--junit", str(out / "r.xml"),
                    "--sarif", str(out / "r.sarif"))
    return proc, out


def test_repository_validates_clean(full_run):
    proc, out = full_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "r.json").read_text())
    assert set(report) == REPORT_KEYS
    assert report["ok"] is True and report["findings"] == []
    assert [t["path"] for t in report["targets"]] == [
        "clusters/dev", "clusters/dev#ai-inference-dev", "clusters/prod", "clusters/prod#ai-inference-gpu",
        "clusters/prod#ai-inference-prod", "clusters/staging", "clusters/staging#ai-inference-staging",
        "overlays/dev", "overlays/gpu", "overlays/prod", "overlays/staging"]
    assert all(t["rendered"] and t["objects"] > 0 for t in report["targets"])
    assert set(report["timings"]) == {"render", "lint", "schema", "security", "policy", "total"}
    assert report["kubernetes_version"] == "1.34"


def test_junit_and_sarif_are_written(full_run):
    _, out = full_run
    suites = ET.parse(out / "r.xml").getroot()
    assert len(suites.findall("testsuite")) == 11
    sarif = json.loads((out / "r.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []


def test_human_output_has_a_table(full_run):
    proc, _ = full_run
    assert "overlays/prod" in proc.stdout and "OK:" in proc.stdout


def _break(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# stage -> (file in the tree, text to replace, replacement, rule expected)
BREAKS = {
    "render": ("overlays/prod/kustomization.yaml", "  - path: zone-spread.yaml", "  - path: missing.yaml",
               "render-failed"),
    "lint": ("overlays/prod/scaling-hpa.yaml", "  minReplicas: 3", "  minReplicas:   3   ", "yamllint/trailing-spaces"),
    "schema": ("overlays/prod/scaling-hpa.yaml", "  minReplicas: 3", "  minReplicas: 3\n  minReplica: 3",
               "schema-invalid"),
    "security": ("overlays/prod/zone-spread.yaml", "  value: DoNotSchedule\n",
                 "  value: DoNotSchedule\n- op: add\n  path: /spec/template/spec/hostPID\n  value: true\n",
                 "checkov/CKV_K8S_17"),
    "policy": ("overlays/prod/canary-weights.yaml", "value: 10", "value: 30", "virtualservice_weights_sum_to_100"),
}


@pytest.mark.parametrize("stage", sorted(BREAKS))
def test_broken_overlay_fails_its_stage(stage, tree):
    file, old, new, rule = BREAKS[stage]
    _break(tree / file, old, new)
    report_path = tree / "report.json"
    proc = validate("--repo", str(tree), "--target", str(tree / "overlays/prod"), "--stage", stage,
                    "--report-json", str(report_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    assert report["ok"] is False
    matching = [f for f in report["findings"] if f["rule"] == rule]
    assert matching, report["findings"]
    finding = matching[0]
    assert set(finding) == FINDING_KEYS
    assert finding["stage"] == stage and finding["target"] == "overlays/prod" and finding["severity"] == "error"
    assert finding["file"]


# The same breaks, in the root that comes last in path order, found by a
# run over every root: a stage that covers fewer roots than it was given
# (checkov given several directories scanned only the first) fails here.
LAST_ROOT = "overlays/staging"
BREAKS_IN_LAST_ROOT = {
    "render": ("overlays/staging/kustomization.yaml", "  - path: resources.yaml", "  - path: missing.yaml",
               "render-failed"),
    "lint": ("overlays/staging/scaling-hpa.yaml", "  minReplicas: 2", "  minReplicas:   2   ",
             "yamllint/trailing-spaces"),
    "schema": ("overlays/staging/scaling-hpa.yaml", "  minReplicas: 2", "  minReplicas: 2\n  minReplica: 2",
               "schema-invalid"),
    "security": ("overlays/staging/resources.yaml", "  template:\n    spec:\n",
                 "  template:\n    spec:\n      hostPID: true\n", "checkov/CKV_K8S_17"),
    "policy": ("overlays/staging/canary-weights.yaml", "value: 20", "value: 30",
               "virtualservice_weights_sum_to_100"),
}


def test_last_root_is_last(real_renders):
    paths = sorted(real_renders)
    assert paths[-1] == LAST_ROOT and len(paths) == 11


@pytest.mark.parametrize("stage", sorted(BREAKS_IN_LAST_ROOT))
def test_every_stage_covers_every_root(stage, tree):
    file, old, new, rule = BREAKS_IN_LAST_ROOT[stage]
    _break(tree / file, old, new)
    report_path = tree / "report.json"
    proc = validate("--repo", str(tree), "--stage", stage, "--report-json", str(report_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    assert len(report["targets"]) == 11
    hits = [f for f in report["findings"] if f["rule"] == rule]
    assert hits, report["findings"]
    # The lint stage lints each file once and files it under the first root
    # that reads it; every other stage reports per root, the overlay included.
    if stage != "lint":
        assert LAST_ROOT in {f["target"] for f in hits}
    assert all(f["stage"] == stage for f in hits)
    # Nothing in any other environment.
    assert {f["target"] for f in report["findings"]} <= {LAST_ROOT, "clusters/staging#ai-inference-staging"}


def test_schema_finding_points_at_the_object(tree):
    _break(tree / "overlays/prod/scaling-hpa.yaml", "  minReplicas: 3", "  minReplicas: 3\n  minReplica: 3")
    proc = validate("--repo", str(tree), "--target", str(tree / "overlays/prod"), "--stage", "schema", "-q")
    assert proc.returncode == 1
    assert "HorizontalPodAutoscaler/ai-inference-service-v1" in proc.stdout
    assert "'minReplica' was unexpected" in proc.stdout
    assert "(base/workload/hpa.yaml:1)" in proc.stdout


def test_broken_yaml_names_file_and_line(tree):
    (tree / "base/service.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    report_path = tree / "r.json"
    proc = validate("--repo", str(tree), "--target", str(tree / "overlays/dev"), "--stage", "schema",
                    "--report-json", str(report_path))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    finding = json.loads(report_path.read_text())["findings"][0]
    assert finding["rule"] == "render-failed" and finding["file"] == "base/service.yaml" and finding["line"] == 5


def test_missing_file_is_named(tree):
    _break(tree / "base/kustomization.yaml", "  - service.yaml", "  - services.yaml")
    proc = validate("--repo", str(tree), "--target", str(tree / "overlays/dev"), "--stage", "schema", "-q")
    assert proc.returncode == 1
    assert "services.yaml" in proc.stdout and "Traceback" not in proc.stderr


def test_cycle_is_reported(tree):
    (tree / "loop-a").mkdir()
    (tree / "loop-b").mkdir()
    (tree / "loop-a/kustomization.yaml").write_text("resources: [../loop-b]\n")
    (tree / "loop-b/kustomization.yaml").write_text("resources: [../loop-a]\n")
    proc = validate("--repo", str(tree), "--stage", "schema", "-q")
    assert proc.returncode == 1
    assert "kustomization-cycle" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args,words", [
    (["--bogus"], "unrecognized arguments"),
    (["--stage", "nope"], "invalid choice"),
    (["--jobs", "0"], "must be at least 1"),
    (["--kubernetes-version", "1.99"], "schemas ship"),
    (["--kubernetes-version", "latest"], "expected MAJOR.MINOR"),
    (["--target", "docs"], "no root kustomization"),
    (["--shard", "3/2"], "between 1 and N"),
])
def test_usage_errors_exit_2_with_one_line(args, words):
    proc = validate(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr


BAD_WORKFLOW = """name: bad
on:
  pull_request_target:
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""
SCHEMA_BROKEN_WORKFLOW = """name: broken
on: [push]
jobs:
  broken:
    steps: []
"""


def test_workflows_are_checked_by_schema_and_zizmor(tree):
    (tree / ".github" / "workflows").mkdir(parents=True)
    (tree / ".github" / "workflows" / "bad.yml").write_text(BAD_WORKFLOW)
    (tree / ".github" / "workflows" / "broken.yml").write_text(SCHEMA_BROKEN_WORKFLOW)
    report_path = tree / "r.json"
    proc = validate("--repo", str(tree), "--stage", "lint", "--report-json", str(report_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = json.loads(report_path.read_text())["findings"]
    rules = {f["rule"] for f in findings}
    assert any(f["rule"] == "workflow-schema" and f["file"] == ".github/workflows/broken.yml" for f in findings)
    assert {"zizmor/template-injection", "zizmor/unpinned-uses"} <= rules
    assert all(f["file"] == ".github/workflows/bad.yml" for f in findings if f["rule"].startswith("zizmor/"))


def test_report_merges_shards(tmp_path):
    outs = []
    for index in (1, 2):
        out = tmp_path / f"shard-{index}.json"
        proc = validate("--shard", f"{index}/2", "--stage", "schema", "--report-json", str(out), "-q")
        assert proc.returncode == 0, proc.stderr
        outs.append(out)
    shard_paths = [[t["path"] for t in json.loads(o.read_text())["targets"]] for o in outs]
    assert not set(shard_paths[0]) & set(shard_paths[1])
    summary = tmp_path / "summary.md"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "scripts", "report", "--out", str(tmp_path / "merged.json"),
                           "--markdown-summary", str(summary), *map(str, outs)], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert len(merged["targets"]) == 11 and merged["ok"] is True
    assert "| `overlays/prod` |" in summary.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = subprocess.run([sys.executable, "-m", "scripts", "report", str(bad)], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "bad.json:1: not JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_checkov_skip_with_reason_is_honoured(tree):
    _break(tree / "overlays/prod/zone-spread.yaml", "  value: DoNotSchedule\n",
           "  value: DoNotSchedule\n- op: add\n  path: /spec/template/spec/hostPID\n  value: true\n")
    (tree / "config/checkov.yaml").write_text(
        "skip:\n  - id: CKV_K8S_17\n    reason: host PID is needed by the profiler sidecar (test)\n")
    report_path = tree / "r.json"
    validate("--repo", str(tree), "--target", str(tree / "overlays/prod"), "--stage", "security",
             "--report-json", str(report_path))
    rules = {f["rule"] for f in json.loads(report_path.read_text())["findings"]}
    assert "checkov/CKV_K8S_17" not in rules


@pytest.mark.parametrize("file,text,words", [
    ("config/checkov.yaml", "skip:\n  - id: CKV_K8S_17\n", "non-empty `reason`"),
    ("config/policy.yaml", "registries: [\n", "config/policy.yaml:2: invalid YAML"),
    ("schemas/skip.yaml", "skip:\n  - kind: Gadget\n", "non-empty `reason`"),
    (".yamllint.yaml", "rules: {line-length: {max: many}}\n", "invalid yamllint config"),
])
def test_broken_config_is_one_line(tree, file, text, words):
    (tree / file).write_text(text)
    proc = validate("--repo", str(tree), "--target", str(tree / "overlays/dev"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_flux_build_that_cannot_substitute_is_a_render_finding(tree):
    (tree / "clusters/prod/cluster-settings.yaml").unlink()
    _break(tree / "clusters/prod/kustomization.yaml", "  - cluster-settings.yaml\n", "")
    report_path = tree / "r.json"
    proc = validate("--repo", str(tree), "--target", str(tree / "clusters/prod"), "--stage", "schema",
                    "--report-json", str(report_path))
    assert proc.returncode == 1
    findings = {f["target"]: f for f in json.loads(report_path.read_text())["findings"]}
    assert findings["clusters/prod#ai-inference-prod"]["rule"] == "render-failed"
    assert "ConfigMap/cluster-settings is not in this cluster's render" in \
        findings["clusters/prod#ai-inference-prod"]["message"]
    assert findings["clusters/prod#ai-inference-prod"]["file"] == "clusters/prod/ai-inference-prod.yaml"
