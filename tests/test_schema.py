"""The schema stage: strict like kubeconform -strict, no silent skips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import crdschemas, schema
from scripts.errors import InputError
from scripts.schema import SchemaStore, SkipList, validate_object
from tests.conftest import REPO, find, make_render

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {x-kubernetes-int-or-string: true}
                free: {type: object, x-kubernetes-preserve-unknown-fields: true}
              required: [size]
"""


def _validate(store, obj, skips=None):
    return validate_object(store, skips or SkipList(), "t", obj, None)


def test_unknown_field_in_core_kind_is_an_error(render_of):
    render = render_of("overlays/prod")
    dep = find(render, "Deployment")
    dep.doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy2"] = "Always"
    findings = _validate(SchemaStore(REPO, "1.34"), dep)
    assert findings and "imagePullPolicy2" in findings[0].message
    assert findings[0].message.startswith("spec.template.spec.containers[0]")


def test_custom_resources_are_strict(render_of):
    render = render_of("overlays/prod")
    store = SchemaStore(REPO, "1.34")
    for kind in ("VirtualService", "ServiceMonitor", "PeerAuthentication"):
        obj = find(render, kind)
        assert _validate(store, obj) == []
        obj.doc["spec"]["unexpected"] = True
        assert "'unexpected' was unexpected" in _validate(store, obj)[0].message


def test_wrong_type_inside_optional_points_at_the_field(render_of):
    obj = find(render_of("overlays/prod"), "DestinationRule")
    obj.doc["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] = "five"
    message = _validate(SchemaStore(REPO, "1.34"), obj)[0].message
    assert message.startswith("spec.trafficPolicy.outlierDetection.consecutive5xxErrors")


def test_kind_without_schema_is_an_error_unless_skipped():
    render = make_render([{"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}])
    store = SchemaStore(REPO, "1.34")
    findings = _validate(store, render.objects[0])
    assert findings[0].rule == "schema-missing" and "schemas/skip.yaml" in findings[0].message
    skips = SkipList({("example.com/v1", "Gadget"): "vendor CRD not published"})
    assert _validate(store, render.objects[0], skips) == []


def test_skip_list_requires_a_reason(tmp_path):
    path = tmp_path / "skip.yaml"
    path.write_text("skip:\n  - apiVersion: example.com/v1\n    kind: Gadget\n")
    with pytest.raises(InputError, match="non-empty `reason`"):
        SkipList.load(path, "schemas/skip.yaml")
    path.write_text("skip:\n  - kind: Gadget\n    reason: no schema published upstream\n")
    assert SkipList.load(path, "x").reason("any/v1", "Gadget") == "no schema published upstream"


def test_removed_api_is_missing():
    render = make_render([{"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
                           "spec": {}}])
    findings = _validate(SchemaStore(REPO, "1.34"), render.objects[0])
    assert findings[0].rule == "schema-missing" and "not served by Kubernetes 1.34" in findings[0].message


def test_user_crds_are_loaded_strictly(tmp_path):
    (tmp_path / "schemas" / "crds").mkdir(parents=True)
    (tmp_path / "schemas" / "crds" / "widget.yaml").write_text(CRD)
    store = SchemaStore(tmp_path, "1.34")
    good = make_render([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                         "spec": {"size": "10", "free": {"anything": 1}}}]).objects[0]
    assert _validate(store, good) == []
    good.doc["spec"]["extra"] = 1
    assert "'extra' was unexpected" in _validate(store, good)[0].message
    good.doc["spec"].pop("extra")
    good.doc["spec"].pop("size")
    assert "size" in _validate(store, good)[0].message


def test_strictify_closes_objects_and_unwraps_optional():
    schema_in = {"type": "object", "properties": {"a": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}],
                                                        "title": "A"}}}
    out = crdschemas.strictify(schema_in)
    assert out["additionalProperties"] is False
    assert out["properties"]["a"] == {"$ref": "#/$defs/A"}


class FakeSession:
    def __init__(self, text):
        self.text = text
        self.urls = []

    def get(self, url, timeout):
        self.urls.append(url)
        session = self

        class Response:
            text = session.text

            def raise_for_status(self):
                return None
        return Response()


def test_sync_writes_only_crds_offline(tmp_path):
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  widgets: https://example.invalid/widgets-v1.yaml\n")
    session = FakeSession(CRD + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    written = crdschemas.sync(sources, tmp_path / "crds", session=session)
    assert session.urls == ["https://example.invalid/widgets-v1.yaml"]
    text = written[0].read_text()
    assert "CustomResourceDefinition" in text and "kind: Namespace" not in text
    assert ("example.com/v1", "Widget") in crdschemas.load_crd_dir(tmp_path / "crds", tmp_path)


def test_sync_rejects_a_source_without_crds(tmp_path):
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  nothing: https://example.invalid/x.yaml\n")
    with pytest.raises(InputError, match="holds no CustomResourceDefinition"):
        crdschemas.sync(sources, tmp_path / "crds", session=FakeSession("kind: ConfigMap\n"))


def test_committed_schemas_match_the_pinned_models():
    """schemas/generated is what `make schemas` produces from the pinned
    cloudcoil packages; a version bump without regenerating fails here."""
    generated = crdschemas.generated_schemas()
    root = schema.GENERATED_DIR
    committed = {p.relative_to(root).as_posix() for p in root.rglob("*.json")}
    expected = {crdschemas.schema_path(Path("."), av, k).as_posix() for av, k in generated}
    assert committed == expected
    for (api_version, kind), content in generated.items():
        on_disk = json.loads(crdschemas.schema_path(root, api_version, kind).read_text())
        assert on_disk == json.loads(json.dumps(content)), f"{api_version} {kind} is stale: run `make schemas`"
