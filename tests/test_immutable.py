"""Updates the API server refuses (immutable fields), at pull-request time."""

from __future__ import annotations

import copy
import json

import pytest

from scripts.core.model import FluxSource, Render, Resource, Target
from scripts.stages import immutable
from tests.test_diff import DEPLOY, git, history, run  # noqa: F401 - history is a fixture

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "n"},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "web", "image": "x:1"}]}}}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"},
           "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.10", "ports": [{"port": 80}]}}
CLAIM = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c", "namespace": "n"},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                  "resources": {"requests": {"storage": "10Gi"}}}}
CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "namespace": "n"},
          "immutable": True, "data": {"a": "1"}}
JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "n"},
       "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "j", "image": "x:1"}]}}}}
BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "b", "namespace": "n"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}, "subjects": []}
STATEFUL = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "n"},
            "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}}}}


def _render(doc: dict, flux: dict | None = None) -> Render:
    target = Target(path="overlays/prod", directory="overlays/prod",
                    flux=FluxSource(kustomization=flux) if flux else None)
    return Render(target=target, objects=[Resource(doc=copy.deepcopy(doc))])


def _messages(old: dict, new: dict, flux: dict | None = None) -> list[str]:
    return [f.message for f in immutable.findings(_render(old), _render(new, flux))]


def _edit(doc: dict, change) -> dict:
    out = copy.deepcopy(doc)
    change(out)
    return out


@pytest.mark.parametrize("old, change, field", [
    (DEPLOYMENT, lambda d: d["spec"]["selector"]["matchLabels"].update(tier="api"), "spec.selector"),
    (STATEFUL, lambda d: d["spec"].update(serviceName="db-headless"), "spec.serviceName"),
    (STATEFUL, lambda d: d["spec"].update(volumeClaimTemplates=[{"metadata": {"name": "data"}}]),
     "spec.volumeClaimTemplates"),
    (JOB, lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="x:2"), "spec.template"),
    (SERVICE, lambda d: d["spec"].update(clusterIP="10.0.0.11"), "spec.clusterIP"),
    (SERVICE, lambda d: d["spec"].update(type="ExternalName", externalName="db.example.com"), "spec.clusterIP"),
    (CLAIM, lambda d: d["spec"].update(storageClassName="slow"), "spec"),
    (CLAIM, lambda d: d["spec"]["resources"]["requests"].update(storage="5Gi"), "spec.resources.requests.storage"),
    (CONFIG, lambda d: d["data"].update(a="2"), "data"),
    (CONFIG, lambda d: d.update(immutable=False), "immutable"),
    (BINDING, lambda d: d["roleRef"].update(name="admin"), "roleRef"),
])
def test_refused_changes(old, change, field):
    messages = _messages(old, _edit(old, change))
    assert messages and messages[0].startswith(f"{field}: ")
    assert "Flux's apply fails" in messages[0] and "force: true" in messages[0]


@pytest.mark.parametrize("old, change", [
    (DEPLOYMENT, lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="x:2")),
    (STATEFUL, lambda d: d["spec"].update(replicas=3, minReadySeconds=5)),
    (SERVICE, lambda d: d["spec"].pop("clusterIP")),  # unset keeps the allocated IP
    (SERVICE, lambda d: d["spec"].update(type="ExternalName", externalName="db.example.com", clusterIP="")),
    (CLAIM, lambda d: d["spec"]["resources"]["requests"].update(storage="20Gi")),
    (CONFIG, lambda d: d["metadata"].update(labels={"a": "b"})),
    (dict(CONFIG, immutable=False), lambda d: d["data"].update(a="2")),
    (BINDING, lambda d: d.update(subjects=[{"kind": "ServiceAccount", "name": "x", "namespace": "n"}])),
    # another name is another object: a generated ConfigMap's new hash is a create, not an update
    (CONFIG, lambda d: d["metadata"].update(name="m-5f7h9k2c4d")),
])
def test_allowed_changes(old, change):
    assert _messages(old, _edit(old, change)) == []


def test_the_finding_says_what_flux_does():
    new = _edit(DEPLOYMENT, lambda d: d["spec"]["selector"]["matchLabels"].update(tier="api"))
    flux = {"metadata": {"name": "apps"}, "spec": {"force": True}}
    assert "Flux Kustomization apps sets force: true, so Flux deletes the object and creates it again" \
        in _messages(DEPLOYMENT, new, flux)[0]
    flux["spec"]["force"] = False
    assert "Flux Kustomization apps fails to apply" in _messages(DEPLOYMENT, new, flux)[0]


SELECTOR_CHANGE = DEPLOY.replace("matchLabels: {{app: web}}", "matchLabels: {{app: web, tier: api}}") \
                        .replace("labels: {{app: web}}", "labels: {{app: web, tier: api}}")


def test_diff_flags_an_immutable_change(history):  # noqa: F811 - the fixture
    (history / "apps/a/deploy.yaml").write_text(SELECTOR_CHANGE.format(replicas=3))
    proc = run(history, "diff", "--base", "HEAD", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    targets = {t["path"]: t for t in json.loads(proc.stdout)["targets"]}
    assert [(i["kind"], i["name"]) for i in targets["apps/a"]["immutable"]] == [("Deployment", "web")]
    assert targets["clusters/x#a"]["immutable"][0]["message"].startswith("spec.selector: field is immutable")
    assert "Flux Kustomization a fails to apply" in targets["clusters/x#a"]["immutable"][0]["message"]
    text = run(history, "diff", "--base", "HEAD").stdout
    assert "! refused on update: Deployment/web: spec.selector: field is immutable" in text
    markdown = run(history, "diff", "--base", "HEAD", "--format", "markdown").stdout
    assert "refused on update: Deployment/web" in markdown


def test_validate_changed_fails_on_an_immutable_change(history):  # noqa: F811 - the fixture
    (history / "apps/a/deploy.yaml").write_text(SELECTOR_CHANGE.format(replicas=3))
    report = history / "r.json"
    proc = run(history, "validate", "--changed", "--base", "HEAD", "--stage", "schema", "--report-json", str(report))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = [(f["target"], f["rule"]) for f in json.loads(report.read_text())["findings"]]
    assert found == [("apps/a", "immutable-field"), ("clusters/x#a", "immutable-field")]
    (history / "apps/a/deploy.yaml").write_text(DEPLOY.format(replicas=4))
    proc = run(history, "validate", "--changed", "--base", "HEAD", "--stage", "schema", "--report-json", str(report))
    assert proc.returncode == 0 and json.loads(report.read_text())["findings"] == []
