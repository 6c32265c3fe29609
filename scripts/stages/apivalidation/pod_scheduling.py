"""Where a pod may run: tolerations, nodeSelector, affinity and topology
spread constraints (core's ValidateTolerations, validateAffinity and what it
calls, validateTopologySpreadConstraints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scripts.stages.apivalidation import formats, meta
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import POD_TEMPLATE, Row
from scripts.stages.apivalidation.errors import Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
NODE_INCLUSION_POLICIES = ("Honor", "Ignore")
WEIGHT_DETAIL = "must be in the range 1-100"


# ---- tolerations -------------------------------------------------------------

def validate_tolerations(tolerations: Any, path: FieldPath, errs: Errors) -> None:
    """ValidateTolerations: also run on the tolerations of the pod's
    scheduler.alpha.kubernetes.io/tolerations annotation."""
    for index, toleration in enumerate(as_list(tolerations)):
        _toleration(as_dict(toleration), path.index(index), errs)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _toleration(toleration: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    key, operator = _text(toleration.get("key")), _text(toleration.get("operator"))
    value, effect = _text(toleration.get("value")), _text(toleration.get("effect"))
    if key:
        errs.each("api-pod-toleration-key", path.child("key"), key, formats.qualified_name_problems(key))
    elif operator != "Exists":
        errs.invalid("api-pod-toleration-operator", path.child("operator"), operator,
                     "an empty key matches every taint and needs operator Exists")
    if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
        errs.invalid("api-pod-toleration-seconds", path.child("effect"), effect,
                     "tolerationSeconds applies only to effect NoExecute")
    if operator in ("Equal", ""):
        problems = formats.label_value_problems(value)
        if problems:
            # One message, at the operator, as the API server reports it.
            errs.invalid("api-pod-toleration-value", path.child("operator"), value, "; ".join(problems))
    elif operator == "Exists":
        if value:
            errs.invalid("api-pod-toleration-value", path.child("operator"), value,
                         "operator Exists matches any value: remove value")
    else:
        errs.not_supported("api-pod-toleration-operator", path.child("operator"), operator, TOLERATION_OPERATORS)
    if effect and effect not in TAINT_EFFECTS:
        errs.not_supported("api-pod-toleration-effect", path.child("effect"), effect, TAINT_EFFECTS)


# ---- nodeSelector and node affinity --------------------------------------------

def validate_node_selector_labels(selector: Any, path: FieldPath, errs: Errors) -> None:
    """spec.nodeSelector: label keys and values (the map's path names every error)."""
    for key, value in as_dict(selector).items():
        errs.each("api-pod-node-selector", path, key, formats.qualified_name_problems(str(key)))
        if isinstance(value, str):
            errs.each("api-pod-node-selector", path, value, formats.label_value_problems(value))


def _node_requirement(requirement: dict[str, Any], path: FieldPath, check_values: bool, errs: Errors) -> None:
    operator, values = requirement.get("operator"), as_list(requirement.get("values"))
    if operator in ("In", "NotIn"):
        if not values:
            errs.required("api-pod-node-selector-values", path.child("values"),
                          "operators In and NotIn need at least one value")
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errs.forbidden("api-pod-node-selector-values", path.child("values"),
                           "operators Exists and DoesNotExist take no values")
    elif operator in ("Gt", "Lt"):
        if len(values) != 1:
            errs.required("api-pod-node-selector-values", path.child("values"),
                          "operators Gt and Lt take exactly one value")
    else:
        errs.invalid("api-pod-node-selector-operator", path.child("operator"), operator if operator is not None else "",
                     "must be In, NotIn, Exists, DoesNotExist, Gt or Lt")
    key = requirement.get("key")
    if isinstance(key, str):
        errs.each("api-pod-node-selector-key", path.child("key"), key, formats.qualified_name_problems(key))
    if check_values:
        for index, value in enumerate(values):
            if isinstance(value, str):
                errs.each("api-pod-node-selector-value", path.child("values").index(index), value,
                          formats.label_value_problems(value))


def _node_field_requirement(requirement: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    operator, values = requirement.get("operator"), as_list(requirement.get("values"))
    if operator in ("In", "NotIn"):
        if len(values) != 1:
            errs.required("api-pod-node-field-selector", path.child("values"),
                          "a node field selector with In or NotIn takes exactly one value")
    else:
        errs.invalid("api-pod-node-field-selector", path.child("operator"), operator if operator is not None else "",
                     "a node field selector's operator is In or NotIn")
    key = requirement.get("key")
    if key != "metadata.name":
        errs.invalid("api-pod-node-field-selector", path.child("key"), key if key is not None else "",
                     "the only node field to select on is metadata.name")
        return
    for index, value in enumerate(values):
        if isinstance(value, str):
            errs.each("api-pod-node-field-selector", path.child("values").index(index), value,
                      formats.name_is_dns_subdomain(value))


def _node_selector_term(term: Any, path: FieldPath, check_values: bool, errs: Errors) -> None:
    term = as_dict(term)
    for index, requirement in enumerate(as_list(term.get("matchExpressions"))):
        _node_requirement(as_dict(requirement), path.child("matchExpressions").index(index), check_values, errs)
    for index, requirement in enumerate(as_list(term.get("matchFields"))):
        _node_field_requirement(as_dict(requirement), path.child("matchFields").index(index), errs)


def _weight(value: Any, path: FieldPath, errs: Errors) -> None:
    if formats.is_int(value) and not 1 <= value <= 100:
        errs.invalid("api-pod-affinity-weight", path, value, WEIGHT_DETAIL)


def _node_affinity(affinity: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(required, dict):
        at = path.child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
        terms = as_list(required.get("nodeSelectorTerms"))
        if not terms:
            errs.required("api-pod-node-affinity-terms", at, "a required node affinity needs at least one term")
        for index, term in enumerate(terms):
            _node_selector_term(term, at.index(index), True, errs)
    for index, term in enumerate(as_list(affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        term = as_dict(term)
        at = path.child("preferredDuringSchedulingIgnoredDuringExecution").index(index)
        _weight(term.get("weight"), at.child("weight"), errs)
        # Preferred terms may hold any label value: they can still match one node.
        _node_selector_term(term.get("preference"), at.child("preference"), False, errs)


# ---- pod (anti-)affinity ----------------------------------------------------------

def _merged_expressions(selector: dict[str, Any], match_keys: list[Any], mismatch_keys: list[Any],
                        labels: Mapping[str, str] | None) -> list[Any]:
    """The selector's expressions as the API server has them when it
    validates: on a Pod it has first appended `key In [value]` for each
    matchLabelKeys key the pod carries (and NotIn for mismatchLabelKeys)."""
    expressions = list(as_list(selector.get("matchExpressions")))
    if labels is None:
        return expressions
    for keys, operator in ((match_keys, "In"), (mismatch_keys, "NotIn")):
        for key in keys:
            if isinstance(key, str) and key in labels:
                expressions.append({"key": key, "operator": operator, "values": [labels[key]]})
    return expressions


def label_keys(check: str, path: FieldPath, keys: list[Any], selector: Any, errs: Errors) -> None:
    """validateLabelKeys: only with a labelSelector, and each a label key."""
    if not keys:
        return
    if selector is None:
        errs.forbidden(check, path, "may only be set with a labelSelector")
        return
    for index, key in enumerate(keys):
        if isinstance(key, str):
            errs.each(check, path.index(index), key, formats.qualified_name_problems(key))


def match_label_keys(path: FieldPath, match_keys: list[Any], mismatch_keys: list[Any], selector: Any,
                     labels: Mapping[str, str] | None, checks: tuple[str, str, str], errs: Errors) -> None:
    """validateMatchLabelKeysAndMismatchLabelKeys, for an affinity term and
    (from 1.33) a topology spread constraint. `checks`: the ids for the key
    format, a key also in the selector, a key in both lists."""
    names, in_selector, overlap = checks
    label_keys(names, path.child("matchLabelKeys"), match_keys, selector, errs)
    label_keys(names, path.child("mismatchLabelKeys"), mismatch_keys, selector, errs)
    if isinstance(selector, dict):
        positions = {key: index for index, key in enumerate(match_keys) if isinstance(key, str)}
        seen = {str(key) for key in as_dict(selector.get("matchLabels"))}
        for expression in _merged_expressions(selector, match_keys, mismatch_keys, labels):
            key = as_dict(expression).get("key")
            if not isinstance(key, str):
                continue
            if key in positions and key in seen:
                # The API server names the term (or constraint) and the key's position.
                errs.invalid(in_selector, path.index(positions[key]), key,
                             "is in both matchLabelKeys and labelSelector: remove it from labelSelector")
            seen.add(key)
    mismatch = {key for key in mismatch_keys if isinstance(key, str)}
    for index, key in enumerate(match_keys):
        if isinstance(key, str) and key in mismatch:
            errs.invalid(overlap, path.child("matchLabelKeys").index(index), key,
                         "is in both matchLabelKeys and mismatchLabelKeys")


_AFFINITY_KEY_CHECKS = ("api-pod-affinity-label-keys", "api-pod-affinity-label-keys-selector",
                        "api-pod-affinity-label-keys-overlap")


def _pod_affinity_term(term: Any, path: FieldPath, labels: Mapping[str, str] | None, errs: Errors) -> None:
    term = as_dict(term)
    meta.validate_label_selector(term.get("labelSelector"), path.child("labelSelector"), errs)
    meta.validate_label_selector(term.get("namespaceSelector"), path.child("namespaceSelector"), errs)
    for name in as_list(term.get("namespaces")):
        if isinstance(name, str):
            # Reported at `namespace`, as the API server spells it.
            errs.each("api-pod-affinity-namespaces", path.child("namespace"), name, formats.name_is_dns_label(name))
    match_label_keys(path, as_list(term.get("matchLabelKeys")), as_list(term.get("mismatchLabelKeys")),
                     term.get("labelSelector"), labels, _AFFINITY_KEY_CHECKS, errs)
    key = term.get("topologyKey")
    if isinstance(key, str):
        if not key:
            errs.required("api-pod-affinity-topology-key", path.child("topologyKey"),
                          "the node label that defines the topology domain, e.g. kubernetes.io/hostname")
        errs.each("api-pod-affinity-topology-key", path.child("topologyKey"), key,
                  formats.qualified_name_problems(key))


def _pod_affinity(affinity: dict[str, Any], path: FieldPath, labels: Mapping[str, str] | None,
                  errs: Errors) -> None:
    at = path.child("requiredDuringSchedulingIgnoredDuringExecution")
    for index, term in enumerate(as_list(affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))):
        _pod_affinity_term(term, at.index(index), labels, errs)
    at = path.child("preferredDuringSchedulingIgnoredDuringExecution")
    for index, term in enumerate(as_list(affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        term = as_dict(term)
        _weight(term.get("weight"), at.index(index).child("weight"), errs)
        _pod_affinity_term(term.get("podAffinityTerm"), at.index(index).child("podAffinityTerm"), labels, errs)


def validate_affinity(affinity: Any, path: FieldPath, errs: Errors, labels: Mapping[str, str] | None = None) -> None:
    """validateAffinity. `labels`: a Pod's own labels (None for a template),
    whose matchLabelKeys the API server merges into the selectors first."""
    affinity = as_dict(affinity)
    if isinstance(affinity.get("nodeAffinity"), dict):
        _node_affinity(affinity["nodeAffinity"], path.child("nodeAffinity"), errs)
    for key in ("podAffinity", "podAntiAffinity"):
        if isinstance(affinity.get(key), dict):
            _pod_affinity(affinity[key], path.child(key), labels, errs)


# ---- topology spread constraints -------------------------------------------------

_SPREAD_KEY_CHECKS = ("api-pod-spread-match-label-keys",) * 3


def validate_topology_spread(constraints: Any, path: FieldPath, ctx: Context, errs: Errors,
                             labels: Mapping[str, str] | None = None) -> None:
    constraints = [as_dict(constraint) for constraint in as_list(constraints)]
    for index, constraint in enumerate(constraints):
        at = path.index(index)
        skew = constraint.get("maxSkew")
        if formats.is_int(skew) and skew <= 0:
            errs.invalid("api-pod-spread-max-skew", at.child("maxSkew"), skew, "must be greater than zero")
        key, when = constraint.get("topologyKey"), constraint.get("whenUnsatisfiable")
        if key == "":
            errs.required("api-pod-spread-topology-key", at.child("topologyKey"),
                          "the node label that defines the domains, e.g. topology.kubernetes.io/zone")
        if isinstance(when, str) and when not in WHEN_UNSATISFIABLE:
            errs.not_supported("api-pod-spread-when-unsatisfiable", at.child("whenUnsatisfiable"), when,
                               WHEN_UNSATISFIABLE)
        if any(other.get("topologyKey") == key and other.get("whenUnsatisfiable") == when
               for other in constraints[index + 1:]):
            errs.duplicate("api-pod-spread-duplicate", at.child("{topologyKey, whenUnsatisfiable}"),
                           f"{{{key}, {when}}}")
        domains = constraint.get("minDomains")
        if formats.is_int(domains):
            if domains <= 0:
                errs.invalid("api-pod-spread-min-domains", at.child("minDomains"), domains,
                             "must be greater than zero")
            if when != "DoNotSchedule":
                errs.invalid("api-pod-spread-min-domains", at.child("minDomains"), domains,
                             f"minDomains applies only to whenUnsatisfiable DoNotSchedule, not {when}")
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            value = constraint.get(policy)
            if isinstance(value, str) and value not in NODE_INCLUSION_POLICIES:
                errs.not_supported("api-pod-spread-node-policy", at.child(policy), value, NODE_INCLUSION_POLICIES)
        selector, keys = constraint.get("labelSelector"), as_list(constraint.get("matchLabelKeys"))
        if ctx.at_least(33):
            # MatchLabelKeysInPodTopologySpreadSelectorMerge (on by default
            # since 1.33): the affinity terms' rules, after a Pod's merge.
            match_label_keys(at, keys, [], selector, labels, _SPREAD_KEY_CHECKS, errs)
        else:
            _legacy_spread_keys(at.child("matchLabelKeys"), keys, selector, errs)
        meta.validate_label_selector(selector, at.child("labelSelector"), errs)


def _legacy_spread_keys(path: FieldPath, keys: list[Any], selector: Any, errs: Errors) -> None:
    """Before 1.33: no key of matchLabelKeys may appear in the labelSelector at all."""
    if not keys:
        return
    if selector is None:
        errs.forbidden("api-pod-spread-match-label-keys", path, "may only be set with a labelSelector")
        return
    selector = as_dict(selector)
    taken = {str(key) for key in as_dict(selector.get("matchLabels"))}
    taken |= {as_dict(expression).get("key") for expression in as_list(selector.get("matchExpressions"))}
    for index, key in enumerate(keys):
        if isinstance(key, str):
            errs.each("api-pod-spread-match-label-keys", path.index(index), key, formats.qualified_name_problems(key))
            if key in taken:
                errs.invalid("api-pod-spread-match-label-keys", path.index(index), key,
                             "is in both matchLabelKeys and labelSelector: remove it from labelSelector")


_T = "core: ValidateTolerations"
_NA = "core: validateNodeAffinity"
_PA = "core: validatePodAffinityTerm"
_TS = "core: validateTopologySpreadConstraints"
ROWS = (
    Row((POD_TEMPLATE,), _T, "a toleration's key, when set, is a qualified name", "api-pod-toleration-key"),
    Row((POD_TEMPLATE,), _T, "an empty key needs operator Exists; the operator is Equal, Exists or empty",
        "api-pod-toleration-operator"),
    Row((POD_TEMPLATE,), _T, "with operator Equal (or empty) the value is a label value; with Exists it is empty "
        "(both reported at .operator)", "api-pod-toleration-value"),
    Row((POD_TEMPLATE,), _T, "tolerationSeconds needs effect NoExecute", "api-pod-toleration-seconds"),
    Row((POD_TEMPLATE,), _T + " (validateTaintEffect)", "the effect, when set, is NoSchedule, PreferNoSchedule or "
        "NoExecute", "api-pod-toleration-effect"),
    Row((POD_TEMPLATE,), "core: ValidatePodSpec (ValidateLabels)", "nodeSelector keys are qualified names and "
        "values label values", "api-pod-node-selector"),
    Row((POD_TEMPLATE,), "core: ValidateNodeSelector", "a required node affinity has at least one "
        "nodeSelectorTerm", "api-pod-node-affinity-terms"),
    Row((POD_TEMPLATE,), "core: ValidateNodeSelectorRequirement", "a node selector requirement's operator is In, "
        "NotIn, Exists, DoesNotExist, Gt or Lt", "api-pod-node-selector-operator"),
    Row((POD_TEMPLATE,), "core: ValidateNodeSelectorRequirement", "In and NotIn need values, Exists and "
        "DoesNotExist take none, Gt and Lt take exactly one", "api-pod-node-selector-values"),
    Row((POD_TEMPLATE,), "core: ValidateNodeSelectorRequirement", "Gt and Lt values are integers", None,
        "not a condition of the API server: it accepts any single value, and the scheduler treats a term whose "
        "value does not parse as not matching"),
    Row((POD_TEMPLATE,), "core: ValidateNodeSelectorRequirement", "a requirement's key is a qualified name",
        "api-pod-node-selector-key"),
    Row((POD_TEMPLATE,), "core: ValidateNodeSelectorRequirement", "the values of a required term are label "
        "values (a preferred term may hold any)", "api-pod-node-selector-value"),
    Row((POD_TEMPLATE,), "core: ValidateNodeFieldSelectorRequirement", "matchFields select metadata.name with In "
        "or NotIn and exactly one value, a node name", "api-pod-node-field-selector"),
    Row((POD_TEMPLATE,), "core: ValidatePreferredSchedulingTerms, validateWeightedPodAffinityTerms", "a preferred "
        "term's weight is 1..100", "api-pod-affinity-weight"),
    Row((POD_TEMPLATE,), _PA, "each of namespaces is a DNS label (reported at `namespace`)",
        "api-pod-affinity-namespaces"),
    Row((POD_TEMPLATE,), _PA, "topologyKey is set and is a qualified name", "api-pod-affinity-topology-key"),
    Row((POD_TEMPLATE,), _PA + " (validateLabelKeys)", "matchLabelKeys and mismatchLabelKeys need a labelSelector "
        "and are qualified names", "api-pod-affinity-label-keys"),
    Row((POD_TEMPLATE,), _PA + " (validateMatchLabelKeysAndMismatchLabelKeys)", "a matchLabelKeys key is not also "
        "in the labelSelector (on a Pod, checked after the API server merges the keys into it; in a template only "
        "a key that the selector repeats is caught)", "api-pod-affinity-label-keys-selector"),
    Row((POD_TEMPLATE,), _PA + " (validateMatchLabelKeysAndMismatchLabelKeys)", "no key is in both "
        "matchLabelKeys and mismatchLabelKeys", "api-pod-affinity-label-keys-overlap"),
    Row((POD_TEMPLATE,), "core: ValidateMaxSkew", "maxSkew is greater than zero", "api-pod-spread-max-skew"),
    Row((POD_TEMPLATE,), "core: ValidateTopologyKey", "topologyKey is not empty (its format is not checked)",
        "api-pod-spread-topology-key"),
    Row((POD_TEMPLATE,), "core: ValidateWhenUnsatisfiable", "whenUnsatisfiable is DoNotSchedule or ScheduleAnyway",
        "api-pod-spread-when-unsatisfiable"),
    Row((POD_TEMPLATE,), "core: ValidateSpreadConstraintNotRepeat", "no two constraints share topologyKey and "
        "whenUnsatisfiable", "api-pod-spread-duplicate"),
    Row((POD_TEMPLATE,), "core: validateMinDomains", "minDomains, when set, is greater than zero and needs "
        "whenUnsatisfiable DoNotSchedule", "api-pod-spread-min-domains"),
    Row((POD_TEMPLATE,), "core: validateNodeInclusionPolicy", "nodeAffinityPolicy and nodeTaintsPolicy are Honor "
        "or Ignore", "api-pod-spread-node-policy"),
    Row((POD_TEMPLATE,), _TS + " (matchLabelKeys)", "matchLabelKeys need a labelSelector, are qualified names and "
        "are not also in the labelSelector (from 1.33 the affinity terms' rule, checked on a Pod after the merge)",
        "api-pod-spread-match-label-keys"),
)
