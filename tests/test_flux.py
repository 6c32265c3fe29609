"""Flux builds: each Flux Kustomization rendered as kustomize-controller
would, checked field by field on a small fixture tree."""

from __future__ import annotations

import base64
import subprocess
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


SECOND_CLUSTER = {  # a second cluster root, after clusters/c in path order: defects go in the last root
    "clusters/z/kustomization.yaml": "resources: [source.yaml, flux.yaml]\n",
    "clusters/z/source.yaml": APP["clusters/c/source.yaml"],
}


def build_two(tmp_path: Path, last: list[dict], extra: dict | None = None):
    (tmp_path / "clusters/z").mkdir(parents=True, exist_ok=True)
    (tmp_path / "clusters/z/flux.yaml").write_text(yaml.safe_dump_all(last))
    return build(tmp_path, kustomization("app", **POST), extra={**SECOND_CLUSTER, **(extra or {})})


def test_a_source_the_cluster_does_not_declare_is_an_error(tmp_path):
    # issue 22: that Kustomization never reconciles; the finding names its file and line
    missing = kustomization("oci", sourceRef={"kind": "OCIRepository", "name": "charts"})
    typo = kustomization("typo", sourceRef={"kind": "GitRepository", "name": "this-rep0"}, **POST)
    renders, findings = build_two(tmp_path, [kustomization("ok", **POST), missing, typo])
    assert "clusters/z#ok" in renders and "clusters/z#oci" not in renders and "clusters/z#typo" not in renders
    got = {f.target: f for f in findings}
    assert set(got) == {"clusters/z#oci", "clusters/z#typo"}
    assert (got["clusters/z#oci"].rule, got["clusters/z#oci"].severity) == ("flux-source-missing", "error")
    assert got["clusters/z#typo"].message.startswith(
        "not built: sourceRef GitRepository/this-rep0: GitRepository flux-system/this-rep0 is not declared in "
        "this cluster, so this Kustomization never reconciles")
    assert (got["clusters/z#typo"].file, got["clusters/z#typo"].line) == ("clusters/z/flux.yaml", 30)


def test_a_source_the_config_says_the_cluster_provides_is_a_notice(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/policy.yaml").write_text(
        "cluster:\n  provides:\n    - kind: OCIRepository\n      name: charts\n"
        "      reason: pushed by the platform team's pipeline\n")
    missing = kustomization("oci", sourceRef={"kind": "OCIRepository", "name": "charts"})
    _, findings = build_two(tmp_path, [missing])
    assert [(f.target, f.rule, f.severity) for f in findings] == [
        ("clusters/z#oci", "flux-source-not-built", "notice")]
    assert "provided by the cluster" in findings[0].message and "platform team's pipeline" in findings[0].message


def test_sources_whose_artifact_is_elsewhere_are_notices_never_silence(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@example.invalid:repo.git"],
                   check=True)
    sources = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: charts, namespace: flux-system}
spec: {interval: 1m, url: oci://example.invalid/charts, ref: {tag: "1"}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: Bucket
metadata: {name: bucket, namespace: flux-system}
spec: {interval: 1m, bucketName: b, endpoint: s3.example.invalid}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: platform, namespace: flux-system}
spec: {interval: 1m, url: https://example.invalid/platform, ref: {branch: main}}
"""
    last = [kustomization("oci", sourceRef={"kind": "OCIRepository", "name": "charts"}),
            kustomization("bucket", sourceRef={"kind": "Bucket", "name": "bucket"}),
            kustomization("platform", sourceRef={"kind": "GitRepository", "name": "platform"}),
            kustomization("ours", **POST)]
    extra = {"clusters/z/kustomization.yaml": "resources: [source.yaml, flux.yaml, more.yaml]\n",
             "clusters/z/more.yaml": sources}
    renders, findings = build_two(tmp_path, last, extra=extra)
    assert "clusters/z#ours" in renders  # its URL is this checkout's remote (ssh and https forms compared)
    got = {f.target: (f.rule, f.severity) for f in findings}
    assert got == {f"clusters/z#{n}": ("flux-source-not-built", "notice") for n in ("oci", "bucket", "platform")}
    assert all(f.message.startswith("not built: the artifact is not in this repository: ") for f in findings)
    assert "https://example.invalid/platform" in next(f.message for f in findings if f.target.endswith("platform"))


def test_a_build_that_declares_kustomizations_leads_to_them_once(tmp_path):
    """A Kustomization applying a directory of Kustomizations: each is a root
    of the cluster (named after the cluster, not the parent), dependsOn spans
    the levels, and one that applies its own directory ends there."""
    nested = [kustomization("apps", dependsOn=[{"name": "infra"}], **POST),
              kustomization("loop", path="./layers")]
    extra = {"layers/apps.yaml": yaml.safe_dump_all(nested)}
    renders, findings = build_two(tmp_path, [kustomization("infra", path="./layers")], extra=extra)
    assert {p for p in renders if p.startswith("clusters/z")} == {
        "clusters/z", "clusters/z#infra", "clusters/z#apps", "clusters/z#loop"}
    assert findings == []
    assert objects(renders["clusters/z#apps"])["Deployment/web"]
    assert renders["clusters/z#apps"].target.flux.file == "layers/apps.yaml"


def test_a_generated_kustomization_leaves_out_what_the_source_ignores(tmp_path):
    extra = {"plain/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
             "plain/sub/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
             "plain/skip/c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
             "plain/.sourceignore": "skip/\n"}
    renders, _ = build_two(tmp_path, [kustomization("plain", path="./plain")], extra=extra)
    assert sorted(objects(renders["clusters/z#plain"])) == ["ConfigMap/a", "ConfigMap/b"]
    assert "plain/skip/c.yaml" not in renders["clusters/z#plain"].target.sources
    # and the GitRepository's own spec.ignore
    ignoring = APP["clusters/c/source.yaml"].replace("ref: {branch: main}", "ref: {branch: main}, ignore: 'sub/'")
    renders, _ = build_two(tmp_path, [kustomization("plain", path="./plain")],
                           extra={**extra, "clusters/z/source.yaml": ignoring})
    assert sorted(objects(renders["clusters/z#plain"])) == ["ConfigMap/a"]


GENERATOR = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: charts, namespace: flux-system}
spec: {interval: 1m, url: oci://example.invalid/charts, ref: {tag: "1"}}
---
apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata: {name: gen, namespace: flux-system}
spec:
  sources:
    - {alias: repo, kind: GitRepository, name: this-repo}
    - {alias: charts, kind: OCIRepository, name: charts}
  artifacts:
    - name: app
      copy:
        - {from: "@repo/app/**", to: "@artifact/deploy/"}
        - {from: "@repo/comp/", to: "@artifact/"}
    - name: from-oci
      copy:
        - {from: "@charts/**", to: "@artifact/"}
    - name: broken
      copy:
        - {from: "@repo/nowhere/*.yaml", to: "@artifact/"}
"""


def test_a_kustomization_of_an_external_artifact_is_built_inside_it(tmp_path):
    extra = {"clusters/z/kustomization.yaml": "resources: [source.yaml, flux.yaml, generator.yaml]\n",
             "clusters/z/generator.yaml": GENERATOR}
    art = {"kind": "ExternalArtifact", "name": "app"}
    last = [kustomization("art", sourceRef=art, path="./deploy", components=["../comp"], **POST),
            kustomization("art-missing-path", sourceRef=art, path="./app"),
            kustomization("oci", sourceRef={"kind": "ExternalArtifact", "name": "from-oci"}),
            kustomization("broken", sourceRef={"kind": "ExternalArtifact", "name": "broken"}),
            kustomization("nobody", sourceRef={"kind": "ExternalArtifact", "name": "nobody-makes-it"})]
    renders, findings = build_two(tmp_path, last, extra=extra)
    built = renders["clusters/z#art"]
    assert objects(built)["Deployment/web"]["metadata"]["labels"] == {"tier": "gpu"}  # the component, copied too
    assert built.target.directory == "app"  # the repository directory the artifact's deploy/ is
    assert {"app/kustomization.yaml", "app/deploy.yaml", "clusters/z/flux.yaml"} <= set(built.target.sources)
    deploy = next(o for o in built.objects if o.kind == "Deployment")
    assert deploy.source.file == "app/deploy.yaml"  # findings point at the file a person edits
    got = {f.target: f for f in findings}
    assert set(got) == {"clusters/z#art-missing-path", "clusters/z#oci", "clusters/z#broken", "clusters/z#nobody"}
    assert got["clusters/z#art-missing-path"].rule == "flux-path-missing"
    assert "does not exist in ExternalArtifact flux-system/app (it holds comp/, deploy/)" in \
        got["clusters/z#art-missing-path"].message
    assert (got["clusters/z#oci"].rule, got["clusters/z#oci"].severity) == ("flux-source-not-built", "notice")
    assert "made by ArtifactGenerator/gen from OCIRepository flux-system/charts" in got["clusters/z#oci"].message
    assert (got["clusters/z#broken"].rule, got["clusters/z#broken"].severity) == ("flux-artifact-invalid", "error")
    assert "no file matches 'nowhere/*.yaml'" in got["clusters/z#broken"].message
    assert (got["clusters/z#nobody"].rule, got["clusters/z#nobody"].severity) == ("flux-source-missing", "error")
    # the artifact is laid out in a temporary directory, never in the repository
    assert not (tmp_path / "deploy").exists()


def test_bootstrap_source_is_implied_by_the_flux_system_directory(tmp_path):
    """`flux bootstrap` writes GitRepository flux-system/flux-system into
    clusters/<name>/flux-system/gotk-sync.yaml, pointing at this repository."""
    boot = kustomization("app", sourceRef={"kind": "GitRepository", "name": "flux-system"}, **POST)
    extra = {"clusters/boot/apps.yaml": yaml.safe_dump(boot),
             "clusters/boot/flux-system/kustomization.yaml": "resources: [gotk-sync.yaml]\n",
             "clusters/boot/flux-system/gotk-sync.yaml": "# written by flux bootstrap\n",
             "clusters/noboot/apps.yaml": yaml.safe_dump(boot)}
    renders, findings = build(tmp_path, kustomization("app", **POST), extra=extra)
    assert renders["clusters/boot"].target.generated and renders["clusters/boot#app"].ok
    assert "clusters/boot/flux-system" not in renders  # in the cluster directory's generated kustomization
    assert [(f.target, f.rule) for f in findings] == [("clusters/noboot#app", "flux-source-missing")]


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


def test_a_generator_with_a_path_pattern_makes_one_artifact_per_directory(tmp_path):
    """spec.pathPattern: each directory of the source that matches makes the
    artifacts, `{captures}` filled in (lowercased in names, as written in
    copy paths), so a Kustomization can name `web-art`."""
    generator = """
apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata: {name: per-app, namespace: flux-system}
spec:
  sources: [{alias: repo, kind: GitRepository, name: this-repo}]
  pathPattern: "@repo/services/{app}"
  artifacts:
    - name: "{app}-art"
      copy: [{from: "@repo/services/{app}/**", to: "@artifact/"}]
"""
    extra = {"clusters/z/kustomization.yaml": "resources: [source.yaml, flux.yaml, generator.yaml]\n",
             "clusters/z/generator.yaml": generator,
             "services/Web/kustomization.yaml": "resources: [cm.yaml]\n",
             "services/Web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
             "services/api/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api}\n"}
    last = [kustomization("web", sourceRef={"kind": "ExternalArtifact", "name": "web-art"}, path="./"),
            kustomization("api", sourceRef={"kind": "ExternalArtifact", "name": "api-art"}, path="./"),
            kustomization("none", sourceRef={"kind": "ExternalArtifact", "name": "db-art"}, path="./")]
    renders, findings = build_two(tmp_path, last, extra=extra)
    assert list(objects(renders["clusters/z#web"])) == ["ConfigMap/web"]
    assert renders["clusters/z#web"].target.directory == "services/Web"
    assert list(objects(renders["clusters/z#api"])) == ["ConfigMap/api"]  # a generated kustomization in it
    assert [(f.target, f.rule) for f in findings] == [("clusters/z#none", "flux-source-missing")]


def test_only_renders_with_a_flux_object_are_read_for_flux_objects():
    """A Flux build labels every object kustomize.toolkit.fluxcd.io/name: that
    label is no Flux object, and such a render is not parsed for one; an
    object of a Flux API is found whatever the quoting of its apiVersion."""
    from scripts.loading.fluxcluster import FLUX_API_LINE

    labelled = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    kustomize.toolkit.fluxcd.io/name: x\n"
    assert not FLUX_API_LINE.search(labelled)
    for line in ("apiVersion: kustomize.toolkit.fluxcd.io/v1", 'apiVersion: "source.toolkit.fluxcd.io/v1"',
                 "apiVersion: 'source.extensions.fluxcd.io/v1beta1'"):
        assert FLUX_API_LINE.search(labelled + "---\n" + line + "\nkind: X\n"), line
