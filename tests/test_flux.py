"""Flux builds: each Flux Kustomization rendered as kustomize-controller
would, checked field by field on a small fixture tree."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from scripts.core.errors import InputError
from scripts.loading import flux
from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux

APP = {
    "app/kustomization.yaml": """
resources: [cm.yaml, deploy.yaml]
images:
  - name: app
    newName: ghcr.io/example-org/app
    newTag: "1.0"
""",
    "app/cm.yaml": """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  region: ${region}
  greeting: hello ${name:=world}
  shell: $HOME
  escaped: $${kept}
""",
    "app/deploy.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: app}]
""",
    "comp/kustomization.yaml": """
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
labels:
  - pairs: {tier: gpu}
""",
    "clusters/c/kustomization.yaml": "resources: [source.yaml, flux.yaml, vars.yaml]\n",
    "clusters/c/source.yaml": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: this-repo, namespace: flux-system}
spec: {interval: 1m, url: https://example.invalid/repo, ref: {branch: main}}
""",
    "clusters/c/vars.yaml": f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: vars, namespace: flux-system}}
data: {{region: eu-west-1, name: from-configmap}}
---
apiVersion: v1
kind: Secret
metadata: {{name: secret-vars, namespace: flux-system}}
data: {{region: {base64.b64encode(b"us-east-1").decode()}}}
""",
}


def kustomization(name: str, **spec) -> dict:
    base = {"interval": "10m", "prune": True, "path": "./app",
            "sourceRef": {"kind": "GitRepository", "name": "this-repo"}}
    base.update(spec)
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "flux-system"}, "spec": base}


def build(tmp_path: Path, *objects: dict, extra: dict | None = None):
    for name, text in {**APP, **(extra or {})}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    (tmp_path / "clusters/c/flux.yaml").write_text(yaml.safe_dump_all(objects))
    found = discover(tmp_path)
    renders, findings = render_with_flux(found.repo, found.targets, found.kustomizations)
    return {r.target.path: r for r in renders}, findings


def objects(render) -> dict[str, dict]:
    assert render.ok, render.error
    return {o.ref: o.doc for o in render.objects}


POST = {"postBuild": {"substitute": {"region": "inline"}}}


def test_plain_build_matches_the_path_and_is_a_root(tmp_path):
    renders, findings = build(tmp_path, kustomization("app", **POST))
    assert findings == []
    assert set(renders) == {"app", "comp", "clusters/c", "clusters/c#app"}  # comp: nothing kustomize reads pulls it in
    built = objects(renders["clusters/c#app"])
    assert built["Deployment/web"]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "ghcr.io/example-org/app:1.0"
    assert renders["clusters/c#app"].target.directory == "app"


def test_patch_image_namespace_prefix_suffix(tmp_path):
    spec = dict(POST, targetNamespace="team-a", namePrefix="p-", nameSuffix="-s",
                images=[{"name": "app", "newTag": "2.0"}],
                patches=[{"target": {"kind": "Deployment"},
                          "patch": "- op: add\n  path: /spec/replicas\n  value: 4\n"}])
    renders, _ = build(tmp_path, kustomization("app", **spec))
    built = objects(renders["clusters/c#app"])
    deploy = built["Deployment/p-web-s"]
    assert deploy["metadata"]["namespace"] == "team-a"
    assert deploy["spec"]["replicas"] == 4
    # images replace the kustomization's own entry of the same name
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2.0"
    assert built["ConfigMap/p-settings-s"]["metadata"]["namespace"] == "team-a"


def test_components_and_common_metadata(tmp_path):
    spec = dict(POST, components=["../comp"],
                commonMetadata={"labels": {"team": "ml"}, "annotations": {"owner": "platform"}})
    renders, _ = build(tmp_path, kustomization("app", **spec))
    deploy = objects(renders["clusters/c#app"])["Deployment/web"]
    assert deploy["metadata"]["labels"] == {"tier": "gpu", "team": "ml"}
    assert deploy["metadata"]["annotations"] == {"owner": "platform"}
    # commonMetadata is applied to objects, not selectors or templates
    assert "team" not in deploy["spec"]["selector"]["matchLabels"]


def test_inline_and_configmap_substitution_with_defaults(tmp_path):
    spec = {"postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]}}
    renders, _ = build(tmp_path, kustomization("app", **spec))
    data = objects(renders["clusters/c#app"])["ConfigMap/settings"]["data"]
    assert data == {"region": "eu-west-1", "greeting": "hello from-configmap", "shell": "$HOME",
                    "escaped": "${kept}"}
    spec = {"postBuild": {"substitute": {"region": "inline"},
                          "substituteFrom": [{"kind": "ConfigMap", "name": "vars"},
                                             {"kind": "Secret", "name": "secret-vars"}]}}
    renders, _ = build(tmp_path, kustomization("app", **spec))
    data = objects(renders["clusters/c#app"])["ConfigMap/settings"]["data"]
    assert data["region"] == "inline"  # inline wins over ConfigMap and Secret
    assert data["greeting"] == "hello from-configmap"
    spec = {"postBuild": {"substituteFrom": [{"kind": "Secret", "name": "secret-vars"}]}}
    renders, _ = build(tmp_path, kustomization("app", **spec))
    data = objects(renders["clusters/c#app"])["ConfigMap/settings"]["data"]
    assert data["region"] == "us-east-1" and data["greeting"] == "hello world"  # default used


def test_missing_variable_is_an_error(tmp_path):
    renders, _ = build(tmp_path, kustomization("app", postBuild={"substitute": {"other": "x"}}))
    render = renders["clusters/c#app"]
    assert not render.ok
    assert "ConfigMap/settings" in render.error and "'region' is not set" in render.error
    assert render.error_source.file == "clusters/c/flux.yaml"


def test_optional_and_missing_substitute_from(tmp_path):
    spec = {"postBuild": {"substitute": {"region": "r"},
                          "substituteFrom": [{"kind": "ConfigMap", "name": "absent", "optional": True}]}}
    renders, _ = build(tmp_path, kustomization("app", **spec))
    assert renders["clusters/c#app"].ok
    spec["postBuild"]["substituteFrom"][0]["optional"] = False
    renders, _ = build(tmp_path, kustomization("app", **spec))
    assert "ConfigMap/absent is not in this cluster's render" in renders["clusters/c#app"].error


def test_opt_out_annotation(tmp_path):
    extra = {"app/cm.yaml": APP["app/cm.yaml"].replace(
        "metadata: {name: settings}",
        "metadata:\n  name: settings\n  annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}")}
    renders, _ = build(tmp_path, kustomization("app", postBuild={"substitute": {"x": "y"}}), extra=extra)
    data = objects(renders["clusters/c#app"])["ConfigMap/settings"]["data"]
    assert data["region"] == "${region}" and data["escaped"] == "$${kept}"


def test_depends_on_cycle_and_missing_dependency(tmp_path):
    a = kustomization("a", dependsOn=[{"name": "b"}], **POST)
    b = kustomization("b", dependsOn=[{"name": "a"}], **POST)
    c = kustomization("c", dependsOn=[{"name": "nope"}], **POST)
    _, findings = build(tmp_path, a, b, c)
    rules = sorted((f.rule, f.message) for f in findings)
    assert ("flux-dependency-missing", "dependsOn flux-system/nope, which is not a Kustomization in this cluster") \
        in rules
    cycle = [m for r, m in rules if r == "flux-dependency-cycle"]
    assert cycle == ["dependsOn cycle: a -> b -> a"] or cycle == ["dependsOn cycle: b -> a -> b"]
    assert all(f.file == "clusters/c/flux.yaml" for f in findings)


def test_bad_path_names_the_flux_file(tmp_path):
    renders, findings = build(tmp_path, kustomization("app", path="./apps/nowhere"))
    assert "clusters/c#app" not in renders
    assert [(f.rule, f.file, f.target) for f in findings] == [
        ("flux-path-missing", "clusters/c/flux.yaml", "clusters/c#app")]


def test_other_sources_are_skipped_with_a_reason(tmp_path):
    oci = kustomization("oci", sourceRef={"kind": "OCIRepository", "name": "charts"})
    other = kustomization("other", sourceRef={"kind": "GitRepository", "name": "someone-else"})
    renders, findings = build(tmp_path, oci, other)
    assert "clusters/c#oci" not in renders and "clusters/c#other" not in renders
    messages = {f.target: (f.rule, f.severity, f.message) for f in findings}
    assert messages["clusters/c#oci"] == ("flux-source-skipped", "warning",
                                          "not built: its source is a OCIRepository, not this repository")
    assert "someone-else" in messages["clusters/c#other"][2]


def test_path_without_kustomization_is_generated(tmp_path):
    extra = {"plain/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n"}
    renders, _ = build(tmp_path, kustomization("plain", path="./plain"), extra=extra)
    assert list(objects(renders["clusters/c#plain"])) == ["ConfigMap/plain"]


def test_repository_is_never_written(tmp_path):
    build(tmp_path, kustomization("app", targetNamespace="x", **POST))
    assert (tmp_path / "app/kustomization.yaml").read_text() == APP["app/kustomization.yaml"].lstrip()


@pytest.mark.parametrize("text,variables,expected", [
    ("a ${x} b", {"x": "1"}, "a 1 b"),
    ("${x:=d}", {}, "d"),
    ("${x:=d}", {"x": ""}, "d"),
    ("${x=d}", {"x": ""}, ""),
    ("${x:-d}", {}, "d"),
    ("$x ${y}", {"x": "no", "y": "yes"}, "$x yes"),
    ("$${x}", {"x": "1"}, "${x}"),
])
def test_substitution_syntax(text, variables, expected):
    assert flux.substitute(text, variables) == expected


def test_substitution_strict():
    with pytest.raises(InputError, match="'x' is not set"):
        flux.substitute("${x}", {})
