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


def test_rules_run_as_renders_arrive_give_the_findings_of_one_run_at_the_end(real_renders):
    """validate calls `add` on each render as kustomize finishes it, in no
    fixed order; the findings must be those, in the order, of `run`."""
    renders = _broken_renders(real_renders)
    config = PolicyConfig.load(REPO)
    at_the_end = [f.as_dict() for f in policy.run(PolicyContext(REPO, renders, "1.34", config))]
    streamed = policy.PolicyRun(REPO, "1.34", config)
    for render in reversed(renders[1:]):  # the first never arrives: finish must check it itself
        streamed.add(render)
    assert [f.as_dict() for f in streamed.finish(renders)] == at_the_end
    assert len({f["target"] for f in at_the_end}) == len(CASES)  # one finding set per broken copy


def test_per_render_rules_are_those_that_need_no_other_render(real_renders, monkeypatch):
    seen = []

    def one(render):
        seen.append(("one", render.target.path))
        return []

    def every(render, clusters):
        seen.append(("every", render.target.path))
        return []

    rules = [policy.Rule("one", one, ("render",)), policy.Rule("every", every, ("render", "clusters"))]
    monkeypatch.setattr(policy, "load_rules", lambda: rules)
    run = policy.PolicyRun(REPO, "1.34", PolicyConfig.load(REPO))
    run.add(real_renders["overlays/dev"])
    assert seen == [("one", "overlays/dev")]
    run.finish([real_renders["overlays/dev"]])
    assert seen == [("one", "overlays/dev"), ("every", "overlays/dev")]  # not checked twice
