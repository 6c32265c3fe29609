"""The shape of what each root renders: kinds, GPU placement, HA numbers.
These fail if any part of the tree the platform relies on is removed."""

from __future__ import annotations

import pytest

from scripts.stages.policy_support import containers, pod_spec

BASE_KINDS = {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Service", "Deployment",
              "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"}
ISTIO_KINDS = {"Gateway", "VirtualService", "DestinationRule", "PeerAuthentication", "AuthorizationPolicy",
               "ServiceEntry", "Sidecar"}
MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}
EXPECTED = {
    "overlays/dev": BASE_KINDS | ISTIO_KINDS,
    "overlays/staging": BASE_KINDS | ISTIO_KINDS | MONITORING_KINDS,
    "overlays/prod": BASE_KINDS | ISTIO_KINDS | MONITORING_KINDS,
    "overlays/gpu": BASE_KINDS | ISTIO_KINDS | MONITORING_KINDS,
}


def test_every_root_renders(real_renders):
    assert set(real_renders) == {"overlays/dev", "overlays/staging", "overlays/prod", "overlays/gpu",
                                 "clusters/dev", "clusters/staging", "clusters/prod",
                                 "clusters/dev#ai-inference-dev", "clusters/staging#ai-inference-staging",
                                 "clusters/prod#ai-inference-prod", "clusters/prod#ai-inference-gpu"}
    assert all(r.ok for r in real_renders.values()), {p: r.error for p, r in real_renders.items() if not r.ok}


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_overlay_kinds(real_renders, path):
    kinds = {o.kind for o in real_renders[path].objects}
    assert kinds == EXPECTED[path]


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_two_model_slots_with_their_own_model_version(real_renders, path):
    deployments = {o.name: o for o in real_renders[path].objects if o.kind == "Deployment"}
    assert set(deployments) == {"ai-inference-service-v1", "ai-inference-service-v2"}
    for slot in ("v1", "v2"):
        dep = deployments[f"ai-inference-service-{slot}"]
        assert dep.doc["spec"]["template"]["metadata"]["labels"]["version"] == slot
        for _, c in containers(pod_spec(dep)):
            model = next(e for e in c["env"] if e["name"] == "MODEL_VERSION")
            assert model["valueFrom"]["configMapKeyRef"]["key"] == slot
    config = next(o for o in real_renders[path].objects if o.name.startswith("ai-inference-service-models"))
    assert {"bucket", "v1", "v2"} <= set(config.doc["data"])


def test_dashboard_is_labelled_for_the_grafana_sidecar(real_renders):
    dashboard = next(o for o in real_renders["overlays/prod"].objects
                     if o.kind == "ConfigMap" and o.name.startswith("ai-inference-service-dashboard"))
    assert dashboard.labels.get("grafana_dashboard") == "1"


@pytest.mark.parametrize("path", ["clusters/dev", "clusters/staging", "clusters/prod"])
def test_clusters_hold_only_flux_objects(real_renders, path):
    kinds = {(o.api_version.split("/")[0], o.kind) for o in real_renders[path].objects}
    # dev alone runs the image automation (config/policy.yaml image_automation.cluster).
    image = {("image.toolkit.fluxcd.io", k) for k in ("ImageRepository", "ImagePolicy", "ImageUpdateAutomation")}
    assert kinds == {("source.toolkit.fluxcd.io", "GitRepository"), ("kustomize.toolkit.fluxcd.io", "Kustomization"),
                     ("v1", "ConfigMap")} | (image if path == "clusters/dev" else set())  # ConfigMap: cluster-settings


@pytest.mark.parametrize("build,overlay,cluster", [
    ("clusters/dev#ai-inference-dev", "overlays/dev", "dev-eu-west-1"),
    ("clusters/staging#ai-inference-staging", "overlays/staging", "staging-eu-west-1"),
    ("clusters/prod#ai-inference-prod", "overlays/prod", "prod-eu-west-1"),
    ("clusters/prod#ai-inference-gpu", "overlays/gpu", "prod-eu-west-1"),
])
def test_what_each_cluster_receives(real_renders, build, overlay, cluster):
    """The Flux build is the overlay with the cluster's variables filled in."""
    received, written = real_renders[build], real_renders[overlay]
    assert [o.ref for o in received.objects] == [o.ref for o in written.objects]
    dep = next(o for o in received.objects if o.kind == "Deployment")
    env = {e["name"]: e.get("value") for e in pod_spec(dep)["containers"][0]["env"]}
    assert env["CLUSTER_NAME"] == cluster and env["CLUSTER_REGION"] == "eu-west-1"
    raw = next(o for o in written.objects if o.kind == "Deployment")
    assert {e["name"]: e.get("value") for e in pod_spec(raw)["containers"][0]["env"]}["CLUSTER_NAME"] == \
        "${cluster_name:=local}"


def test_prod_cluster_runs_prod_then_gpu(real_renders):
    flux = {o.name: o.doc["spec"] for o in real_renders["clusters/prod"].objects if o.kind == "Kustomization"}
    assert flux["ai-inference-prod"]["path"] == "./overlays/prod"
    assert flux["ai-inference-gpu"]["path"] == "./overlays/gpu"
    assert flux["ai-inference-gpu"]["dependsOn"] == [{"name": "ai-inference-prod"}]
    for spec in flux.values():
        assert spec["prune"] is True and spec["wait"] is True and spec["timeout"]


def _gpu_fields(render):
    found = []
    for obj in render.objects:
        pod = pod_spec(obj)
        if pod is None:
            continue
        for _, c in containers(pod):
            if "nvidia.com/gpu" in (c.get("resources") or {}).get("limits", {}):
                found.append(obj.name)
        if pod.get("tolerations") or pod.get("affinity"):
            found.append(obj.name)
    return found


def test_gpu_fields_only_in_gpu(real_renders):
    assert _gpu_fields(real_renders["overlays/gpu"]) != []
    for path in ("overlays/dev", "overlays/staging", "overlays/prod"):
        assert _gpu_fields(real_renders[path]) == [], path
    gpu = next(o for o in real_renders["overlays/gpu"].objects if o.kind == "Deployment")
    pod = pod_spec(gpu)
    server = next(c for _, c in containers(pod) if c["name"] == "server")
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["key"] == "nvidia.com/gpu.present"


@pytest.mark.parametrize("path", ["overlays/prod", "overlays/gpu"])
def test_prod_and_gpu_are_highly_available(real_renders, path):
    render = real_renders[path]
    for dep in (o for o in render.objects if o.kind == "Deployment"):
        # The HPA owns the count (a replica count would be reset by every
        # Flux reconcile); HA comes from its minReplicas and the PDB.
        assert "replicas" not in dep.doc["spec"]
        zone = [c for c in pod_spec(dep)["topologySpreadConstraints"]
                if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert zone and zone[0]["whenUnsatisfiable"] == "DoNotSchedule"
    for hpa in (o for o in render.objects if o.kind == "HorizontalPodAutoscaler"):
        assert hpa.doc["spec"]["minReplicas"] >= 3
    assert sum(1 for o in render.objects if o.kind == "PodDisruptionBudget") == 2


@pytest.mark.parametrize("path,weights", [("overlays/dev", [50, 50]), ("overlays/staging", [80, 20]),
                                          ("overlays/prod", [90, 10]), ("overlays/gpu", [100, 0])])
def test_canary_weights_per_environment(real_renders, path, weights):
    vs = next(o for o in real_renders[path].objects if o.kind == "VirtualService")
    assert [r["weight"] for r in vs.doc["spec"]["http"][0]["route"]] == weights


@pytest.mark.parametrize("path,mode", [("overlays/dev", "PERMISSIVE"), ("overlays/staging", "STRICT"),
                                       ("overlays/prod", "STRICT"), ("overlays/gpu", "STRICT")])
def test_mtls_mode_per_environment(real_renders, path, mode):
    pa = next(o for o in real_renders[path].objects if o.kind == "PeerAuthentication")
    assert pa.doc["spec"]["mtls"]["mode"] == mode


def test_no_secret_is_committed(real_renders):
    for render in real_renders.values():
        assert not [o for o in render.objects if o.kind == "Secret"]


@pytest.mark.parametrize("path", ["overlays/dev", "overlays/staging", "overlays/prod", "overlays/gpu"])
def test_the_mesh_is_switched_on_and_the_model_disk_requested(real_renders, path):
    render = real_renders[path]
    namespace = next(o for o in render.objects if o.kind == "Namespace")
    assert namespace.labels["istio-injection"] == "enabled"
    assert namespace.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for dep in (o for o in render.objects if o.kind == "Deployment"):
        for _, container in containers(pod_spec(dep)):
            assert container["resources"]["requests"]["ephemeral-storage"]
            assert container["resources"]["limits"]["ephemeral-storage"]
