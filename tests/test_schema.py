"""The schema stage: strict like kubeconform -strict, no silent skips."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from scripts.core.errors import InputError
from scripts.stages import crdschemas, schema
from scripts.stages.schema import SchemaStore, SkipList, validate_object
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


def _validate(store, obj, skips=None, next_version=None):
    return validate_object(store, skips or SkipList(), "t", obj, next_version)


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


def test_strictify_closes_objects_and_keeps_int_or_string():
    schema_in = {"type": "object", "description": "doc", "properties": {
        "a": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "free": {"type": "object", "properties": {"x": {"type": "string"}},
                 "x-kubernetes-preserve-unknown-fields": True}}}
    out = crdschemas.strictify(schema_in)
    assert out["additionalProperties"] is False and "description" not in out
    assert out["properties"]["a"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert "additionalProperties" not in out["properties"]["free"]


class FakeSession:
    def __init__(self, content: bytes):
        self.content = content
        self.urls = []

    def get(self, url, timeout):
        self.urls.append(url)
        session = self

        class Response:
            content = session.content

            def raise_for_status(self):
                return None
        return Response()


def _sources(tmp_path, content: bytes, sha: str | None = None) -> Path:
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  - project: example\n    component: widgets\n    version: '1.0'\n"
        "    path: config/widgets.yaml\n    url: https://example.invalid/v1.0/config/widgets.yaml\n"
        f"    sha256: {sha or hashlib.sha256(content).hexdigest()}\n")
    return sources


def test_sync_downloads_each_pinned_file_and_checks_its_digest(tmp_path):
    content = CRD.encode()
    session = FakeSession(content)
    written = crdschemas.sync(_sources(tmp_path, content), tmp_path / "crds", session=session)
    assert session.urls == ["https://example.invalid/v1.0/config/widgets.yaml"]
    assert written == [tmp_path / "crds" / "widgets" / "widgets.yaml"]
    assert written[0].read_bytes() == content


def test_sync_refuses_a_download_whose_digest_differs_and_keeps_the_old_file(tmp_path):
    good = tmp_path / "crds" / "widgets" / "widgets.yaml"
    good.parent.mkdir(parents=True)
    good.write_text("previous download\n")
    sources = _sources(tmp_path, b"what was pinned")
    with pytest.raises(InputError, match="sha256 is [0-9a-f]{64}, the pin says"):
        crdschemas.sync(sources, tmp_path / "crds", session=FakeSession(CRD.encode()))
    assert good.read_text() == "previous download\n"


def test_sync_rejects_a_source_without_crds(tmp_path):
    content = b"kind: ConfigMap\n"
    with pytest.raises(InputError, match="holds no CustomResourceDefinition"):
        crdschemas.sync(_sources(tmp_path, content), tmp_path / "crds", session=FakeSession(content))


@pytest.mark.parametrize("text, error", [
    ("sources: {}\n", "expected `sources:`"),
    ("sources:\n  - project: x\n", "lacks component, version, path, url, sha256"),
    ("sources:\n  - {project: x, component: c, version: '1', path: a.yaml, url: u, sha256: nope}\n",
     "not a sha256 digest"),
])
def test_sources_file_errors_name_the_file(tmp_path, text, error):
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=error) as caught:
        crdschemas.load_sources(path)
    assert caught.value.file == str(path)


def test_generate_needs_a_synced_copy_that_matches_the_pin(tmp_path):
    content = CRD.encode()
    sources = _sources(tmp_path, content)
    with pytest.raises(InputError, match="run `python -m scripts schemas sync` first"):
        crdschemas.write_generated(sources, tmp_path / "crds", tmp_path / "out")
    local = tmp_path / "crds" / "widgets" / "widgets.yaml"
    local.parent.mkdir(parents=True)
    local.write_bytes(content + b"# edited\n")
    with pytest.raises(InputError, match="the pin says"):
        crdschemas.write_generated(sources, tmp_path / "crds", tmp_path / "out")
    local.write_bytes(content)
    stale = tmp_path / "out" / "example.com" / "v0" / "gone.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    written = crdschemas.write_generated(sources, tmp_path / "crds", tmp_path / "out")
    assert written == [tmp_path / "out" / "example.com" / "v1" / "widget.json"]
    assert not stale.exists() and not stale.parent.exists()


def test_committed_schemas_come_from_the_current_pins():
    """Every committed schema names the pinned file it was generated from: a
    pin bumped without regenerating fails here, offline."""
    sources = crdschemas.load_sources(REPO / "schemas" / "sources.yaml")
    assert {s.project for s in sources} == {"istio", "flux", "prometheus-operator", "gateway-api"}
    for source in sources:
        tag = source.version if source.project == "istio" else f"v{source.version}"
        assert f"/{tag}/{source.path}" in source.url, f"{source.url} is not taken at the release tag"
    root = schema.GENERATED_DIR
    pins = {(s.project, s.component, s.version, s.path, s.sha256) for s in sources}
    for path in root.rglob("*.json"):
        made_from = json.loads(path.read_text())[crdschemas.SOURCE_KEY]
        assert tuple(made_from[k] for k in ("project", "component", "version", "path", "sha256")) in pins, \
            f"{path} was generated from a file no longer pinned: run `make schemas`"


def test_committed_schemas_regenerate_identically():
    """schemas/generated is exactly what `make schemas` makes from the pinned
    files; needs them downloaded (`python -m scripts schemas sync`)."""
    sources = crdschemas.load_sources(REPO / "schemas" / "sources.yaml")
    root = schema.GENERATED_DIR
    crds = REPO / ".cache" / "crds"
    if not all((crds / s.local_name).is_file() for s in sources):
        pytest.skip("the pinned CRD files are not downloaded (python -m scripts schemas sync)")
    generated = crdschemas.generated_schemas(REPO / "schemas" / "sources.yaml", crds)
    committed = {p.relative_to(root).as_posix() for p in root.rglob("*.json")}
    assert committed == {crdschemas.schema_path(Path("."), av, k).as_posix() for av, k in generated}
    for (api_version, kind), content in generated.items():
        on_disk = json.loads(crdschemas.schema_path(root, api_version, kind).read_text())
        assert on_disk == json.loads(json.dumps(content)), f"{api_version} {kind} is stale: run `make schemas`"


def test_the_next_minor_is_checked_as_warnings():
    hpa = make_render([{"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
                        "metadata": {"name": "h"},
                        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3}}])
    findings = schema.run(REPO, [hpa], "1.25")
    assert [(f.rule, f.severity) for f in findings] == [("schema-next-version", "warning")]
    assert "not served by Kubernetes 1.26" in findings[0].message
    assert schema.next_minor(schema.available_versions()[-1]) is None


def test_a_field_the_next_minor_refuses_is_a_warning(monkeypatch):
    import jsonschema_rs

    store = SchemaStore(REPO, "1.34")
    obj = make_render([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}])
    real = store.validator
    stricter = jsonschema_rs.validator_for({"type": "object", "properties": {"data": False}})
    monkeypatch.setattr(store, "validator", lambda av, k, v=None: stricter if v == "1.35" else real(av, k, v))
    findings = validate_object(store, SkipList(), "t", obj.objects[0], "1.35")
    assert [(f.rule, f.severity) for f in findings] == [("schema-next-version", "warning")]
    assert findings[0].message.startswith("at Kubernetes 1.35: data: ")


def test_the_kubernetes_version_comes_from_config(tmp_path, tree):
    from tests.test_validate_cli import validate

    policy = tree / "config" / "policy.yaml"
    policy.write_text(policy.read_text().replace('kubernetes_version: "1.34"', 'kubernetes_version: "1.33"'))
    out = tmp_path / "r.json"
    proc = validate("--stage", "schema", "--report-json", str(out), cwd=tree)
    assert proc.returncode == 0 and json.loads(out.read_text())["kubernetes_version"] == "1.33"
    proc = validate("--stage", "schema", "--kubernetes-version", "1.35", "--report-json", str(out), cwd=tree)
    assert json.loads(out.read_text())["kubernetes_version"] == "1.35"
    policy.write_text(policy.read_text().replace('kubernetes_version: "1.33"', 'kubernetes_version: "one"'))
    proc = validate("--stage", "schema", cwd=tree)
    assert proc.returncode == 1 and "config/policy.yaml" in proc.stderr and "cluster.kubernetes_version" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sync_without_the_network_is_one_short_line(tmp_path):
    import requests

    class Offline:
        def get(self, url, timeout):
            raise requests.ConnectionError("HTTPSConnectionPool(host='x'): Max retries exceeded (Caused by "
                                           "NameResolutionError(... Name or service not known))")

    content = CRD.encode()
    with pytest.raises(InputError) as caught:
        crdschemas.sync(_sources(tmp_path, content), tmp_path / "crds", session=Offline())
    assert caught.value.message == ("cannot fetch widgets from https://example.invalid/v1.0/config/widgets.yaml: "
                                    "name or service not known")


def test_schema_run_as_renders_arrive_gives_the_findings_of_one_run_at_the_end(real_renders):
    renders = [copy.deepcopy(real_renders[path]) for path in sorted(real_renders)]
    for render in renders[::2]:  # a defect in every other render, the last included
        render.objects[0].doc.setdefault("spec", {})["unknownField"] = 1
    renders[-1].objects[-1].doc["spec"] = {"unknownField": 1}
    at_the_end = [f.as_dict() for f in schema.run(REPO, renders, "1.34")]
    streamed = schema.SchemaRun(REPO, "1.34")
    for render in reversed(renders[:-1]):  # the last never arrives: finish must check it itself
        streamed.add(render)
    assert [f.as_dict() for f in streamed.finish(renders)] == at_the_end
    assert renders[-1].target.path in {f["target"] for f in at_the_end}


GATEWAY = [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "envoy"},
            "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}},
           {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "envoy", "namespace": "gw"},
            "spec": {"gatewayClassName": "envoy", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}]


def test_a_kind_of_a_group_kubernetes_lacks_is_a_custom_resource():
    """*.k8s.io is no sign of a built-in group: Gateway API, snapshots and the
    metrics APIs come from CRDs or add-ons; the built-in groups are the ones
    kubernetes-validate's definitions name."""
    assert schema.is_core_group("networking.k8s.io/v1") and schema.is_core_group("apps/v1")
    assert schema.is_core_group("v1") and schema.is_core_group("extensions/v1beta1")
    assert not schema.is_core_group("gateway.networking.k8s.io/v1")
    assert not schema.is_core_group("snapshot.storage.k8s.io/v1")
    store = SchemaStore(REPO, "1.34")
    snapshot = make_render([{"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                             "metadata": {"name": "s"}}]).objects[0]
    [finding] = _validate(store, snapshot)
    assert finding.rule == "schema-missing" and "not served" not in finding.message
    assert "its group is not built into Kubernetes, so a CRD serves it; add that CRD" in finding.message


def test_gateway_api_kinds_are_checked_against_their_pinned_crds():
    store = SchemaStore(REPO, "1.34")
    render = make_render(GATEWAY)
    assert [_validate(store, o, next_version="1.35") for o in render.objects] == [[], []]
    broken = copy.deepcopy(GATEWAY[1])
    broken["spec"]["listeners"][0]["port"] = 0
    [finding] = _validate(store, make_render([broken]).objects[0])
    assert (finding.rule, finding.message) == ("schema-invalid",
                                               "spec.listeners[0].port: 0 is less than the minimum of 1")


@pytest.mark.parametrize("hostname, refused", [("10.0.0.1", True), ("10.0.0", False), ("tls.example.com", False)])
def test_tlsroute_hostnames_are_not_ips(hostname, refused):
    """Gateway API's CEL rule `self.all(h, !isIP(h))`: the Kubernetes IP library's isIP."""
    backend = {"group": "", "kind": "Service", "name": "svc", "port": 443}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
             "metadata": {"name": "r", "namespace": "n"},
             "spec": {"hostnames": [hostname], "rules": [{"backendRefs": [backend]}]}}
    findings = _validate(SchemaStore(REPO, "1.34"), make_render([route]).objects[0])
    assert [f.rule for f in findings] == (["schema-cel"] if refused else [])


def test_no_deprecated_apis_leaves_custom_resources_to_their_crds():
    """Gateway API's v1 kinds are served by their CRDs, not by Kubernetes: not
    'not served', not deprecated; a removed built-in API still is."""
    from scripts.stages.policy_support import PolicyConfig
    from tests.policy.test_api import check_no_deprecated_apis

    store = SchemaStore(REPO, "1.34")
    config = PolicyConfig.load(REPO)
    assert check_no_deprecated_apis(make_render(GATEWAY), config, "1.34", store) == []
    removed = make_render([{"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "p"}}])
    [violation] = check_no_deprecated_apis(removed, config, "1.34", store)
    assert "not served by Kubernetes 1.34" in violation.problem


def test_cel_rules_see_the_schema_defaults_as_the_api_server_sets_them():
    """Gateway API's backendRef rule reads `group` and `kind`, which default
    to "" and "Service": a route that leaves them out is valid, and one whose
    Service reference lacks its port is still refused."""
    store = SchemaStore(REPO, "1.34")
    backend = {"name": "svc", "port": 80}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "r", "namespace": "n"}, "spec": {"rules": [{"backendRefs": [backend]}]}}
    assert _validate(store, make_render([route]).objects[0]) == []
    del backend["port"]
    obj = make_render([route]).objects[0]
    assert [(f.rule, f.message) for f in _validate(store, obj)] == [
        ("schema-cel", 'spec.rules[0].backendRefs[0]: Invalid value: "object": Must have port for Service reference')]
    assert "group" not in obj.doc["spec"]["rules"][0]["backendRefs"][0]  # the object itself is not changed


def test_strictify_keeps_defaults_as_data_and_fields_named_like_keywords():
    node = {"type": "object", "description": "d", "properties": {
        "group": {"type": "string", "default": ""},
        "config": {"type": "object", "default": {"properties": "a value, not a schema"}},
        "description": {"type": "string", "description": "a field called description"}}}
    out = crdschemas.strictify(node)
    assert out["properties"]["group"]["default"] == ""
    assert out["properties"]["config"]["default"] == {"properties": "a value, not a schema"}
    assert out["properties"]["description"] == {"type": "string"}
    assert "description" not in out and out["additionalProperties"] is False
