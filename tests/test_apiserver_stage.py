"""The API server's validation inside the schema stage: on every root, each
error a finding of its own rule, located at the line that wrote the field
(the object's file, or the patch that set it)."""

from __future__ import annotations

import json
from pathlib import Path

from scripts import validate
from scripts.stages import apivalidation
from scripts.stages.schema import ApiServerChecks
from tests.conftest import make_render

PORT_PATH = "spec.template.spec.containers[0].ports[0].name"


def _run(tree: Path) -> list[dict]:
    report = validate.run(validate.Options(repo=tree, stages=["schema"]))
    return [f.as_dict() for f in report.findings]


def _line_of(path: Path, text: str, after: int = 0) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if n > after and text in line)


def test_a_defect_in_the_last_root_is_found_there_with_the_patch_line(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text() + (
        "  - target:\n      kind: Deployment\n    patch: |-\n      - op: replace\n"
        "        path: /spec/template/spec/containers/0/ports/0/name\n        value: grpc-inference-api\n"))
    findings = [f for f in _run(tree) if f["rule"] == "api-container-port-name"]
    assert {f["target"] for f in findings} == {"overlays/prod", "clusters/prod#ai-inference-prod"}
    assert {f["name"] for f in findings} == {"ai-inference-service-v1", "ai-inference-service-v2"}
    line = _line_of(kfile, "value: grpc-inference-api")
    assert {(f["file"], f["line"]) for f in findings} == {("overlays/prod/kustomization.yaml", line)}
    assert all(f["message"].startswith(f'{PORT_PATH}: Invalid value: "grpc-inference-api": ') for f in findings)


def test_a_defect_in_a_patch_file_names_that_file(tree):
    patch = tree / "overlays/staging/port-name.yaml"
    patch.write_text("- op: replace\n  path: /spec/template/spec/containers/0/ports/1/name\n  value: Metrics\n")
    kfile = tree / "overlays/staging/kustomization.yaml"
    kfile.write_text(kfile.read_text() + "  - path: port-name.yaml\n    target:\n      kind: Deployment\n")
    findings = [f for f in _run(tree) if f["rule"] == "api-container-port-name"]
    assert {f["target"] for f in findings} == {"overlays/staging", "clusters/staging#ai-inference-staging"}
    assert {(f["file"], f["line"]) for f in findings} == {("overlays/staging/port-name.yaml", 3)}


def test_a_defect_in_the_base_names_the_fields_own_line(tree):
    deployment = tree / "base/workload/deployment.yaml"
    text = deployment.read_text()
    deployment.write_text(text.replace("- name: http\n              containerPort: 8080",
                                       "- name: http--api\n              containerPort: 8080"))
    findings = [f for f in _run(tree) if f["rule"] == "api-container-port-name"]
    # Every root that renders the Deployments (each overlay and each Flux build), not the cluster roots.
    assert {f["target"] for f in findings} == {
        "overlays/dev", "overlays/staging", "overlays/prod", "overlays/gpu", "clusters/dev#ai-inference-dev",
        "clusters/staging#ai-inference-staging", "clusters/prod#ai-inference-prod", "clusters/prod#ai-inference-gpu"}
    line = _line_of(deployment, "- name: http--api")
    assert {(f["file"], f["line"]) for f in findings} == {("base/workload/deployment.yaml", line)}


def test_the_real_tree_has_no_api_finding(real_renders):
    checks = ApiServerChecks(Path("."), "1.34")
    findings = [f.as_dict() for render in real_renders.values() for obj in render.objects
                for f in checks.findings(render, obj)]
    assert findings == []


def test_a_check_that_crashes_is_a_finding_not_a_pass(monkeypatch):
    def broken(doc, context, errs):
        raise KeyError("containers")

    monkeypatch.setitem(apivalidation.VALIDATORS, ("apps/v1", "Deployment"), broken)
    render = make_render([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}])
    findings = ApiServerChecks(Path("."), "1.34").findings(render, render.objects[0])
    assert [(f.rule, f.severity) for f in findings] == [("api-validation-failed", "error")]
    assert "KeyError" in findings[0].message


def test_the_stage_table_and_the_report_show_the_cost(tree, capsys):
    from scripts.cli import main

    out = tree / "r.json"
    assert main(["validate", "--repo", str(tree), "--stage", "schema", "--report-json", str(out)]) == 0
    # The JSON contract keeps its keys: the figure is the table's.
    assert set(json.loads(out.read_text())["timings"]) == {"render", "lint", "schema", "security", "policy", "total"}
    seconds_row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("seconds"))
    assert "(api " in seconds_row
