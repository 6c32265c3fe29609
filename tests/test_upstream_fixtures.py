"""Polaris' and kube-score's own test fixtures, run through our policy rules.

For every check of theirs that tests/upstream_checks.py maps to rules of
ours, each of their failure fixtures gets a finding of those rules and each
success fixture none, except the fixtures listed there as judged otherwise
on purpose (each with its "Decided differently" entry in
docs/validation.md). The fixtures are upstream data, committed unchanged
under tests/fixtures/<project>/ with PROVENANCE (repository, commit, path,
sha256) and the project's LICENSE.

How a fixture is evaluated: each file is one render of the environment
`upstream-fixture`, whose settings turn every per-environment rule on
(ha, a serving priority class, Guaranteed QoS, both network directions)
with the thresholds the upstream checks use by default (2 replicas). The
rest of config/policy.yaml (registries, the digest rule) is the platform's
own, and the Kubernetes version is the clusters'. The fixtures are single
objects written to show one check each, so they break most other rules
too: only the mapped rules' findings are counted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import re
from pathlib import Path

import pytest
import yaml

from scripts.core.model import Render
from scripts.stages.policy import load_rules
from scripts.stages.policy_support import PolicyConfig
from scripts.stages.schema import SchemaStore
from tests.conftest import REPO, make_render
from tests.upstream_checks import KUBE_SCORE, POLARIS, Counterpart

FIXTURES = REPO / "tests" / "fixtures"
ENVIRONMENT = "upstream-fixture"
# kube-score's README_CHECKS.md, in its order.
KUBE_SCORE_CHECKS = (
    "deployment-strategy", "deployment-replicas", "ingress-targets-service", "cronjob-has-deadline",
    "cronjob-restartpolicy", "container-resources", "container-resource-requests-equal-limits",
    "container-cpu-requests-equal-limits", "container-memory-requests-equal-limits", "container-image-tag",
    "container-image-pull-policy", "container-ephemeral-storage-request-and-limit",
    "container-ephemeral-storage-request-equals-limit", "container-ports-check",
    "environment-variable-key-duplication", "statefulset-has-poddisruptionbudget",
    "deployment-has-poddisruptionbudget", "poddisruptionbudget-has-policy", "pod-networkpolicy",
    "networkpolicy-targets-pod", "pod-probes", "pod-probes-identical", "container-security-context-user-group-id",
    "container-security-context-privileged", "container-security-context-readonlyrootfilesystem",
    "container-seccomp-profile", "service-targets-pod", "service-type", "stable-version",
    "deployment-has-host-podantiaffinity", "statefulset-has-host-podantiaffinity",
    "deployment-targeted-by-hpa-does-not-have-replicas-configured", "statefulset-has-servicename",
    "deployment-pod-selector-labels-match-template-metadata-labels",
    "statefulset-pod-selector-labels-match-template-metadata-labels", "label-values",
    "horizontalpodautoscaler-has-target", "horizontalpodautoscaler-replicas", "pod-topology-spread-constraints",
)


def fixture_config() -> PolicyConfig:
    base = PolicyConfig.load(REPO)
    environment = {"ha": True, "priority_classes": ["high-priority"], "guaranteed_qos": True,
                   "network_isolation": ["Ingress", "Egress"]}
    provides = list(base.cluster.get("provides") or []) + [
        {"kind": "PriorityClass", "name": "high-priority", "reason": "the class Polaris' success fixture uses"}]
    return dataclasses.replace(base, environments={**base.environments, ENVIRONMENT: environment},
                               ha_min_replicas=2, cluster={**base.cluster, "provides": provides})


CONFIG = fixture_config()
RULES = {rule.name: rule.check for rule in load_rules()}


def load_fixture(path: Path) -> Render:
    docs = []
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "List":
            docs += [item for item in doc.get("items") or [] if isinstance(item, dict)]
        elif isinstance(doc, dict):
            docs.append(doc)
    return make_render(docs, directory=f"overlays/{ENVIRONMENT}", path=str(path.relative_to(REPO)))


def findings(render: Render, counterpart: Counterpart) -> list[str]:
    available = {"render": render, "config": CONFIG, "kubernetes_version": CONFIG.kubernetes_version,
                 "store": SchemaStore(REPO, CONFIG.kubernetes_version), "repo": REPO, "failures": {},
                 "clusters": {}}
    lines = []
    for rule in counterpart.rules:
        check = RULES[rule]
        params = inspect.signature(check).parameters
        lines += [f"{rule}: {v.line()}" for v in check(**{name: available[name] for name in params})]
    return [line for line in lines if re.search(counterpart.words, line)]


def polaris_fixtures(check: str, counterpart: Counterpart) -> tuple[list[str], list[str]]:
    names = sorted(p.name for p in (FIXTURES / "polaris" / check).glob("*.yaml"))
    return [n for n in names if "failure" in n], [n for n in names if "failure" not in n]


def cases() -> list[tuple[str, str, str, bool]]:
    """(project, check, fixture, expected to be flagged by our rules)."""
    out = []
    for project, table in (("polaris", POLARIS), ("kube-score", KUBE_SCORE)):
        for check, counterpart in sorted(table.items()):
            if not isinstance(counterpart, Counterpart):
                continue
            if project == "polaris":
                failures, successes = polaris_fixtures(check, counterpart)
            else:
                failures, successes = list(counterpart.failures), list(counterpart.successes)
            out += [(project, check, name, name not in counterpart.not_flagged) for name in failures]
            out += [(project, check, name, name in counterpart.flagged) for name in successes]
    return out


CASES = cases()


@pytest.mark.parametrize(("project", "check", "fixture", "flagged"), CASES,
                         ids=[f"{p}:{c}:{f}" for p, c, f, _ in CASES])
def test_upstream_fixture(project, check, fixture, flagged):
    counterpart = (POLARIS if project == "polaris" else KUBE_SCORE)[check]
    directory = FIXTURES / project / (check if project == "polaris" else "")
    found = findings(load_fixture(directory / fixture), counterpart)
    if flagged:
        assert found, f"{', '.join(counterpart.rules)} let {project} {check} {fixture} through"
    else:
        assert not found, "\n".join(found)


def test_every_upstream_check_is_accounted_for():
    polaris_checks = {p.name for p in (FIXTURES / "polaris").iterdir() if p.is_dir()}
    assert set(POLARIS) == polaris_checks and len(POLARIS) == 44
    assert list(KUBE_SCORE) == list(KUBE_SCORE_CHECKS) and len(KUBE_SCORE) == 39
    for table in (POLARIS, KUBE_SCORE):
        for check, counterpart in table.items():
            if isinstance(counterpart, Counterpart):
                assert set(counterpart.rules) <= set(RULES), check
                judged_otherwise = counterpart.flagged + counterpart.not_flagged
                assert bool(judged_otherwise) == bool(counterpart.decision), check


def test_every_kube_score_fixture_named_is_committed():
    for counterpart in KUBE_SCORE.values():
        if isinstance(counterpart, Counterpart):
            for name in counterpart.failures + counterpart.successes:
                assert (FIXTURES / "kube-score" / name).is_file(), name


def test_judged_otherwise_lists_only_real_fixtures():
    """A fixture listed as judged otherwise exists, on the side it is listed for."""
    for check, counterpart in POLARIS.items():
        if isinstance(counterpart, Counterpart):
            failures, successes = polaris_fixtures(check, counterpart)
            assert set(counterpart.not_flagged) <= set(failures), check
            assert set(counterpart.flagged) <= set(successes), check
    for check, counterpart in KUBE_SCORE.items():
        if isinstance(counterpart, Counterpart):
            assert set(counterpart.not_flagged) <= set(counterpart.failures), check
            assert set(counterpart.flagged) <= set(counterpart.successes), check


def _provenance(project: str) -> dict[str, str]:
    """path -> sha256 from a PROVENANCE file."""
    entries = {}
    for line in (FIXTURES / project / "PROVENANCE").read_text().splitlines():
        match = re.match(r"^([0-9a-f]{64})  (\S+)$", line)
        if match:
            entries[match.group(2)] = match.group(1)
    return entries


@pytest.mark.parametrize("project", ["polaris", "kube-score"])
def test_fixtures_are_upstream_bytes(project):
    """Every committed fixture is listed in PROVENANCE with its sha256, and
    matches it: a fixture edited here is no longer upstream's."""
    listed = _provenance(project)
    committed = {str(p.relative_to(FIXTURES / project)): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in (FIXTURES / project).rglob("*.yaml")}
    assert committed == listed


def _docs_rows() -> dict[str, str]:
    """upstream check -> its row in docs/validation.md's catalogue tables."""
    text = (REPO / "docs" / "validation.md").read_text()
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| (?:Polaris|kube-score) `([A-Za-z-]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_docs_map_every_check_as_the_harness_does():
    rows = _docs_rows()
    for table in (POLARIS, KUBE_SCORE):
        for check, counterpart in table.items():
            assert check in rows, f"docs/validation.md has no row for {check}"
            if isinstance(counterpart, Counterpart):
                for rule in counterpart.rules:
                    assert rule in rows[check], f"{check}: docs do not name {rule}"
                if counterpart.decision:
                    assert f"#{counterpart.decision}" in rows[check], f"{check}: no link to {counterpart.decision}"
            else:
                anchor = re.search(r"\(([a-z-]+)\)$", counterpart)
                assert anchor and f"#{anchor.group(1)}" in rows[check], check
