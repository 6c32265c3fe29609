"""Every policy rule is able to fail: each case breaks one thing in a copy
of a real render (or builds a small manifest) and checks that the rule
names the object and says what is wrong. A rule with no case here fails
test_every_rule_has_a_failing_case."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import pytest

from scripts.policy import load_rules
from scripts.policy_support import PolicyConfig, PolicyFailure
from scripts.schema import SchemaStore
from tests.conftest import REPO, find, make_render
from tests.policy import test_monitoring


def policy_rules() -> dict[str, object]:
    """rule name -> its check function, from the suite itself."""
    return {rule.name: rule.check for rule in load_rules()}


RULES = policy_rules()
CONFIG = PolicyConfig.load(REPO)


def run_rule(rule: str, render, version: str = "1.34", **extra):
    check = RULES[rule]
    available = {"render": render, "config": CONFIG, "kubernetes_version": version,
                 "store": SchemaStore(REPO, version), "repo": REPO,
                 "failures": extra.get("failures", {})}
    params = inspect.signature(check).parameters
    return check(**{name: available[name] for name in params})


def server(render, slot="v1"):
    dep = find(render, "Deployment", f"ai-inference-service-{slot}")
    return dep, next(c for c in dep.doc["spec"]["template"]["spec"]["containers"] if c["name"] == "server")


def pod(render, slot="v1"):
    return find(render, "Deployment", f"ai-inference-service-{slot}").doc["spec"]["template"]["spec"]


def _set(path, value):
    def mutate(render):
        obj = path(render)
        obj[0][obj[1]] = value
    return mutate


def _sc(render):
    return server(render)[1]["securityContext"]


def _route(render):
    return find(render, "VirtualService").doc["spec"]["http"][0]["route"]


def _rules_of(render):
    return find(render, "PrometheusRule").doc["spec"]["groups"]


def _dashboard(render):
    return next(o for o in render.objects if o.kind == "ConfigMap" and o.labels.get("grafana_dashboard"))


def _set_dashboard_expr(render):
    cm = _dashboard(render)
    key = next(iter(cm.doc["data"]))
    data = json.loads(cm.doc["data"][key])
    data["panels"][0]["targets"][0]["expr"] = "sum(rate(x[5m])"
    cm.doc["data"][key] = json.dumps(data)


def _add(render, doc):
    from scripts.model import Resource
    render.objects.append(Resource(doc=doc))


# rule -> (target, mutation, words the message must contain)
CASES = {
    "no_privileged": ("overlays/prod", lambda r: _sc(r).update(privileged=True), "runs privileged"),
    "no_privilege_escalation": ("overlays/prod", lambda r: _sc(r).pop("allowPrivilegeEscalation"),
                                "allows privilege escalation"),
    "run_as_non_root": ("overlays/prod", lambda r: (_sc(r).update(runAsUser=0)), "runAsUser"),
    "read_only_root_filesystem": ("overlays/prod", lambda r: _sc(r).update(readOnlyRootFilesystem=False),
                                  "writable root filesystem"),
    "capabilities_dropped": ("overlays/prod", lambda r: _sc(r)["capabilities"].update(add=["NET_ADMIN"]),
                             "adds capabilities"),
    "seccomp_runtime_default": ("overlays/prod", lambda r: pod(r)["securityContext"].update(
        seccompProfile={"type": "Unconfined"}), "Unconfined"),
    "no_host_access": ("overlays/prod", lambda r: pod(r).update(hostNetwork=True), "hostNetwork"),
    "service_account_token_not_mounted": ("overlays/prod", lambda r: pod(r).pop("automountServiceAccountToken")
                                          or find(r, "ServiceAccount").doc.pop("automountServiceAccountToken"),
                                          "API token"),
    "image_pinned": ("overlays/prod", lambda r: server(r)[1].update(image="ghcr.io/example-org/ai:latest"),
                     "latest"),
    "image_registry_allowed": ("overlays/prod", lambda r: server(r)[1].update(image="docker.io/evil/x:1.0"),
                               "not from an allowed registry"),
    "resources_set": ("overlays/prod", lambda r: server(r)[1]["resources"]["limits"].pop("memory"),
                      "limits.memory"),
    "requests_within_limits": ("overlays/prod", lambda r: server(r)[1]["resources"]["requests"].update(memory="64Gi"),
                               "above its limit"),
    "hpa_cpu_needs_requests": ("overlays/prod", lambda r: server(r)[1]["resources"]["requests"].pop("cpu"),
                               "no CPU request"),
    "probes_set": ("overlays/prod", lambda r: server(r)[1].pop("readinessProbe"), "readinessProbe"),
    "startup_probe_for_model": ("overlays/prod", lambda r: server(r)[1].pop("startupProbe"), "startupProbe"),
    "ha_replicas": ("overlays/prod", lambda r: find(r, "HorizontalPodAutoscaler",
                                                    "ai-inference-service-v2").doc["spec"].update(minReplicas=1),
                    "down to 1 replicas"),
    "pdb_allows_drain": ("overlays/prod", lambda r: find(r, "PodDisruptionBudget",
                                                         "ai-inference-service-v1").doc["spec"].update(maxUnavailable=0),
                         "node drain"),
    "zone_spread": ("overlays/gpu", lambda r: pod(r).pop("topologySpreadConstraints"), "not spread across zones"),
    "hpa_bounds": ("overlays/dev", lambda r: find(r, "HorizontalPodAutoscaler",
                                                  "ai-inference-service-v1").doc["spec"].update(minReplicas=9),
                   "above maxReplicas"),
    "selector_matches_template": ("overlays/prod", lambda r: find(r, "Deployment", "ai-inference-service-v1")
                                  .doc["spec"]["selector"]["matchLabels"].update(version="v3"),
                                  "does not match the pod template"),
    "valid_names_and_labels": ("overlays/prod", lambda r: find(r, "Service").metadata["labels"].update(
        {"team": "ML Platform!"}), "invalid value"),
    "quantities_parse": ("overlays/prod", lambda r: server(r)[1]["resources"]["limits"].update(memory="4 GB"),
                         "is not a quantity"),
    "no_deprecated_apis": ("overlays/prod", lambda r: find(r, "HorizontalPodAutoscaler").doc.update(
        apiVersion="autoscaling/v2beta2"), "not served by Kubernetes"),
    "service_selects_pods": ("overlays/prod", lambda r: find(r, "Service").doc["spec"]["ports"][0].update(
        targetPort="grpc"), "no selected container exposes"),
    "scale_targets_exist": ("overlays/prod", lambda r: find(r, "HorizontalPodAutoscaler").doc["spec"][
        "scaleTargetRef"].update(name="ai-inference-service"), "not in this render"),
    "networkpolicy_selects_pods": ("overlays/prod", lambda r: find(r, "NetworkPolicy", "ai-inference-service").doc[
        "spec"]["podSelector"]["matchLabels"].update({"app.kubernetes.io/name": "other"}), "matches no pod"),
    "networkpolicy_no_allow_all_ingress": ("overlays/prod", lambda r: find(r, "NetworkPolicy", "ai-inference-service")
                                           .doc["spec"]["ingress"].append({"ports": [{"port": 8080}]}),
                                           "admits every source"),
    "destinationrule_subsets_match": ("overlays/prod", lambda r: find(r, "DestinationRule").doc["spec"]["subsets"][1][
        "labels"].update(version="v3"), "which no pod has"),
    "virtualservice_destinations_exist": ("overlays/prod", lambda r: _route(r)[0]["destination"].update(
        host="ai-inference-svc"), "not a Service or ServiceEntry"),
    "virtualservice_weights_sum_to_100": ("overlays/prod", lambda r: _route(r)[1].update(weight=20), "add up to 110"),
    "servicemonitor_selects_service": ("overlays/prod", lambda r: find(r, "ServiceMonitor").doc["spec"]["endpoints"][
        0].update(port="metrics"), "not a port of the selected Service"),
    "flux_paths_exist": ("clusters/prod", lambda r: find(r, "Kustomization", "ai-inference-gpu").doc["spec"].update(
        path="./overlays/gpu-v2"), "does not exist"),
    "strict_mtls": ("overlays/staging", lambda r: find(r, "PeerAuthentication").doc["spec"]["mtls"].update(
        mode="PERMISSIVE"), "requires STRICT"),
    "authorization_policy_no_allow_all": ("overlays/prod", lambda r: find(r, "AuthorizationPolicy").doc["spec"][
        "rules"].append({}), "allows every request"),
    "egress_only_declared": ("overlays/prod", lambda r: find(r, "Sidecar").doc["spec"]["egress"][0]["hosts"].append(
        "*/api.openai.com"), "not declared by a ServiceEntry"),
    "prometheus_rules_parse": ("overlays/prod", lambda r: _rules_of(r)[1]["rules"][0].update(
        expr="ai_inference:errors:ratio_rate5m >"), "does not parse"),
    "alerts_have_severity_and_docs": ("overlays/prod", lambda r: _rules_of(r)[1]["rules"][0]["labels"].pop("severity"),
                                      "no severity label"),
    "dashboard_valid": ("overlays/prod", _set_dashboard_expr, "query does not parse"),
    "no_secret_data": ("overlays/prod", lambda r: _add(r, {"apiVersion": "v1", "kind": "Secret",
                                                           "metadata": {"name": "s3-keys"},
                                                           "stringData": {"key": "AKIA..."}}), "Secret with data"),
    "rbac_no_wildcards": ("overlays/prod", lambda r: find(r, "Role").doc["rules"][0].update(verbs=["*"]),
                          "contains '*'"),
    "no_admin_bindings": ("overlays/prod", lambda r: find(r, "RoleBinding").doc.update(
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}),
                          "cluster-admin"),
    "gpu_scheduling": ("overlays/gpu", lambda r: pod(r).pop("tolerations"), "does not tolerate"),
    "no_gpu_outside_gpu_overlay": ("overlays/prod", lambda r: server(r)[1]["resources"]["limits"].update(
        {"nvidia.com/gpu": "1"}), "outside the gpu environment"),
}


def test_every_rule_has_a_failing_case():
    missing = set(RULES) - set(CASES) - {"promtool_rules"}
    assert not missing, f"rules without a failing case: {sorted(missing)}"


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fails_on_broken_render(rule, render_of):
    target, mutate, words = CASES[rule]
    render = render_of(target)
    assert run_rule(rule, render) == [], f"{rule} already fails on the real {target}"
    mutate(render)
    violations = run_rule(rule, render)
    assert violations, f"{rule} did not catch the break"
    text = "\n".join(v.line() for v in violations)
    assert words in text
    assert all(v.fix for v in violations)
    with pytest.raises(PolicyFailure) as failure:
        from scripts.policy_support import assert_no_violations
        assert_no_violations(violations)
    assert violations[0].obj.ref in str(failure.value)


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("target", ["overlays/dev", "overlays/staging", "overlays/prod", "overlays/gpu",
                                    "clusters/prod"])
def test_rule_passes_on_real_tree(rule, target, real_renders):
    assert run_rule(rule, real_renders[target]) == []


def test_small_manifest_untagged_image_and_root():
    render = make_render([{
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
            "containers": [{"name": "c", "image": "nginx", "securityContext": {"runAsUser": 0}}]}}}}])
    assert "is untagged" in run_rule("image_pinned", render)[0].problem
    problems = [v.problem for v in run_rule("run_as_non_root", render)]
    assert "may run as root" in problems and "has no non-zero runAsUser" in problems


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed (Debian package prometheus)")
def test_promtool_rule_fails_on_a_bad_duration(render_of):
    render = render_of("overlays/prod")
    _rules_of(render)[1]["rules"][0]["for"] = "5x"
    failures = test_monitoring.promtool_check([render])
    violations = run_rule("promtool_rules", render, failures=failures)
    assert violations and "not a valid duration" in violations[0].problem


def test_policy_config_covers_every_overlay():
    overlays = {p.name for p in (REPO / "overlays").iterdir() if p.is_dir()}
    assert overlays == set(CONFIG.environments)
    assert Path(REPO / "config" / "policy.yaml").is_file()
