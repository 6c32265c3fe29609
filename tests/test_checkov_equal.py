"""The direct checks (checkov_direct) give what checkov's own Runner gives:
the same (check, object as checkov names it, PASSED/FAILED/SKIPPED) results,
check names and guidelines, and the same count of objects read, on every
render of the tree, on a synthetic bench tree, and on deliberately insecure
fixtures that make every checkov kubernetes check fail somewhere and pass
somewhere else. Skips from config/checkov.yaml apply to both alike."""

from __future__ import annotations

import ast
import logging
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from scripts.bench import write_tree
from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux
from scripts.stages import checkov_direct, checkov_graph, security
from scripts.stages.checkov_direct import DirectChecks, VersionMismatch
from scripts.stages.checkov_runner import RunnerChecks, prepare_environment
from tests.conftest import REPO, make_render

FIXTURES = REPO / "tests" / "fixtures" / "checkov"
FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("*.yaml"))
# Checks the fixtures cannot make pass (or fail), and why.
NEVER_PASSES = {"CKV_K8S_44": "returns FAILED for a Tiller service and UNKNOWN for any other, never PASSED"}
NEVER_FAILS: dict[str, str] = {}


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    prepare_environment()
    logging.disable(logging.WARNING)
    cache: dict[tuple[str, ...], tuple[RunnerChecks, DirectChecks]] = {}

    def get(skips: tuple[str, ...] = ()) -> tuple[RunnerChecks, DirectChecks]:
        if skips not in cache:
            cache[skips] = (RunnerChecks(skips, str(tmp_path_factory.mktemp("runner"))), DirectChecks(skips))
        return cache[skips]
    yield get
    logging.disable(logging.NOTSET)


def _key(records) -> set[tuple]:
    return {(r.check_id, r.resource, r.result, r.check_name, r.guideline) for r in records}


def _both(engines, text: str, documents: list | None = None, skips: tuple[str, ...] = ()):
    runner, direct = engines(skips)
    expected, expected_read = runner.records(text)
    got, read = direct.records_of(documents, text) if documents is not None else direct.records(text)
    return (_key(expected), expected_read), (_key(got), read)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixtures_give_the_runners_results(engines, name):
    expected, got = _both(engines, (FIXTURES / name).read_text(encoding="utf-8"))
    assert got == expected
    assert name in ("helm-template.yaml",) or expected[0], "a fixture checkov finds nothing in tests nothing"


def test_every_check_fails_somewhere_and_passes_somewhere(engines):
    runner, direct = engines()
    seen: dict[str, set[str]] = defaultdict(set)
    for name in FIXTURE_FILES:
        for record in runner.records((FIXTURES / name).read_text(encoding="utf-8"))[0]:
            seen[record.check_id].add(record.result)
    every = {check.id for checks in direct.registry.checks.values() for check in checks} | set(direct.policies.names)
    assert len(every) == 119  # 113 resource checks and 6 graph policies in checkov 3.3.30
    assert {i for i in every if "FAILED" not in seen[i]} == set(NEVER_FAILS)
    assert {i for i in every if "PASSED" not in seen[i]} == set(NEVER_PASSES)


def test_every_render_of_the_tree_gives_the_runners_results(engines, real_renders):
    scanned = 0
    for render in real_renders.values():
        if not render.ok or not render.text:
            continue
        expected, got = _both(engines, render.text, [o.doc for o in render.objects])
        assert got == expected, render.target.path
        assert got[1] == len(render.objects)
        scanned += 1
    assert scanned >= 10


@pytest.mark.slow
def test_the_bench_tree_gives_the_runners_results(engines, tmp_path):
    out = tmp_path / "bench"
    write_tree(out, 3)
    found = discover(out)
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    scanned = [r for r in renders if r.ok and r.text]
    assert len(scanned) >= 30
    for render in scanned:
        expected, got = _both(engines, render.text, [o.doc for o in render.objects])
        assert got == expected, render.target.path


@pytest.mark.parametrize("skip", ["CKV_K8S_16", "CKV2_K8S_6", "CKV2_K8S_5", "CKV_K8S_1?", "CKV2_*"])
def test_a_configured_skip_removes_exactly_that_check_from_both(engines, skip):
    import fnmatch

    removed_anywhere = False
    for name in ("workloads-insecure.yaml", "rbac.yaml", "edge-cases.yaml"):
        text = (FIXTURES / name).read_text(encoding="utf-8")
        (unskipped, _), (direct_unskipped, _) = _both(engines, text)
        (skipped, _), (direct_skipped, _) = _both(engines, text, skips=(skip,))
        assert direct_unskipped == unskipped and direct_skipped == skipped, name
        removed = {r for r in unskipped if fnmatch.fnmatch(r[0], skip)}
        assert skipped == unskipped - removed, name
        removed_anywhere |= bool(removed)
    assert removed_anywhere, "the skip must remove something to prove anything"


# A check that raises fails checkov's whole scan; so it does here.
CRASHES = {
    "a check raises (root CA file without an extension)": """\
apiVersion: v1
kind: Pod
metadata: {name: kcm, namespace: kube-system}
spec:
  containers:
    - name: kcm
      image: registry.k8s.io/kube-controller-manager:v1.30.0
      command: ["kube-controller-manager", "--root-ca-file=/pki/ca"]
""",
    "a skip annotation with two `=`": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: odd
  annotations: {checkov.io/skip1: "CKV_K8S_21=a=b"}
data: {}
""",
    "a NetworkPolicy whose spec is a list": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: odd, namespace: x}
spec: [{podSelector: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: x}
spec: {containers: [{name: c, image: i}]}
""",
}


@pytest.mark.parametrize("case", sorted(CRASHES))
def test_what_breaks_checkovs_scan_breaks_the_direct_one(engines, case):
    runner, direct = engines()
    with pytest.raises(Exception) as from_runner:
        runner.records(CRASHES[case])
    with pytest.raises(Exception) as from_direct:
        direct.records(CRASHES[case])
    assert type(from_direct.value) is type(from_runner.value)


# Shapes checkov reads without failing: the direct path must not fail on them either.
ODD_BUT_READ = {
    "a Flux Kustomization whose metadata is a string": """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: not-a-mapping
spec: {path: ./apps}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: x}
spec: {containers: [{name: c, image: i}]}
""",
    "a Pod named only by labels and an empty template": """\
apiVersion: v1
kind: Pod
metadata:
  labels: {}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec: {template: {}}
""",
}


@pytest.mark.parametrize("case", sorted(ODD_BUT_READ))
def test_what_checkov_reads_the_direct_path_reads(engines, case):
    expected, got = _both(engines, ODD_BUT_READ[case])
    assert got == expected and expected[0]


def test_the_one_deliberate_difference_a_plain_equals_sign(engines):
    """checkov's loader cannot read a plain `=` scalar and then reads nothing
    of the render (the stage would report a failed scan); the direct path
    reads it as validate does and scans the render."""
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ops, namespace: x}\ndata:\n  op: =\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\n"
        "spec: {containers: [{name: c, image: i, securityContext: {privileged: true}}]}\n")
    (expected, expected_read), (got, read) = _both(engines, text)
    assert (expected, expected_read) == (set(), 0)
    assert read == 2 and ("CKV_K8S_16", "Pod.x.p", "FAILED") in {r[:3] for r in got}


def test_another_checkov_version_is_refused(monkeypatch):
    import checkov.version

    monkeypatch.setattr(checkov.version, "version", "3.3.31")
    with pytest.raises(VersionMismatch, match="checkov 3.3.31 is installed.*checkov 3.3.30 only"):
        DirectChecks(())


def test_the_stage_reports_another_version_once_and_scans_nothing(monkeypatch):
    import checkov.version

    monkeypatch.setattr(checkov.version, "version", "4.0.0")
    renders = [make_render([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
                             "spec": {"containers": [{"name": "c", "image": "i", "securityContext":
                                                      {"privileged": True}}]}}], path=f"r{i}")
               for i in range(3)]
    run = security.CheckovRun(REPO, renders, jobs=2)
    assert run.pool is None  # no worker started, so nothing is half-scanned
    findings = run.findings()
    assert [(f.target, f.rule, f.severity) for f in findings] == [(".", "checkov-version", "error")]
    assert "checkov 4.0.0 is installed" in findings[0].message
    assert "checkov==3.3.30" in findings[0].message


def test_changed_graph_policies_stop_the_stage_too(monkeypatch, tmp_path):
    policies = tmp_path / "graph_checks"
    shutil.copytree(_policy_dir(), policies, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (policies / "RoleBindingPE.json").unlink()
    monkeypatch.setattr(checkov_direct, "_policy_dir", lambda: policies)
    assert "RoleBindingPE.json" in checkov_direct.version_problem()
    with pytest.raises(VersionMismatch):
        DirectChecks(())


def test_the_pinned_version_is_the_installed_one():
    assert checkov_direct.version_problem() is None
    assert "checkov==" + checkov_direct.PROVEN_VERSION in (REPO / "requirements.txt").read_text().splitlines()


def _policy_dir() -> Path:
    import checkov

    return Path(checkov.__file__).parent / "kubernetes" / "checks" / "graph_checks"


@pytest.mark.parametrize("change", ["edited", "added", "removed"])
def test_a_changed_graph_policy_is_refused(tmp_path, change):
    policies = tmp_path / "graph_checks"
    shutil.copytree(_policy_dir(), policies, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    checkov_graph.load_policies(policies)  # the installed files load
    if change == "edited":
        path = policies / "ReadAllSecrets.json"
        path.write_text(path.read_text().replace('"secrets"', '"configmaps"'))
    elif change == "added":
        (policies / "NewPolicy.yaml").write_text("metadata: {id: CKV2_K8S_7}\n")
    else:
        (policies / "RoleBindingPE.json").unlink()
    with pytest.raises(checkov_graph.PolicyMismatch):
        checkov_graph.load_policies(policies)


def _check_sources() -> list[Path]:
    import checkov

    return sorted((Path(checkov.__file__).parent / "kubernetes" / "checks" / "resource").rglob("*.py"))


def test_no_resource_check_reads_line_keys_or_the_graph():
    """The direct path gives checks line keys whose values are positions,
    not lines, and no graph: no check may read either."""
    offending = []
    for path in _check_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("__startline__", "__endline__"):
                offending.append(f"{path.name}: {node.value}")
            if isinstance(node, ast.Name) and node.id in ("START_LINE", "END_LINE"):
                offending.append(f"{path.name}: {node.id}")
            if isinstance(node, ast.Attribute) and node.attr == "graph":
                offending.append(f"{path.name}: .graph")
    assert offending == []


def test_every_resource_check_sees_one_object(engines):
    """Each of checkov's kubernetes resource checks is a check of one
    object (scan_spec_conf(conf)); what spans objects is the graph policies."""
    from checkov.kubernetes.checks.resource.base_spec_check import BaseK8Check

    _, direct = engines()
    checks = {check for checks in direct.registry.checks.values() for check in checks}
    assert checks and all(isinstance(check, BaseK8Check) for check in checks)
    assert not direct.registry.wildcard_checks
    assert set(direct.policies.names) == {f"CKV2_K8S_{n}" for n in range(1, 7)}


def test_the_stage_finds_what_the_runner_finds(tmp_path):
    """The whole stage, workers and mapping included, on fixtures: the
    direct engine's findings are the Runner engine's."""
    renders = []
    for name in ("workloads-insecure.yaml", "rbac.yaml", "dropped-document.yaml"):
        text = (FIXTURES / name).read_text(encoding="utf-8")
        from scripts.core.yamlio import load_render

        render = make_render(load_render(text, name), path=name)
        render.text = text
        renders.append(render)
    direct = security.run(REPO, renders, jobs=1)
    runner = security.run(REPO, renders, jobs=1, engine="runner")
    assert [f.as_dict() for f in direct] == [f.as_dict() for f in runner]
    assert {f.rule for f in direct} >= {"checkov/CKV_K8S_16", "checkov/CKV2_K8S_1", "checkov-failed"}
