"""Mesh and network: mutual TLS, who may call in, and where pods may call out."""

from __future__ import annotations

from scripts.model import Render
from scripts.policy_support import PolicyConfig, Violation, assert_no_violations


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
        mode = ((policy.doc.get("spec") or {}).get("mtls") or {}).get("mode")
        if mode != "STRICT":
            out.append(Violation(policy, f"mtls.mode is {mode or 'unset'} in an environment that requires STRICT",
                                 "set spec.mtls.mode: STRICT (only a metrics port may be PERMISSIVE)"))
    return out


def check_authorization_policy_no_allow_all(render: Render) -> list[Violation]:
    out = []
    for policy in (o for o in render.objects if o.kind == "AuthorizationPolicy"):
        spec = policy.doc.get("spec") or {}
        if spec.get("action", "ALLOW") != "ALLOW":
            continue
        for index, rule in enumerate(spec.get("rules") or []):
            if not rule.get("from") and not rule.get("to") and not rule.get("when"):
                out.append(Violation(policy, f"rules[{index}] is empty, which allows every request",
                                     "restrict the rule with from (principals) and to (ports, methods, paths)"))
            elif any(src.get("source") in ({}, None) or "*" in (src.get("source") or {}).get("principals", [])
                     for src in rule.get("from") or []) and not rule.get("to"):
                out.append(Violation(policy, f"rules[{index}] allows any source to any operation",
                                     "name the principals allowed, or restrict the operation"))
    return out


def check_egress_only_declared(render: Render) -> list[Violation]:
    """Meshed pods may only reach hosts declared as ServiceEntries: a Sidecar
    with REGISTRY_ONLY, and egress hosts that are namespaces or declared hosts."""
    if not _uses_istio(render):
        return []
    sidecars = [o for o in render.objects if o.kind == "Sidecar"]
    declared = {h for o in render.objects if o.kind == "ServiceEntry"
                for h in (o.doc.get("spec") or {}).get("hosts") or []}
    out = []
    if not sidecars:
        anchor = next((o for o in render.objects if o.kind == "Namespace"), render.objects[0])
        return [Violation(anchor, "meshed namespace without a Sidecar: pods may call any host",
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


def test_authorization_policy_no_allow_all(render):
    assert_no_violations(check_authorization_policy_no_allow_all(render))


def test_egress_only_declared(render):
    assert_no_violations(check_egress_only_declared(render))
