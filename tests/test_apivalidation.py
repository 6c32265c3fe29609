"""The API server's handwritten validation (scripts/stages/apivalidation):
every check fails on its case and passes at its boundary; the coverage rows,
the cases and docs/api-validation.md agree; validators never crash on
objects of the wrong shape."""

from __future__ import annotations

import ast
import copy
import re

import pytest

from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux
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


def test_the_tree_is_accepted_containers(real_renders):
    """Every object the tree really renders passes the API validation: the
    container checks (and the rest) must not refuse an everyday manifest."""
    refused = [f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {error.message()}"
               for path, render in sorted(real_renders.items())
               for doc in (obj.doc for obj in render.objects)
               for error in validate(doc, Context())]
    workloads = [obj for render in real_renders.values() for obj in render.objects
                 if apivalidation.VALIDATORS.get((obj.doc.get("apiVersion"), obj.doc.get("kind")))]
    assert workloads, "no rendered object is of a validated kind: the test would prove nothing"
    assert refused == []


def test_a_container_broken_in_the_last_root_is_refused(real_renders, render_of):
    """The check above can fail: break the Deployment of the last root the
    tree renders (the issue's own examples) and the errors name its fields."""
    last = sorted(real_renders)[-1]
    render = render_of(last)
    deployment = next(obj.doc for obj in render.objects if obj.doc.get("kind") == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["name"] = "grpc-inference-api"
    container["livenessProbe"]["exec"] = {"command": ["true"]}
    messages = [e.message() for obj in render.objects for e in validate(obj.doc, Context())]
    assert messages == [
        'spec.template.spec.containers[0].ports[0].name: Invalid value: "grpc-inference-api": '
        "must be no more than 15 characters",
        "spec.template.spec.containers[0].livenessProbe.httpGet: Forbidden: only one handler may be set; "
        "exec is already set",
    ], last


# ---- pod templates and pod specs (pods.py and the pod_* modules) ----

def _pod_templates(doc):
    """(path, template) of each pod template an object holds."""
    from scripts.stages.apivalidation.errors import ROOT
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    if isinstance(spec.get("template"), dict):
        yield ROOT.child("spec", "template"), spec["template"]
    job = spec.get("jobTemplate", {}).get("spec", {}) if isinstance(spec.get("jobTemplate"), dict) else {}
    if isinstance(job, dict) and isinstance(job.get("template"), dict):
        yield ROOT.child("spec", "jobTemplate", "spec", "template"), job["template"]


def test_the_tree_is_accepted_pods(real_renders):
    """Every rendered object of the tree passes the API checks, and every pod
    template in it passes the pod checks directly (whatever kind holds it)."""
    from scripts.stages.apivalidation import pods
    from scripts.stages.apivalidation.errors import Errors
    problems, templates = [], 0
    for path, render in sorted(real_renders.items()):
        for obj in render.objects:
            found = [e.message() for e in validate(obj.doc, Context())]
            for at, template in _pod_templates(obj.doc):
                templates += 1
                errs = Errors()
                pods.validate_pod_template(template, at, Context(), errs)
                found += [e.message() for e in errs.items]
            problems += [f"{path}: {obj.kind}/{obj.name}: {message}" for message in found]
    assert problems == []
    assert templates, "the tree's renders should hold pod templates to judge"


_RICH_POD_CASES = ("pod-volume-legacy-sources", "pod-volume-downward-resource-divisors",
                   "pod-volume-token-600-and-2-32", "pod-volume-iscsi-name-portal-64",
                   "pod-volume-ephemeral-template-labels",
                   "pod-affinity-weights-1-and-100", "pod-affinity-label-keys-disjoint", "pod-spread-node-policies",
                   "pod-sysctl-names", "pod-windows-user-names", "pod-resources-hugepages-name", "pod-overhead",
                   "pod-tolerations-annotation-list", "pod-dns-none-with-nameserver", "pod-resource-claim-template")


@pytest.mark.parametrize("case_id", _RICH_POD_CASES)
def test_pod_checks_take_any_shape(case_id):
    """As test_validators_take_any_shape, on passing cases that set the pod
    fields the base objects leave out."""
    case = next(c for c in CASES if c.id == case_id)
    base = case.build()
    for path in list(_paths(base))[1:]:
        if path[-1] in ("apiVersion", "kind"):
            continue
        for value in (None, 7, "x", [None], {"a": None}):
            doc = copy.deepcopy(base)
            _replace(doc, path, value)
            for error in validate(doc, Context(case.version)):
                assert error.reason in REASONS


def test_a_pod_defect_in_the_last_root_is_found_there_only(tree):
    """Break the staging overlay (the last root, and the last Flux build's
    path): its renders, and only those, report the pod check."""
    from scripts.loading.discover import discover
    from scripts.loading.render import render_with_flux
    patch = tree / "overlays" / "staging" / "resources.yaml"
    text = patch.read_text()
    assert "    spec:\n      containers:" in text
    patch.write_text(text.replace("    spec:\n      containers:",
                                  "    spec:\n      tolerations:\n        - key: example.com/dedicated\n"
                                  "          operator: Exists\n          effect: NoRun\n      containers:"))
    found = discover(tree)
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    hits = sorted({(render.target.path, obj.name, e.check, e.message())
                   for render in renders for obj in render.objects for e in validate(obj.doc, Context())})
    message = ('spec.template.spec.tolerations[0].effect: Unsupported value: "NoRun": supported values: '
               '"NoSchedule", "PreferNoSchedule", "NoExecute"')
    assert hits == [(target, name, "api-pod-toleration-effect", message)
                    for target in ("clusters/staging#ai-inference-staging", "overlays/staging")
                    for name in ("ai-inference-service-v1", "ai-inference-service-v2")]


def test_the_tree_is_accepted_groups(real_renders):
    """Every object the tree renders (each overlay and Flux build) passes the
    API validation: the everyday state must stay green. It must also reach
    the kinds the group modules validate, or it proves nothing about them."""
    found = []
    seen: set[tuple[str, str]] = set()
    for path, render in sorted(real_renders.items()):
        for resource in render.objects:
            seen.add((resource.api_version, resource.kind))
            for error in validate(resource.doc, Context()):
                found.append(f"{path}: {resource.kind}/{resource.doc.get('metadata', {}).get('name')}: "
                             f"{error.check}: {error.message()}")
    assert found == []
    groups = {key for module in (apivalidation.apps, apivalidation.autoscaling, apivalidation.policy,
                                 apivalidation.networking, apivalidation.rbac) for key in module.VALIDATORS}
    assert {("apps/v1", "Deployment"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("policy/v1", "PodDisruptionBudget"), ("networking.k8s.io/v1", "NetworkPolicy"),
            ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding")} <= seen & groups


def test_statefulset_template_is_judged_with_its_claim_volumes(monkeypatch):
    """The StatefulSet controller gives each pod one volume per claim
    template (replacing a volume of that name): the pod rules must see the
    template that way, or every mount of a claim would look dangling."""
    seen = []
    monkeypatch.setattr(apivalidation.apps.pods, "validate_pod_template",
                        lambda template, path, ctx, errs: seen.append((str(path), template)))
    doc = copy.deepcopy(OBJECTS["statefulset"])
    doc["spec"]["template"]["spec"]["volumes"].insert(0, {"name": "data", "emptyDir": {}})
    validate(doc, Context())
    (path, template), = seen
    assert path == "spec.template"
    assert template["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-demo-0"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    assert doc["spec"]["template"]["spec"]["volumes"][0] == {"name": "data", "emptyDir": {}}, "input modified"


def test_a_group_defect_in_the_last_root_is_found_there_only(tree):
    """A PodDisruptionBudget with minAvailable and maxUnavailable (the issue's
    example) patched into overlays/prod only: every render of prod (the
    overlay and the prod cluster's Flux build) has the finding, and no other
    render has any."""
    (tree / "overlays/prod/pdb-both.yaml").write_text(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: ai-inference-service\n"
        "spec:\n  minAvailable: 2\n")
    kustomization = tree / "overlays/prod/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace(
        "patches:\n", "patches:\n  - path: pdb-both.yaml\n    target:\n      kind: PodDisruptionBudget\n", 1))
    found = discover(tree)
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    hits: dict[str, set[str]] = {}
    for render in renders:
        for resource in render.objects:
            for error in validate(resource.doc, Context()):
                hits.setdefault(render.target.path, set()).add(f"{resource.kind} {error.check} {error.field}")
    prod = {path for path in hits if "prod" in path}
    assert "overlays/prod" in prod and any(path.startswith("clusters/prod") for path in prod), sorted(hits)
    assert set(hits) == prod, sorted(hits)
    assert all(found == {"PodDisruptionBudget api-pdb-min-and-max spec"} for found in hits.values()), hits

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
