"""The cache of renders and per-render findings (.cache/validate/): after a
warm run, changing exactly one input makes the finding that input should
produce appear; an entry that is truncated, corrupted or of another format
is ignored and rebuilt; concurrent runs share it; a tree that cannot hold it
still validates. Each test runs on a copy of this repository's tree (eleven
roots, Flux builds included) with the defect in the last root, overlays/staging,
or the last Flux build, clusters/staging#ai-inference-staging."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.loading import render as render_module
from scripts.stages import checkov_direct, resultcache
from scripts.validate import CACHE_DIR, Options, run
from tests.conftest import REPO

pytestmark = pytest.mark.slow
LAST = "overlays/staging"
LAST_FLUX = "clusters/staging#ai-inference-staging"
# kustomize runs of a cold run of the tree: its 11 renders but the 4 Flux
# builds taken from the output of the overlay at their path (test_flux_reuse).
KUSTOMIZE_RUNS = 7


@pytest.fixture
def kustomize_calls(monkeypatch):
    """How many times kustomize ran (a warm run of an unchanged tree: none)."""
    calls = []
    real = render_module.run_kustomize

    def counted(command, limits):
        calls.append(command)
        return real(command, limits)
    monkeypatch.setattr(render_module, "run_kustomize", counted)
    return calls


def validate(tree: Path, stages: list[str], **options):
    options.setdefault("jobs", 2)
    return run(Options(repo=tree, stages=stages, **options))


def keyed(report) -> set[tuple[str, str, str]]:
    return {(f.target, f.rule, f.severity) for f in report.findings}


def warm(tree: Path, stages: list[str], calls: list, **options):
    """A cold run, then a warm one that must take every render from the cache."""
    cold = validate(tree, stages, **options)
    calls.clear()
    again = validate(tree, stages, **options)
    assert calls == [], "the warm run ran kustomize"
    assert keyed(again) == keyed(cold)
    return again


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def rules_for(report, target: str) -> set[str]:
    return {f.rule for f in report.findings if f.target == target}


# ---- each kind of input ----

def test_a_resource_file_of_the_last_root(tree, kustomize_calls):
    (tree / LAST / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata: {}\n")
    replace(tree / LAST / "kustomization.yaml", "resources:\n  - ../../base\n",
            "resources:\n  - ../../base\n  - extra.yaml\n")
    before = warm(tree, ["schema"], kustomize_calls)
    assert not before.findings
    replace(tree / LAST / "extra.yaml", "data: {}", "data: {}\nbogus: 1")
    after = validate(tree, ["schema"])
    assert {(f.target, f.kind, f.name) for f in after.findings} == \
        {(LAST, "ConfigMap", "extra"), (LAST_FLUX, "ConfigMap", "extra")}


def test_a_named_file_that_did_not_exist_yet(tree, kustomize_calls):
    """The build failed on a missing resource; creating it (with a defect)
    must rebuild, though no file the build read before changed (discovery
    lists the new file; the named paths' states in the key say so too)."""
    replace(tree / LAST / "kustomization.yaml", "resources:\n  - ../../base\n",
            "resources:\n  - ../../base\n  - extra.yaml\n")
    before = warm(tree, ["schema"], kustomize_calls)
    assert rules_for(before, LAST) == {"render-failed"}
    assert not any(f.stage == "schema" for f in before.findings)
    (tree / LAST / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\nbogus: 1\n")
    after = validate(tree, ["schema"])
    assert rules_for(after, LAST) == {"schema-invalid"}


def test_a_patch_of_the_last_root(tree, kustomize_calls):
    warm(tree, ["schema"], kustomize_calls)
    replace(tree / LAST / "resources.yaml", "spec:\n  template:", "spec:\n  bogusField: 1\n  template:")
    after = validate(tree, ["schema"])
    assert {f.name for f in after.findings if f.target == LAST} == \
        {"ai-inference-service-v1", "ai-inference-service-v2"}
    assert {f.target for f in after.findings} == {LAST, LAST_FLUX}


def test_a_component_of_the_last_root(tree, kustomize_calls):
    component = tree / "overlays" / "components" / "staging-extra"  # inside the Flux source's artifact
    component.mkdir(parents=True)
    (component / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - path: patch.yaml\n"
        "    target:\n      kind: HorizontalPodAutoscaler\n")
    (component / "patch.yaml").write_text(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: any\nspec:\n  maxReplicas: 6\n")
    replace(tree / LAST / "kustomization.yaml", "  - ../../monitoring\n",
            "  - ../../monitoring\n  - ../components/staging-extra\n")
    warm(tree, ["schema"], kustomize_calls)
    replace(component / "patch.yaml", "maxReplicas: 6", "maxReplicas: 6\n  bogusField: 1")
    after = validate(tree, ["schema"])
    assert {(f.target, f.kind) for f in after.findings} == \
        {(LAST, "HorizontalPodAutoscaler"), (LAST_FLUX, "HorizontalPodAutoscaler")}


def test_a_value_flux_substitutes(tree, kustomize_calls):
    """clusters/staging's cluster-settings ConfigMap feeds the staging Flux
    build's postBuild.substituteFrom: a list where a string belongs."""
    warm(tree, ["schema"], kustomize_calls)
    replace(tree / "clusters/staging/cluster-settings.yaml", "cluster_region: eu-west-1",
            'cluster_region: "[1, 2]"')
    after = validate(tree, ["schema"])
    assert {f.target for f in after.findings} == {LAST_FLUX}


def test_a_config_file(tree, kustomize_calls):
    warm(tree, ["policy"], kustomize_calls)
    replace(tree / "config/policy.yaml", "  - ghcr.io/example-org/\n", "  - ghcr.io/another-org/\n")
    after = validate(tree, ["policy"])
    assert "image_registry_allowed" in rules_for(after, LAST)


def test_a_crd_added_and_a_schema_edited(tree, kustomize_calls):
    """A CRD in schemas/crds/ takes precedence over the shipped schema: a
    new one, then an edit of its schema, each makes its finding appear."""
    warm(tree, ["schema"], kustomize_calls)
    crds = tree / "schemas" / "crds"
    crds.mkdir()
    crd = crds / "sidecar.yaml"
    crd.write_text(CRD.replace("REQUIRED", "firstField"))
    added = validate(tree, ["schema"])
    assert LAST in {f.target for f in added.findings if f.kind == "Sidecar" and "firstField" in f.message}
    kustomize_calls.clear()
    warm_again = validate(tree, ["schema"])
    assert kustomize_calls == [] and keyed(warm_again) == keyed(added)
    crd.write_text(CRD.replace("REQUIRED", "secondField"))
    edited = validate(tree, ["schema"])
    assert LAST in {f.target for f in edited.findings if f.kind == "Sidecar" and "secondField" in f.message}


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: sidecars.networking.istio.io
spec:
  group: networking.istio.io
  names: {kind: Sidecar, plural: sidecars}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
          required: [REQUIRED]
"""


def test_the_kubernetes_version(tree, kustomize_calls):
    warm(tree, ["schema", "policy"], kustomize_calls)
    older = validate(tree, ["schema", "policy"], kubernetes_version="1.25")
    fresh = run(Options(repo=tree, stages=["schema", "policy"], jobs=2, kubernetes_version="1.25", cache=False))
    assert keyed(older) == keyed(fresh) and LAST in {f.target for f in fresh.findings}


def test_a_tool_version(tree, kustomize_calls, monkeypatch):
    """Another checkov: its refusal must appear, not the last run's findings."""
    warm(tree, ["security"], kustomize_calls)
    versions = resultcache.tool_versions()
    assert any("checkov-3.3.30.dist-info" in v for v in versions)
    monkeypatch.setattr(resultcache, "tool_versions",
                        lambda: [v.replace("checkov-3.3.30", "checkov-9.3.3.30") for v in versions])
    monkeypatch.setattr(checkov_direct, "installed_version", lambda: "9.3.3.30")
    after = validate(tree, ["security"])
    assert (".", "checkov-version") in {(f.target, f.rule) for f in after.findings}


def _project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    for tree in resultcache.PROJECT_TREES:
        shutil.copytree(REPO / tree, project / tree, ignore=shutil.ignore_patterns("__pycache__"))
    for file in resultcache.PROJECT_FILES:
        shutil.copy2(REPO / file, project / file)
    return project


def test_a_policy_rule(tree, tmp_path, kustomize_calls, monkeypatch):
    """A rule of tests/policy edited: the code's bytes are in the key (the
    running copy of the rule is replaced the same way, as a new process
    would import it)."""
    project = _project_copy(tmp_path)
    monkeypatch.setattr(resultcache, "PROJECT", project)
    warm(tree, ["policy"], kustomize_calls)
    from tests.policy import test_availability

    rule = project / "tests/policy/test_availability.py"
    replace(rule, "    least = config.ha_min_replicas\n", "    least = 7\n")
    original = test_availability.check_ha_replicas

    def stricter(render, config):
        return original(render, dataclasses.replace(config, ha_min_replicas=7))
    monkeypatch.setattr(test_availability, "check_ha_replicas", stricter)
    after = validate(tree, ["policy"])
    assert "ha_replicas" in rules_for(after, "overlays/prod")


def test_the_projects_code(tree, tmp_path, kustomize_calls, monkeypatch):
    """scripts/ edited: a schema check that now refuses every ConfigMap."""
    project = _project_copy(tmp_path)
    monkeypatch.setattr(resultcache, "PROJECT", project)
    warm(tree, ["schema"], kustomize_calls)
    from scripts.core.model import finding_for
    from scripts.stages import schema

    replace(project / "scripts/stages/schema.py", "def validate_object(", "def validate_object(  # edited\n")
    original = schema.validate_object

    def edited(store, skips, target, obj, upcoming=None):
        found = original(store, skips, target, obj, upcoming)
        if obj.kind == "ConfigMap":
            found.append(finding_for(obj, stage="schema", target=target, rule="edited", message="edited"))
        return found
    monkeypatch.setattr(schema, "validate_object", edited)
    after = validate(tree, ["schema"])
    assert "edited" in rules_for(after, LAST)


# ---- entries not to trust ----

def _entries(tree: Path) -> list[Path]:
    return sorted((tree / CACHE_DIR).rglob("*.json"))


def _read_entry(path: Path) -> tuple[dict, dict]:
    header, _, payload = path.read_bytes().partition(b"\n")
    return json.loads(header), json.loads(payload)


def _write_entry(path: Path, header: dict, payload: dict, *, checksum: bool) -> None:
    """An entry with this header and payload (its checksum made to match, or left)."""
    import hashlib

    data = json.dumps(payload).encode()
    if checksum:
        header = dict(header, sha256=hashlib.sha256(data).hexdigest())
    path.write_bytes(json.dumps(header).encode() + b"\n" + data)


def _forge(path: Path, *, checksum: bool, format_tag: str | None = None) -> None:
    """Rewrite an entry so it claims the render has no schema findings."""
    header, payload = _read_entry(path)
    payload["schema"] = []
    if format_tag:
        header["format"] = format_tag
    _write_entry(path, header, payload, checksum=checksum)


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "foreign format", "foreign payload", "pickle"])
def test_a_damaged_entry_is_ignored_and_rebuilt(tree, kustomize_calls, damage):
    replace(tree / LAST / "resources.yaml", "spec:\n  template:", "spec:\n  bogusField: 1\n  template:")
    cold = warm(tree, ["schema"], kustomize_calls)
    assert LAST in {f.target for f in cold.findings}
    for path in _entries(tree):
        if damage == "truncated":
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        elif damage == "corrupted":
            _forge(path, checksum=False)
        elif damage == "foreign format":
            _forge(path, checksum=True, format_tag="validate-cache/0")
        elif damage == "foreign payload":
            header, payload = _read_entry(path)
            payload.update(version=0, schema=[])
            _write_entry(path, header, payload, checksum=True)
        else:
            import pickle

            path.write_bytes(pickle.dumps({"format": resultcache.ENTRY_VERSION}))
    kustomize_calls.clear()
    after = validate(tree, ["schema"])
    assert keyed(after) == keyed(cold)
    assert len(kustomize_calls) >= KUSTOMIZE_RUNS  # every render made again
    kustomize_calls.clear()
    rebuilt = validate(tree, ["schema"])
    assert kustomize_calls == [] and keyed(rebuilt) == keyed(cold)


def test_a_left_over_temporary_file_is_not_an_entry(tree, kustomize_calls):
    warm(tree, ["schema"], kustomize_calls)
    first = _entries(tree)[0]
    (first.parent / ".entry-partial").write_text('{"format": "validate-cache/1", "key": ')
    kustomize_calls.clear()
    validate(tree, ["schema"])
    assert kustomize_calls == []


def test_no_cache_neither_reads_nor_writes(tree, kustomize_calls):
    replace(tree / LAST / "resources.yaml", "spec:\n  template:", "spec:\n  bogusField: 1\n  template:")
    validate(tree, ["schema"], cache=False)
    assert not (tree / CACHE_DIR).exists()
    cold = warm(tree, ["schema"], kustomize_calls)
    for path in _entries(tree):
        _forge(path, checksum=True)  # well-formed entries that hide the finding
    assert LAST not in {f.target for f in validate(tree, ["schema"]).findings}
    kustomize_calls.clear()
    bypassed = validate(tree, ["schema"], cache=False)
    assert keyed(bypassed) == keyed(cold) and len(kustomize_calls) >= KUSTOMIZE_RUNS


def test_a_tree_that_cannot_hold_the_cache_still_validates(tree, kustomize_calls):
    replace(tree / LAST / "resources.yaml", "spec:\n  template:", "spec:\n  bogusField: 1\n  template:")
    (tree / ".cache").write_text("not a directory\n")
    first = validate(tree, ["schema"])
    second = validate(tree, ["schema"])
    assert LAST in {f.target for f in first.findings} and keyed(first) == keyed(second)
    assert (tree / ".cache").read_text() == "not a directory\n"


def test_concurrent_runs_share_the_cache(tree, kustomize_calls):
    replace(tree / LAST / "resources.yaml", "spec:\n  template:", "spec:\n  bogusField: 1\n  template:")
    command = [sys.executable, "-m", "scripts", "validate", "--repo", str(tree), "--stage", "schema", "--jobs", "1",
               "--report-json"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    runs = [subprocess.Popen([*command, str(tree.parent / f"r{n}.json")], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for n in range(3)]
    for proc in runs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 1 and "Traceback" not in stderr, stderr
    reports = [json.loads((tree.parent / f"r{n}.json").read_text())["findings"] for n in range(3)]
    assert reports[0] == reports[1] == reports[2]
    assert LAST in {f["target"] for f in reports[0]}
    kustomize_calls.clear()
    warm_run = validate(tree, ["schema"], jobs=1)
    assert kustomize_calls == []
    assert sorted(json.dumps(f.as_dict()) for f in warm_run.findings) == sorted(json.dumps(f) for f in reports[0])
