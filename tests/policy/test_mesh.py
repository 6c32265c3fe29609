"""Mesh and network: mutual TLS, who may call in, and where pods may call out."""

from __future__ import annotations

from scripts.core.model import Render
from scripts.stages.policy_support import PolicyConfig, Violation, assert_no_violations


def _uses_istio(render: Render) -> bool:
    return any(o.api_version.split("/")[0].endswith(".istio.io") for o in render.objects)


def check_strict_mtls(render: Render, config: PolicyConfig) -> list[Violation]:
    if not config.env(render).get("strict_mtls"):
        return []
    policies = [o for o in render.objects if o.kind == "PeerAuthentication"]
    out = []
    if not policies:
        namespaces = [o for o in render.objects if o.kind == "Namespace"] or render.objects[:1]
        return [Violation(ns, "no PeerAuthentication: mTLS is not enforced",
                          "include the istio component (PeerAuthentication mtls.mode: STRICT)") for ns in namespaces]
    for policy in policies:
        spec = policy.doc.get("spec") or {}
        mode = (spec.get("mtls") or {}).get("mode")
        if mode != "STRICT":
            out.append(Violation(policy, f"mtls.mode is {mode or 'unset'} in an environment that requires STRICT",
                                 "set spec.mtls.mode: STRICT (only a metrics port may be PERMISSIVE)"))
        # A port-level mode overrides the workload's: each must be STRICT, or
        # a port config/policy.yaml declares open with a reason.
        for port, setting in (spec.get("portLevelMtls") or {}).items():
            port_mode = (setting or {}).get("mode")
            if port_mode != "STRICT" and str(port) not in config.open_ports:
                out.append(Violation(policy, f"port {port} is {port_mode or 'unset'}, not STRICT",
                                     "make it STRICT, or declare the port in mesh.open_ports in config/policy.yaml "
                                     "with the reason"))
    return out


def _open_source(rule: dict) -> bool:
    """Does an ALLOW rule admit any caller? No `from`, an empty source, or a
    wildcard principal or namespace all do."""
    sources = rule.get("from") or []
    if not sources:
        return True
    for entry in sources:
        source = (entry or {}).get("source")
        if not source:
            return True
        if "*" in (source.get("principals") or []) or "*" in (source.get("namespaces") or []):
            return True
    return False


def _rule_ports(rule: dict) -> set[str] | None:
    """The ports an ALLOW rule is limited to; None when any port."""
    ports: set[str] = set()
    for entry in rule.get("to") or []:
        listed = ((entry or {}).get("operation") or {}).get("ports")
        if not listed:
            return None
        ports |= {str(p) for p in listed}
    return ports or None


def check_authorization_policy_no_allow_all(render: Render, config: PolicyConfig) -> list[Violation]:
    """An ALLOW rule open to any caller (no `from`, an empty source, a `*`
    principal or namespace) is only allowed on ports config/policy.yaml
    declares open (mesh.open_ports), each with its reason."""
    out = []
    for policy in (o for o in render.objects if o.kind == "AuthorizationPolicy"):
        spec = policy.doc.get("spec") or {}
        if spec.get("action", "ALLOW") != "ALLOW":
            continue
        for index, rule in enumerate(spec.get("rules") or []):
            rule = rule or {}
            if not rule.get("from") and not rule.get("to") and not rule.get("when"):
                out.append(Violation(policy, f"rules[{index}] is empty, which allows every request",
                                     "restrict the rule with from (principals) and to (ports, methods, paths)"))
                continue
            if not _open_source(rule):
                continue
            ports = _rule_ports(rule)
            if ports is None:
                out.append(Violation(policy, f"rules[{index}] allows any caller on any port",
                                     "name the principals allowed in `from`, or limit `to` to declared open ports"))
            elif ports - set(config.open_ports):
                out.append(Violation(policy, f"rules[{index}] allows any caller on port(s) "
                                             f"{sorted(ports - set(config.open_ports))}",
                                     "name the principals allowed, or declare the port in mesh.open_ports in "
                                     "config/policy.yaml with the reason"))
    return out


def check_egress_only_declared(render: Render, config: PolicyConfig) -> list[Violation]:
    """Meshed pods may only reach hosts declared as ServiceEntries: a Sidecar
    with REGISTRY_ONLY, egress hosts that are namespaces or declared hosts,
    and no wildcard ServiceEntry host outside mesh.egress_wildcards."""
    if not _uses_istio(render):
        return []
    wildcards = [(entry, host) for entry in render.objects if entry.kind == "ServiceEntry"
                 for host in (entry.doc.get("spec") or {}).get("hosts") or [] if "*" in str(host)]
    bad_wildcards = [Violation(entry, f"host {host!r} is a wildcard: any host under it is reachable",
                               "name each host, or allow it in mesh.egress_wildcards in config/policy.yaml")
                     for entry, host in wildcards if host not in config.egress_wildcards]
    sidecars = [o for o in render.objects if o.kind == "Sidecar"]
    declared = {h for o in render.objects if o.kind == "ServiceEntry"
                for h in (o.doc.get("spec") or {}).get("hosts") or []}
    out = bad_wildcards
    if not sidecars:
        anchor = next((o for o in render.objects if o.kind == "Namespace"), render.objects[0])
        return out + [Violation(anchor, "meshed namespace without a Sidecar: pods may call any host",
                                "add a Sidecar with outboundTrafficPolicy.mode: REGISTRY_ONLY")]
    for sidecar in sidecars:
        spec = sidecar.doc.get("spec") or {}
        if (spec.get("outboundTrafficPolicy") or {}).get("mode") != "REGISTRY_ONLY":
            out.append(Violation(sidecar, "lets pods reach hosts outside the registry",
                                 "set outboundTrafficPolicy.mode: REGISTRY_ONLY"))
        for egress in spec.get("egress") or []:
            for entry in egress.get("hosts") or []:
                namespace, _, host = str(entry).partition("/")
                if host in ("*", "") or host in declared:
                    if namespace in ("*", "~") and host == "*":
                        out.append(Violation(sidecar, f"egress host {entry!r} opens every namespace",
                                             "list the namespaces the pods call"))
                    continue
                out.append(Violation(sidecar, f"egress host {entry!r} is not declared by a ServiceEntry",
                                     "add a ServiceEntry for it or remove it"))
    return out


def test_strict_mtls(render, config):
    assert_no_violations(check_strict_mtls(render, config))


def test_authorization_policy_no_allow_all(render, config):
    assert_no_violations(check_authorization_policy_no_allow_all(render, config))


def test_egress_only_declared(render, config):
    assert_no_violations(check_egress_only_declared(render, config))
