"""The cluster as a whole: what all the Flux Kustomizations of one
`clusters/<env>` apply together. Findings name the cluster root and both
owners (the Flux Kustomizations whose builds collide)."""

from __future__ import annotations

import pytest

from scripts.core.model import Render, Resource
from scripts.stages.policy_support import Violation, assert_no_violations


def builds_by_cluster(renders: list[Render]) -> dict[str, list[Render]]:
    """cluster root path -> the renders of its Flux builds."""
    clusters: dict[str, list[Render]] = {}
    for render in renders:
        root, sep, _ = render.target.path.partition("#")
        if sep and render.ok:
            clusters.setdefault(root, []).append(render)
    return clusters


SESSION_INPUTS = {"clusters": builds_by_cluster}


@pytest.fixture(scope="session")
def clusters(policy) -> dict[str, list[Render]]:
    return builds_by_cluster(policy.renders)


def _owner(render: Render) -> str:
    return render.target.path.partition("#")[2]


def check_cluster_no_collisions(render: Render, clusters: dict[str, list[Render]]) -> list[Violation]:
    """On a cluster root: no object applied by two Flux Kustomizations (they
    fight, and each prunes the other's), no namespace shared by two, no host
    and port claimed by two Gateways on the same ingress (IST0145) nor one
    certificate served by two (IST0138), no VirtualService host defined twice
    for the same gateway."""
    if "#" in render.target.path or render.target.path not in clusters:
        return []
    builds = sorted(clusters[render.target.path], key=lambda r: r.target.path)
    out = []
    objects: dict[tuple, tuple[str, Resource]] = {}
    namespaces: dict[str, str] = {}
    listeners: dict[tuple, tuple[str, Resource]] = {}
    certificates: dict[tuple, tuple[str, Resource]] = {}
    vs_hosts: dict[tuple, tuple[str, Resource]] = {}
    for build in builds:
        owner = _owner(build)
        owned_namespaces = {o.namespace for o in build.objects if o.namespace} | \
            {o.name for o in build.objects if o.kind == "Namespace"}
        for namespace in sorted(owned_namespaces):
            first = namespaces.setdefault(namespace, owner)
            if first != owner:
                anchor = next(o for o in build.objects if o.namespace == namespace or o.name == namespace)
                out.append(Violation(anchor, f"namespace {namespace} is applied by both {first} and {owner}; "
                                             "with prune on, each removes what the other applies",
                                     "give each Flux Kustomization its own targetNamespace"))
        for obj in build.objects:
            key = (obj.api_version.split("/")[0], obj.kind, obj.namespace, obj.name)
            first_owner, _ = objects.setdefault(key, (owner, obj))
            if first_owner != owner and obj.kind != "Namespace":
                out.append(Violation(obj, f"is applied by both {first_owner} and {owner}: they overwrite each "
                                          "other and prune it in turn", "keep it in one of them"))
            if obj.kind == "Gateway":
                spec = obj.doc.get("spec") or {}
                selector = tuple(sorted((spec.get("selector") or {}).items()))
                for server in spec.get("servers") or []:
                    port = (server.get("port") or {}).get("number")
                    credential = (server.get("tls") or {}).get("credentialName")
                    if credential:
                        first = certificates.setdefault((selector, credential), (owner, obj))
                        if first[0] != owner:
                            out.append(Violation(obj, f"uses certificate {credential} on the same ingress as "
                                                      f"Gateway/{first[1].name} of {first[0]}; with HTTP/2 "
                                                      "connection reuse, requests can reach the wrong host "
                                                      "(404) (IST0138)",
                                                 "give each Gateway its own certificate"))
                    for host in server.get("hosts") or []:
                        first = listeners.setdefault((selector, port, host), (owner, obj))
                        if first[1] is not obj:
                            out.append(Violation(obj, f"claims {host}:{port} on the same ingress as "
                                                      f"Gateway/{first[1].name} of {first[0]} (IST0145)",
                                                 "give each environment its own host"))
            if obj.kind == "VirtualService":
                spec = obj.doc.get("spec") or {}
                for gateway in spec.get("gateways") or ["mesh"]:
                    # A gateway named without a namespace is in the VirtualService's.
                    scope = "mesh" if gateway == "mesh" else gateway if "/" in gateway else \
                        f"{obj.namespace}/{gateway}"
                    for host in spec.get("hosts") or []:
                        if "." not in str(host):
                            continue  # a short name is namespace-local
                        first = vs_hosts.setdefault((scope, host), (owner, obj))
                        if first[1] is not obj:
                            out.append(Violation(obj, f"defines host {host} on {gateway}, as "
                                                      f"VirtualService/{first[1].name} of {first[0]} does",
                                                 "route each host from one VirtualService"))
    return out


def test_cluster_no_collisions(render, clusters):
    assert_no_violations(check_cluster_no_collisions(render, clusters))
