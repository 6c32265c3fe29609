"""The rules that answer Polaris' and kube-score's checks, at their
boundaries: each break the rule must catch, next to the nearest case it
must let through. tests/test_rules.py has one failing case per rule;
tests/test_upstream_fixtures.py runs the upstream projects' own fixtures."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.core.errors import InputError
from scripts.core.model import Resource
from scripts.stages.policy_support import PolicyConfig
from tests.conftest import REPO, find, make_render
from tests.test_rules import CONFIG, RULES, pod, server


def run(rule: str, render, config: PolicyConfig = CONFIG) -> list[str]:
    check = RULES[rule]
    available = {"render": render, "config": config}
    params = inspect.signature(check).parameters
    return [v.line() for v in check(**{name: available[name] for name in params})]


def text(rule: str, render, config: PolicyConfig = CONFIG) -> str:
    return "\n".join(run(rule, render, config))


def with_env(**settings) -> PolicyConfig:
    """The real config, with the given settings added to every environment."""
    return dataclasses.replace(CONFIG, environments={name: {**env, **settings}
                                                     for name, env in CONFIG.environments.items()})


def add(render, doc: dict) -> None:
    render.objects.append(Resource(doc=doc))


# ---- priority_class_set ------------------------------------------------------

def test_priority_class_must_exist_even_where_none_is_required(render_of):
    render = render_of("overlays/dev")
    pod(render)["priorityClassName"] = "ai-platform-batch"
    assert "neither in this render nor provided" in text("priority_class_set", render)


def test_priority_class_declared_in_the_render_counts(render_of):
    render = render_of("overlays/dev")
    pod(render)["priorityClassName"] = "ai-platform-batch"
    add(render, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                 "metadata": {"name": "ai-platform-batch"}, "value": 1000})
    assert run("priority_class_set", render) == []


def test_builtin_system_priority_class_is_refused_unless_listed(render_of):
    render = render_of("overlays/dev")
    pod(render)["priorityClassName"] = "system-node-critical"
    assert "built-in priority class system-node-critical" in text("priority_class_set", render)
    listed = text("priority_class_set", render, with_env(priority_classes=["system-node-critical"]))
    # v1 now uses a listed class; v2 sets none, which the list requires.
    assert "ai-inference-service-v1" not in listed and "ai-inference-service-v2: sets no priorityClassName" in listed


def test_a_class_the_environment_does_not_list_is_refused(render_of):
    render = render_of("clusters/prod#ai-inference-gpu")
    pod(render)["priorityClassName"] = "system-cluster-critical"
    assert "runs at priority class 'system-cluster-critical'; this environment requires one of " \
           "['ai-platform-serving']" in text("priority_class_set", render)


# ---- guaranteed_qos ----------------------------------------------------------

def _make_guaranteed(render) -> None:
    for obj in render.objects:
        if obj.kind != "Deployment":
            continue
        spec = obj.doc["spec"]["template"]["spec"]
        for container in spec["initContainers"] + spec["containers"]:
            limits = container["resources"]["limits"]
            container["resources"]["requests"] = {"cpu": limits["cpu"]}  # memory omitted: defaults to the limit
            if limits["cpu"] == "1":
                container["resources"]["requests"]["cpu"] = "1000m"  # the same quantity, written otherwise


def test_guaranteed_qos_fails_where_required_and_passes_when_requests_equal_limits(render_of):
    render = render_of("overlays/gpu")
    assert run("guaranteed_qos", render) == []  # no environment asks for it
    required = with_env(guaranteed_qos=True)
    found = text("guaranteed_qos", render, required)
    assert "container server: requests cpu 2 but limits it to 4, so the pod is not Guaranteed QoS" in found
    assert "init container model-fetcher: requests memory 256Mi but limits it to 512Mi" in found
    _make_guaranteed(render)
    assert run("guaranteed_qos", render, required) == []
    server(render)[1]["resources"]["limits"].pop("memory")
    assert "container server: has no memory limit" in text("guaranteed_qos", render, required)


# ---- container_ports_valid ---------------------------------------------------

@pytest.mark.parametrize(("name", "words"), [
    ("http-metrics-15", None),  # 15 characters: the longest allowed
    ("http-metrics-016", "16 characters, more than the 15 allowed"),
    ("http--metrics", "not a valid port name"),
    ("9090", "not a valid port name"),
    ("Metrics", "not a valid port name"),
    ("http", "names two ports 'http'"),
])
def test_port_names(render_of, name, words):
    render = render_of("overlays/prod")
    server(render)[1]["ports"][1]["name"] = name
    found = text("container_ports_valid", render)
    assert (words in found) if words else found == ""


def test_a_port_without_a_number_is_refused(render_of):
    render = render_of("overlays/prod")
    server(render)[1]["ports"][1].pop("containerPort")
    assert "port http-metrics has containerPort None" in text("container_ports_valid", render)


# ---- pdb_allows_drain, pdb_has_policy ----------------------------------------

def _pdb(name: str, **spec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name,
            "namespace": "ai-inference-dev"}, "spec": {"selector": {"matchLabels": {"app": "other"}}, **spec}}


@pytest.mark.parametrize(("spec", "blocks"), [
    ({"maxUnavailable": 0}, True), ({"maxUnavailable": "0%"}, True), ({"minAvailable": "100%"}, True),
    ({"minAvailable": "150%"}, True), ({"maxUnavailable": "1%"}, False), ({"minAvailable": "99%"}, False),
])
def test_a_pdb_that_allows_no_eviction_fails_in_every_environment_whatever_it_selects(render_of, spec, blocks):
    render = render_of("overlays/dev")  # not HA, and the PDB selects no pod of the render
    add(render, _pdb("blocker", **spec))
    assert ("PodDisruptionBudget/blocker" in text("pdb_allows_drain", render)) == blocks


@pytest.mark.parametrize(("min_available", "blocks"), [
    (3, True), (2, False), ("67%", True), ("66%", False),  # prod's minimum is 3: ceil(0.67 x 3) = 3, ceil(0.66 x 3) = 2
])
def test_min_available_against_the_minimum_replicas(render_of, min_available, blocks):
    render = render_of("overlays/prod")
    spec = find(render, "PodDisruptionBudget", "ai-inference-service-v1").doc["spec"]
    spec.pop("maxUnavailable")
    spec["minAvailable"] = min_available
    found = text("pdb_allows_drain", render)
    assert (f"minAvailable {min_available} allows no disruption of Deployment/ai-inference-service-v1 at its "
            "minimum of 3 replicas" in found) == blocks, found


def test_a_pdb_in_another_namespace_does_not_cover(render_of):
    render = render_of("overlays/prod")
    find(render, "PodDisruptionBudget", "ai-inference-service-v1").metadata["namespace"] = "elsewhere"
    assert "Deployment/ai-inference-service-v1: has no PodDisruptionBudget" in text("pdb_allows_drain", render)


def test_a_pdb_with_only_min_available_has_a_policy(render_of):
    render = render_of("overlays/prod")
    spec = find(render, "PodDisruptionBudget", "ai-inference-service-v1").doc["spec"]
    spec.pop("maxUnavailable")
    spec["minAvailable"] = 1
    assert run("pdb_has_policy", render) == []


def test_ha_floor_applies_to_an_hpa_whose_target_is_elsewhere(render_of):
    render = render_of("overlays/prod")
    add(render, {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "other"},
                 "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "other"}, "maxReplicas": 4}})
    assert "HorizontalPodAutoscaler/other: may scale Deployment/other down to 1 replicas" in text("ha_replicas", render)


# ---- no_host_access: hostProcess ---------------------------------------------

@pytest.mark.parametrize("level", ["pod", "container"])
def test_windows_host_process(render_of, level):
    render = render_of("overlays/prod")
    context = pod(render)["securityContext"] if level == "pod" else server(render)[1]["securityContext"]
    context["windowsOptions"] = {"hostProcess": False}
    assert run("no_host_access", render) == []
    context["windowsOptions"]["hostProcess"] = True
    assert f"runs as a Windows HostProcess {level}" in text("no_host_access", render)


# ---- ephemeral_storage_set, capabilities, spread -----------------------------

def test_every_container_init_included_requests_ephemeral_storage(render_of):
    render = render_of("overlays/dev")
    fetcher = pod(render)["initContainers"][0]
    fetcher["resources"]["requests"].pop("ephemeral-storage")
    assert "init container model-fetcher: has no ephemeral-storage request" in text("ephemeral_storage_set", render)


def test_a_pod_without_disk_volumes_still_needs_ephemeral_storage(render_of):
    render = render_of("overlays/dev")
    spec = pod(render)
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "models"]
    assert run("ephemeral_storage_set", render) == []
    server(render)[1]["resources"]["limits"].pop("ephemeral-storage")
    assert "container server: has no ephemeral-storage limit" in text("ephemeral_storage_set", render)


def test_adding_all_in_lower_case_is_adding_all(render_of):
    render = render_of("overlays/prod")
    server(render)[1]["securityContext"]["capabilities"]["add"] = ["all"]
    assert "adds ['ALL'], which dropping ALL first does not undo" in text("pod_hardening_extras", render)
    server(render)[1]["securityContext"]["capabilities"]["add"] = ["net_bind_service"]
    assert run("pod_hardening_extras", render) == []


def test_dropping_all_in_lower_case_is_refused_by_pod_security(render_of):
    render = render_of("overlays/prod")
    server(render)[1]["securityContext"]["capabilities"]["drop"] = ["All"]
    assert "drops 'All', which Pod Security restricted does not accept as ALL" in text("capabilities_dropped", render)


@pytest.mark.parametrize(("change", "words"), [
    ({"maxSkew": 0}, "maxSkew 0; it must be at least 1"),
    ({"minDomains": 0, "whenUnsatisfiable": "DoNotSchedule"}, "minDomains 0; it must be at least 1"),
    ({"minDomains": 3}, "minDomains needs DoNotSchedule"),
    ({"whenUnsatisfiable": "Never"}, "whenUnsatisfiable 'Never'"),
    ({"labelSelector": None}, "no labelSelector, so it counts no pods"),
    ({"topologyKey": ""}, "no topologyKey"),
    ({"minDomains": 3, "whenUnsatisfiable": "DoNotSchedule"}, None),
])
def test_spread_constraints_are_whole(render_of, change, words):
    render = render_of("overlays/dev")
    pod(render)["topologySpreadConstraints"][0].update(change)
    found = text("spread_selects_own_pods", render)
    assert (f"topologySpreadConstraints[0] has {words}" in found or words in found) if words else found == ""


def test_identical_liveness_and_readiness_probes(render_of):
    render = render_of("overlays/prod")
    container = server(render)[1]
    container["livenessProbe"]["httpGet"]["path"] = "/readyz"
    assert "livenessProbe is the same check as its readinessProbe" in text("probes_set", render)
    container["livenessProbe"]["httpGet"]["port"] = 9090  # same path, another port: a different check
    assert run("probes_set", render) == []


def test_a_credential_under_a_secret_looking_configmap_key(render_of):
    render = render_of("overlays/prod")
    add(render, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db"},
                 "data": {"db_password": "abc123", "password_file": "/var/run/secrets/db"}})
    found = text("no_secret_literals", render)
    assert "data.db_password holds what looks like a credential" in found and "password_file" not in found


# ---- networkpolicy_isolates_pods, instance_label_matches_name ------------------

def _policies(render):
    return {p.name: p.doc["spec"] for p in render.objects if p.kind == "NetworkPolicy"}


def test_isolated_but_no_rule_allows_any_egress(render_of):
    render = render_of("overlays/prod")
    _policies(render)["ai-inference-service"].pop("egress")
    assert "isolate Egress but none allows any, so it can reach nothing" in text("networkpolicy_isolates_pods", render)
    assert run("networkpolicy_isolates_pods", render, with_env(network_isolation=["Ingress"])) == []


def test_policy_types_default_as_the_api_server_defaults_them(render_of):
    render = render_of("overlays/prod")
    for spec in _policies(render).values():
        spec.pop("policyTypes")  # default-deny becomes Ingress only; the allow-list keeps Egress by its rules
    assert run("networkpolicy_isolates_pods", render) == []
    _policies(render)["ai-inference-service"].pop("egress")
    assert "no NetworkPolicy with Egress" in text("networkpolicy_isolates_pods", render)


def test_a_policy_of_another_namespace_isolates_nothing(render_of):
    render = render_of("overlays/prod")
    for policy in (p for p in render.objects if p.kind == "NetworkPolicy"):
        policy.metadata["namespace"] = "elsewhere"
    found = text("networkpolicy_isolates_pods", render)
    assert "no NetworkPolicy with Ingress" in found and "no NetworkPolicy with Egress" in found
    assert run("networkpolicy_isolates_pods", render, with_env(network_isolation=[])) == []


def test_a_workload_without_the_instance_label(render_of):
    render = render_of("overlays/prod")
    find(render, "Deployment", "ai-inference-service-v1").metadata["labels"].pop("app.kubernetes.io/instance")
    assert "Deployment/ai-inference-service-v1: has no app.kubernetes.io/instance label" in text(
        "instance_label_matches_name", render)


def test_small_manifest_fails_every_new_rule():
    """One bare Deployment in the prod environment, as a user might write it."""
    render = make_render([{
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bare"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
            "containers": [{"name": "c", "image": "x:1", "ports": [{"name": "metrics-for-prometheus",
                                                                    "containerPort": 9090}]}]}}}}])
    assert "sets no priorityClassName" in text("priority_class_set", render)
    assert "more than the 15 allowed" in text("container_ports_valid", render)
    assert "no NetworkPolicy with Ingress" in text("networkpolicy_isolates_pods", render)
    assert "has no app.kubernetes.io/instance label" in text("instance_label_matches_name", render)
    assert "has no ephemeral-storage request" in text("ephemeral_storage_set", render)


# ---- config ------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "words"), [
    ("priority_classes: ai-platform-serving", "`environments.prod.priority_classes` must be a list"),
    ("priority_classes: ['']", "`environments.prod.priority_classes` must be a list"),
    ("guaranteed_qos: yes please", "`environments.prod.guaranteed_qos` must be true or false"),
    ("network_isolation: [ingress]", "`environments.prod.network_isolation` must be a list of Ingress and/or Egress"),
])
def test_wrong_typed_environment_settings_are_one_line(tmp_path, settings, words):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/policy.yaml").write_text(f"environments:\n  prod: {{{settings}}}\n")
    with pytest.raises(InputError) as error:
        PolicyConfig.load(tmp_path)
    assert str(error.value).startswith("config/policy.yaml: ") and words in str(error.value)
    assert "\n" not in str(error.value)


def test_wrong_typed_environment_setting_is_one_line_from_validate(tree):
    config = tree / "config/policy.yaml"
    config.write_text(config.read_text().replace("gpu: true, priority_classes: [ai-platform-serving]",
                                                 "gpu: true, priority_classes: ai-platform-serving"))
    proc = _validate(tree, "--target", str(tree / "overlays/dev"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert "config/policy.yaml: `environments.gpu.priority_classes` must be a list" in lines[0]


# ---- end to end: the break in the last roots ---------------------------------

def _validate(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts", "validate", "--repo", str(tree), *args],
                          cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))


def _findings(tree: Path, rule: str) -> list[dict]:
    report = tree / "report.json"
    proc = _validate(tree, "--stage", "policy", "--report-json", str(report), "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = json.loads(report.read_text())["findings"]
    assert {f["rule"] for f in found} == {rule}, found  # nothing else breaks
    return found


def test_a_wrong_priority_class_in_prod_fails_prod_and_its_flux_build(tree):
    patch = tree / "overlays/prod/priority.yaml"
    patch.write_text(patch.read_text().replace("value: ai-platform-serving", "value: ai-platform-batch"))
    found = _findings(tree, "priority_class_set")
    assert {f["target"] for f in found} == {"overlays/prod", "clusters/prod#ai-inference-prod"}
    assert {(f["kind"], f["name"], f["file"]) for f in found} == {
        ("Deployment", f"ai-inference-service-{slot}", "base/workload/deployment.yaml") for slot in ("v1", "v2")}
    assert all("'ai-platform-batch'" in f["message"] and "['ai-platform-serving']" in f["message"] for f in found)


def test_a_bad_port_name_in_the_last_root_is_found_there(tree):
    """overlays/staging is the last root in path order (tests/test_validate_cli.py)."""
    patch = tree / "overlays/staging/resources.yaml"
    patch.write_text(patch.read_text().replace(
        "        - name: server\n",
        "        - name: server\n          ports:\n            - name: http-metrics-prometheus\n"
        "              containerPort: 9091\n"))
    found = _findings(tree, "container_ports_valid")
    assert {f["target"] for f in found} == {"overlays/staging", "clusters/staging#ai-inference-staging"}
    assert {f["file"] for f in found} == {"base/workload/deployment.yaml"}
    assert all("'http-metrics-prometheus' is 23 characters" in f["message"] for f in found)
