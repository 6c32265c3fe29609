"""The CRDs' CEL rules (x-kubernetes-validations), evaluated offline."""

from __future__ import annotations

import json

import pytest

from scripts.stages import celrules, schema
from scripts.stages.schema import SchemaStore, SkipList, validate_object
from tests.conftest import REPO, find, make_render


def _findings(store, doc):
    obj = make_render([doc]).objects[0]
    return validate_object(store, SkipList(), "t", obj, None)


def _messages(store, doc):
    return [f.message for f in _findings(store, doc)]


@pytest.fixture(scope="module")
def store():
    return SchemaStore(REPO, "1.34")


SERVICE_ENTRY = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "s"},
                 "spec": {"hosts": ["models.example.com"], "resolution": "DNS",
                          "ports": [{"number": 443, "name": "https", "protocol": "TLS"}]}}


def test_every_rule_of_the_committed_schemas_compiles():
    environment = celrules.Environment()
    total = 0
    for path in schema.GENERATED_DIR.rglob("*.json"):
        raw = json.loads(path.read_text()).get("x-cel") or []
        for compiled in environment.compile_rules([celrules.Rule.from_json(r) for r in raw]):
            total += 1
            assert compiled.program is not None, f"{path}: {compiled.rule.rule}: {compiled.error}"
    assert total > 300  # Istio alone carries hundreds; fewer means the rules were lost on the way


def test_virtualservice_timeout_below_the_minimum_reads_as_the_api_server(store, render_of):
    render = render_of("overlays/prod")
    virtual_service = find(render, "VirtualService")
    assert validate_object(store, SkipList(), "t", virtual_service, None) == []
    virtual_service.doc["spec"]["http"][-1]["timeout"] = "500us"
    findings = validate_object(store, SkipList(), "t", virtual_service, None)
    index = len(virtual_service.doc["spec"]["http"]) - 1
    assert [(f.rule, f.message) for f in findings] == [
        ("schema-cel",
         f'spec.http[{index}].timeout: Invalid value: "500us": must be a valid duration greater than 1ms')]
    assert findings[0].file and findings[0].kind == "VirtualService"


@pytest.mark.parametrize("change, message", [
    (lambda s: s["ports"][0].update(number=70000),
     "spec.ports[0].number: Invalid value: 70000: port must be between 1-65535"),
    (lambda s: s.update(hosts=["*"]), 'spec.hosts[0]: Invalid value: "*": hostname cannot be wildcard'),
    (lambda s: s["ports"].append({"number": 443, "name": "again", "protocol": "TLS"}),
     'spec.ports: Invalid value: "array": port number cannot be duplicated'),
    (lambda s: s.update(resolution="NONE", endpoints=[{"address": "10.0.0.1"}]),
     'spec: Invalid value: "object": NONE mode cannot set endpoints'),
])
def test_serviceentry_rules(store, change, message):
    doc = json.loads(json.dumps(SERVICE_ENTRY))
    assert _messages(store, doc) == []
    change(doc["spec"])
    assert message in _messages(store, doc)


def test_rules_of_map_keys_and_string_extensions(store):
    peer = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "p"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "portLevelMtls": {"8080": {"mode": "STRICT"}}}}
    assert _messages(store, peer) == []
    peer["spec"]["portLevelMtls"]["0"] = {"mode": "STRICT"}
    assert _messages(store, peer) == ['spec.portLevelMtls: Invalid value: "object": port must be between 1-65535']
    endpoint = json.loads(json.dumps(SERVICE_ENTRY))
    endpoint["spec"].update(resolution="STATIC", endpoints=[{"address": "unix://relative"}])
    endpoint["spec"].pop("ports")
    assert 'spec.endpoints[0].address: Invalid value: "unix://relative": UDS must be an absolute path or ' \
           'abstract socket' in _messages(store, endpoint)


def test_url_functions_follow_kubernetes(store):
    jwt = {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication", "metadata": {"name": "r"},
           "spec": {"jwtRules": [{"issuer": "i", "jwksUri": "https://idp.example.com/jwks"}]}}
    assert _messages(store, jwt) == []
    jwt["spec"]["jwtRules"][0]["jwksUri"] = "ftp://idp.example.com/jwks"
    assert _messages(store, jwt) == [
        'spec.jwtRules[0].jwksUri: Invalid value: "ftp://idp.example.com/jwks": url must have scheme http:// or https://']
    wasm = {"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin", "metadata": {"name": "w"},
            "spec": {"url": "registry.example.com/filters/auth:1.0"}}
    assert _messages(store, wasm) == []  # not a URL: judged as http://<it>, as the rule says
    wasm["spec"]["url"] = "gopher://registry.example.com/auth"
    assert "url must have schema one of [http, https, file, oci]" in _messages(store, wasm)[0]


def test_flux_rules(store):
    repo = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "g"},
            "spec": {"interval": "5m", "url": "https://example.com/repo.git"}}
    assert _messages(store, repo) == []
    repo["spec"]["serviceAccountName"] = "git"
    assert _messages(store, repo) == [
        'spec: Invalid value: "object": serviceAccountName can only be set when provider is \'azure\' or \'aws\'']
    repo["spec"]["provider"] = "azure"
    assert _messages(store, repo) == []


def test_fields_of_current_releases_pass(store, render_of):
    """Fields added after the releases we used to pin (Flux 2.6+, Prometheus
    Operator 0.8x+) are accepted, as the API server accepts them."""
    flux = find(render_of("clusters/prod"), "Kustomization")
    flux.doc["spec"]["ignoreMissingComponents"] = True
    flux.doc["spec"]["healthCheckExprs"] = [{"apiVersion": "apps/v1", "kind": "Deployment",
                                             "current": "status.readyReplicas == status.replicas"}]
    flux.doc["spec"]["deletionPolicy"] = "MirrorPrune"
    assert validate_object(store, SkipList(), "t", flux, None) == []
    monitor = find(render_of("overlays/prod"), "ServiceMonitor")
    monitor.doc["spec"]["scrapeNativeHistograms"] = True
    assert validate_object(store, SkipList(), "t", monitor, None) == []
    monitor.doc["spec"]["scrapeNativeHistogramz"] = True
    findings = validate_object(store, SkipList(), "t", monitor, None)
    assert "'scrapeNativeHistogramz' was unexpected" in findings[0].message


CRD_WITH_RULES = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets}
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
              x-kubernetes-validations:
                - rule: self.min <= self.max
                  messageExpression: "'min ' + string(self.min) + ' exceeds max ' + string(self.max)"
                - rule: "!has(self.legacy)"
                  reason: FieldValueForbidden
                  fieldPath: .legacy
                  message: legacy is gone
                - rule: self.min == oldSelf.min
                  message: min is immutable
                - rule: self.size.frobnicate()
                  message: uses a function nobody has
                - rule: self.min > self.missing
              properties:
                min: {type: integer}
                max: {type: integer}
                size: {type: string}
                legacy: {type: string}
                missing: {type: integer}
"""


def test_message_expression_reason_field_path_old_self_and_errors(tmp_path):
    (tmp_path / "schemas" / "crds").mkdir(parents=True)
    (tmp_path / "schemas" / "crds" / "gadget.yaml").write_text(CRD_WITH_RULES)
    store = SchemaStore(tmp_path, "1.34")
    doc = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"},
           "spec": {"min": 5, "max": 3, "size": "1", "legacy": "x"}}
    findings = _findings(store, doc)
    by_rule = sorted((f.rule, f.severity, f.message) for f in findings)
    assert ("schema-cel", "error", 'spec: Invalid value: "object": min 5 exceeds max 3') in by_rule
    assert ("schema-cel", "error", "spec.legacy: Forbidden: legacy is gone") in by_rule
    # A rule that needs the old object is not judged; one we cannot compile is
    # a warning, never a silent pass; one that fails to evaluate is an error.
    assert not any("immutable" in m for _, _, m in by_rule)
    assert any(r == "schema-cel-not-evaluated" and s == "warning" and "frobnicate" in m for r, s, m in by_rule)
    assert any(r == "schema-cel" and "evaluating rule 'self.min > self.missing'" in m for r, s, m in by_rule)
    doc["spec"] = {"min": 1, "max": 3, "missing": 0}
    assert [f.rule for f in _findings(store, doc)] == ["schema-cel-not-evaluated"]


def test_cel_rules_are_skipped_for_objects_that_fail_their_schema(store):
    doc = json.loads(json.dumps(SERVICE_ENTRY))
    doc["spec"]["hosts"] = ["*"]
    doc["spec"]["unknown"] = 1
    assert [f.rule for f in _findings(store, doc)] == ["schema-invalid"]


@pytest.mark.parametrize("text, ok", [
    ("https://example.com/x", True), ("/absolute/path", True), ("oci://r/x:1", True),
    ("example.com/x", False), ("", False), ("http://a b", False), ("1http://x", False),
])
def test_is_url_matches_go_parse_request_uri(text, ok):
    assert celrules._is_url(text) is ok


def test_the_schema_stage_covers_every_render(tmp_path):
    good = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "ok"},
            "spec": SERVICE_ENTRY["spec"]}
    bad = json.loads(json.dumps(good))
    bad["spec"]["hosts"] = ["*"]
    renders = [make_render([good], path="clusters/dev"), make_render([good], path="overlays/dev"),
               make_render([bad], path="overlays/staging")]
    findings = schema.run(REPO, renders, "1.34")
    assert [(f.target, f.rule) for f in findings] == [("overlays/staging", "schema-cel")]


@pytest.mark.parametrize("expression, value, expected", [
    # cel-go's ext.Strings (Kubernetes): the end of substring may equal the length
    ("self.substring(7, 8)", "unix://x", "x"),
    ("self.substring(2)", "abc", "c"),
    ("self.charAt(3)", "abc", ""),
    ("self.indexOf('c')", "abcabc", 2),
    ("self.indexOf('c', 3)", "abcabc", 5),
    ("self.lastIndexOf('bc')", "abcabc", 4),
    ("self.lowerAscii() + self.upperAscii()", "Ab", "abAB"),
    ("self.trim()", "  x ", "x"),
    ("self.replace('a', 'b', 1)", "aaa", "baa"),
    ("self.split(',')", "a,b,c", ["a", "b", "c"]),
    ("self.split(',', 2)", "a,b,c", ["a", "b,c"]),
    ("self.split(',').join('-')", "a,b", "a-b"),
    # Kubernetes' list and quantity libraries
    ("self.isSorted()", [1, 2, 2], True),
    ("self.isSorted()", ["b", "a"], False),
    ("self.indexOf(2)", [1, 2, 2], 1),
    ("self.lastIndexOf('a')", ["a", "b", "a"], 2),
    ("isQuantity(self)", "500Mi", True),
    ("isQuantity(self)", "five", False),
    ("url(self).getHostname() + ':' + url(self).getPort()", "https://u@[::1]:8443/p", "::1:8443"),
    ("url(self).getEscapedPath()", "https://h/a/b", "/a/b"),
])
def test_kubernetes_library_functions(expression, value, expected):
    program = celrules.Environment()._program(expression)[0]
    assert program is not None
    assert program.eval(data={"self": value}).plain_value() == expected


@pytest.mark.parametrize("expression, value", [
    ("self.substring(3)", "ab"), ("self.substring(2, 1)", "abc"), ("self.charAt(4)", "abc"),
    ("url(self).getScheme() == ''", "not a url"),
])
def test_kubernetes_library_errors_are_errors(expression, value):
    from cel_expr_python import cel

    result = celrules.Environment()._program(expression)[0].eval(data={"self": value})
    assert result.type() == cel.Type.ERROR
