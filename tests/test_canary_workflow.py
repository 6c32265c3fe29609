"""The canary workflow: what it runs, with which permissions and settings.
(zizmor and GitHub's workflow schema check it in the lint stage.)"""

from __future__ import annotations

import re

import yaml

from scripts.pullrequest import canary
from tests.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "canary.yml"


def _workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def test_triggers_and_least_privilege():
    flow = _workflow()
    triggers = flow[True]  # YAML 1.1 reads the `on` key as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert flow["permissions"] == {}
    job = flow["jobs"]["step"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert triggers["workflow_dispatch"]["inputs"]["environment"]["options"] == ["all", *["dev", "staging", "prod",
                                                                                          "gpu"]]


def test_one_job_per_environment():
    text = WORKFLOW.read_text()
    environments = canary.environments(REPO)
    listed = re.search(r"'\[(\"[a-z]+\"(?:, \"[a-z]+\")*)\]'", text).group(1)
    assert sorted(name.strip('"') for name in listed.split(", ")) == sorted(environments)


def test_actions_pinned_and_settings_from_variables_and_secrets():
    flow = _workflow()
    steps = flow["jobs"]["step"]["steps"]
    for step in steps:
        if "uses" in step:
            assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        assert "${{" not in step.get("run", ""), "expressions go through env, never into a script"
    judge = next(s for s in steps if s.get("id") == "step")
    assert judge["env"]["PROMETHEUS_URL"] == "${{ vars.PROMETHEUS_URL }}"
    assert judge["env"]["PROMETHEUS_TOKEN"] == "${{ secrets.PROMETHEUS_TOKEN }}"
    assert "canary step --env" in judge["run"]
    checkout = next(s for s in steps if "checkout" in s.get("uses", ""))
    assert checkout["with"]["persist-credentials"] is False
