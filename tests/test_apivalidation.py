"""The API server's handwritten validation (scripts/stages/apivalidation):
every check fails on its case and passes at its boundary; the coverage rows,
the cases and docs/api-validation.md agree; validators never crash on
objects of the wrong shape."""

from __future__ import annotations

import ast
import copy
import re

import pytest

from scripts.stages import apivalidation
from scripts.stages.apivalidation import Context, core, coverage, storage, validate
from scripts.stages.apivalidation.errors import REASONS
from scripts.stages.schema import SchemaStore
from tests.apivalidation import all_cases
from tests.apivalidation.objects import OBJECTS
from tests.conftest import REPO

CASES = all_cases()
ROWS = apivalidation.rows()
PORTED = {row.check for row in ROWS if row.check}


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return SchemaStore(REPO, "1.34")


def _schema_errors(store: SchemaStore, doc: dict, version: str = "1.34") -> list[str]:
    validator = store.validator(doc["apiVersion"], doc["kind"], version)
    assert validator is not None, f"no schema for {doc['apiVersion']} {doc['kind']}"
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_base_object_is_valid(name, store):
    doc = OBJECTS[name]
    assert _schema_errors(store, doc) == []
    assert [e.message() for e in validate(doc, Context())] == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case, store):
    doc = case.build()
    # The case must be one the JSON schema lets through: what it tests is ours.
    assert _schema_errors(store, doc, case.version) == []
    errors = validate(doc, Context(case.version))
    messages = [f"{e.check}: {e.message()}" for e in errors]
    assert all(e.check in PORTED for e in errors), messages
    if not case.fails:
        assert messages == []
        return
    assert case.check in PORTED, f"{case.check} is not a ported row"
    hits = [e for e in errors if e.check == case.check and e.field == case.path and e.reason == case.reason]
    assert hits, f"expected {case.check} at {case.path} ({case.reason}); got {messages}"


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def test_every_ported_row_has_a_failing_and_a_passing_case():
    checks = [row.check for row in ROWS if row.check]
    assert len(checks) == len(set(checks)), "a check id names two rows"
    failing = {case.check for case in CASES if case.fails}
    passing = {case.check for case in CASES if not case.fails}
    assert sorted(set(checks) - failing) == [], "rows without a failing case"
    assert sorted(set(checks) - passing) == [], "rows without a passing case"
    assert sorted({case.check for case in CASES} - set(checks)) == [], "cases of unknown checks"


def test_rows_are_well_formed():
    for row in ROWS:
        assert row.kinds and all(kind in coverage.KINDS for kind in row.kinds), row
        assert row.upstream and row.condition, row
        assert row.ported or row.why_not.strip(), f"not ported without a reason: {row}"
        assert not (row.ported and row.why_not), f"ported and a reason not to: {row}"
        assert row.check is None or re.fullmatch(r"api(-[a-z0-9]+)+", row.check), row.check


def test_every_check_id_in_the_code_is_a_row():
    """A check id written in the validators but in no coverage row would
    report findings that no row documents."""
    package = REPO / "scripts" / "stages" / "apivalidation"
    used = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"api(-[a-z0-9]+)+", node.value):
                used.add(node.value)
    assert sorted(used - PORTED) == []


def test_the_document_is_current():
    expected = coverage.current_document()
    actual = coverage.DOC.read_text(encoding="utf-8") if coverage.DOC.exists() else ""
    assert actual == expected, "run: python -m scripts.stages.apivalidation --write"


def test_messages_are_the_api_servers():
    doc = copy.deepcopy(OBJECTS["deployment"])
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "grpc-inference-api"
    doc["spec"].pop("selector")
    messages = [e.message() for e in validate(doc, Context())]
    assert 'spec.template.spec.containers[0].ports[0].name: Invalid value: "grpc-inference-api": ' \
           "must be no more than 15 characters" in messages
    assert "spec.selector: Required value" in messages


_WRONG = (None, 7, -1, "x", "", True, [], {}, [None], {"a": None})


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


def _replace(doc, path, value):
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_validators_take_any_shape(name):
    """A field of the wrong type is the JSON schema's finding; the API
    validation must still run on the rest and never raise."""
    base = OBJECTS[name]
    for path in list(_paths(base))[1:]:
        if path[-1] in ("apiVersion", "kind"):
            continue
        for value in _WRONG:
            doc = copy.deepcopy(base)
            _replace(doc, path, value)
            for error in validate(doc, Context()):
                assert error.reason in REASONS


def test_every_validated_kind_has_a_base_object():
    based = {(doc["apiVersion"], doc["kind"]) for doc in OBJECTS.values()}
    assert sorted(apivalidation.kinds() - based) == []


# ---- core kinds and claims (core.py, core_service.py, storage.py) ----------------------------

_CORE_CHECKS = {row.check for module in (core, storage) for row in module.COVERAGE if row.check}


def test_the_tree_is_accepted_core(real_renders):
    """Every object the tree renders passes the core-kind checks: its
    Namespace, ServiceAccount, ConfigMaps and Service (and any error of a
    core check elsewhere, e.g. a claim template) are clean."""
    core_kinds = set(core.VALIDATORS) | set(storage.VALIDATORS)
    judged, refused = set(), []
    for path, render in sorted(real_renders.items()):
        for obj in render.objects:
            key = (obj.doc.get("apiVersion"), obj.doc.get("kind"))
            for error in validate(obj.doc, Context()):
                if key in core_kinds or error.check in _CORE_CHECKS:
                    refused.append(f"{path}: {obj.kind}/{obj.name}: {error.message()}")
            if key in core_kinds:
                judged.add(key[1])
    assert {"Namespace", "ServiceAccount", "ConfigMap", "Service"} <= judged, judged
    assert refused == []


def test_a_service_broken_in_the_last_root_is_refused_there(tree):
    """Through `validate` on a copy of the tree: a patch in the last overlay
    gives the Service two ports named alike; the finding names that root (and
    the Flux build of it), the Service, and the patch's line."""
    from scripts import validate as validate_command

    kfile = tree / "overlays/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text() + (
        "  - target:\n      kind: Service\n      name: ai-inference-service\n    patch: |-\n      - op: replace\n"
        "        path: /spec/ports/1/name\n        value: http\n"))
    report = validate_command.run(validate_command.Options(repo=tree, stages=["schema"]))
    findings = [f.as_dict() for f in report.findings if f.rule == "api-service-port-name-unique"]
    assert {f["target"] for f in findings} == {"overlays/prod", "clusters/prod#ai-inference-prod"}
    assert {f["name"] for f in findings} == {"ai-inference-service"}
    line = next(n for n, text in enumerate(kfile.read_text().splitlines(), start=1) if "value: http" in text)
    assert {(f["file"], f["line"]) for f in findings} == {("overlays/prod/kustomization.yaml", line)}
    assert all(f["message"] == 'spec.ports[1].name: Duplicate value: "http"' for f in findings)


@pytest.mark.parametrize(("value", "offset"), [
    ("admin", 4), ("billy", 4), ("<foo>", 0), ("APIKEY_BASE64", 6), ("${PASSWORD_B64}", 0),  # seen from clusters
    ("YWI=", None), ("YWJj\nZGVm\r\n", None), ("", None), ("YWI", 0), ("YWJjZ", 4), ("YW=", 3), ("YW=J", 2),
    ("YWI==", 4), ("YWJjZA==\nYWJj", 9), ("=YWJ", 0),
])
def test_base64_offsets_are_the_api_servers(value, offset):
    assert core.base64_error_offset(value) == offset


def test_an_encrypted_secret_is_judged_by_its_keys_only():
    """SOPS ciphertext is not base64 until Flux decrypts it: no decoding or
    JSON errors, but the keys still count."""
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "registry"},
           "type": "kubernetes.io/dockerconfigjson",
           "data": {".dockerconfigjson": "ENC[AES256_GCM,data:abc=,type:str]", "bad key": "ENC[x]"},
           "sops": {"version": "3.8.1"}}
    assert [e.message() for e in validate(doc, Context())] == [
        'data[bad key]: Invalid value: "bad key": must consist of alphanumerics, \'-\', \'_\' or \'.\' '
        "(e.g. 'key.name', 'KEY_NAME' or 'key-name')"]
    doc.pop("sops")
    assert {e.check for e in validate(doc, Context())} == {"api-secret-key", "api-secret-data-base64"}


def test_the_claim_spec_check_is_reusable_at_any_path():
    """What a StatefulSet's volumeClaimTemplates or a pod's ephemeral volume
    calls: errors at the caller's path; `prepare=False` judges the data
    sources as written."""
    from scripts.stages.apivalidation.errors import ROOT, Errors

    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0"}},
            "dataSource": {"kind": "VolumeSnapshot", "name": "nightly"}}
    at = ROOT.child("spec", "volumeClaimTemplates").index(0).child("spec")
    errs = Errors()
    storage.validate_pvc_spec(spec, at, Context(), errs)
    assert [e.message() for e in errs.items] == [
        'spec.volumeClaimTemplates[0].spec.resources[storage]: Invalid value: "0": must be greater than zero']
    errs = Errors()
    storage.validate_pvc_spec(spec, at, Context(), errs, prepare=False)
    assert [e.field for e in errs.items] == ["spec.volumeClaimTemplates[0].spec.resources[storage]",
                                             "spec.volumeClaimTemplates[0].spec.dataSource"]
    assert spec["dataSource"] == {"kind": "VolumeSnapshot", "name": "nightly"}  # not modified
