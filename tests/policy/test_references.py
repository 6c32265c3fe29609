"""References between objects and the pod hardening that kube-linter,
kube-score and Polaris check (docs/validation.md maps each rule to theirs)."""

from __future__ import annotations

import re

from scripts.core.model import Render, Resource
from scripts.stages.policy_support import (
    PolicyConfig,
    Violation,
    assert_no_violations,
    containers,
    pod_template_labels,
    selector_matches,
    workloads,
)

# Built-in ClusterRoles whose grants are known without their objects.
BUILTIN_ROLES = {
    "cluster-admin": "everything",
    "admin": "read secrets, create pods and exec into them",
    "edit": "read secrets, create pods and exec into them",
}
# A PEM header with any number of dashes: a mangled one still holds the key.
SECRET_VALUE = re.compile(r"(AKIA[0-9A-Z]{16}|-+BEGIN [A-Z ]*PRIVATE KEY-+|ghp_[0-9A-Za-z]{36}|"
                          r"xox[abp]-[0-9A-Za-z-]{10,}|sk-[0-9A-Za-z]{32,})")
# Names under which cloud SDKs and people keep credentials.
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|BEARER|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|AZURE_\w*KEY|"
                         r"KEY_CONTENT|CREDENTIALS)", re.IGNORECASE)
# Values that are obviously not secrets even under a secret-looking name.
NOT_A_SECRET = re.compile(r"^(\$\{[^}]*\}|/.*|true|false|[0-9]+|)$")


def _named(render: Render, kind: str, namespace: str | None) -> dict[str, Resource]:
    return {o.name: o for o in render.objects if o.kind == kind and o.namespace == namespace}


def _provided(config: PolicyConfig, kind: str, name: str) -> bool:
    return any(p.get("kind") == kind and p.get("name") == name for p in config.cluster.get("provides") or [])


def check_probe_ports_exist(render: Render) -> list[Violation]:
    """A probe's named port is a named port of its own container, or the
    probe fails forever (kube-linter: liveness-port, readiness-port, startup-port)."""
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            names = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                handler = c.get(probe) or {}
                for kind in ("httpGet", "tcpSocket", "grpc"):
                    port = (handler.get(kind) or {}).get("port")
                    if isinstance(port, str) and port not in names:
                        out.append(Violation(obj, f"{probe} uses port {port!r}, which the container does not name",
                                             f"name a containerPort {port!r}, or use its number", label))
    return out


def check_config_refs_resolve(render: Render, config: PolicyConfig) -> list[Violation]:
    """Every ConfigMap and Secret a pod reads (env keyRefs, envFrom, volumes,
    projected sources) is in the render with that key, or the cluster
    provides it (cluster.provides in config/policy.yaml, with a reason), or
    the reference is optional (kube-linter: env-value-from, non-existent-...)."""
    out = []
    for obj, pod in workloads(render):
        maps = _named(render, "ConfigMap", obj.namespace)
        secrets = _named(render, "Secret", obj.namespace)
        refs: list[tuple[str, str | None, str | None, bool, str]] = []  # kind, name, key, optional, where
        for label, c in containers(pod):
            for env in c.get("env") or []:
                source = (env or {}).get("valueFrom") or {}
                for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = source.get(key)
                    if ref:
                        refs.append((kind, ref.get("name"), ref.get("key"), bool(ref.get("optional")),
                                     f"{label} env {env.get('name')}"))
            for entry in c.get("envFrom") or []:
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = (entry or {}).get(key)
                    if ref:
                        refs.append((kind, ref.get("name"), None, bool(ref.get("optional")), f"{label} envFrom"))
        for volume in pod.get("volumes") or []:
            sources = [volume] + [s for s in ((volume.get("projected") or {}).get("sources") or [])]
            for source in sources:
                if source.get("configMap"):
                    ref = source["configMap"]
                    refs.append(("ConfigMap", ref.get("name"), None, bool(ref.get("optional")),
                                 f"volume {volume.get('name')}"))
                if source.get("secret"):
                    ref = source["secret"]
                    refs.append(("Secret", ref.get("secretName") or ref.get("name"), None,
                                 bool(ref.get("optional")), f"volume {volume.get('name')}"))
        for kind, name, key, optional, where in refs:
            if optional or _provided(config, kind, str(name)):
                continue
            found = (maps if kind == "ConfigMap" else secrets).get(str(name))
            if found is None:
                out.append(Violation(obj, f"{where} reads {kind}/{name}, which is not in this render",
                                     "add it, mark the reference optional, or declare it in cluster.provides "
                                     "in config/policy.yaml with a reason"))
            elif key is not None:
                data = {**(found.doc.get("data") or {}), **(found.doc.get("binaryData") or {}),
                        **(found.doc.get("stringData") or {})}
                if key not in data:
                    out.append(Violation(obj, f"{where} reads key {key!r} of {kind}/{name}, which has keys "
                                              f"{sorted(data)}", "fix the key, or add it to the object"))
    return out


def check_service_account_exists(render: Render) -> list[Violation]:
    """Pods run as a ServiceAccount of this render, never `default`
    (kube-linter: default-service-account, non-existent-service-account)."""
    out = []
    for obj, pod in workloads(render):
        name = pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
        if name == "default":
            out.append(Violation(obj, "runs as the namespace's default ServiceAccount",
                                 "give it a ServiceAccount of its own (spec.template.spec.serviceAccountName)"))
        elif name not in _named(render, "ServiceAccount", obj.namespace):
            out.append(Violation(obj, f"runs as ServiceAccount {name!r}, which is not in this render",
                                 "add the ServiceAccount, or fix the name"))
    return out


def check_rolling_update(render: Render) -> list[Violation]:
    """Deployments roll: Recreate stops every pod before the new ones load
    their model (kube-score deployment-strategy; Polaris)."""
    return [Violation(o, "uses the Recreate strategy: every pod stops before a new one has loaded its model",
                      "use strategy.type: RollingUpdate with maxUnavailable: 0")
            for o in render.objects if o.kind == "Deployment"
            and ((o.doc.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") != "RollingUpdate"]


def _spread_problem(constraint: dict) -> str | None:
    """What makes a topologySpreadConstraint spread nothing, or be refused
    by the API server (kube-score pod-topology-spread-constraints)."""
    when = constraint.get("whenUnsatisfiable")
    skew, domains = constraint.get("maxSkew"), constraint.get("minDomains")
    if not constraint.get("topologyKey"):
        return "has no topologyKey, so there is nothing to spread over"
    if not constraint.get("labelSelector"):
        return "has no labelSelector, so it counts no pods and spreads nothing"
    if isinstance(skew, bool) or not isinstance(skew, int) or skew < 1:
        return f"has maxSkew {skew!r}; it must be at least 1"
    if domains is not None and (isinstance(domains, bool) or not isinstance(domains, int) or domains < 1):
        return f"has minDomains {domains!r}; it must be at least 1"
    if when not in ("DoNotSchedule", "ScheduleAnyway"):
        return f"has whenUnsatisfiable {when!r}; it must be DoNotSchedule or ScheduleAnyway"
    if domains is not None and when != "DoNotSchedule":
        return "sets minDomains with whenUnsatisfiable ScheduleAnyway; minDomains needs DoNotSchedule"
    return None


def check_spread_selects_own_pods(render: Render) -> list[Violation]:
    """A topology spread or anti-affinity term whose selector does not select
    the pod itself spreads nothing, and a spread constraint is whole: a
    topologyKey, a labelSelector, maxSkew and minDomains of at least 1, a
    valid whenUnsatisfiable (kube-score pod-topology-spread-constraints;
    kube-linter no-anti-affinity)."""
    out = []
    for obj, pod in workloads(render):
        labels = pod_template_labels(obj)
        spreads = [c for c in pod.get("topologySpreadConstraints") or [] if isinstance(c, dict)]
        for index, constraint in enumerate(spreads):
            problem = _spread_problem(constraint)
            if problem:
                out.append(Violation(obj, f"topologySpreadConstraints[{index}] {problem}",
                                     "give it a topologyKey, a labelSelector matching the pod's labels, maxSkew: 1 "
                                     "and a valid whenUnsatisfiable"))
        terms = list(spreads)
        anti = (pod.get("affinity") or {}).get("podAntiAffinity") or {}
        terms += anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        terms += [t.get("podAffinityTerm") or {} for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution")
                  or []]
        for term in terms:
            if term.get("labelSelector") and not selector_matches(term["labelSelector"], labels):
                out.append(Violation(obj, f"spreads on {term.get('topologyKey')} with a selector that does not "
                                          "select its own pods", "make the labelSelector match the pod template"))
    return out


def check_no_duplicate_env(render: Render) -> list[Violation]:
    """An env name set twice: the last wins, silently (kube-linter duplicate-env-var)."""
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            names = [e.get("name") for e in c.get("env") or [] if isinstance(e, dict)]
            for name in sorted({n for n in names if names.count(n) > 1}):
                out.append(Violation(obj, f"sets env {name} more than once", "keep one", label))
    return out


def check_no_secret_literals(render: Render) -> list[Violation]:
    """No credential written into an env value or a ConfigMap (kube-linter
    env-var-secret; detect-secrets' common patterns)."""
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            for env in c.get("env") or []:
                value = str((env or {}).get("value") or "")
                if SECRET_VALUE.search(value) or (SECRET_NAME.search(str(env.get("name")))
                                                  and not NOT_A_SECRET.match(value)):
                    out.append(Violation(obj, f"env {env.get('name')} holds what looks like a secret in the clear",
                                         "read it from a Secret (secretKeyRef) or workload identity", label))
    for cm in (o for o in render.objects if o.kind == "ConfigMap"):
        for key, value in (cm.doc.get("data") or {}).items():
            text = str(value)
            if SECRET_VALUE.search(text) or (SECRET_NAME.search(str(key)) and not NOT_A_SECRET.match(text)):
                out.append(Violation(cm, f"data.{key} holds what looks like a credential",
                                     "move it to a Secret managed outside Git (or workload identity)"))
    return out


def check_service_not_exposed(render: Render) -> list[Violation]:
    """Services stay inside the cluster; the Istio ingress gateway is the one
    way in (kube-linter exposed-services; kube-score service-type)."""
    return [Violation(s, f"is type {(s.doc.get('spec') or {}).get('type')}, which exposes the pods outside the "
                         "cluster, past the mesh's TLS and AuthorizationPolicy",
                      "use type ClusterIP and route through the Istio Gateway")
            for s in render.objects if s.kind == "Service"
            and (s.doc.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer")]


def _grants(rules: list) -> list[str]:
    found = []
    for rule in rules or []:
        if not isinstance(rule, dict):
            continue
        resources, verbs = set(rule.get("resources") or []), set(rule.get("verbs") or [])
        groups = set(rule.get("apiGroups") or [])
        core = "" in groups or "*" in groups
        if not core:
            continue
        if ("secrets" in resources or "*" in resources) and verbs & {"get", "list", "watch", "*"}:
            found.append("read secrets")
        if ("pods" in resources or "*" in resources) and verbs & {"create", "*"}:
            found.append("create pods")
        if resources & {"pods/exec", "pods/attach", "*"} and verbs & {"create", "get", "*"}:
            found.append("exec or attach into pods")
    return sorted(set(found))


def check_rbac_no_dangerous_grants(render: Render) -> list[Violation]:
    """No binding gives a subject what amounts to its namespace's keys: read
    secrets, create pods, exec/attach (kube-linter access-to-secrets,
    access-to-create-pods; Polaris). Each binding is judged by what its role
    grants, built-in admin/edit included; a binding to a missing role is wrong."""
    roles = {(o.kind, o.name, o.namespace): o for o in render.objects if o.kind in ("Role", "ClusterRole")}
    out = []
    for binding in (o for o in render.objects if o.kind in ("RoleBinding", "ClusterRoleBinding")):
        ref = binding.doc.get("roleRef") or {}
        kind, name = ref.get("kind"), ref.get("name")
        role = roles.get((kind, name, binding.namespace if kind == "Role" else None)) \
            or roles.get((kind, name, binding.namespace))
        if role is None and kind == "ClusterRole" and name in BUILTIN_ROLES:
            out.append(Violation(binding, f"binds the built-in ClusterRole {name}, which can "
                                          f"{BUILTIN_ROLES[name]}", "bind a Role granting only what is needed"))
        elif role is None:
            if kind == "Role":
                out.append(Violation(binding, f"binds Role/{name}, which is not in this render",
                                     "add the Role, or fix roleRef"))
        else:
            grants = _grants(role.doc.get("rules") or [])
            if grants:
                out.append(Violation(binding, f"binds {kind}/{name}, which can {', '.join(grants)}",
                                     "narrow the role's rules to what the workload needs"))
    return out


DANGEROUS_CAPABILITIES = {"SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH",
                          "BPF", "PERFMON", "ALL"}


def check_pod_hardening_extras(render: Render) -> list[Violation]:
    """What Polaris and kube-score check beyond the basics: no dangerous
    capability even after dropping ALL, AppArmor not Unconfined, no
    super-privileged SELinux type, procMount Default."""
    out = []
    for obj, pod in workloads(render):
        annotations = ((((obj.doc.get("spec") or {}).get("template") or {}).get("metadata") or {})
                       .get("annotations") or {})
        pod_sc = pod.get("securityContext") or {}
        for label, c in containers(pod):
            sc = c.get("securityContext") or {}
            # The container runtime upper-cases capability names (containerd's
            # CRI plugin), so an added "all" or "sys_admin" counts in full.
            added = {str(cap).upper() for cap in (sc.get("capabilities") or {}).get("add") or []}
            if added & DANGEROUS_CAPABILITIES:
                out.append(Violation(obj, f"adds {sorted(added & DANGEROUS_CAPABILITIES)}, which dropping ALL "
                                          "first does not undo", "remove them from capabilities.add", label))
            apparmor = (sc.get("appArmorProfile") or pod_sc.get("appArmorProfile") or {}).get("type")
            legacy = annotations.get(f"container.apparmor.security.beta.kubernetes.io/{c.get('name')}")
            if apparmor == "Unconfined" or legacy == "unconfined":
                out.append(Violation(obj, "runs without AppArmor (Unconfined)",
                                     "use appArmorProfile.type: RuntimeDefault", label))
            selinux = (sc.get("seLinuxOptions") or pod_sc.get("seLinuxOptions") or {}).get("type")
            if selinux in ("spc_t", "unconfined_t"):
                out.append(Violation(obj, f"runs with SELinux type {selinux}, which is unconfined",
                                     "remove seLinuxOptions.type (use the runtime's default)", label))
            if sc.get("procMount") not in (None, "Default"):
                out.append(Violation(obj, f"procMount is {sc['procMount']}", "remove procMount", label))
    return out


def test_probe_ports_exist(render):
    assert_no_violations(check_probe_ports_exist(render))


def test_config_refs_resolve(render, config):
    assert_no_violations(check_config_refs_resolve(render, config))


def test_service_account_exists(render):
    assert_no_violations(check_service_account_exists(render))


def test_rolling_update(render):
    assert_no_violations(check_rolling_update(render))


def test_spread_selects_own_pods(render):
    assert_no_violations(check_spread_selects_own_pods(render))


def test_no_duplicate_env(render):
    assert_no_violations(check_no_duplicate_env(render))


def test_no_secret_literals(render):
    assert_no_violations(check_no_secret_literals(render))


def test_service_not_exposed(render):
    assert_no_violations(check_service_not_exposed(render))


def test_rbac_no_dangerous_grants(render):
    assert_no_violations(check_rbac_no_dangerous_grants(render))


def test_pod_hardening_extras(render):
    assert_no_violations(check_pod_hardening_extras(render))
