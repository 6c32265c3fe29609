"""Discovery of roots: nested roots, components, shared bases, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.core.errors import UsageError
from scripts.loading.discover import discover, select


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def test_real_repository_roots():
    found = discover(Path(__file__).resolve().parent.parent)
    assert [t.path for t in found.targets] == [
        "clusters/dev", "clusters/prod", "clusters/staging",
        "overlays/dev", "overlays/gpu", "overlays/prod", "overlays/staging"]
    assert found.findings == []
    prod = next(t for t in found.targets if t.path == "overlays/prod")
    assert "base/workload/deployment.yaml" in prod.sources
    assert "monitoring/dashboard.json" in prod.sources
    assert "overlays/prod/canary-weights.yaml" in prod.sources


def test_shared_base_and_component_are_not_roots(tmp_path):
    write(tmp_path, {
        "base/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/cm.yaml": CM.format(name="a"),
        "comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
        "envs/a/kustomization.yaml": "resources: [../../base]\ncomponents: [../../comp]\n",
        "envs/b/kustomization.yaml": "resources: [../../base]\n",
    })
    assert [t.path for t in discover(tmp_path).targets] == ["envs/a", "envs/b"]


def test_nested_roots_anywhere(tmp_path):
    write(tmp_path, {
        "services/svc-001/overlays/dev/kustomization.yaml": "resources: [cm.yaml]\n",
        "services/svc-001/overlays/dev/cm.yaml": CM.format(name="x"),
        "services/svc-002/overlays/dev/kustomization.yml": "resources: []\n",
        ".hidden/kustomization.yaml": "resources: []\n",
    })
    assert [t.path for t in discover(tmp_path).targets] == [
        "services/svc-001/overlays/dev", "services/svc-002/overlays/dev"]


def test_cycle_is_a_finding_not_a_crash(tmp_path):
    write(tmp_path, {
        "a/kustomization.yaml": "resources: [../b]\n",
        "b/kustomization.yaml": "resources: [../a]\n",
    })
    found = discover(tmp_path)
    assert [f.rule for f in found.findings] == ["kustomization-cycle"]
    assert "a -> b -> a" in found.findings[0].message or "b -> a -> b" in found.findings[0].message


def test_broken_kustomization_names_file_and_line(tmp_path):
    write(tmp_path, {"a/kustomization.yaml": "resources:\n  - x.yaml\n  bad: [\n"})
    found = discover(tmp_path)
    assert found.findings[0].rule == "kustomization-invalid"
    assert found.findings[0].file == "a/kustomization.yaml"
    assert found.findings[0].line == 3


def test_select_narrows_and_rejects_paths_without_roots(tmp_path, monkeypatch):
    write(tmp_path, {
        "overlays/a/kustomization.yaml": "resources: []\n",
        "overlays/b/kustomization.yaml": "resources: []\n",
        "docs/readme.txt": "x",
    })
    monkeypatch.chdir(tmp_path)
    found = discover(tmp_path)
    assert [t.path for t in select(found.targets, found.repo, ["overlays/a"])] == ["overlays/a"]
    assert len(select(found.targets, found.repo, ["overlays"])) == 2
    with pytest.raises(UsageError, match="no root kustomization"):
        select(found.targets, found.repo, ["docs"])
    with pytest.raises(UsageError, match="no root kustomization"):
        select(found.targets, found.repo, ["overlays/zzz"])


FLUX_KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: {name}, namespace: flux-system}}
spec: {{interval: 1h, path: {path}, prune: true, sourceRef: {{kind: GitRepository, name: flux-system}}}}
"""


def test_a_directory_flux_applies_without_a_kustomization_is_a_root(tmp_path):
    """flux bootstrap's layout: clusters/<name>/ holds Flux Kustomizations and
    flux-system/, and no kustomization file (kustomize-controller generates
    one); the last cluster is as much a root as the first."""
    write(tmp_path, {
        "apps/kustomization.yaml": "resources: [cm.yaml]\n", "apps/cm.yaml": CM.format(name="a"),
        "clusters/production/apps.yaml": FLUX_KS.format(name="apps", path="./apps"),
        "clusters/production/flux-system/kustomization.yaml": "resources: [gotk-sync.yaml]\n",
        "clusters/production/flux-system/gotk-sync.yaml": "# written by flux bootstrap\n",
        "clusters/production/more/infra.yaml": FLUX_KS.format(name="infra", path="./apps"),
        "clusters/staging/apps.yaml": FLUX_KS.format(name="apps", path="./apps"),
        "clusters/staging/flux-system/kustomization.yaml": "resources: []\n",
        "clusters/staging/notes.txt": "not a manifest",
    })
    found = discover(tmp_path)
    assert [(t.path, t.generated) for t in found.targets] == [
        ("apps", False), ("clusters/production", True), ("clusters/staging", True)]
    staging = next(t for t in found.targets if t.path == "clusters/staging")
    assert staging.sources == ("clusters/staging/apps.yaml", "clusters/staging/flux-system/kustomization.yaml")
    production = next(t for t in found.targets if t.path == "clusters/production")
    # below the root, recursively: a subdirectory with its own kustomization as itself, others file by file
    assert "clusters/production/more/infra.yaml" in production.sources
    assert "clusters/production/flux-system/gotk-sync.yaml" in production.sources


def test_what_is_not_a_generated_root(tmp_path):
    write(tmp_path, {
        # its files are listed by a kustomization: part of that build
        "listed/kustomization.yaml": "resources: [../flux/ks.yaml]\n",
        "flux/ks.yaml": FLUX_KS.format(name="a", path="./apps"),
        # applied by a Flux Kustomization elsewhere: validated as that build
        "clusters/c/kustomization.yaml": "resources: [ks.yaml]\n",
        "clusters/c/ks.yaml": FLUX_KS.format(name="layers", path="./layers"),
        "layers/more.yaml": FLUX_KS.format(name="b", path="./apps"),
        # left out of the repository's artifact by .sourceignore
        ".sourceignore": "/ignored/\n",
        "ignored/ks.yaml": FLUX_KS.format(name="c", path="./apps"),
        # another repository's tree kept as test data
        "tests/fixtures/other/clusters/x/ks.yaml": FLUX_KS.format(name="d", path="./apps"),
        "tests/fixtures/other/apps/kustomization.yaml": "resources: []\n",
        # mentions the API but declares no Kustomization
        "docs/example.yaml": "# kustomize.toolkit.fluxcd.io/v1\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    })
    assert [t.path for t in discover(tmp_path).targets] == ["clusters/c", "listed"]
