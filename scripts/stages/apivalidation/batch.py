"""batch/v1: Job and CronJob (Kubernetes' pkg/apis/batch/validation)."""

from __future__ import annotations

import copy
import functools
import re
import zoneinfo
from typing import Any

from scripts.stages.apivalidation import apps, formats, meta, pods
from scripts.stages.apivalidation.context import Context
from scripts.stages.apivalidation.coverage import Row
from scripts.stages.apivalidation.cronschedule import schedule_problem
from scripts.stages.apivalidation.errors import OMITTED, ROOT, Errors, FieldPath
from scripts.stages.apivalidation.meta import as_dict, as_list

MAX_INDEXED_PARALLELISM = 100_000
MAX_FAILED_INDEXES = 100_000
COMPLETIONS_SOFT_LIMIT = 100_000
PARALLELISM_LIMIT_HIGH_COMPLETIONS = 10_000
MAX_FAILED_INDEXES_HIGH_COMPLETIONS = 10_000
MAX_POD_FAILURE_RULES = 20
MAX_EXIT_CODES = 255
MAX_POD_CONDITION_PATTERNS = 20
MAX_MANAGED_BY = 63
MAX_SUCCEEDED_INDEXES = 64 * 1024
MAX_SUCCESS_RULES = 20
# The controller names each Job '<cronjob>-<11-character schedule time>'; a Job name ends up in a label.
CRONJOB_NAME_MAX = formats.DNS_LABEL_MAX - 11
FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
CONDITION_STATUSES = ("False", "True", "Unknown")
# The labels the API server puts on a Job's pod template when it generates the selector.
JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
_TIME_ZONE_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")
_HTTP_PATH = re.compile(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+")
_ATOI = re.compile(r"[+-]?[0-9]+")


def _nonneg(spec: dict[str, Any], name: str, path: FieldPath, errs: Errors, check: str) -> None:
    apps.nonnegative(check, path.child(name), spec.get(name), errs)


def domain_prefixed_path(check: str, path: FieldPath, value: str, errs: Errors) -> None:
    """apimachinery's IsDomainPrefixedPath: '<DNS subdomain>/<HTTP path>' (a
    Job's managedBy, an IngressClass's controller)."""
    host, slash, rest = value.partition("/")
    if not slash or not host or not rest:
        errs.invalid(check, path, value, "must be a domain-prefixed path such as 'example.com/controller'")
        return
    errs.each(check, path, host, formats.dns_subdomain_problems(host))
    if not _HTTP_PATH.fullmatch(rest):
        errs.invalid(check, path, rest, "the path after the domain may hold letters, digits and /-._~%!$&'()*+,;=:")


def _indexes_problem(text: str, completions: int) -> tuple[int, str | None]:
    """A succeededIndexes list ('1,3-5,7'): (how many indexes, problem)."""
    if not text:
        return 0, None
    last, total = None, 0
    for interval in text.split(","):
        limits = interval.split("-")
        if len(limits) > 2:
            return 0, f"'{interval}' has more than two parts separated by '-'"
        numbers = []
        for limit in limits:
            if not _ATOI.fullmatch(limit):
                return 0, f"'{limit}' is not an index"
            if int(limit) >= completions:
                return 0, f"index {limit} is not below completions ({completions})"
            numbers.append(int(limit))
        low, high = numbers[0], numbers[-1]
        if len(numbers) == 2 and low >= high:
            return 0, f"the interval '{interval}' does not increase"
        if last is not None and last >= low:
            return 0, f"the indexes do not increase ({last} then {low})"
        total += high - low + 1
        last = high
    return total, None


def _pod_failure_policy(policy: Any, spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    rules = as_list(as_dict(policy).get("rules"))
    at = path.child("rules")
    if len(rules) > MAX_POD_FAILURE_RULES:
        errs.too_many("api-job-pod-failure-policy-rules", at, len(rules), MAX_POD_FAILURE_RULES)
    template_spec = as_dict(as_dict(spec.get("template")).get("spec"))
    containers = {as_dict(c).get("name") for key in ("containers", "initContainers")
                  for c in as_list(template_spec.get(key))}
    for index, rule in enumerate(rules):
        rule = as_dict(rule)
        rule_at = at.index(index)
        action = rule.get("action")
        if action == "":
            errs.required("api-job-pod-failure-action", rule_at.child("action"),
                          "one of " + ", ".join(FAILURE_ACTIONS))
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                errs.invalid("api-job-pod-failure-action", rule_at.child("action"), action,
                             "FailIndex needs spec.backoffLimitPerIndex")
        elif isinstance(action, str) and action not in FAILURE_ACTIONS:
            errs.not_supported("api-job-pod-failure-action", rule_at.child("action"), action, FAILURE_ACTIONS)
        exit_codes = rule.get("onExitCodes")
        conditions = as_list(rule.get("onPodConditions"))
        if exit_codes is not None:
            _on_exit_codes(as_dict(exit_codes), rule_at.child("onExitCodes"), containers, errs)
        if conditions:
            _on_pod_conditions(conditions, rule_at.child("onPodConditions"), errs)
        if exit_codes is not None and conditions:
            errs.invalid("api-job-pod-failure-requirement", rule_at, OMITTED,
                         "set onExitCodes or onPodConditions, not both")
        if exit_codes is None and not conditions:
            errs.invalid("api-job-pod-failure-requirement", rule_at, OMITTED,
                         "set one of onExitCodes and onPodConditions")


def _on_exit_codes(requirement: dict[str, Any], path: FieldPath, containers: set[Any], errs: Errors) -> None:
    operator = requirement.get("operator")
    if operator == "":
        errs.required("api-job-pod-failure-exit-codes", path.child("operator"), "In or NotIn")
    elif isinstance(operator, str) and operator not in ("In", "NotIn"):
        errs.not_supported("api-job-pod-failure-exit-codes", path.child("operator"), operator, ["In", "NotIn"])
    container = requirement.get("containerName")
    if isinstance(container, str) and container not in containers:
        errs.invalid("api-job-pod-failure-exit-codes", path.child("containerName"), container,
                     "must name one of the template's containers or initContainers")
    values = requirement.get("values")
    if not isinstance(values, list):
        return
    at = path.child("values")
    if not values:
        errs.invalid("api-job-pod-failure-exit-codes", at, values, "at least one exit code is required")
    elif len(values) > MAX_EXIT_CODES:
        errs.too_many("api-job-pod-failure-exit-codes", at, len(values), MAX_EXIT_CODES)
    seen: set[int] = set()
    ordered = True
    previous = None
    for index, value in enumerate(values):
        if not formats.is_int(value):
            continue
        if operator == "In" and value == 0:
            errs.invalid("api-job-pod-failure-exit-codes", at.index(index), value,
                         "0 (success) may not be listed for the In operator")
        if value in seen:
            errs.duplicate("api-job-pod-failure-exit-codes", at.index(index), value)
        seen.add(value)
        if previous is not None and previous > value:
            ordered = False
        previous = value
    if not ordered:
        errs.invalid("api-job-pod-failure-exit-codes", at, values, "must be in increasing order")


def _on_pod_conditions(patterns: list[Any], path: FieldPath, errs: Errors) -> None:
    if len(patterns) > MAX_POD_CONDITION_PATTERNS:
        errs.too_many("api-job-pod-failure-conditions", path, len(patterns), MAX_POD_CONDITION_PATTERNS)
    for index, pattern in enumerate(patterns):
        pattern = as_dict(pattern)
        at = path.index(index)
        kind = pattern.get("type")
        if isinstance(kind, str):
            errs.each("api-job-pod-failure-conditions", at.child("type"), kind, formats.qualified_name_problems(kind))
        status = pattern.get("status")
        # An empty status is defaulted to True.
        if isinstance(status, str) and status and status not in CONDITION_STATUSES:
            errs.not_supported("api-job-pod-failure-conditions", at.child("status"), status, CONDITION_STATUSES)


def _success_policy(policy: Any, spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    rules = as_dict(policy).get("rules")
    if not isinstance(rules, list):
        return
    at = path.child("rules")
    if not rules:
        errs.required("api-job-success-policy-rules", at, "a successPolicy needs at least one rule")
    if len(rules) > MAX_SUCCESS_RULES:
        errs.too_many("api-job-success-policy-rules", at, len(rules), MAX_SUCCESS_RULES)
    completions = spec.get("completions")
    if not formats.is_int(completions):
        return  # an Indexed Job without completions is refused for that already
    for index, rule in enumerate(rules):
        rule = as_dict(rule)
        rule_at = at.index(index)
        count, indexes = rule.get("succeededCount"), rule.get("succeededIndexes")
        if count is None and indexes is None:
            errs.required("api-job-success-policy-rule", rule_at, "set succeededCount, succeededIndexes or both")
        total = 0
        if isinstance(indexes, str):
            if len(indexes) > MAX_SUCCEEDED_INDEXES:
                errs.too_long("api-job-success-policy-rule", rule_at.child("succeededIndexes"), MAX_SUCCEEDED_INDEXES)
            total, problem = _indexes_problem(indexes, completions)
            if problem:
                errs.invalid("api-job-success-policy-rule", rule_at.child("succeededIndexes"), indexes,
                             f"not a list of indexes such as '0,2-4': {problem}")
        if formats.is_int(count):
            count_at = rule_at.child("succeededCount")
            apps.nonnegative("api-job-success-policy-rule", count_at, count, errs)
            if count > completions:
                errs.invalid("api-job-success-policy-rule", count_at, count,
                             f"must be at most completions ({completions})")
            if isinstance(indexes, str) and count > total:
                errs.invalid("api-job-success-policy-rule", count_at, count,
                             f"must be at most the number of succeededIndexes ({total})")


def _restart_policy(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    template_spec = as_dict(as_dict(spec.get("template")).get("spec"))
    restart = template_spec.get("restartPolicy")
    at = path.child("template", "spec", "restartPolicy")
    if restart is None or restart in ("", "Always"):  # unset, defaulting makes it Always
        errs.required("api-job-restart-policy", at, "a Job's pods must stop: set OnFailure or Never")
    elif isinstance(restart, str) and restart not in ("OnFailure", "Never"):
        errs.not_supported("api-job-restart-policy", at, restart, ["OnFailure", "Never"])
    elif restart == "OnFailure" and spec.get("podFailurePolicy") is not None:
        errs.invalid("api-job-pod-failure-restart-policy", at, restart,
                     "a podFailurePolicy needs restartPolicy Never")


def _completion_mode(spec: dict[str, Any], path: FieldPath, errs: Errors) -> None:
    mode = spec.get("completionMode")
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    per_index, max_failed = spec.get("backoffLimitPerIndex"), spec.get("maxFailedIndexes")
    if isinstance(mode, str) and mode not in ("NonIndexed", "Indexed"):
        errs.not_supported("api-job-completion-mode", path.child("completionMode"), mode, ["NonIndexed", "Indexed"])
    if mode == "Indexed":
        if completions is None:
            errs.required("api-job-indexed-completions", path.child("completions"),
                          "an Indexed Job needs completions")
        if formats.is_int(parallelism) and parallelism > MAX_INDEXED_PARALLELISM:
            errs.invalid("api-job-indexed-limits", path.child("parallelism"), parallelism,
                         f"must be at most {MAX_INDEXED_PARALLELISM} for an Indexed Job")
        if formats.is_int(completions) and formats.is_int(max_failed) and max_failed > completions:
            errs.invalid("api-job-indexed-limits", path.child("maxFailedIndexes"), max_failed,
                         "must be at most completions")
        if formats.is_int(max_failed) and max_failed > MAX_FAILED_INDEXES:
            errs.invalid("api-job-indexed-limits", path.child("maxFailedIndexes"), max_failed,
                         f"must be at most {MAX_FAILED_INDEXES}")
        if formats.is_int(completions) and completions > COMPLETIONS_SOFT_LIMIT and per_index is not None:
            if max_failed is None:
                errs.required("api-job-indexed-limits", path.child("maxFailedIndexes"),
                              f"must be set when completions is above {COMPLETIONS_SOFT_LIMIT} and "
                              "backoffLimitPerIndex is set")
            if formats.is_int(parallelism) and parallelism > PARALLELISM_LIMIT_HIGH_COMPLETIONS:
                errs.invalid("api-job-indexed-limits", path.child("parallelism"), parallelism,
                             f"must be at most {PARALLELISM_LIMIT_HIGH_COMPLETIONS} when completions is above "
                             f"{COMPLETIONS_SOFT_LIMIT} with backoffLimitPerIndex")
            if formats.is_int(max_failed) and max_failed > MAX_FAILED_INDEXES_HIGH_COMPLETIONS:
                errs.invalid("api-job-indexed-limits", path.child("maxFailedIndexes"), max_failed,
                             f"must be at most {MAX_FAILED_INDEXES_HIGH_COMPLETIONS} when completions is above "
                             f"{COMPLETIONS_SOFT_LIMIT} with backoffLimitPerIndex")
    elif mode is None or mode == "NonIndexed":
        for name, value in (("backoffLimitPerIndex", per_index), ("maxFailedIndexes", max_failed)):
            if formats.is_int(value):
                errs.invalid("api-job-per-index-needs-indexed", path.child(name), value,
                             "needs completionMode: Indexed")


def validate_job_spec(spec: dict[str, Any], path: FieldPath, ctx: Context, errs: Errors,
                      template: Any) -> None:
    """validateJobSpec: what a Job's spec and a CronJob's jobTemplate.spec
    share. `template` is the pod template to validate (a Job's carries the
    labels the API server adds)."""
    for name in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
                 "backoffLimitPerIndex", "maxFailedIndexes"):
        _nonneg(spec, name, path, errs, "api-job-nonnegative")
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        errs.required("api-job-max-failed-needs-per-index", path.child("backoffLimitPerIndex"),
                      "must be set when maxFailedIndexes is set")
    managed = spec.get("managedBy")
    if isinstance(managed, str):
        at = path.child("managedBy")
        if not managed:
            errs.required("api-job-managed-by", at, "")
        else:
            domain_prefixed_path("api-job-managed-by", at, managed, errs)
        if len(managed) > MAX_MANAGED_BY:
            errs.too_long("api-job-managed-by", at, MAX_MANAGED_BY)
    _completion_mode(spec, path, errs)
    if spec.get("podFailurePolicy") is not None:
        _pod_failure_policy(spec.get("podFailurePolicy"), spec, path.child("podFailurePolicy"), errs)
    success = spec.get("successPolicy")
    if success is not None:
        if spec.get("completionMode") != "Indexed":
            errs.invalid("api-job-success-policy-needs-indexed", path.child("successPolicy"), success,
                         "needs completionMode: Indexed")
        else:
            _success_policy(success, spec, path.child("successPolicy"), errs)
    replacement = spec.get("podReplacementPolicy")
    if isinstance(replacement, str):
        allowed = ["Failed"] if spec.get("podFailurePolicy") is not None else ["Failed", "TerminatingOrFailed"]
        if replacement not in allowed:
            errs.not_supported("api-job-pod-replacement-policy", path.child("podReplacementPolicy"), replacement,
                               allowed)
    pods.validate_pod_template(template, path.child("template"), ctx, errs)
    _restart_policy(spec, path, errs)


# ---- Job ------------------------------------------------------------------------

# A placeholder for the uid the API server gives the Job: no label a user writes equals it.
_UID = "00000000-0000-0000-0000-000000000000"


def _generated_template(template: Any, name: str) -> Any:
    """The template after the API server adds the job-name and controller-uid
    labels it selects the pods by (when it generates the selector)."""
    if not isinstance(template, dict):
        return template
    template = copy.deepcopy(template)
    metadata = template.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        return template
    labels = metadata.get("labels")
    if labels is None:
        labels = metadata["labels"] = {}
    if not isinstance(labels, dict):
        return template
    if not formats.label_value_problems(name):
        for key in JOB_NAME_LABELS:
            labels.setdefault(key, name)
    for key in UID_LABELS:
        labels.setdefault(key, _UID)
    return template


def validate_job(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    metadata = doc.get("metadata")
    meta.validate_object_meta(metadata, ROOT.child("metadata"), errs)
    name = as_dict(metadata).get("name")
    name = name if isinstance(name, str) else ""
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    template = spec.get("template")
    manual = spec.get("manualSelector") is True
    if manual:
        selector = spec.get("selector")
        if selector is None:
            errs.required("api-job-manual-selector", path.child("selector"),
                          "manualSelector: true needs a selector")
        else:
            meta.validate_label_selector(selector, path.child("selector"), errs)
    else:
        if spec.get("selector") is not None:
            meta.validate_label_selector(spec.get("selector"), path.child("selector"), errs)
        selector = _generated_selector(spec.get("selector"), name, template, errs)
        template = _generated_template(template, name)
        if name and formats.label_value_problems(name):
            errs.invalid("api-job-name-label", path.child("template", "metadata", "labels"), name,
                         f"the Job's name becomes its pods' job-name label, a label value of at most "
                         f"{formats.LABEL_VALUE_MAX} characters: shorten the name")
    validate_job_spec(spec, path, ctx, errs, template)
    if apps.selector_is_valid(selector) or selector is None:
        labels = apps.template_labels(template)
        if not apps.selector_matches(selector, labels):
            errs.invalid("api-job-selector-matches-template", path.child("template", "metadata", "labels"), labels,
                         "the selector does not select the template's labels: put every label it asks for on "
                         "the pod template")
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and formats.is_int(completions) and completions > 0 and name:
        hostname = f"{name}-{completions - 1}"
        if formats.dns_label_problems(hostname):
            errs.invalid("api-job-indexed-hostname", ROOT.child("metadata", "name"), name,
                         f"an Indexed Job's pods are named '<name>-<index>', and '{hostname}' is not a DNS "
                         "label (63 characters, no dots)")


def _generated_selector(selector: Any, name: str, template: Any, errs: Errors) -> Any:
    """Without manualSelector the API server selects by the Job's uid: a
    selector or a controller label written by hand is refused."""
    labels = apps.template_labels(template)
    at = ROOT.child("spec", "template", "metadata", "labels")
    for key in JOB_NAME_LABELS:
        if key in labels and labels[key] != name:
            errs.invalid("api-job-generated-labels", at.key(key), labels,
                         f"must be '{name}' (the Job's name), or left out: the API server sets it")
    for key in UID_LABELS:
        if key in labels:
            errs.invalid("api-job-generated-labels", at.key(key), labels,
                         "must be left out: the API server sets it to the Job's uid")
    generated: dict[str, Any] = copy.deepcopy(as_dict(selector)) if isinstance(selector, dict) else {}
    match = generated.get("matchLabels")
    if not isinstance(match, dict):
        match = generated["matchLabels"] = {}
    match.setdefault(UID_LABELS[1], _UID)
    expected = {key: name for key in JOB_NAME_LABELS} | {key: _UID for key in UID_LABELS}
    if selector is not None and apps.selector_is_valid(generated) and not apps.selector_matches(generated, expected):
        errs.invalid("api-job-selector-generated", ROOT.child("spec", "selector"), selector,
                     "the API server generates a Job's selector: remove it, or set manualSelector: true")
    return generated


# ---- CronJob --------------------------------------------------------------------


@functools.cache
def _have_time_zone_database() -> bool:
    # Listing the zones reads the whole database (tens of milliseconds): once per process.
    return bool(zoneinfo.available_timezones())


def _time_zone(value: Any, path: FieldPath, errs: Errors) -> None:
    if not isinstance(value, str):
        return
    if not value:
        errs.invalid("api-cronjob-time-zone", path, value, "must be unset or an IANA time zone name")
        return
    for part in value.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TIME_ZONE_PART.fullmatch(part):
            errs.invalid("api-cronjob-time-zone", path, value, f"unknown time zone {value}")
            return
    if value.lower() == "local":
        errs.invalid("api-cronjob-time-zone", path, value,
                     "must name an explicit IANA time zone (e.g. 'Europe/Berlin'), not the server's local one")
        return
    if not _have_time_zone_database():
        return  # this machine has no time zone database to judge by
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        errs.invalid("api-cronjob-time-zone", path, value,
                     f"unknown time zone {value}: use an IANA name such as 'Europe/Berlin' or 'Etc/UTC'")


def validate_cronjob(doc: dict[str, Any], ctx: Context, errs: Errors) -> None:
    metadata = doc.get("metadata")
    meta.validate_object_meta(metadata, ROOT.child("metadata"), errs)
    spec = as_dict(doc.get("spec"))
    path = ROOT.child("spec")
    schedule = spec.get("schedule")
    if isinstance(schedule, str):
        if not schedule:
            errs.required("api-cronjob-schedule-required", path.child("schedule"), "")
        else:
            problem = schedule_problem(schedule)
            if problem:
                errs.invalid("api-cronjob-schedule", path.child("schedule"), schedule, problem)
            if "TZ" in schedule:
                errs.invalid("api-cronjob-schedule-tz", path.child("schedule"), schedule,
                             "TZ= and CRON_TZ= are not allowed in the schedule: set spec.timeZone instead")
    for name in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        _nonneg(spec, name, path, errs, "api-cronjob-nonnegative")
    _time_zone(spec.get("timeZone"), path.child("timeZone"), errs)
    policy = spec.get("concurrencyPolicy")
    if isinstance(policy, str) and policy and policy not in ("Allow", "Forbid", "Replace"):
        errs.not_supported("api-cronjob-concurrency-policy", path.child("concurrencyPolicy"), policy,
                           ["Allow", "Forbid", "Replace"])
    job_template = as_dict(spec.get("jobTemplate"))
    # Not validated on create, but each Job is created with these labels and annotations.
    job_meta = as_dict(job_template.get("metadata"))
    meta.validate_labels(job_meta.get("labels"), path.child("jobTemplate", "metadata", "labels"), errs)
    meta.validate_annotations(job_meta.get("annotations"), path.child("jobTemplate", "metadata", "annotations"), errs)
    job_spec = as_dict(job_template.get("spec"))
    at = path.child("jobTemplate", "spec")
    validate_job_spec(job_spec, at, ctx, errs, job_spec.get("template"))
    if job_spec.get("selector") is not None:
        errs.invalid("api-cronjob-job-selector", at.child("selector"), job_spec["selector"],
                     "must be left out: the API server generates each Job's selector")
    if job_spec.get("manualSelector") is True:
        errs.not_supported("api-cronjob-job-selector", at.child("manualSelector"), True, ["nil", "false"])
    name = as_dict(metadata).get("name")
    if isinstance(name, str) and len(name) > CRONJOB_NAME_MAX:
        errs.invalid("api-cronjob-name-length", ROOT.child("metadata", "name"), name,
                     f"must be no more than {CRONJOB_NAME_MAX} characters: each Job is named "
                     "'<name>-<11-character time>', and a Job's name must fit a 63-character label value")


_JOB = "batch: validateJobSpec"
COVERAGE = (
    Row(("Job", "CronJob"), _JOB, "parallelism, completions, activeDeadlineSeconds, backoffLimit, "
        "ttlSecondsAfterFinished, backoffLimitPerIndex and maxFailedIndexes are not negative", "api-job-nonnegative"),
    Row(("Job", "CronJob"), _JOB, "maxFailedIndexes needs backoffLimitPerIndex",
        "api-job-max-failed-needs-per-index"),
    Row(("Job", "CronJob"), _JOB + " (IsDomainPrefixedPath)", "managedBy, when set, is '<DNS subdomain>/<path>' "
        "of at most 63 characters (JobManagedBy, on by default since 1.32)", "api-job-managed-by"),
    Row(("Job", "CronJob"), _JOB, "completionMode is NonIndexed or Indexed (a Job's is NonIndexed when unset)",
        "api-job-completion-mode"),
    Row(("Job", "CronJob"), _JOB, "an Indexed Job sets completions (a Job with neither completions nor "
        "parallelism gets 1 of each)", "api-job-indexed-completions"),
    Row(("Job", "CronJob"), _JOB, "an Indexed Job has parallelism <= 100000, maxFailedIndexes <= completions and "
        "<= 100000; above 100000 completions with backoffLimitPerIndex, maxFailedIndexes is set and <= 10000 and "
        "parallelism <= 10000", "api-job-indexed-limits"),
    Row(("Job", "CronJob"), _JOB, "backoffLimitPerIndex and maxFailedIndexes need Indexed completion",
        "api-job-per-index-needs-indexed"),
    Row(("Job", "CronJob"), "batch: validatePodFailurePolicy", "podFailurePolicy has at most 20 rules",
        "api-job-pod-failure-policy-rules"),
    Row(("Job", "CronJob"), "batch: validatePodFailurePolicyRule", "a rule's action is Count, FailIndex, FailJob "
        "or Ignore, and FailIndex needs backoffLimitPerIndex", "api-job-pod-failure-action"),
    Row(("Job", "CronJob"), "batch: validatePodFailurePolicyRule", "a rule has exactly one of onExitCodes and "
        "onPodConditions", "api-job-pod-failure-requirement"),
    Row(("Job", "CronJob"), "batch: validatePodFailurePolicyRuleOnExitCodes", "onExitCodes: operator In or NotIn, "
        "containerName one of the template's containers, 1 to 255 values, increasing, no duplicates, no 0 for In",
        "api-job-pod-failure-exit-codes"),
    Row(("Job", "CronJob"), "batch: validatePodFailurePolicyRuleOnPodConditions", "onPodConditions: at most 20 "
        "patterns, each type a qualified name and status True, False or Unknown (True when unset)",
        "api-job-pod-failure-conditions"),
    Row(("Job", "CronJob"), _JOB, "a podFailurePolicy needs the template's restartPolicy Never",
        "api-job-pod-failure-restart-policy"),
    Row(("Job", "CronJob"), _JOB, "successPolicy needs Indexed completion", "api-job-success-policy-needs-indexed"),
    Row(("Job", "CronJob"), "batch: validateSuccessPolicy", "successPolicy has 1 to 20 rules",
        "api-job-success-policy-rules"),
    Row(("Job", "CronJob"), "batch: validateSuccessPolicyRule", "a rule sets succeededCount or succeededIndexes; "
        "succeededIndexes is an increasing list of indexes below completions, at most 64 KiB; succeededCount is "
        "not negative, at most completions and at most the number of succeededIndexes",
        "api-job-success-policy-rule"),
    Row(("Job", "CronJob"), "batch: validatePodReplacementPolicy", "podReplacementPolicy is Failed or "
        "TerminatingOrFailed, and Failed with a podFailurePolicy", "api-job-pod-replacement-policy"),
    Row(("Job", "CronJob"), _JOB, "the template's restartPolicy is OnFailure or Never (unset, it is Always and "
        "refused)", "api-job-restart-policy"),
    Row(("Job",), "batch: ValidateJob", "an Indexed Job's last pod hostname '<name>-<completions-1>' is a DNS "
        "label", "api-job-indexed-hostname"),
    Row(("Job",), "batch: validateGeneratedSelector (ValidateHasLabel)", "without manualSelector, the template's "
        "job-name labels equal the Job's name and its controller-uid labels are left to the API server",
        "api-job-generated-labels"),
    Row(("Job",), "batch: validateGeneratedSelector", "without manualSelector, a selector written by hand selects "
        "nothing but the generated labels (in practice: leave it out)", "api-job-selector-generated"),
    Row(("Job",), "batch: validateGeneratedSelector", "metadata.uid is set", None,
        "the API server sets the uid on create; a manifest never lacks it there"),
    Row(("Job",), "batch: ValidateJobSpec", "with manualSelector: true, spec.selector is set",
        "api-job-manual-selector"),
    Row(("Job",), "batch: ValidateJobSpec", "the selector (written or generated) selects the template's labels",
        "api-job-selector-matches-template"),
    Row(("Job",), "batch: ValidateJobSpec (the generated job-name label, ValidateLabels)", "the Job's name fits the "
        "pods' job-name label: at most 63 characters", "api-job-name-label"),
    Row(("Job",), "batch: ValidateJobUpdate, ValidateJobSpecUpdate, validatePodTemplateUpdate", "selector, "
        "template, completionMode, podFailurePolicy, backoffLimitPerIndex, managedBy, successPolicy and (but for "
        "elastic Indexed Jobs) completions are immutable", None,
        "update only (the `immutable-field` rule of `validate --changed` covers a Job's template and selector)"),
    Row(("Job",), "batch: validateJobStatus, ValidateJobStatusUpdate", "status counts and conditions are "
        "consistent", None, "status is written by controllers, not by manifests"),
    Row(("CronJob",), "batch: validateCronJobSpec", "schedule is not empty", "api-cronjob-schedule-required"),
    Row(("CronJob",), "batch: validateScheduleFormat (cron.ParseStandard)", "schedule parses: five fields within "
        "their ranges (minute 0-59, hour 0-23, day 1-31, month 1-12 or jan-dec, weekday 0-6 or sun-sat) with "
        "lists, ranges and steps, or a descriptor (@yearly, @annually, @monthly, @weekly, @daily, @midnight, "
        "@hourly, @every <Go duration>)", "api-cronjob-schedule"),
    Row(("CronJob",), "batch: validateScheduleFormat", "schedule holds no TZ or CRON_TZ on create",
        "api-cronjob-schedule-tz"),
    Row(("CronJob",), "batch: validateTimeZone", "timeZone, when set, is a non-empty IANA zone name the time zone "
        "database knows, not 'Local'", "api-cronjob-time-zone"),
    Row(("CronJob",), "batch: validateCronJobSpec", "startingDeadlineSeconds, successfulJobsHistoryLimit and "
        "failedJobsHistoryLimit are not negative", "api-cronjob-nonnegative"),
    Row(("CronJob",), "batch: validateConcurrencyPolicy", "concurrencyPolicy is Allow, Forbid or Replace",
        "api-cronjob-concurrency-policy"),
    Row(("CronJob",), "batch: validateConcurrencyPolicy", "concurrencyPolicy is set", None,
        "filled by defaulting (Allow)"),
    Row(("CronJob",), "batch: ValidateJobTemplateSpec", "the job template has no selector and no manualSelector: "
        "true", "api-cronjob-job-selector"),
    Row(("CronJob",), "batch: ValidateCronJobCreate", "the name has at most 52 characters",
        "api-cronjob-name-length"),
    Row(("CronJob",), "batch: ValidateCronJobUpdate", "a TZ in the schedule is kept only if the old one had it; "
        "the 52-character limit is not applied", None, "update only"),
)
COVERAGE_TITLE = "batch/v1: Job, CronJob"
COVERAGE_INTRO = (
    "Read from a release-1.32-or-later copy of kubernetes/kubernetes `pkg/apis/batch/validation/validation.go` "
    "(successPolicy, managedBy, the status rules of 1.32) and the feature gates at 1.34: JobBackoffLimitPerIndex, "
    "JobSuccessPolicy and JobPodFailurePolicy are GA, JobPodReplacementPolicy is GA in 1.34 and JobManagedBy is "
    "beta and on, so none of their fields is dropped. Defaulting (`pkg/apis/batch/v1/defaults.go`): a Job with "
    "neither completions nor parallelism gets 1 of each, completionMode NonIndexed, backoffLimit 6; a CronJob's "
    "job template is not defaulted that way. Each pod template is held to the pod template rows. Without "
    "manualSelector the API server adds the job-name and "
    "controller-uid labels to a Job's template and generates its selector before validating, so both are "
    "judged as generated. A CronJob's jobTemplate.metadata is not validated on create, but every Job is created "
    "with its labels and annotations: they are held to the metadata rows. Cron schedules follow "
    "github.com/robfig/cron/v3's standard parser (see "
    "scripts/stages/apivalidation/cronschedule.py); time zones are looked up in Python's zoneinfo database "
    "and not judged on a machine without one."
)
VALIDATORS = {("batch/v1", "Job"): validate_job, ("batch/v1", "CronJob"): validate_cronjob}
