"""The model path rules (tests/policy/test_egress.py) on copies of real
renders, each broken (or changed without breaking) the way a change to the
tree would: every layer between the model fetcher and its endpoints, and
the boundaries where a layer does not apply (ALLOW_ANY, no proxy, an
excluded port, a Sidecar that does not select the pod)."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from scripts.core.errors import InputError
from scripts.stages import netpolicy
from scripts.stages.egress_settings import parse_egress
from scripts.stages.policy_support import PolicyConfig
from tests.conftest import REPO, find
from tests.test_rules import run_rule

CONFIG = PolicyConfig.load(REPO)
PROD = "overlays/prod"
FLUX_PROD = "clusters/prod#ai-inference-prod"
STS = "sts.eu-west-1.amazonaws.com"
BUCKET_HOST = "ai-models-prod.s3.eu-west-1.amazonaws.com"


def _deployments(render):
    return [o for o in render.objects if o.kind == "Deployment"]


def _pod(render):
    return [d.doc["spec"]["template"] for d in _deployments(render)]


def _fetchers(render):
    return [c for t in _pod(render) for c in t["spec"]["initContainers"] if c["name"] == "model-fetcher"]


def _entry(render):
    return find(render, "ServiceEntry", "model-store").doc["spec"]


def _sidecar(render):
    return find(render, "Sidecar").doc["spec"]


def _allow(render):
    return find(render, "NetworkPolicy", "ai-inference-service").doc["spec"]


def _egress_rule(render, port):
    return next(r for r in _allow(render)["egress"] if any(p.get("port") == port for p in r.get("ports") or []))


def _models(render):
    return next(o for o in render.objects if o.kind == "ConfigMap" and o.name.startswith("ai-inference-service-models"))


def _set_env(name, value):
    def mutate(render):
        for container in _fetchers(render):
            container["env"] = [e for e in container["env"] if e["name"] != name]
            if value is not None:
                container["env"].append({"name": name, "value": value})
    return mutate


def _drop_sts(render):
    _entry(render)["hosts"].remove(STS)


def _annotate(key, value):
    def mutate(render):
        for template in _pod(render):
            template["metadata"].setdefault("annotations", {})[key] = value
    return mutate


def _label_pods(key, value):
    def mutate(render):
        for template in _pod(render):
            template["metadata"]["labels"][key] = value
    return mutate


def _both(*mutations):
    def mutate(render):
        for m in mutations:
            m(render)
    return mutate


def _identity(**changes):
    assert CONFIG.egress is not None and CONFIG.egress.identity is not None
    return dataclasses.replace(CONFIG, egress=dataclasses.replace(
        CONFIG.egress, identity=dataclasses.replace(CONFIG.egress.identity, **changes)))


def _mesh_default(policy):
    assert CONFIG.egress is not None
    return dataclasses.replace(CONFIG, egress=dataclasses.replace(
        CONFIG.egress, mesh=dataclasses.replace(CONFIG.egress.mesh, outbound_traffic_policy=policy)))


OPEN, FORMED = "egress_endpoints_open", "egress_endpoints_formed"

# (id, target, mutation, rule, words in the finding or None for "still open", config)
CASES = [
    # The mesh's registry: hosts, ports, protocols, exportTo, resolution.
    ("entry-host-typo", PROD, lambda r: _entry(r)["hosts"].__setitem__(0, "ai-modles-prod.s3.eu-west-1.amazonaws.com"),
     OPEN, f"ServiceEntry/model-store: does not declare {BUCKET_HOST}:443", None),
    ("entry-without-sts", PROD, _drop_sts, OPEN, f"does not declare {STS}:443", None),
    ("entry-wrong-port", PROD, lambda r: _entry(r)["ports"][0].update(number=8443), OPEN, "but not port 443", None),
    ("entry-http", PROD, lambda r: _entry(r)["ports"][0].update(protocol="HTTP"), OPEN,
     "parses the TLS handshake as HTTP", None),
    ("entry-tcp", PROD, lambda r: _entry(r)["ports"][0].update(protocol="TCP"), OPEN, "cannot route it by SNI", None),
    ("entry-https", PROD, lambda r: _entry(r)["ports"][0].update(protocol="HTTPS"), OPEN, None, None),
    ("entry-exported-elsewhere", PROD, lambda r: _entry(r).update(exportTo=["istio-system"]), OPEN,
     "hides it from namespace ai-inference-prod", None),
    ("entry-exported-nowhere", PROD, lambda r: _entry(r).update(exportTo=["~"]), OPEN, "hides it", None),
    ("entry-exported-everywhere", PROD, lambda r: _entry(r).update(exportTo=["*"]), OPEN, None, None),
    ("entry-exported-by-name", PROD, lambda r: _entry(r).update(exportTo=["ai-inference-prod"]), OPEN, None, None),
    ("entry-export-default", PROD, lambda r: _entry(r).pop("exportTo"), OPEN, None, None),
    ("entry-static-no-endpoints", PROD, lambda r: _entry(r).update(resolution="STATIC"), OPEN,
     "resolution STATIC and no endpoints", None),
    ("no-entry-at-all", PROD, lambda r: r.objects.remove(find(r, "ServiceEntry", "model-store")), OPEN,
     "Sidecar/ai-inference-service: its REGISTRY_ONLY outbound policy drops", None),
    ("entry-wildcard-covers", PROD, lambda r: _entry(r).update(hosts=["*.amazonaws.com"], resolution="NONE"), OPEN,
     None, None),
    # The Sidecar: egress hosts, listener ports, outbound policy, selection.
    ("sidecar-omits-namespace", PROD, lambda r: _sidecar(r)["egress"][0].update(hosts=["istio-system/*"]), OPEN,
     "do not import ServiceEntry/model-store", None),
    ("sidecar-imports-host", PROD, lambda r: _sidecar(r)["egress"][0].update(
        hosts=[f"./{BUCKET_HOST}", f"ai-inference-prod/{STS}"]), OPEN, None, None),
    ("sidecar-imports-everything", PROD, lambda r: _sidecar(r)["egress"][0].update(hosts=["*/*"]), OPEN, None, None),
    ("sidecar-listener-other-port", PROD, lambda r: _sidecar(r)["egress"][0].update(
        port={"number": 8080, "protocol": "HTTP", "name": "http"}), OPEN, "do not import", None),
    ("allow-any-without-sts", PROD, _both(_drop_sts, lambda r: _sidecar(r).update(
        outboundTrafficPolicy={"mode": "ALLOW_ANY"})), OPEN, None, None),
    ("allow-any-http-entry", PROD, _both(lambda r: _entry(r)["ports"][0].update(protocol="HTTP"), lambda r: _sidecar(
        r).update(outboundTrafficPolicy={"mode": "ALLOW_ANY"})), OPEN, "parses the TLS handshake as HTTP", None),
    ("policy-from-mesh-default-allow", PROD, _both(_drop_sts, lambda r: _sidecar(r).pop("outboundTrafficPolicy")),
     OPEN, None, None),
    ("policy-from-mesh-default-registry", PROD, _both(_drop_sts, lambda r: _sidecar(r).pop("outboundTrafficPolicy")),
     OPEN, "the mesh config's REGISTRY_ONLY", _mesh_default("REGISTRY_ONLY")),
    ("sidecar-selects-other-pods", PROD, _both(_drop_sts, lambda r: _sidecar(r)["workloadSelector"]["labels"].update(
        {"app.kubernetes.io/name": "other"})), OPEN, None, None),
    ("sidecar-selects-other-pods-registry-default", PROD, _both(
        _drop_sts, lambda r: _sidecar(r)["workloadSelector"]["labels"].update({"app.kubernetes.io/name": "other"})),
     OPEN, "so the mesh config's REGISTRY_ONLY", _mesh_default("REGISTRY_ONLY")),
    # Whether a proxy sees the connection at all.
    ("no-sidecar-entry-broken", PROD, _both(_drop_sts, _label_pods("sidecar.istio.io/inject", "false")), OPEN,
     None, None),
    ("no-sidecar-by-annotation", PROD, _both(_drop_sts, _annotate("sidecar.istio.io/inject", "false")), OPEN,
     None, None),
    ("namespace-not-injected", PROD, _both(_drop_sts, lambda r: find(r, "Namespace").metadata["labels"].pop(
        "istio-injection")), OPEN, None, None),
    ("no-sidecar-networkpolicy-still-applies", PROD, _both(
        _label_pods("sidecar.istio.io/inject", "false"), lambda r: _egress_rule(r, 443)["ports"][0].update(port=8443)),
     OPEN, "no egress rule admits TCP/443", None),
    ("port-excluded-from-capture", PROD, _both(_drop_sts, _annotate("traffic.sidecar.istio.io/excludeOutboundPorts",
                                                                    "443")), OPEN, None, None),
    ("not-a-native-sidecar", PROD, _annotate("sidecar.istio.io/nativeSidecar", "false"), OPEN,
     "runs before its proxy starts", None),
    # NetworkPolicy: DNS, the control plane, the endpoint's port and addresses.
    ("dns-dropped", PROD, lambda r: _allow(r)["egress"].remove(_egress_rule(r, 53)), OPEN,
     "blocks TCP/53 to the cluster DNS", None),
    ("dns-udp-only", PROD, lambda r: _egress_rule(r, 53).update(ports=[{"port": 53, "protocol": "UDP"}]), OPEN,
     "blocks TCP/53 to the cluster DNS", None),
    ("dns-wrong-pods", PROD, lambda r: _egress_rule(r, 53)["to"][0].update(
        podSelector={"matchLabels": {"k8s-app": "kube-dns", "app.kubernetes.io/name": "ai-inference-service"}}), OPEN,
     "blocks UDP/53 to the cluster DNS", None),
    ("dns-named-ports", PROD, lambda r: _egress_rule(r, 53).update(ports=[{"port": "dns", "protocol": "UDP"},
                                                                         {"port": "dns-tcp"}]), OPEN, None, None),
    ("dns-named-port-wrong-protocol", PROD, lambda r: _egress_rule(r, 53).update(ports=[{"port": "dns"},
                                                                                       {"port": "dns-tcp"}]), OPEN,
     "blocks UDP/53 to the cluster DNS", None),
    ("istiod-dropped", PROD, lambda r: _allow(r)["egress"].remove(_egress_rule(r, 15012)), OPEN,
     "blocks TCP/15012 to istiod", None),
    ("https-dropped", PROD, lambda r: _allow(r)["egress"].remove(_egress_rule(r, 443)), OPEN,
     "no egress rule admits TCP/443", None),
    ("https-public-range-excepted", PROD, lambda r: _egress_rule(r, 443)["to"][0]["ipBlock"]["except"].append(
        "52.0.0.0/8"), OPEN, "leave out 52.0.0.0/8", None),
    ("https-private-only", PROD, lambda r: _egress_rule(r, 443)["to"][0].update(ipBlock={"cidr": "10.0.0.0/8"}),
     OPEN, "leave out", None),
    ("https-two-halves", PROD, lambda r: _egress_rule(r, 443).update(to=[{"ipBlock": {"cidr": "0.0.0.0/1"}},
                                                                        {"ipBlock": {"cidr": "128.0.0.0/1"}}]),
     OPEN, None, None),
    ("https-any-destination", PROD, lambda r: _egress_rule(r, 443).pop("to"), OPEN, None, None),
    ("https-port-range", PROD, lambda r: _egress_rule(r, 443)["ports"][0].update(port=400, endPort=500), OPEN,
     None, None),
    ("https-port-named", PROD, lambda r: _egress_rule(r, 443)["ports"][0].update(port="https"), OPEN,
     "no egress rule admits TCP/443", None),
    ("not-isolated-for-egress", PROD, _both(
        lambda r: r.objects.remove(find(r, "NetworkPolicy", "default-deny")),
        lambda r: _allow(r).update(policyTypes=["Ingress"], egress=[])), OPEN, None, None),
    # The model ConfigMap: its bucket and the key the fetcher reads.
    ("bucket-changed", PROD, lambda r: _models(r).doc["data"].update(bucket="ai-models-prod2"), OPEN,
     "does not declare ai-models-prod2.s3.eu-west-1.amazonaws.com:443", None),
    ("bucket-key-renamed", PROD, lambda r: _models(r).doc["data"].update(bucket_name=_models(r).doc["data"].pop(
        "bucket")), FORMED, "has no key 'bucket'", None),
    ("bucket-not-a-name", PROD, lambda r: _models(r).doc["data"].update(bucket="AI_Models"), FORMED,
     "not an S3 bucket name", None),
    ("bucket-with-dots", PROD, lambda r: _models(r).doc["data"].update(bucket="ai.models.prod"), OPEN,
     "does not declare s3.eu-west-1.amazonaws.com:443", None),
    # The region and the identity.
    ("region-changed-by-cluster", FLUX_PROD, _set_env("AWS_REGION", "us-east-1"), OPEN,
     "does not declare sts.us-east-1.amazonaws.com:443", None),
    ("region-not-set-plain", PROD, _set_env("AWS_REGION", None), FORMED, "sets no AWS_REGION or AWS_DEFAULT_REGION",
     None),
    ("region-not-set-flux-uses-cluster", FLUX_PROD, _set_env("AWS_REGION", None), FORMED, None, None),
    ("region-not-a-region", PROD, _set_env("AWS_REGION", "local"), FORMED, "'local', which is not an AWS region",
     None),
    ("region-unsubstituted", PROD, _set_env("AWS_REGION", "${cluster_region}"), FORMED,
     "${cluster_region} with no default", None),
    ("region-from-flag", PROD, lambda r: [c["args"].extend(["--region", "us-east-1"]) for c in _fetchers(r)], OPEN,
     "does not declare sts.us-east-1.amazonaws.com:443", None),
    ("irsa-removed", PROD, lambda r: find(r, "ServiceAccount").metadata.pop("annotations"), OPEN,
     "169.254.169.254:80", None),
    ("irsa-not-an-arn", PROD, lambda r: find(r, "ServiceAccount").metadata["annotations"].update(
        {"eks.amazonaws.com/role-arn": "ai-inference-model-reader"}), FORMED, "not an IAM role ARN", None),
    ("webhook-skips-the-fetcher", PROD, _annotate("eks.amazonaws.com/skip-containers", "model-fetcher"), OPEN,
     "skipped by the pod identity webhook", None),
    ("sts-legacy-ignored-by-cli-v2", PROD, _set_env("AWS_STS_REGIONAL_ENDPOINTS", "legacy"), OPEN, None, None),
    ("sts-legacy-honoured", PROD, _set_env("AWS_STS_REGIONAL_ENDPOINTS", "legacy"), OPEN,
     "does not declare sts.amazonaws.com:443", _identity(honour_legacy_sts=True)),
    ("static-keys-need-no-sts", PROD, _both(_drop_sts, _set_env("AWS_ACCESS_KEY_ID", "from-a-secret")), OPEN,
     None, None),
    ("endpoint-url", PROD, _set_env("AWS_ENDPOINT_URL_S3", "https://bucket.vpce-1.s3.eu-west-1.vpce.amazonaws.com"),
     OPEN, "does not declare bucket.vpce-1.s3.eu-west-1.vpce.amazonaws.com:443", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_model_path_case(case, render_of):
    _, target, mutate, rule, words, config = case
    config = config or CONFIG
    render = render_of(target)
    assert _run(rule, render, config) == [], f"{rule} already fails on the real {target}"
    mutate(render)
    violations = _run(rule, render, config)
    text = "\n".join(v.line() for v in violations)
    if words is None:
        assert violations == [], text
    else:
        assert words in text, text
        assert all(v.fix for v in violations)


def _run(rule, render, config):
    import inspect

    from tests.test_rules import RULES
    check = RULES[rule]
    available = {"render": render, "config": config, "repo": REPO}
    return check(**{name: available[name] for name in inspect.signature(check).parameters})


def test_a_finding_points_at_the_file_to_change(render_of):
    render = render_of(PROD)
    _drop_sts(render)
    [violation] = run_rule(OPEN, render)
    assert violation.obj.source.file == "overlays/prod/model-store.yaml"
    render = render_of(PROD)
    _models(render).doc["data"]["bucket_name"] = _models(render).doc["data"].pop("bucket")
    files = {v.obj.source.file for v in run_rule(FORMED, render) if v.obj.kind == "ConfigMap"}
    assert files == {"overlays/prod/kustomization.yaml"}
    render = render_of(PROD)
    _egress_rule(render, 443)["ports"][0]["port"] = 8443
    assert {v.obj.source.file for v in run_rule(OPEN, render)} == {"base/networkpolicy-allow.yaml"}


def test_one_finding_names_every_workload_it_blocks(render_of):
    render = render_of(PROD)
    _drop_sts(render)
    [violation] = run_rule(OPEN, render)
    assert "init container model-fetcher of Deployment/ai-inference-service-v1, Deployment/ai-inference-service-v2" \
        in violation.problem
    assert "AssumeRoleWithWebIdentity" in violation.problem and "REGISTRY_ONLY" in violation.problem


def test_the_region_comes_from_the_cluster_settings_on_a_flux_build(render_of):
    render = render_of(FLUX_PROD)
    _set_env("AWS_REGION", "us-east-1")(render)
    text = "\n".join(v.line() for v in run_rule(OPEN, render))
    assert "ai-models-prod.s3.us-east-1.amazonaws.com:443" in text and "sts.us-east-1.amazonaws.com:443" in text


def test_every_environment_has_an_open_model_path(real_renders):
    """The tree itself: every overlay and every Flux build derives the
    bucket and STS endpoints and finds them open."""
    from tests.policy.test_egress import _pods

    for path, render in real_renders.items():
        if "#" not in path and not path.startswith("overlays/"):
            continue
        pods, problems = _pods(render, CONFIG)
        assert problems == [], path
        hosts = {need.host for pod in pods for need in pod.needed}
        assert any(h.endswith(".s3.eu-west-1.amazonaws.com") for h in hosts) and STS in hosts, (path, hosts)
        assert run_rule(OPEN, render) == [], path


# ---- NetworkPolicy arithmetic -----------------------------------------------

def test_public_space_leaves_out_private_and_special_ranges():
    space = netpolicy.to_networks(netpolicy.public_space())
    assert any(ipaddress.ip_network("8.8.8.0/24").subnet_of(n) for n in space)
    for special in netpolicy.NOT_PUBLIC:
        assert not any(n.overlaps(ipaddress.ip_network(special)) for n in space)
    # Everything else is in it: the two together are the whole IPv4 space.
    total = sum(n.num_addresses for n in space) + sum(ipaddress.ip_network(s).num_addresses
                                                       for s in netpolicy.NOT_PUBLIC)
    assert total == 2**32


def test_uncovered_subtracts_exactly():
    everything = netpolicy.to_ranges(["0.0.0.0/0"])
    rest = netpolicy.uncovered(everything, netpolicy.to_ranges(["0.0.0.0/1"]))
    assert netpolicy.to_networks(rest) == [ipaddress.ip_network("128.0.0.0/1")]
    assert netpolicy.uncovered(everything, netpolicy.to_ranges(["0.0.0.0/1", "128.0.0.0/1"])) == ()
    hole = netpolicy.uncovered(everything, netpolicy.minus(everything, netpolicy.to_ranges(["52.0.0.0/8"])))
    assert netpolicy.to_networks(hole) == [ipaddress.ip_network("52.0.0.0/8")]


def test_policy_types_default_from_the_rules():
    assert netpolicy.policy_types({}) == ["Ingress"]
    assert netpolicy.policy_types({"egress": [{}]}) == ["Ingress", "Egress"]
    assert netpolicy.policy_types({"egress": []}) == ["Ingress"]
    assert netpolicy.policy_types({"policyTypes": ["Egress"]}) == ["Egress"]


# ---- config ------------------------------------------------------------------

@pytest.mark.parametrize("block,words", [
    ({"model_store": {"configmap": "m", "bucket_key": "b", "cloud": "aws", "host": "{bucket}.{zone}"}}, "{zone}"),
    ({"model_store": {"configmap": [], "bucket_key": "b", "cloud": "aws", "host": "{bucket}"}},
     "`egress.model_store.configmap` must be a ConfigMap name or a list"),
    ({"model_store": {"configmap": "m", "bucket_key": "b", "cloud": "aws", "host": "{bucket}", "port": 0}},
     "egress.model_store.port"),
    ({"identity": {"region_env": "AWS_REGION"}}, "region_env"),
    ({"identity": {"region_env": ["AWS_REGION"], "irsa_annotation": "a", "sts_host": "sts", "sts_global_host": "g",
                   "without_irsa": {"address": "metadata", "what": "x"}}}, "must be an IP address"),
    ({"extra": [{"host": "x.example.com", "port": 443}]}, "egress.extra[0].reason"),
    ({"extra": [{"host": "x", "port": 443, "reason": "r", "protocol": "UDP"}]}, "egress.extra[0].protocol"),
    ({"dns": {"namespace_labels": {"a": "b"}, "pod_labels": {"c": "d"}, "ports": {"dns": "53"}}}, "PROTOCOL/NUMBER"),
    ({"mesh_defaults": {"outbound_traffic_policy": "DENY"}}, "ALLOW_ANY or REGISTRY_ONLY"),
    ([], "`egress` must be a mapping"),
])
def test_bad_egress_config_is_one_line(block, words):
    with pytest.raises(InputError) as error:
        parse_egress(block)
    assert words in str(error.value) and str(error.value).startswith("config/policy.yaml: ")
    assert "\n" not in str(error.value)


def test_no_egress_config_derives_nothing(render_of):
    render = render_of(PROD)
    _drop_sts(render)
    assert run_rule(OPEN, render) != []
    from tests.policy.test_egress import check_egress_endpoints_open
    assert check_egress_endpoints_open(render, dataclasses.replace(CONFIG, egress=None), REPO) == []


# ---- end to end: a copy of the tree, broken in the root that comes last -------

def _validate_policy(tree):
    import json

    from tests.test_validate_cli import validate

    report = tree / "report.json"
    proc = validate("--repo", str(tree), "--stage", "policy", "--report-json", str(report))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return json.loads(report.read_text())["findings"]


def _replace(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_host_typo_in_the_last_overlay_is_found_on_its_roots_only(tree):
    _replace(tree / "overlays/staging/model-store.yaml", "- ai-models-staging.s3", "- ai-models-stagin.s3")
    findings = _validate_policy(tree)
    assert {(f["target"], f["rule"], f["file"]) for f in findings} == {
        (target, OPEN, "overlays/staging/model-store.yaml")
        for target in ("overlays/staging", "clusters/staging#ai-inference-staging")}
    assert all("ai-models-staging.s3.eu-west-1.amazonaws.com:443" in f["message"] for f in findings)


def test_a_region_moved_in_the_cluster_settings_is_found_on_that_clusters_build(tree):
    _replace(tree / "clusters/staging/cluster-settings.yaml", "cluster_region: eu-west-1", "cluster_region: us-east-1")
    findings = _validate_policy(tree)
    assert {(f["target"], f["rule"], f["file"]) for f in findings} == {
        ("clusters/staging#ai-inference-staging", OPEN, "overlays/staging/model-store.yaml")}
    text = "\n".join(f["message"] for f in findings)
    assert "does not declare sts.us-east-1.amazonaws.com:443" in text
    assert "does not declare ai-models-staging.s3.us-east-1.amazonaws.com:443" in text
    assert "region us-east-1 (cluster_region of ConfigMap flux-system/cluster-settings)" in text


def test_a_networkpolicy_patch_dropping_dns_is_found_in_its_file(tree):
    (tree / "overlays/staging/egress.yaml").write_text(
        "# drops the DNS rule\n- op: remove\n  path: /spec/egress/0\n")
    _replace(tree / "overlays/staging/kustomization.yaml", "patches:\n",
             "patches:\n  - path: egress.yaml\n    target:\n      kind: NetworkPolicy\n"
             "      name: ai-inference-service\n")
    findings = [f for f in _validate_policy(tree) if f["rule"] == OPEN]
    assert {f["target"] for f in findings} == {"overlays/staging", "clusters/staging#ai-inference-staging"}
    assert {f["file"] for f in findings} == {"overlays/staging/egress.yaml"}
    assert any("blocks UDP/53 to the cluster DNS" in f["message"] for f in findings)


def test_a_renamed_bucket_key_is_found_in_the_generator(tree):
    _replace(tree / "overlays/staging/kustomization.yaml", "- bucket=ai-models-staging", "- store=ai-models-staging")
    findings = [f for f in _validate_policy(tree) if f["rule"] == FORMED]
    assert {f["target"] for f in findings} == {"overlays/staging", "clusters/staging#ai-inference-staging"}
    assert {f["file"] for f in findings} == {"overlays/staging/kustomization.yaml"}
    assert all("has no key 'bucket'" in f["message"] for f in findings)


def test_an_alert_reading_an_unrecorded_series_in_the_last_overlay(tree):
    _replace(tree / "overlays/staging/kustomization.yaml", "patches:\n",
             "patches:\n  - target:\n      kind: PrometheusRule\n    patch: |-\n      - op: replace\n"
             "        path: /spec/groups/1/rules/0/expr\n        value: ai_inference:error:ratio_rate5m > 0.05\n")
    findings = _validate_policy(tree)
    assert {(f["target"], f["rule"], f["file"]) for f in findings} == {
        (target, "monitoring_series_exist", "monitoring/prometheusrule.yaml")
        for target in ("overlays/staging", "clusters/staging#ai-inference-staging")}
    assert all("alert AIInferenceHighErrorRate reads ai_inference:error:ratio_rate5m" in f["message"]
               for f in findings)


def test_a_wrong_typed_egress_setting_is_one_line_naming_the_file(tree):
    from tests.test_validate_cli import validate

    _replace(tree / "config/policy.yaml", "    port: 443\n  identity:", "    port: https\n  identity:")
    proc = validate("--repo", str(tree), "--target", str(tree / "overlays/dev"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "config/policy.yaml" in lines[0] and "`egress.model_store.port` must be a port number" in lines[0]


def test_the_model_generator_lookup_answers_as_the_patterns_did():
    """model_generator is a lookup (the settings list every service's
    generator); it answers as matching each generator's name, or that name
    with kustomize's hash suffix, in the settings' order, did."""
    import itertools
    import re

    from scripts.stages.endpoints import model_generator

    def by_patterns(name, generators):
        return next((g for g in generators if name == g or re.fullmatch(re.escape(g) + r"-[a-z0-9]{10}", name)),
                    None)

    generators = ("ai-models", "ai-models-abcde12345", "a", "a-b", "", "svc-001-models")
    names = ["ai-models", "ai-models-abcde12345", "ai-models-abcde12345-0123456789", "ai-models-ABCDE12345",
             "ai-models-abcde1234", "a-0123456789", "a-b-0123456789", "-0123456789", "svc-001-models-k2t9c8h6b4",
             "x", "", "svc-002-models-k2t9c8h6b4"]
    for order in itertools.permutations(generators, 4):
        for name in names:
            assert model_generator(name, order) == by_patterns(name, order), (name, order)
