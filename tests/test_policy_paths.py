"""`validate` calls the policy rules directly; `pytest tests/policy` runs
them as tests. Both must report the same findings, in the same order, on
the real renders and on a copy of each broken the way tests/test_rules.py
breaks it."""

from __future__ import annotations

import copy
import dataclasses

from scripts.stages import policy
from scripts.stages.policy import PolicyContext
from scripts.stages.policy_support import PolicyConfig
from tests.conftest import REPO
from tests.test_rules import CASES


def _broken_renders(real_renders):
    renders = list(copy.deepcopy(real_renders).values())
    for rule, (target, mutate, _) in sorted(CASES.items()):
        render = copy.deepcopy(real_renders[target])
        mutate(render)
        render.target = dataclasses.replace(render.target, path=f"{target}~{rule}")
        renders.append(render)
    return renders


def test_direct_calls_and_pytest_agree(real_renders):
    renders = _broken_renders(real_renders)
    context = PolicyContext(REPO, renders, "1.34", PolicyConfig.load(REPO))
    direct = [f.as_dict() for f in policy.run(context)]
    suite = [f.as_dict() for f in policy.run_suite(context)]
    assert direct == suite
    # Every broken copy is caught by its own rule, on both paths.
    caught = {(f["target"], f["rule"]) for f in direct}
    for rule, (target, _, _) in CASES.items():
        assert (f"{target}~{rule}", rule) in caught, rule
    assert not [f for f in direct if "~" not in f["target"]], "the real renders must pass"


def test_a_crashing_rule_is_a_finding_not_a_crash(real_renders, monkeypatch):
    def explode(render):
        raise KeyError("spec")

    rules = [policy.Rule("exploding", explode, ("render",))]
    monkeypatch.setattr(policy, "load_rules", lambda: rules)
    context = PolicyContext(REPO, [real_renders["overlays/dev"], real_renders["overlays/prod"]], "1.34",
                            PolicyConfig.load(REPO))
    findings = policy.run(context)
    assert [(f.target, f.rule, f.message) for f in findings] == [
        ("overlays/dev", "exploding", "rule failed: 'spec'"), ("overlays/prod", "exploding", "rule failed: 'spec'")]


def test_every_rule_of_the_suite_is_loaded():
    names = {rule.name for rule in policy.load_rules()}
    assert len(names) == len(policy.load_rules()) > 40
    assert {"no_privileged", "promtool_rules", "flux_paths_exist"} <= names


def test_no_rules_is_an_error_not_a_pass(real_renders, monkeypatch):
    monkeypatch.setattr(policy, "load_rules", lambda: [])
    context = PolicyContext(REPO, [real_renders["overlays/dev"]], "1.34", PolicyConfig.load(REPO))
    assert [f.rule for f in policy.run(context)] == ["policy-suite-error"]
