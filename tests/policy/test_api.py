"""What only an API server would reject, caught statically; and API versions."""

from __future__ import annotations

import re

from scripts.core.model import Render
from scripts.stages.policy_support import (
    PolicyConfig,
    Violation,
    assert_no_violations,
    containers,
    parse_quantity,
    pod_template_labels,
    selector_matches,
    workloads,
)
from scripts.stages.schema import SchemaStore, available_versions, is_core_group

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# Kinds whose names must be DNS labels (63 chars, no dots), not subdomains.
_LABEL_NAMED = {"Namespace", "Service"}


def _label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"label key {key!r} has an invalid prefix"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return f"label key {key!r} is not a valid name (63 chars: alphanumerics, '-', '_', '.')"
    return None


def _label_problems(labels: dict) -> list[str]:
    problems = []
    for key, value in (labels or {}).items():
        problem = _label_key_problem(str(key))
        if problem:
            problems.append(problem)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"label {key}={value!r} has an invalid value (63 chars, alphanumeric at both ends)")
    return problems


def check_selector_matches_template(render: Render) -> list[Violation]:
    out = []
    for obj, _ in workloads(render):
        if obj.kind in ("Pod", "CronJob", "Job"):
            continue
        selector = (obj.doc.get("spec") or {}).get("selector")
        if not selector or not selector_matches(selector, pod_template_labels(obj)):
            out.append(Violation(obj, "spec.selector does not match the pod template's labels",
                                 "make every selector label appear, with the same value, in spec.template.metadata"
                                 ".labels"))
    return out


def check_valid_names_and_labels(render: Render) -> list[Violation]:
    out = []
    for obj in render.objects:
        name = obj.name
        limit, pattern = (63, _DNS_LABEL) if obj.kind in _LABEL_NAMED else (253, _DNS_SUBDOMAIN)
        if obj.kind not in ("ClusterRole", "Role", "RoleBinding", "ClusterRoleBinding") and \
                (len(name) > limit or not pattern.match(name)):
            out.append(Violation(obj, f"name {name!r} is not a valid DNS {'label' if limit == 63 else 'subdomain'}",
                                 f"use lowercase alphanumerics and '-', at most {limit} characters"))
        for problem in _label_problems(obj.labels):
            out.append(Violation(obj, problem, "fix the label in metadata.labels"))
        if obj.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            for problem in _label_problems(pod_template_labels(obj)):
                out.append(Violation(obj, problem, "fix the label in the pod template"))
    return out


def check_quantities_parse(render: Render) -> list[Violation]:
    out = []
    for obj, pod in workloads(render):
        for label, c in containers(pod):
            resources = c.get("resources") or {}
            for section in ("requests", "limits"):
                for name, value in (resources.get(section) or {}).items():
                    if parse_quantity(value) is None:
                        out.append(Violation(obj, f"resources.{section}.{name} {value!r} is not a quantity",
                                             "write it like 500m, 2, 512Mi or 4Gi", label))
    return out


def _next_version(version: str) -> str:
    major, minor = version.split(".")
    return f"{major}.{int(minor) + 1}"


def check_no_deprecated_apis(render: Render, config: PolicyConfig, kubernetes_version: str,
                             store: SchemaStore) -> list[Violation]:
    """No API that the target version or the next one no longer serves, and
    none that the config lists as deprecated with a removal at or before next."""
    out = []
    versions = [v for v in (kubernetes_version, _next_version(kubernetes_version)) if v in available_versions()]
    for obj in render.objects:
        if not obj.api_version or not is_core_group(obj.api_version):
            continue
        for version in versions:
            if not store.has_core_schema(version, obj.api_version, obj.kind):
                out.append(Violation(obj, f"{obj.api_version} {obj.kind} is not served by Kubernetes {version}",
                                     "move to the API version that replaced it"))
                break
        else:
            deprecated = config.deprecated_apis.get(obj.api_version)
            if deprecated:
                removed = str(deprecated.get("removed_in"))
                if tuple(map(int, removed.split("."))) <= tuple(map(int, _next_version(kubernetes_version).split("."))):
                    out.append(Violation(obj, f"{obj.api_version} is deprecated and removed in {removed}",
                                         f"use {deprecated.get('use')}"))
    return out


def test_selector_matches_template(render):
    assert_no_violations(check_selector_matches_template(render))


def test_valid_names_and_labels(render):
    assert_no_violations(check_valid_names_and_labels(render))


def test_quantities_parse(render):
    assert_no_violations(check_quantities_parse(render))


def test_no_deprecated_apis(render, config, policy, schema_store):
    assert_no_violations(check_no_deprecated_apis(render, config, policy.kubernetes_version, schema_store))
