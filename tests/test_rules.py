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

from scripts.stages.policy import load_rules
from scripts.stages.policy_support import PolicyConfig, PolicyFailure
from scripts.stages.schema import SchemaStore
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
                 "failures": extra.get("failures", {}), "clusters": extra.get("clusters", {})}
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
    from scripts.core.model import Resource
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
    "virtualservice_mirrors": ("overlays/prod", lambda r: find(r, "VirtualService").doc["spec"]["http"][0].update(
        mirror={"host": "ai-inference-service", "subset": "v3"}), "no DestinationRule defines"),
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
    # issue 23
    "egress_endpoints_formed": ("overlays/prod", lambda r: (lambda d: d.update(bucket_name=d.pop("bucket")))(next(
        o for o in r.objects if o.name.startswith("ai-inference-service-models")).doc["data"]), "has no key 'bucket'"),
    "egress_endpoints_open": ("overlays/prod", lambda r: find(r, "ServiceEntry").doc["spec"]["hosts"].remove(
        "sts.eu-west-1.amazonaws.com"), "does not declare sts.eu-west-1.amazonaws.com:443"),
    "monitoring_series_exist": ("overlays/prod", lambda r: _rules_of(r)[1]["rules"][0].update(
        expr="ai_inference:error:ratio_rate5m > 0.05"), "ai_inference:error:ratio_rate5m, which is not recorded"),
    "monitoring_matchers_match_targets": ("overlays/prod", lambda r: _rules_of(r)[1]["rules"][2].update(
        expr='inference_requests_in_flight{job="inference"} > 50'), "the selector matches nothing"),
    "prometheus_loads_monitoring": ("overlays/prod", lambda r: find(r, "PrometheusRule").metadata["labels"].pop(
        "release"), "does not load it"),
    # issue 25
    # prod reading a file that carries markers (dev's kustomization).
    "image_policy_markers": ("overlays/prod", lambda r: setattr(r.target, "sources", (
        *r.target.sources, "overlays/dev/kustomization.yaml")), "(environment prod), which does not follow"),
    "image_update_automation": ("clusters/dev", lambda r: next(
        o for o in r.objects if o.kind == "ImageUpdateAutomation").doc["spec"]["git"]["push"].update(branch="main"),
        "the branch Flux reconciles"),
    "model_version_pinned": ("overlays/prod", lambda r: next(
        o for o in r.objects if o.name.startswith("ai-inference-service-models")).doc["data"].update(v2="2024.09.0"),
        "not pinned by digest"),
}


def _deployment(render, slot="v1"):
    return find(render, "Deployment", f"ai-inference-service-{slot}").doc


def _pod_meta(render):
    return _deployment(render)["spec"]["template"]["metadata"]


CASES.update({
    "no_replicas_under_hpa": ("overlays/prod", lambda r: _deployment(r)["spec"].update(replicas=3),
                              "every Flux reconcile resets"),
    "ephemeral_storage_set": ("overlays/prod", lambda r: server(r)[1]["resources"]["limits"].pop("ephemeral-storage"),
                              "no ephemeral-storage limit"),
    "ist0102_namespace_injection": ("overlays/prod", lambda r: find(r, "Namespace").metadata["labels"].pop(
        "istio-injection"), "IST0102"),
    "ist0101_references": ("overlays/prod", lambda r: find(r, "VirtualService", "ai-inference-service").doc[
        "spec"]["gateways"].append("no-such-gateway"), "IST0101"),
    "ist0132_gateway_serves_host": ("overlays/prod", lambda r: find(r, "VirtualService", "ai-inference-service")
                                    .doc["spec"]["hosts"].append("other.example.com"), "IST0132"),
    "ist0118_service_port_protocol": ("overlays/prod", lambda r: [(p.pop("appProtocol"), p.update(name="web"))
                                                                  for p in find(r, "Service").doc["spec"]["ports"]],
                                      "IST0118"),
    "ist0127_selectors_select_pods": ("overlays/prod", lambda r: find(r, "AuthorizationPolicy").doc["spec"][
        "selector"]["matchLabels"].update({"app.kubernetes.io/name": "gone"}), "IST0127"),
    "destinationrule_tls_matches_mtls": ("overlays/prod", lambda r: find(r, "DestinationRule").doc["spec"][
        "trafficPolicy"]["tls"].update(mode="DISABLE"), "plain text"),
    "ist0002_deprecated_istio_api": ("overlays/prod", lambda r: find(r, "DestinationRule").doc.update(
        apiVersion="networking.istio.io/v1alpha3"), "IST0002"),
    "ist0108_istio_annotations": ("overlays/prod", lambda r: _pod_meta(r)["annotations"].update(
        {"proxy.istio.io/config": "[not, a, mapping]"}), "IST0125"),
    "ist0130_reachable_routes": ("overlays/prod", lambda r: find(r, "VirtualService", "ai-inference-service").doc[
        "spec"]["http"].append({"name": "testers", "match": [{"headers": {"x-canary": {"exact": "1"}}}],
                                "route": [{"destination": {"host": "ai-inference-service", "subset": "v2"}}]}),
        "IST0130"),
    "probe_ports_exist": ("overlays/prod", lambda r: server(r)[1]["readinessProbe"]["httpGet"].update(port="admin"),
                          "does not name"),
    "config_refs_resolve": ("overlays/prod", lambda r: server(r)[1]["env"][0]["valueFrom"]["configMapKeyRef"].update(
        key="nope"), "reads key 'nope'"),
    "service_account_exists": ("overlays/prod", lambda r: _deployment(r)["spec"]["template"]["spec"].update(
        serviceAccountName="default"), "default ServiceAccount"),
    "rolling_update": ("overlays/prod", lambda r: _deployment(r)["spec"].update(strategy={"type": "Recreate"}),
                       "Recreate"),
    "spread_selects_own_pods": ("overlays/dev", lambda r: pod(r)["topologySpreadConstraints"][0]["labelSelector"][
        "matchLabels"].update({"app.kubernetes.io/name": "other"}), "does not select its own pods"),
    "no_duplicate_env": ("overlays/prod", lambda r: server(r)[1]["env"].append({"name": "LOG_LEVEL",
                                                                                "value": "debug"}),
                         "LOG_LEVEL more than once"),
    "no_secret_literals": ("overlays/prod", lambda r: server(r)[1]["env"].append(
        {"name": "S3_ACCESS_KEY", "value": "AKIAIOSFODNN7EXAMPLE"}), "looks like a secret"),
    "service_not_exposed": ("overlays/prod", lambda r: find(r, "Service").doc["spec"].update(type="LoadBalancer"),
                            "outside the cluster"),
    "rbac_no_dangerous_grants": ("overlays/prod", lambda r: find(r, "RoleBinding").doc.update(
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}),
        "read secrets"),
    "pod_hardening_extras": ("overlays/prod", lambda r: _sc(r).update(procMount="Unmasked"), "procMount"),
})

# issue 24: Polaris' and kube-score's checks (tests/upstream_checks.py maps
# every one; guaranteed_qos, on in no environment, has its own failing test
# in tests/test_upstream_rules.py).
CASES.update({
    "priority_class_set": ("overlays/gpu", lambda r: pod(r).pop("priorityClassName"), "sets no priorityClassName"),
    "container_ports_valid": ("overlays/prod", lambda r: server(r)[1]["ports"][1].update(name="http-metrics-scrape"),
                              "more than the 15 allowed"),
    "pdb_has_policy": ("overlays/prod", lambda r: find(r, "PodDisruptionBudget", "ai-inference-service-v1").doc[
        "spec"].pop("maxUnavailable"), "sets neither minAvailable nor maxUnavailable"),
    "networkpolicy_isolates_pods": ("overlays/prod", lambda r: [p.doc["spec"].update(policyTypes=["Ingress"])
                                                                for p in r.objects if p.kind == "NetworkPolicy"],
                                    "no NetworkPolicy with Egress in its policyTypes"),
    "instance_label_matches_name": ("overlays/staging", lambda r: _deployment(r, "v2")["metadata"]["labels"].update(
        {"app.kubernetes.io/instance": "ai-inference-service"}), "not its own name"),
})

# Rules that used to assert less than they said: each case is a break the
# old rule let through.
MORE_CASES = [
    ("virtualservice_mirrors", "overlays/prod", lambda r: find(r, "VirtualService").doc["spec"]["http"][0].update(
        mirror={"host": "ai-inference-service", "subset": "v2"}, mirrorPercentage={"value": 150}),
     "mirrors 150 % of its traffic"),
    ("virtualservice_mirrors", "overlays/prod", lambda r: find(r, "VirtualService").doc["spec"]["http"][0].update(
        mirrors=[{"destination": {"host": "shadow.example.com"}, "percentage": {"value": 5}}]),
     "not a Service or ServiceEntry"),
    ("strict_mtls", "overlays/prod", lambda r: find(r, "PeerAuthentication").doc["spec"]["portLevelMtls"].update(
        {"8080": {"mode": "PERMISSIVE"}}), "port 8080 is PERMISSIVE"),
    ("authorization_policy_no_allow_all", "overlays/prod", lambda r: find(r, "AuthorizationPolicy").doc["spec"][
        "rules"].append({"to": [{"operation": {"ports": ["8080"]}}]}), "any caller on port(s) ['8080']"),
    ("authorization_policy_no_allow_all", "overlays/prod", lambda r: find(r, "AuthorizationPolicy").doc["spec"][
        "rules"].append({"from": [{"source": {"namespaces": ["*"]}}], "to": [{"operation": {"ports": ["8080"]}}]}),
     "any caller"),
    ("egress_only_declared", "overlays/prod", lambda r: find(r, "ServiceEntry").doc["spec"]["hosts"].append(
        "*.amazonaws.com"), "wildcard"),
    ("zone_spread", "overlays/prod", lambda r: [c["labelSelector"]["matchLabels"].update(
        {"app.kubernetes.io/name": "x"}) for c in pod(r)["topologySpreadConstraints"]],
     "does not select its own pods"),
    ("pdb_allows_drain", "overlays/dev", lambda r: find(r, "PodDisruptionBudget", "ai-inference-service-v1").doc[
        "spec"].update(maxUnavailable=0), "node drain never finishes"),
    ("hpa_bounds", "overlays/prod", lambda r: find(r, "HorizontalPodAutoscaler", "ai-inference-service-v1").doc[
        "spec"].update(minReplicas=12, maxReplicas=12), "never scales"),
    ("startup_probe_for_model", "overlays/prod", lambda r: server(r)[1]["startupProbe"].update(failureThreshold=6),
     "less than the 300s"),
    ("probes_set", "overlays/prod", lambda r: server(r)[1].pop("ports") and server(r)[1].pop("livenessProbe"),
     "livenessProbe"),
    ("image_pinned", "overlays/prod", lambda r: server(r)[1].update(image="ghcr.io/example-org/ai:1.5.0"),
     "not pinned by digest"),
]


@pytest.mark.parametrize("case", range(len(MORE_CASES)))
def test_rule_now_catches_what_it_missed(case, render_of):
    rule, target, mutate, words = MORE_CASES[case]
    render = render_of(target)
    assert run_rule(rule, render) == []
    mutate(render)
    text = "\n".join(v.line() for v in run_rule(rule, render))
    assert words in text, text


def test_numeric_target_port_not_listed_by_the_container_is_not_an_error(render_of):
    render = render_of("overlays/prod")
    find(render, "Service").doc["spec"]["ports"][1]["targetPort"] = 9091
    assert run_rule("service_selects_pods", render) == []


def test_injection_in_a_restricted_namespace_needs_istio_cni(render_of):
    import dataclasses

    render = render_of("overlays/prod")
    check = RULES["ist0102_namespace_injection"]
    assert check(render, CONFIG) == []
    without_cni = dataclasses.replace(CONFIG, cluster={})
    assert "istio-init" in check(render, without_cni)[0].problem


def test_checkov_config_agrees_with_the_image_policy():
    """One image policy: config/policy.yaml images.require_digest, which
    checkov's CKV_K8S_43 enforces too. They must not disagree."""
    from scripts.stages.security import load_skips

    skipped = "CKV_K8S_43" in load_skips(REPO)
    assert skipped == (not CONFIG.require_digest)


def test_every_rule_has_a_failing_case():
    # promtool_rules and cluster_no_collisions have tests of their own below,
    # guaranteed_qos in tests/test_upstream_rules.py.
    missing = set(RULES) - set(CASES) - {"promtool_rules", "cluster_no_collisions", "guaranteed_qos"}
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
        from scripts.stages.policy_support import assert_no_violations
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


def test_cluster_rule_passes_on_the_real_clusters(real_renders):
    from tests.policy.test_cluster import builds_by_cluster

    clusters = builds_by_cluster(list(real_renders.values()))
    assert set(clusters) == {"clusters/dev", "clusters/staging", "clusters/prod"}
    for path in clusters:
        assert run_rule("cluster_no_collisions", real_renders[path], clusters=clusters) == []


def test_cluster_rule_names_both_owners(real_renders):
    """prod's Flux build applied twice under another name: every object,
    the namespace, the Gateway's host:port and the VirtualService host collide."""
    import copy
    import dataclasses

    from tests.policy.test_cluster import builds_by_cluster

    renders = list(real_renders.values())
    twin = copy.deepcopy(real_renders["clusters/prod#ai-inference-prod"])
    twin.target = dataclasses.replace(twin.target, path="clusters/prod#ai-inference-prod-copy")
    clusters = builds_by_cluster(renders + [twin])
    text = "\n".join(v.line() for v in run_rule("cluster_no_collisions", real_renders["clusters/prod"],
                                                 clusters=clusters))
    assert "applied by both ai-inference-prod and ai-inference-prod-copy" in text
    assert "namespace ai-inference-prod is applied by both" in text
    assert "(IST0145)" in text and "(IST0138)" in text and "defines host" in text
    # Another cluster's builds are not mixed in.
    assert run_rule("cluster_no_collisions", real_renders["clusters/dev"], clusters=clusters) == []
