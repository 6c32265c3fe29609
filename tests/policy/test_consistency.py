"""Objects agree with each other: the checks istioctl analyze and
kube-linter make across a render, done here without a cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scripts.core.model import Render, Resource
from scripts.stages.policy_support import (
    NETWORK_DIRECTIONS,
    PolicyConfig,
    Violation,
    assert_no_violations,
    containers,
    plain_selector_matches,
    pod_template_labels,
    selector_matches,
    workloads,
)

# The recommended label naming one installation of an application.
INSTANCE_LABEL = "app.kubernetes.io/instance"


def _pods(render: Render, namespace: str | None) -> list[tuple[Resource, dict, dict]]:
    """(workload, pod spec, pod labels) in a namespace."""
    return [(obj, pod, pod_template_labels(obj)) for obj, pod in workloads(render)
            if obj.namespace == namespace and obj.kind != "Job"]


def check_service_selects_pods(render: Render) -> list[Violation]:
    out = []
    for svc in (o for o in render.objects if o.kind == "Service"):
        spec = svc.doc.get("spec") or {}
        if spec.get("type") == "ExternalName" or not spec.get("selector"):
            continue
        selected = [(w, pod) for w, pod, labels in _pods(render, svc.namespace)
                    if plain_selector_matches(spec["selector"], labels)]
        if not selected:
            out.append(Violation(svc, f"selector {spec['selector']} matches no pod template in this render",
                                 "align spec.selector with the pod template labels"))
            continue
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            exposed = any(
                (isinstance(target, int) and cp.get("containerPort") == target) or cp.get("name") == target
                for _, pod in selected for _, c in containers(pod, init=False) for cp in c.get("ports") or [])
            # A numeric targetPort reaches the pod whether or not a container
            # lists it (containerPort is informational): not an error. A name
            # must resolve to a named containerPort, or there is no endpoint.
            if not exposed and not isinstance(target, int):
                out.append(Violation(svc, f"port {port.get('name') or port.get('port')} targets {target!r}, "
                                          "which no selected container exposes",
                                     "name or number a containerPort of the selected pods"))
    return out


def check_scale_targets_exist(render: Render) -> list[Violation]:
    """HPAs scale an object in the render; PDBs select pods that exist."""
    existing = {(o.kind, o.name, o.namespace) for o in render.objects}
    out = []
    for obj in render.objects:
        if obj.kind == "HorizontalPodAutoscaler":
            ref = (obj.doc.get("spec") or {}).get("scaleTargetRef") or {}
            if (ref.get("kind"), ref.get("name"), obj.namespace) not in existing:
                out.append(Violation(obj, f"scales {ref.get('kind')}/{ref.get('name')}, which is not in this render",
                                     "point scaleTargetRef at the Deployment's rendered name"))
        elif obj.kind == "PodDisruptionBudget":
            selector = (obj.doc.get("spec") or {}).get("selector")
            if not any(selector_matches(selector, labels) for _, _, labels in _pods(render, obj.namespace)):
                out.append(Violation(obj, "selects no pods in this render",
                                     "align spec.selector with the workload's pod labels"))
    return out


def check_networkpolicy_selects_pods(render: Render) -> list[Violation]:
    out = []
    for policy in (o for o in render.objects if o.kind == "NetworkPolicy"):
        selector = (policy.doc.get("spec") or {}).get("podSelector")
        if selector == {}:
            continue  # selects every pod in the namespace, by design (default deny)
        if not any(selector_matches(selector, labels) for _, _, labels in _pods(render, policy.namespace)):
            out.append(Violation(policy, "podSelector matches no pod in this render",
                                 "align spec.podSelector with the pods it is meant to protect"))
    return out


def _policy_types(spec: dict) -> list[str]:
    """The directions a NetworkPolicy isolates, as the API server defaults
    them: Ingress always, Egress when it has egress rules, unless
    policyTypes says otherwise."""
    declared = spec.get("policyTypes")
    if declared:
        return list(declared)
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def check_networkpolicy_isolates_pods(render: Render, config: PolicyConfig) -> list[Violation]:
    """Every pod is isolated in each direction its environment requires
    (network_isolation, both by default): some NetworkPolicy selecting it
    lists that direction in its policyTypes, and the policies together allow
    some traffic that way, or the pod can receive nothing (or reach nothing,
    not even DNS). Policies add up: a default-deny plus an allow-list passes
    (Polaris missingNetworkPolicy; kube-score pod-networkpolicy)."""
    required = config.env(render).get("network_isolation", list(NETWORK_DIRECTIONS))
    policies = [o for o in render.objects if o.kind == "NetworkPolicy"]
    out = []
    for obj, _ in workloads(render):
        labels = pod_template_labels(obj)
        mine = [(p.doc.get("spec") or {}) for p in policies if p.namespace == obj.namespace
                and selector_matches((p.doc.get("spec") or {}).get("podSelector"), labels)]
        for direction in required:
            isolating = [spec for spec in mine if direction in _policy_types(spec)]
            rules = sum(len(spec.get(direction.lower()) or []) for spec in isolating)
            if not isolating:
                out.append(Violation(obj, f"is selected by no NetworkPolicy with {direction} in its policyTypes, so "
                                          f"its {direction.lower()} traffic is not restricted",
                                     f"add {direction} to the policyTypes of a NetworkPolicy that selects its pods "
                                     "(a default-deny with podSelector: {} covers every pod)"))
            elif not rules:
                what = "no traffic can reach it" if direction == "Ingress" else "it can reach nothing, not even DNS"
                out.append(Violation(obj, f"its NetworkPolicies isolate {direction} but none allows any, so {what}",
                                     f"add the {direction.lower()} rules it needs to a NetworkPolicy that selects it, "
                                     f"or remove {direction} from environments.<env>.network_isolation in "
                                     "config/policy.yaml if it must have none"))
    return out


def check_instance_label_matches_name(render: Render) -> list[Violation]:
    """A workload carries app.kubernetes.io/instance, and it is the
    workload's own name: here each model slot (ai-inference-service-v1, -v2)
    is an instance of the service, its Deployment, HPA and PDB labelled
    with it, so dashboards and kubectl -l tell the slots apart (Polaris
    metadataAndInstanceMismatched)."""
    out = []
    for obj, _ in workloads(render):
        instance = obj.labels.get(INSTANCE_LABEL)
        if instance is None:
            out.append(Violation(obj, f"has no {INSTANCE_LABEL} label",
                                 f"label it {INSTANCE_LABEL}: {obj.name} (the slot's kustomization labels each slot)"))
        elif instance != obj.name:
            out.append(Violation(obj, f"is labelled {INSTANCE_LABEL}: {instance}, not its own name {obj.name}",
                                 f"set the label to {obj.name}, or rename the object"))
    return out


def check_networkpolicy_no_allow_all_ingress(render: Render) -> list[Violation]:
    out = []
    for policy in (o for o in render.objects if o.kind == "NetworkPolicy"):
        for rule in (policy.doc.get("spec") or {}).get("ingress") or []:
            peers = rule.get("from")
            everyone = not peers or any(
                p == {} or (p.get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0")
                or (p.get("namespaceSelector") == {} and not p.get("podSelector")) for p in peers)
            if everyone:
                out.append(Violation(policy, "has an ingress rule that admits every source",
                                     "list the namespaces and pods allowed in under from:"))
    return out


def _service_entry_hosts(render: Render) -> set[str]:
    return {h for o in render.objects if o.kind == "ServiceEntry" for h in (o.doc.get("spec") or {}).get("hosts") or []}


def _service_hosts(render: Render, namespace: str | None) -> set[str]:
    hosts = set()
    for svc in (o for o in render.objects if o.kind == "Service"):
        ns = svc.namespace or namespace
        hosts |= {f"{svc.name}.{ns}.svc.cluster.local", f"{svc.name}.{ns}.svc", f"{svc.name}.{ns}"}
        if ns == namespace:
            hosts.add(svc.name)
    return hosts


def check_destinationrule_subsets_match(render: Render) -> list[Violation]:
    out = []
    for rule in (o for o in render.objects if o.kind == "DestinationRule"):
        spec = rule.doc.get("spec") or {}
        host = spec.get("host")
        if host not in _service_hosts(render, rule.namespace):
            if host not in _service_entry_hosts(render):
                out.append(Violation(rule, f"host {host!r} is not a Service or ServiceEntry in this render",
                                     "use the Service name the rule is meant for"))
            continue
        pods = _pods(render, rule.namespace)
        for subset in spec.get("subsets") or []:
            labels = subset.get("labels") or {}
            if not any(plain_selector_matches(labels, pod_labels) for _, _, pod_labels in pods):
                out.append(Violation(rule, f"subset {subset.get('name')} selects {labels}, which no pod has",
                                     "match the `version` label of an existing Deployment's pods"))
    return out


def _routes(vs: Resource):
    spec = vs.doc.get("spec") or {}
    for protocol in ("http", "tcp", "tls"):
        for index, route in enumerate(spec.get(protocol) or []):
            yield f"{protocol}[{index}]" + (f" ({route['name']})" if route.get("name") else ""), route


def _destination_problems(render: Render, vs: Resource) -> Callable[[str, dict, str], list[Violation]]:
    """A checker for one VirtualService's destinations: the host is a Service
    or ServiceEntry of the render, the subset one a DestinationRule defines."""
    known = _service_hosts(render, vs.namespace) | _service_entry_hosts(render)
    subsets = {(r.doc.get("spec") or {}).get("host"):
               {s.get("name") for s in (r.doc.get("spec") or {}).get("subsets") or []}
               for r in render.objects if r.kind == "DestinationRule"}

    def check(label: str, destination: dict, verb: str) -> list[Violation]:
        host, subset = destination.get("host"), destination.get("subset")
        if host not in known:
            return [Violation(vs, f"{label} {verb} {host!r}, which is not a Service or ServiceEntry in this render",
                              "use an existing Service")]
        if subset and subset not in subsets.get(host, set()):
            return [Violation(vs, f"{label} {verb} subset {subset!r} of {host}, which no DestinationRule defines",
                              "add the subset to the DestinationRule")]
        return []
    return check


def check_virtualservice_destinations_exist(render: Render) -> list[Violation]:
    out = []
    for vs in (o for o in render.objects if o.kind == "VirtualService"):
        check = _destination_problems(render, vs)
        for label, route in _routes(vs):
            for dest in route.get("route") or []:
                out += check(label, dest.get("destination") or {}, "routes to")
    return out


def check_virtualservice_mirrors(render: Render) -> list[Violation]:
    """Shadow traffic (`canary shadow`): the mirror target is a Service (or
    ServiceEntry) with the subset a DestinationRule defines, and the share
    mirrored is 0..100 % (Istio's `mirror`/`mirrorPercentage`, and `mirrors`)."""
    out = []
    for vs in (o for o in render.objects if o.kind == "VirtualService"):
        check = _destination_problems(render, vs)
        for label, route in _routes(vs):
            mirrors = [(route["mirror"], route.get("mirrorPercentage"))] if route.get("mirror") else []
            mirrors += [(m.get("destination") or {}, m.get("percentage")) for m in route.get("mirrors") or []]
            for destination, percentage in mirrors:
                out += check(label, destination, "mirrors to")
                value = (percentage or {}).get("value", 100) if isinstance(percentage, dict) else percentage
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
                    out.append(Violation(vs, f"{label} mirrors {value!r} % of its traffic",
                                         "use a percentage from 0 to 100 (`python -m scripts canary shadow`)"))
    return out


def check_virtualservice_weights_sum_to_100(render: Render) -> list[Violation]:
    out = []
    for vs in (o for o in render.objects if o.kind == "VirtualService"):
        for label, route in _routes(vs):
            destinations = route.get("route") or []
            if len(destinations) < 2 and all("weight" not in d for d in destinations):
                continue
            weights = [d.get("weight", 0) for d in destinations]
            if any(not isinstance(w, int) or w < 0 for w in weights) or sum(weights) != 100:
                total = sum(w for w in weights if isinstance(w, int))
                out.append(Violation(vs, f"{label} weights {weights} add up to {total}",
                                     "make the weights add up to 100 (`python -m scripts canary set` does)"))
    return out


def check_servicemonitor_selects_service(render: Render) -> list[Violation]:
    out = []
    services = [o for o in render.objects if o.kind == "Service"]
    for monitor in (o for o in render.objects if o.kind == "ServiceMonitor"):
        spec = monitor.doc.get("spec") or {}
        namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor.namespace]
        selected = [s for s in services
                    if s.namespace in namespaces and selector_matches(spec.get("selector"), s.labels)]
        if not selected:
            out.append(Violation(monitor, "selects no Service in this render",
                                 "match the labels of the Service that exposes /metrics"))
            continue
        ports = {p.get("name") for s in selected for p in (s.doc.get("spec") or {}).get("ports") or []}
        for endpoint in spec.get("endpoints") or []:
            if endpoint.get("port") and endpoint["port"] not in ports:
                out.append(Violation(monitor, f"endpoint port {endpoint['port']!r} is not a port of the selected "
                                              "Service", f"use one of {sorted(p for p in ports if p)}"))
    return out


def check_flux_paths_exist(render: Render, repo: Path) -> list[Violation]:
    out = []
    for ks in (o for o in render.objects if o.kind == "Kustomization"
               and o.api_version.startswith("kustomize.toolkit.fluxcd.io/")):
        # Only a GitRepository's path is a path of this repository; an
        # ExternalArtifact's is inside the artifact (the render stage checks it).
        if ((ks.doc.get("spec") or {}).get("sourceRef") or {}).get("kind") not in (None, "GitRepository"):
            continue
        path = str((ks.doc.get("spec") or {}).get("path") or "./")
        directory = (repo / path.lstrip("/")).resolve()
        if not directory.is_dir():
            out.append(Violation(ks, f"spec.path {path!r} does not exist in the repository",
                                 "point spec.path at an overlay directory"))
    return out


def test_service_selects_pods(render):
    assert_no_violations(check_service_selects_pods(render))


def test_scale_targets_exist(render):
    assert_no_violations(check_scale_targets_exist(render))


def test_networkpolicy_selects_pods(render):
    assert_no_violations(check_networkpolicy_selects_pods(render))


def test_networkpolicy_isolates_pods(render, config):
    assert_no_violations(check_networkpolicy_isolates_pods(render, config))


def test_instance_label_matches_name(render):
    assert_no_violations(check_instance_label_matches_name(render))


def test_networkpolicy_no_allow_all_ingress(render):
    assert_no_violations(check_networkpolicy_no_allow_all_ingress(render))


def test_destinationrule_subsets_match(render):
    assert_no_violations(check_destinationrule_subsets_match(render))


def test_virtualservice_destinations_exist(render):
    assert_no_violations(check_virtualservice_destinations_exist(render))


def test_virtualservice_mirrors(render):
    assert_no_violations(check_virtualservice_mirrors(render))


def test_virtualservice_weights_sum_to_100(render):
    assert_no_violations(check_virtualservice_weights_sum_to_100(render))


def test_servicemonitor_selects_service(render):
    assert_no_violations(check_servicemonitor_selects_service(render))


def test_flux_paths_exist(render, policy):
    assert_no_violations(check_flux_paths_exist(render, policy.repo))
