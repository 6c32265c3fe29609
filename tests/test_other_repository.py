"""`validate --repo` on another team's Flux repository: the Flux project's
reference layout, fluxcd/flux2-kustomize-helm-example, kept at a pinned
commit in tests/fixtures/ (PROVENANCE there). Tried as such a team would,
with none of this project's config files; and this repository's own results
next to it, unchanged by what that needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "flux2-kustomize-helm-example"
CLUSTERS = ("production", "staging")
FLUX_KUSTOMIZATIONS = ("apps", "infra-configs", "infra-controllers")

# Every error the run reports, and why each is a real one.
EXPECTED_ERRORS = {
    # cert-manager's CRDs are installed by its own Helm chart (the HelmRelease
    # sets crds.enabled), which is not rendered here and not pinned: the
    # schema stage cannot check a ClusterIssuer and, like kubeconform -strict
    # without -ignore-missing-schemas, says so instead of passing it. The fix
    # is the team's: add cert-manager's CRD to schemas/crds/, or a reasoned
    # skip to schemas/skip.yaml.
    ("infrastructure/configs", "schema/schema-missing", "ClusterIssuer/letsencrypt"),
    ("clusters/production#infra-configs", "schema/schema-missing", "ClusterIssuer/letsencrypt"),
    ("clusters/staging#infra-configs", "schema/schema-missing", "ClusterIssuer/letsencrypt"),
    # The platform rule that each namespace belongs to one Flux
    # Kustomization: infra-controllers applies Namespace envoy-gateway-system
    # and infra-configs puts Gateway/envoy into it, so pruning
    # infra-controllers (or renaming its namespace) deletes the Gateway that
    # infra-configs applies. The example accepts that coupling (dependsOn
    # orders the applies, not the deletes); this platform does not.
    ("clusters/production", "policy/cluster_no_collisions", "Namespace/envoy-gateway-system"),
    ("clusters/staging", "policy/cluster_no_collisions", "Namespace/envoy-gateway-system"),
}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """A copy of the fixture (validate writes its lint cache into the repository it checks)."""
    repo = tmp_path_factory.mktemp("other") / "flux2-kustomize-helm-example"
    shutil.copytree(FIXTURE, repo, ignore=shutil.ignore_patterns("PROVENANCE"))
    report = repo.parent / "report.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "scripts", "validate", "--repo", str(repo), "--report-json",
                           str(report)], cwd=REPO, env=env, capture_output=True, text=True)
    return proc, json.loads(report.read_text())


def test_every_flux_kustomization_of_both_clusters_is_a_root(example):
    proc, report = example
    paths = [t["path"] for t in report["targets"]]
    assert paths == sorted(
        ["apps/production", "apps/staging", "infrastructure/configs", "infrastructure/controllers"]
        + [f"clusters/{c}" for c in CLUSTERS]
        + [f"clusters/{c}#{k}" for c in CLUSTERS for k in FLUX_KUSTOMIZATIONS])
    assert all(t["rendered"] for t in report["targets"]), proc.stdout
    objects = {t["path"]: t["objects"] for t in report["targets"]}
    # each built from its ExternalArtifact: what the artifact's path holds
    for cluster in CLUSTERS:
        assert objects[f"clusters/{cluster}#apps"] == 3  # Namespace, HelmRepository, HelmRelease podinfo
        assert objects[f"clusters/{cluster}#infra-controllers"] == 6
        assert objects[f"clusters/{cluster}#infra-configs"] == 3
        # the cluster directory: its three manifests and flux-system/ (placeholders only)
        assert objects[f"clusters/{cluster}"] == 4


def test_the_run_says_it_used_the_defaults(example):
    proc, _ = example
    assert proc.stderr.splitlines()[0].startswith("note: ") and "no .yamllint.yaml and no config/policy.yaml" \
        in proc.stderr.splitlines()[0]


def test_every_error_is_a_real_one(example):
    proc, report = example
    errors = {(f["target"], f"{f['stage']}/{f['rule']}", f"{f['kind']}/{f['name']}")
              for f in report["findings"] if f["severity"] == "error"}
    assert errors == EXPECTED_ERRORS
    assert len([f for f in report["findings"] if f["severity"] == "error"]) == len(EXPECTED_ERRORS)
    assert proc.returncode == 1
    # and nothing else: no false "not served by Kubernetes", no deprecation, no lint of a default config
    assert [f for f in report["findings"] if f["severity"] == "warning"] == []
    gateway = [f for f in report["findings"] if f["kind"] in ("Gateway", "GatewayClass")]
    assert gateway == []  # validated against the pinned Gateway API schemas, and passing


def test_notices_say_what_was_not_checked(example):
    _, report = example
    notices = sorted((f["target"], f["rule"], f["name"]) for f in report["findings"] if f["severity"] == "notice")
    releases = {"apps": ["podinfo"], "infra-controllers": ["cert-manager", "envoy-gateway"]}
    expected = [(f"clusters/{c}#{k}", "helm-chart-not-rendered", r) for c in CLUSTERS for k, rs in releases.items()
                for r in rs]
    expected += [("apps/production", "helm-chart-not-rendered", "podinfo"),
                 ("apps/staging", "helm-chart-not-rendered", "podinfo"),
                 ("infrastructure/controllers", "helm-chart-not-rendered", "cert-manager"),
                 ("infrastructure/controllers", "helm-chart-not-rendered", "envoy-gateway")]
    assert notices == sorted(expected)
    # every Kustomization's source is this repository's artifact: none is "not built"
    assert not any(f["rule"] == "flux-source-not-built" for f in report["findings"])


def test_the_fixture_is_no_root_of_this_repository():
    assert not any(t.path.startswith("tests/") for t in discover(REPO).targets)


# Roots and object counts before the Flux discovery changed; clusters/dev has
# since gained the image automation's five objects (ImageRepository, two
# ImagePolicies, two ImageUpdateAutomations), which a discovery change must not move.
THIS_REPOSITORY = {
    "clusters/dev": 8, "clusters/dev#ai-inference-dev": 21, "clusters/prod": 4, "clusters/prod#ai-inference-gpu": 24,
    "clusters/prod#ai-inference-prod": 24, "clusters/staging": 3, "clusters/staging#ai-inference-staging": 24,
    "overlays/dev": 21, "overlays/gpu": 24, "overlays/prod": 24, "overlays/staging": 24}


def test_this_repositorys_own_results_are_unchanged():
    """Same roots, same objects, no Flux finding (the full run's findings,
    none, are test_validate_cli.test_repository_validates_clean's)."""
    found = discover(REPO)
    renders, findings = render_with_flux(found.repo, found.targets, found.kustomizations)
    assert {r.target.path: len(r.objects) for r in renders} == THIS_REPOSITORY
    assert findings == []
