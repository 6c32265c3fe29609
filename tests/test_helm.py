"""HelmReleases: sources and valuesFrom resolved in the cluster, values
checked against a chart's values.schema.json when the chart is in the
repository, and one notice per release that its chart is not rendered."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux

SCHEMA = {"type": "object", "required": ["image"],
          "properties": {"replicas": {"type": "integer", "minimum": 1}, "image": {"type": "string"}}}


def release(name: str, **spec) -> dict:
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": "flux-system"}, "spec": {"interval": "10m", **spec}}


IN_REPO = {"spec": {"chart": "./charts/web", "sourceRef": {"kind": "GitRepository", "name": "this-repo"}}}


def tree(tmp_path: Path, releases: list[dict], values: str = "replicas: 2\n") -> tuple[dict, list]:
    files = {
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
        "charts/web/values.yaml": "image: web:1\nreplicas: 1\n",
        "charts/web/values.schema.json": json.dumps(SCHEMA),
        "apps/kustomization.yaml": "resources: [releases.yaml, values.yaml]\n",
        "apps/values.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "web-values", "namespace": "flux-system"},
                                            "data": {"values.yaml": values}}),
        "apps/releases.yaml": yaml.safe_dump_all(releases),
    }
    for cluster in ("a", "z"):  # the same apps in two clusters; only the last one declares the HelmRepository
        files[f"clusters/{cluster}/kustomization.yaml"] = "resources: [flux.yaml]\n"
        sources = [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                    "metadata": {"name": "this-repo", "namespace": "flux-system"},
                    "spec": {"interval": "1m", "url": "https://example.invalid/repo", "ref": {"branch": "main"}}},
                   {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                    "metadata": {"name": "apps", "namespace": "flux-system"},
                    "spec": {"interval": "10m", "path": "./apps", "prune": True,
                             "sourceRef": {"kind": "GitRepository", "name": "this-repo"}}}]
        if cluster == "z":
            sources.append({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                            "metadata": {"name": "charts", "namespace": "flux-system"},
                            "spec": {"interval": "1h", "url": "https://charts.example.invalid"}})
        files[f"clusters/{cluster}/flux.yaml"] = yaml.safe_dump_all(sources)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = discover(tmp_path)
    renders, findings = render_with_flux(found.repo, found.targets, found.kustomizations)
    return {r.target.path: r for r in renders}, findings


def by_target(findings, prefix: str = "clusters/z#") -> list[tuple]:
    return sorted((f.target, f.rule, f.severity, f.name) for f in findings
                  if f.target.startswith(prefix) and f.rule != "helm-chart-not-rendered")


def test_every_release_gets_a_notice_that_its_chart_is_not_rendered(tmp_path):
    renders, findings = tree(tmp_path, [release("web", chart=IN_REPO, valuesFrom=[
        {"kind": "ConfigMap", "name": "web-values"}])])
    assert renders["clusters/z#apps"].ok
    notices = [(f.target, f.severity, f.file) for f in findings if f.rule == "helm-chart-not-rendered"]
    # in every render that holds the release: the plain root and each cluster's build
    assert notices == [(t, "notice", "apps/releases.yaml") for t in ("apps", "clusters/a#apps", "clusters/z#apps")]
    message = next(f.message for f in findings if f.target == "clusters/z#apps")
    assert "chart not rendered" in message and "checked against charts/web/values.schema.json" in message
    assert [f for f in findings if f.severity == "error"] == []  # replicas 2 and the chart's image pass


def test_a_chart_source_the_cluster_does_not_declare_is_an_error(tmp_path):
    repo_chart = {"spec": {"chart": "web", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}
    _, findings = tree(tmp_path, [release("from-repo", chart=repo_chart),
                                  release("oci", chartRef={"kind": "OCIRepository", "name": "nowhere"})])
    # cluster a lacks the HelmRepository, cluster z has it; nobody declares the OCIRepository
    assert by_target(findings, "clusters/") == [
        ("clusters/a#apps", "helm-source-missing", "error", "from-repo"),
        ("clusters/a#apps", "helm-source-missing", "error", "oci"),
        ("clusters/z#apps", "helm-source-missing", "error", "oci")]
    assert by_target(findings, "apps") == []  # a plain root does not know the cluster's sources
    oci = next(f for f in findings if f.name == "oci" and f.target == "clusters/z#apps")
    assert "OCIRepository/nowhere is not declared in this cluster" in oci.message and oci.file == "apps/releases.yaml"


def test_values_from_must_resolve_unless_optional(tmp_path):
    _, findings = tree(tmp_path, [
        release("missing", chart=IN_REPO, valuesFrom=[{"kind": "ConfigMap", "name": "absent"}]),
        release("optional", chart=IN_REPO, valuesFrom=[{"kind": "Secret", "name": "absent", "optional": True}]),
        release("no-key", chart=IN_REPO, valuesFrom=[{"kind": "ConfigMap", "name": "web-values",
                                                      "valuesKey": "prod.yaml"}])])
    assert by_target(findings) == [("clusters/z#apps", "helm-values-missing", "error", "missing"),
                                   ("clusters/z#apps", "helm-values-missing", "error", "no-key")]
    no_key = next(f for f in findings if f.rule == "helm-values-missing" and f.name == "no-key")
    assert "has no key 'prod.yaml'" in no_key.message


def test_merged_values_are_checked_against_the_charts_schema(tmp_path):
    # valuesFrom gives a string, spec.values comes last and wins where it sets a key
    _, findings = tree(tmp_path, [release("web", chart=IN_REPO, values={"image": 3},
                                          valuesFrom=[{"kind": "ConfigMap", "name": "web-values"}])],
                       values="replicas: 0\n")
    got = [(f.target, f.rule, f.message) for f in findings if f.rule == "helm-values-invalid"]
    assert [t for t, _, _ in got] == ["clusters/a#apps", "clusters/a#apps", "clusters/z#apps", "clusters/z#apps"]
    messages = sorted(m for t, _, m in got if t == "clusters/z#apps")
    assert "charts/web/values.schema.json" in messages[0]
    assert "image: 3 is not of type \"string\"" in messages[0] and "replicas: 0 is less than the minimum of 1" \
        in messages[1]
    # the boundary passes
    _, findings = tree(tmp_path, [release("web", chart=IN_REPO, valuesFrom=[
        {"kind": "ConfigMap", "name": "web-values"}])], values="replicas: 1\n")
    assert [f for f in findings if f.rule == "helm-values-invalid"] == []


def test_validate_changed_reports_them_for_the_roots_it_chooses(tmp_path):
    from scripts.pullrequest.changed import changed_roots

    tree(tmp_path, [release("web", chart=IN_REPO, valuesFrom=[{"kind": "ConfigMap", "name": "web-values"}])])
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.invalid")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, env=env, capture_output=True)
    (tmp_path / "apps/releases.yaml").write_text(yaml.safe_dump(release(
        "web", chart=IN_REPO, valuesFrom=[{"kind": "ConfigMap", "name": "renamed"}])))
    result = changed_roots(tmp_path, "HEAD")
    assert "clusters/z#apps" in result.paths
    assert ("clusters/z#apps", "helm-values-missing") in {(f.target, f.rule) for f in result.findings}
    assert ("clusters/z#apps", "helm-chart-not-rendered") in {(f.target, f.rule) for f in result.findings}
