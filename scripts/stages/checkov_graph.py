"""checkov's six kubernetes graph policies, evaluated on one render without
checkov's graph library.

checkov 3.3.30 ships these policies for kubernetes (checkov/kubernetes/
checks/graph_checks/*.json); their files are pinned by sha256 below, so a
changed policy is an error, never a silently different answer:

- CKV2_K8S_1..5 (RBAC): a RoleBinding or ClusterRoleBinding passes if it is
  linked to no Role/ClusterRole, or names a subject whose kind is neither
  Node nor ServiceAccount (or no subject kind at all), or is linked to roles
  all of which are harmless for that policy; otherwise it fails.
- CKV2_K8S_6: a Pod (a Pod object, or the pod template of a Deployment,
  DaemonSet, Job, ReplicaSet, ReplicationController, StatefulSet or
  DeploymentConfig) passes if some NetworkPolicy is linked to it.

"Linked" is checkov's graph: an edge either way between the two objects,
made by the rules below as its graph builder makes them (no namespace is
compared unless said):

- a binding to any object whose kind and name are its roleRef's kind and
  name, or a subject's kind and name (and, for a RoleBinding, namespace);
- a NetworkPolicy to every Pod when its podSelector has no matchLabels (an
  empty `podSelector: {}` included) or the Pod has no labels, else to the
  Pods carrying all its matchLabels; a missing or null podSelector links
  nothing;
- an object with labels to any object whose selector (a Service's
  spec.selector, else spec.selector.matchLabels) its labels contain.

A role is harmless for a policy when the attributes checkov flattens from
it say so. checkov reads `rules.resources` and `rules.verbs` as single
values, which exist only when the role has exactly one rule: a role with
several rules, or none, is harmless to these policies. With one rule the
role is harmless if the rule's resources or its verbs share nothing with the
policy's lists (CKV2_K8S_5: or the rule names resourceNames).

Results are per object name as checkov names it (a pod template as
`Pod.<namespace>.<parent>.<labels>`), merged over objects of the same name
as checkov's solvers merge them. A result is SKIPPED when the object (for a
pod template: its parent) carries a `checkov.io/skip*` annotation for it.
tests/test_checkov_equal.py compares every result with checkov's Runner.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.stages.checkov_entities import (
    DEFAULT_KIND,
    END_LINE,
    PARENT_ID,
    PARENT_NAME,
    START_LINE,
    is_object,
    resource_id,
)

# The policy files the evaluation below was written from (checkov 3.3.30),
# by sha256: any other content is refused (PolicyMismatch).
POLICY_SHA256 = {
    "RoleBindingPE.json": "4b3601027d287ef54e2c1075b413523047505a31e718dd5435784cb9086672a8",
    "NoCreateNodesProxyOrPodsExec.json": "a32a2f67afa5c5f19bf6fef2e5e4bbf675bcf1cd3e45304a837edadd09227ddd",
    "ImpersonatePermissions.json": "81106f7095f0efd689ddb3539d76668d4fe749bb8c72de67e180f8af2d6411be",
    "ModifyServicesStatus.json": "004990760603fbbc86d8eaedb16a0bfadd0b9008fbdcfac1096896a2d7b61a7d",
    "ReadAllSecrets.json": "0ba09b14b797d3be43dd5fb0240d6f86207d4a53608d22dd7b44126dd29468c8",
    "RequireAllPodsToHaveNetworkPolicy.json": "dc7a0c220f041397c8c0c29cb4dca9f0c09c35006ebee74f628f22af696d63c5",
}
POD_POLICY_FILE = "RequireAllPodsToHaveNetworkPolicy.json"

BINDINGS = frozenset({"ClusterRoleBinding", "RoleBinding"})
ROLES = frozenset({"ClusterRole", "Role"})
PODS_OR_DEPLOYMENTS = frozenset({"Pod", "Deployment"})
NETWORK_POLICY = "NetworkPolicy"
# Kinds whose spec.template checkov's graph splits out as a Pod of its own.
TEMPLATE_KINDS = frozenset({"Deployment", "DeploymentConfig", "DaemonSet", "Job", "ReplicaSet",
                            "ReplicationController", "StatefulSet"})


class PolicyMismatch(Exception):
    """checkov's graph policies are not the ones evaluated here."""


@dataclass(frozen=True)
class RbacPolicy:
    check_id: str
    name: str
    resources: tuple[str, ...]  # a rule granting one of these ...
    verbs: tuple[str, ...]  # ... with one of these is harmful
    resource_names_exempt: bool = False  # unless it names resourceNames


@dataclass(frozen=True)
class Policies:
    rbac: tuple[RbacPolicy, ...]
    pod_id: str
    pod_name: str

    @property
    def names(self) -> dict[str, str]:
        return {p.check_id: p.name for p in self.rbac} | {self.pod_id: self.pod_name}


def _role_conditions(node: Any) -> list[dict]:
    """The attribute conditions on roles anywhere in a policy's definition."""
    if isinstance(node, list):
        return [c for item in node for c in _role_conditions(item)]
    if not isinstance(node, dict):
        return []
    if node.get("cond_type") == "attribute" and set(node.get("resource_types", ())) == ROLES:
        return [node]
    return [c for key in ("and", "or") for c in _role_conditions(node.get(key))]


def load_policies(directory: Path) -> Policies:
    """The six policies from checkov's own files, refused unless every file
    is the one this module was written for (and there is no other)."""
    found = policy_digests(directory)
    if found != POLICY_SHA256:
        changed = sorted(name for name in set(found) | set(POLICY_SHA256) if found.get(name) != POLICY_SHA256.get(name))
        raise PolicyMismatch("checkov's kubernetes graph policies are not those evaluated here: "
                             + ", ".join(changed))
    rbac = []
    pod = None
    for file in POLICY_SHA256:
        raw = json.loads((directory / file).read_text(encoding="utf-8"))
        meta = raw["metadata"]
        if file == POD_POLICY_FILE:
            pod = (meta["id"], meta["name"])
            continue
        conditions = {c["attribute"]: c for c in _role_conditions(raw["definition"])}
        rbac.append(RbacPolicy(meta["id"], meta["name"], tuple(conditions["rules.resources"]["value"]),
                               tuple(conditions["rules.verbs"]["value"]),
                               resource_names_exempt="rules.resourceNames" in conditions))
    assert pod is not None
    return Policies(rbac=tuple(sorted(rbac, key=lambda p: p.check_id)), pod_id=pod[0], pod_name=pod[1])


def policy_digests(directory: Path) -> dict[str, str]:
    """sha256 of each graph policy file checkov has installed (all of them)."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.iterdir()) if path.suffix in (".json", ".yaml", ".yml")}


def _without_line_keys(value: Any) -> Any:
    """A label or selector mapping as the graph compares it (checkov drops its
    line keys there); anything else as it is."""
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if key not in (START_LINE, END_LINE)}
    return value


def _is_pod_template(template: Any) -> bool:
    """What checkov's graph takes for a pod: metadata mapping, spec mapping or
    list, and a name or labels."""
    if not isinstance(template, dict):
        return False
    metadata = template.get("metadata")
    if not isinstance(metadata, dict):
        return False
    if not isinstance(template.get("spec"), (dict, list)):
        return False
    return not (metadata.get("name") is None and metadata.get("labels") is None)


def _split_templates(entity: dict, out: list[dict]) -> None:
    """The entity, and (for the template kinds) its pod template as a Pod of
    its own, as checkov's graph splits them. Nothing is changed in place: the
    split parent and the Pod are shallow copies."""
    spec = entity.get("spec")
    if not spec or not isinstance(spec, dict):
        out.append(entity)
        return
    template = spec.get("template", None)
    if not template or not isinstance(template, dict) or not _is_pod_template(template):
        out.append(entity)
        return
    if entity.get("kind") not in TEMPLATE_KINDS:
        out.append(entity)
        out.append({})  # checkov's graph walks an empty remainder; it never becomes a vertex
        return
    metadata = entity.get("metadata", {})
    if not metadata:
        out.append(entity)
        return
    pod = dict(template)
    pod[PARENT_ID] = resource_id(entity)
    pod[PARENT_NAME] = metadata.get("name", "")
    if not pod.get("kind"):
        pod["kind"] = DEFAULT_KIND
    if not pod.get("apiVersion"):
        pod["apiVersion"] = entity.get("apiVersion")
    pod_metadata = dict(template["metadata"])
    pod["metadata"] = pod_metadata
    if pod_metadata.get("namespace") is None and metadata.get("namespace") is not None:
        pod_metadata["namespace"] = metadata.get("namespace")
    parent = dict(entity)
    parent["spec"] = {key: value for key, value in spec.items() if key != "template"}
    out.append(parent)
    _split_templates(pod, out)


@dataclass(eq=False)
class Vertex:
    """One object of checkov's graph, with what the six policies read of it."""

    kind: str
    name: str  # checkov's id for it
    entity: dict
    labels: Any  # metadata.labels, without line keys
    selector: Any  # the labels it selects (see _selector), without line keys
    parent: str | None = None  # a pod template's parent object

    @property
    def metadata(self) -> dict:
        return self.entity.get("metadata") or {}


def _selector(entity: dict) -> Any:
    spec = entity.get("spec")
    selected = None
    if isinstance(spec, list):
        for item in spec:
            if item.get("selector"):
                selected = item.get("selector") if entity.get("kind") == "Service" \
                    else item.get("selector").get("matchLabels")
                break
    elif isinstance(spec, dict) and spec.get("selector") and isinstance(spec.get("selector"), dict):
        selected = spec.get("selector") if entity.get("kind") == "Service" \
            else spec.get("selector", {}).get("matchLabels")
    return _without_line_keys(selected)


def vertices(objects: list) -> list[Vertex]:
    """checkov's graph vertices of a render, in its order."""
    split: list[dict] = []
    for entity in objects:
        _split_templates(entity, split)
    out = []
    for entity in split:
        kind = entity.get("kind", DEFAULT_KIND)
        metadata = entity.get("metadata") or {}
        if kind == DEFAULT_KIND:
            if not _is_pod_template(entity):
                continue
        elif not is_object(entity) or not metadata.get("name"):
            continue
        name = resource_id(entity)
        if not name:
            continue
        labels = _without_line_keys(entity.get("metadata", {}).get("labels"))
        out.append(Vertex(kind=kind, name=name, entity=entity, labels=labels, selector=_selector(entity),
                          parent=entity.get(PARENT_ID)))
    return out


# --- edges ---

def _contains_labels(labels: Any, selector: Any) -> bool:
    """Whether `labels` carry every pair of a non-empty `selector`."""
    if not selector or len(selector) > len(labels):
        return False
    return len([key for key in selector if key in labels and selector[key] == labels[key]]) == len(selector)


def _label_targets(vertex: Vertex, others: list[Vertex]) -> list[Vertex]:
    if vertex.labels is None or vertex.kind == NETWORK_POLICY:
        return []
    return [other for other in others if other.name != vertex.name and _contains_labels(vertex.labels, other.selector)]


def _flat(entity: dict, key: str, field_name: str) -> Any:
    """checkov's flattened `key.field` of a top-level mapping."""
    value = entity.get(key)
    return value.get(field_name) if isinstance(value, dict) else None


def _subject_fields(binding: dict) -> list[dict]:
    """The subjects checkov's graph reads `subjects.N.*` from: a list whose
    first item is a mapping, its mapping items."""
    subjects = binding.get("subjects")
    if not isinstance(subjects, list) or not subjects or not isinstance(subjects[0], dict):
        return []
    return [subject for subject in subjects if isinstance(subject, dict)]


def _refers_to(binding: Vertex, other: Vertex) -> bool:
    """A binding's roleRef or one of its subjects names `other`."""
    if other.name == binding.name:
        return False
    name, kind, namespace = other.metadata.get("name"), other.kind, other.metadata.get("namespace")

    def same(mine: Any, theirs: Any) -> bool:
        return mine is not None and theirs is not None and mine == theirs

    entity = binding.entity
    if same(_flat(entity, "roleRef", "name"), name) and same(_flat(entity, "roleRef", "kind"), kind):
        return True
    for subject in _subject_fields(entity):
        if same(subject.get("name"), name) and same(subject.get("kind"), kind) and (
                binding.kind == "ClusterRoleBinding" or same(subject.get("namespace"), namespace)):
            return True
    return False


def _selects_pod(policy: Vertex, pod: Vertex) -> bool:
    """checkov's link from a NetworkPolicy to a Pod."""
    if pod.name == policy.name:
        return False
    spec = policy.entity.get("spec", {})
    if spec is None:
        return False
    pod_selector = spec.get("podSelector")
    if not pod_selector:
        return False
    match_labels = _without_line_keys(pod_selector.get("matchLabels"))
    if match_labels and pod.labels is not None:
        return _contains_labels(pod.labels, match_labels) if len(match_labels) <= len(pod.labels) else False
    return True


def _links(graph: list[Vertex], sources: frozenset[str], targets: frozenset[str]) -> set[tuple[int, int]]:
    """Pairs (i, j) of vertex positions, i of a `sources` kind and j of a
    `targets` kind, that checkov's graph joins by an edge either way.

    checkov collects each vertex's edges under its name, so a vertex shares
    the edges of every earlier vertex of the same name; so here."""
    index = {id(vertex): position for position, vertex in enumerate(graph)}
    wanted = sources | targets
    relevant = [v for v in graph if v.kind in wanted]
    by_name: dict[str, list[int]] = {}
    links = set()
    for vertex in relevant:
        others = [v for v in relevant if (v.kind in targets) == (vertex.kind in sources)]
        found = [index[id(v)] for v in _label_targets(vertex, others)]
        if vertex.kind in BINDINGS:
            found += [index[id(v)] for v in others if _refers_to(vertex, v)]
        if vertex.kind == NETWORK_POLICY:
            found += [index[id(v)] for v in others if v.kind == "Pod" and _selects_pod(vertex, v)]
        collected = by_name.setdefault(vertex.name, [])
        collected.extend(found)
        mine = index[id(vertex)]
        for other in collected:
            pair = (mine, other) if vertex.kind in sources else (other, mine)
            links.add(pair)
    return links


# --- the policies ---

def _subjects_outside_nodes_and_accounts(binding: dict) -> bool:
    """checkov's `subjects.*.kind not_within [Node, ServiceAccount]`: true if
    any subject kind is neither, or no subject kind is there at all."""
    subjects = binding.get("subjects")
    if isinstance(subjects, dict):
        items = [subjects]
    elif isinstance(subjects, list) and len(subjects) == 1:
        only = subjects[0]
        items = [only] if isinstance(only, dict) else only if isinstance(only, list) else []
    elif isinstance(subjects, list):
        items = subjects
    else:
        items = []
    kinds = [item["kind"] for item in items if isinstance(item, dict) and "kind" in item]
    if not kinds:
        return True
    return any(kind not in ("Node", "ServiceAccount") for kind in kinds)


def _single_rule(role: dict) -> dict | None:
    """The rule checkov reads `rules.*` from: the only one, or a mapping."""
    rules = role.get("rules")
    if isinstance(rules, dict):
        return rules
    if isinstance(rules, list) and len(rules) == 1 and isinstance(rules[0], dict):
        return rules[0]
    return None


def _intersects(value: Any, wanted: tuple[str, ...]) -> bool:
    """checkov's `intersects` against a list: any item (character of a
    string, key of a mapping) in it."""
    try:
        return any(item in wanted for item in value)
    except TypeError:  # not iterable: checkov's intersects is false
        return False


def _harmless(role: dict, policy: RbacPolicy) -> bool:
    rule = _single_rule(role)
    resources = rule.get("resources") if rule is not None else None
    verbs = rule.get("verbs") if rule is not None else None
    if not _intersects(resources, policy.resources) or not _intersects(verbs, policy.verbs):
        return True
    return policy.resource_names_exempt and rule is not None and rule.get("resourceNames") is not None


@dataclass(frozen=True)
class GraphResult:
    check_id: str
    check_name: str
    resource: str  # checkov's name for the object
    result: str  # PASSED, FAILED or SKIPPED


def _rbac(graph: list[Vertex], policy: RbacPolicy, links: set[tuple[int, int]]) -> dict[str, str]:
    """PASSED or FAILED per binding name. checkov ORs three branches (not
    linked to a role; a subject other than Node/ServiceAccount; linked only
    to harmless roles), and a name passes if any vertex of that name passes
    any branch; inside the third branch a name passes only if every vertex
    of that name does. (The third branch's "linked at all" is left out: an
    unlinked binding passes the first.)"""
    bindings = [i for i, v in enumerate(graph) if v.kind in BINDINGS]
    harmful = {i for i, v in enumerate(graph) if v.kind in ROLES and not _harmless(v.entity, policy)}
    roles_of: dict[int, set[int]] = {}
    for binding, role in links:
        roles_of.setdefault(binding, set()).add(role)
    only_harmless: dict[str, bool] = {}
    for i in bindings:
        name = graph[i].name
        only_harmless[name] = only_harmless.get(name, True) and not roles_of.get(i, set()) & harmful
    passed = {graph[i].name for i in bindings
              if not roles_of.get(i) or _subjects_outside_nodes_and_accounts(graph[i].entity)}
    passed |= {name for name, ok in only_harmless.items() if ok}
    return {graph[i].name: "PASSED" if graph[i].name in passed else "FAILED" for i in bindings}


def _pods(graph: list[Vertex], links: set[tuple[int, int]]) -> dict[str, str]:
    """PASSED or FAILED per Pod name: passed if every vertex of that name is
    linked to a NetworkPolicy (with none in the render, none is)."""
    pods = [i for i, v in enumerate(graph) if v.kind == "Pod"]
    linked = {pod for pod, _ in links}
    failed = {graph[i].name for i in pods if i not in linked}
    return {graph[i].name: "FAILED" if graph[i].name in failed else "PASSED" for i in pods}


def evaluate(policies: Policies, objects: list, skips_by_id: dict[str, list[dict[str, str]]],
             run: frozenset[str]) -> list[GraphResult]:
    """The policies whose ids are in `run` on one render's objects (as
    checkov_entities.entities made them)."""
    graph = vertices(objects)
    parent_of = {v.name: v.parent for v in graph}
    names = policies.names
    results: list[GraphResult] = []

    def add(check_id: str, outcome: dict[str, str]) -> None:
        for name, result in outcome.items():
            owner = parent_of.get(name) or name
            if owner not in skips_by_id:
                # checkov looks the object up among those it read and fails the scan if it is not there
                raise KeyError(f"{check_id}: {name} is not an object checkov read")
            if any(skip["id"] == check_id for skip in skips_by_id[owner]):
                result = "SKIPPED"
            results.append(GraphResult(check_id, names[check_id], name, result))

    wanted = [p for p in policies.rbac if p.check_id in run]
    if wanted:
        rbac_links = _links(graph, BINDINGS, ROLES)
        for policy in wanted:
            add(policy.check_id, _rbac(graph, policy, rbac_links))
    if policies.pod_id in run:
        add(policies.pod_id, _pods(graph, _links(graph, PODS_OR_DEPLOYMENTS, frozenset({NETWORK_POLICY}))))
    return results
