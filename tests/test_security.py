"""The security stage: checkov on every render, each on its own, results
mapped to objects once, failures of checkov itself reported per render."""

from __future__ import annotations

import copy
import multiprocessing
import os
from collections import Counter

import pytest

from scripts.core.errors import InputError
from scripts.core.yamlio import load_render
from scripts.stages import security
from tests.conftest import REPO, find, make_render

FIXTURES = REPO / "tests" / "fixtures" / "checkov"


def _privileged(render):
    dep = find(render, "Deployment", "ai-inference-service-v2")
    dep.doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    render.text = None  # scan the edited objects, not kustomize's text


def test_defect_in_a_later_render_is_found(render_of):
    renders = [render_of(p) for p in ("clusters/dev", "overlays/dev", "overlays/gpu", "overlays/prod")]
    _privileged(renders[-1])
    findings = security.run(REPO, renders, jobs=2)
    hits = [f for f in findings if f.rule == "checkov/CKV_K8S_16"]
    assert [(f.target, f.kind, f.name) for f in hits] == [
        ("overlays/prod", "Deployment", "ai-inference-service-v2")]
    assert hits[0].file == "base/workload/deployment.yaml" and hits[0].line == 1


def test_each_render_is_its_own_scan(render_of):
    """Two renders defective in different ways: each gets its own findings
    and nothing of the other's (the checkov CLI reported the first directory
    once per -d)."""
    dev, prod = render_of("overlays/dev"), render_of("overlays/prod")
    _privileged(prod)
    pod = find(dev, "Deployment", "ai-inference-service-v1").doc["spec"]["template"]["spec"]
    pod["hostPID"] = True
    dev.text = None
    findings = security.run(REPO, [dev, prod], jobs=1)
    assert {(f.target, f.rule) for f in findings} == {
        ("overlays/dev", "checkov/CKV_K8S_17"), ("overlays/prod", "checkov/CKV_K8S_16")}


def test_no_duplicate_findings(render_of):
    renders = [render_of(p) for p in ("overlays/dev", "overlays/staging", "overlays/prod")]
    for render in renders:
        _privileged(render)
    renders.append(copy.deepcopy(renders[-1]))  # the same render twice counts once per target
    findings = security.run(REPO, renders, jobs=2)
    keys = Counter((f.target, f.rule, f.kind, f.namespace, f.name) for f in findings)
    assert keys and max(keys.values()) == 1
    assert {k[0] for k in keys} == {"overlays/dev", "overlays/staging", "overlays/prod"}


def test_clean_renders_have_no_findings(real_renders):
    assert security.run(REPO, list(real_renders.values())) == []


def test_skips_apply_in_the_workers(render_of, tree):
    (tree / "config/checkov.yaml").write_text(
        "skip:\n  - id: CKV_K8S_16\n    reason: the test says so\n")
    render = render_of("overlays/prod")
    _privileged(render)
    assert not [f for f in security.run(tree, [render]) if f.rule == "checkov/CKV_K8S_16"]


def test_objects_checkov_did_not_read_are_a_finding(render_of, monkeypatch):
    monkeypatch.setattr(security, "_scan_in_worker", _read_nothing)
    findings = security.run(REPO, [render_of("overlays/dev")], jobs=1)
    assert [(f.target, f.rule, f.severity) for f in findings] == [("overlays/dev", "checkov-failed", "error")]
    assert "checkov read 0 of its" in findings[0].message


def _read_nothing(documents, text: str):
    return [], 0


def test_an_error_inside_checkov_is_a_finding_for_that_render(render_of, monkeypatch):
    monkeypatch.setattr(security, "_scan_in_worker", _fail_on_prod)
    findings = security.run(REPO, [render_of("overlays/dev"), render_of("overlays/prod")], jobs=1)
    assert [(f.target, f.rule) for f in findings] == [("overlays/prod", "checkov-failed")]
    assert "ValueError: no" in findings[0].message


def _fail_on_prod(documents, text: str):
    if "ai-inference-prod" in text:
        raise RuntimeError("ValueError: no")
    return security._scan_in_worker(documents, text)


def test_a_dead_worker_is_a_finding_not_a_pass(render_of, monkeypatch):
    monkeypatch.setattr(security, "_scan_in_worker", _die)
    findings = security.run(REPO, [render_of("overlays/dev")], jobs=1)
    assert [(f.target, f.rule) for f in findings] == [("overlays/dev", "checkov-failed")]
    assert "worker process died" in findings[0].message


def _die(documents, text: str):
    os._exit(3)


def test_stop_leaves_no_processes_or_files(real_renders):
    run = security.CheckovRun(REPO, list(real_renders.values()), jobs=2)
    processes = list((run.pool._processes or {}).values())
    scratch = run.scratch.name
    run.stop()
    assert not any(p.is_alive() for p in processes)
    assert not os.path.exists(scratch)


def test_the_workers_start_before_any_render_is_handed_over():
    # A spawning pool starts a worker only when work arrives: without the
    # empty tasks, checkov's import would begin after the first render.
    before = set(multiprocessing.active_children())
    run = security.CheckovRun(REPO, jobs=9)
    try:
        started = set(multiprocessing.active_children()) - before
        assert len(started) == 2
    finally:
        run.stop()


def test_direct_checks_get_one_worker_per_eight_jobs_and_the_runner_one_per_job():
    assert [security._workers("direct", jobs, None) for jobs in (1, 2, 8, 9, 16, 17)] == [1, 1, 1, 2, 2, 3]
    assert [security._workers("runner", jobs, None) for jobs in (1, 2, 9)] == [1, 2, 9]
    assert security._workers("runner", 8, 3) == 3 and security._workers("direct", 40, 1) == 1


def test_a_skip_by_file_pattern_is_refused_and_a_glob_accepted(tree):
    config = tree / "config/checkov.yaml"
    config.write_text("skip:\n  - id: CKV_K8S_*\n    reason: the test says so\n")
    assert security.load_skips(tree) == {"CKV_K8S_*": "the test says so"}
    config.write_text("skip:\n  - id: CKV_K8S_16:overlays/.*\n    reason: the test says so\n")
    with pytest.raises(InputError) as raised:
        security.load_skips(tree)
    assert raised.value.file == "config/checkov.yaml" and "CKV_K8S_16:overlays/.*" in raised.value.message


def _doc_render(path: str, text: str):
    render = make_render(load_render(text, path), path=path)
    render.text = text
    return render


def test_a_check_that_raises_fails_that_render_only(render_of):
    broken = _doc_render("clusters/prod#last", """\
apiVersion: v1
kind: Pod
metadata: {name: kcm, namespace: kube-system}
spec:
  containers:
    - name: kcm
      image: registry.k8s.io/kube-controller-manager:v1.30.0
      command: ["kube-controller-manager", "--root-ca-file=/pki/ca"]
""")
    findings = security.run(REPO, [render_of("overlays/dev"), broken], jobs=1)
    assert [(f.target, f.rule, f.severity) for f in findings] == [("clusters/prod#last", "checkov-failed", "error")]
    assert "IndexError" in findings[0].message


def test_a_document_checkov_drops_is_a_failed_scan(render_of):
    dropped = _doc_render("overlays/zz", (FIXTURES / "dropped-document.yaml").read_text(encoding="utf-8"))
    findings = security.run(REPO, [render_of("overlays/dev"), dropped], jobs=1)
    assert [(f.target, f.rule) for f in findings] == [("overlays/zz", "checkov-failed")]
    assert "checkov read 1 of its 2 objects" in findings[0].message
