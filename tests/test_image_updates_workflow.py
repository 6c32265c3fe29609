"""The image-updates workflow opens the pull request of every branch the
image automation pushes, with the least it needs (zizmor and GitHub's
workflow schema check it in the lint stage)."""

from __future__ import annotations

import fnmatch

import yaml

from tests.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "image-updates.yml"


def _workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def _push_branches() -> list[str]:
    docs = yaml.safe_load_all((REPO / "clusters/dev/image-automation.yaml").read_text())
    return [d["spec"]["git"]["push"]["branch"] for d in docs if d["kind"] == "ImageUpdateAutomation"]


def test_every_branch_the_automation_pushes_opens_a_pull_request():
    patterns = _workflow()[True]["push"]["branches"]  # YAML 1.1 reads the `on` key as true
    branches = _push_branches()
    assert sorted(branches) == ["image-updates/dev", "image-updates/staging"]
    for branch in branches:
        assert any(fnmatch.fnmatch(branch, p.replace("**", "*")) for p in patterns), branch
    assert not any(fnmatch.fnmatch("main", p.replace("**", "*")) for p in patterns)


def test_least_privilege_and_no_expression_in_the_script():
    flow = _workflow()
    assert flow["permissions"] == {}
    job = flow["jobs"]["open"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    (step,) = job["steps"]
    assert "${{" not in step["run"], "expressions go through env, never into a script"
    assert step["env"]["GH_TOKEN"] == "${{ secrets.IMAGE_UPDATES_TOKEN || github.token }}"
    assert "gh pr create --base \"$BASE\" --head \"$BRANCH\"" in step["run"]
