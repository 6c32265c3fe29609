"""`canary` and `promote`: exact edits, comments kept, bad input refused,
and the rollback when an edit would not validate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.pullrequest import github
from scripts.pullrequest.diff import MARKER
from tests.conftest import REPO


def run(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts", *args, "--repo", str(tree)], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)


def test_canary_set_edits_only_the_weights(tree):
    before = {p: p.read_text() for p in (tree / "overlays").rglob("*.yaml")}
    proc = run(tree, "canary", "set", "--env", "prod", "--weight", "25")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "prod: v1 75%, v2 25%"
    weights = tree / "overlays/prod/canary-weights.yaml"
    expected = before[weights].replace("value: 90", "value: 75").replace("value: 10", "value: 25")
    assert weights.read_text() == expected
    assert "# Percent of prediction traffic" in weights.read_text()
    assert "  # v1, stable" in weights.read_text()
    changed = [p for p, text in before.items() if p.read_text() != text]
    assert changed == [weights]


@pytest.mark.parametrize("weight", ["-1", "101", "ten", "12.5"])
def test_canary_refuses_bad_weights(tree, weight):
    before = (tree / "overlays/prod/canary-weights.yaml").read_text()
    proc = run(tree, "canary", "set", "--env", "prod", "--weight", weight)
    assert proc.returncode == 2 and "--weight" in proc.stderr
    assert (tree / "overlays/prod/canary-weights.yaml").read_text() == before


def test_canary_unknown_env(tree):
    proc = run(tree, "canary", "set", "--env", "qa", "--weight", "5")
    assert proc.returncode == 2 and "--env qa: not an environment (choose from: dev, gpu, prod, staging)" in proc.stderr


def test_canary_status_table(tree):
    proc = run(tree, "canary", "status")
    assert proc.returncode == 0
    prod = next(line for line in proc.stdout.splitlines() if line.startswith("prod"))
    assert "ghcr.io/example-org/ai-inference-service:1.4.0@sha256:76e3" in prod
    assert "2024.09.0" in prod and "90/10" in prod


def test_promote_makes_v2_stable(tree):
    kustomization = tree / "overlays/prod/kustomization.yaml"
    before = kustomization.read_text()
    proc = run(tree, "promote", "--env", "prod")
    assert proc.returncode == 0, proc.stderr
    after = kustomization.read_text()
    v1_block = after.split("- name: ai-inference-service-v1")[1].split("- name:")[0]
    assert 'newTag: "1.5.0"' in v1_block and "84d2464e" in v1_block
    assert "- v1=2024.09.0" in after and "- v2=2024.09.0" in after
    assert "# The server image of each model slot" in after  # comments kept
    assert len(before.splitlines()) == len(after.splitlines())
    weights = (tree / "overlays/prod/canary-weights.yaml").read_text()
    assert "value: 100" in weights and "value: 0" in weights


def test_promote_between_environments_copies_images(tree):
    staging = tree / "overlays/staging/kustomization.yaml"
    staging.write_text(staging.read_text().replace('newTag: "1.5.0"', 'newTag: "1.6.0"'))
    proc = run(tree, "promote", "--from", "staging", "--to", "prod")
    assert proc.returncode == 0, proc.stderr
    prod = (tree / "overlays/prod/kustomization.yaml").read_text()
    assert 'newTag: "1.6.0"' in prod and "- v2=2024.09.0" in prod  # images only; models untouched


def test_edit_that_breaks_validation_is_rolled_back(tree):
    # staging's v2 image points outside the allowed registries: copying it
    # into prod must fail the policy stage and leave prod as it was.
    staging = tree / "overlays/staging/kustomization.yaml"
    ours = 'newName: ghcr.io/example-org/ai-inference-service\n    newTag: "1.5.0"'
    theirs = 'newName: docker.io/someone/inference\n    newTag: "1.5.0"'
    staging.write_text(staging.read_text().replace(ours, theirs))
    prod = tree / "overlays/prod/kustomization.yaml"
    before = prod.read_text()
    proc = run(tree, "promote", "--from", "staging", "--to", "prod")
    assert proc.returncode == 1
    assert "edit refused" in proc.stderr and "no file was changed" in proc.stderr
    assert "image_registry_allowed" in proc.stderr
    assert prod.read_text() == before


@pytest.mark.parametrize("args", [["promote"], ["promote", "--env", "prod", "--from", "dev"],
                                  ["promote", "--from", "prod", "--to", "prod"]])
def test_promote_usage(tree, args):
    proc = run(tree, *args)
    assert proc.returncode == 2


class FakeResponse:
    def __init__(self, payload=None):
        self.payload = payload
        self.links = {}

    def raise_for_status(self):
        return None

    def json(self):
        return self.payload


class FakeSession:
    def __init__(self, comments):
        self.comments = comments
        self.calls = []

    def get(self, url, headers, timeout):
        self.calls.append(("GET", url))
        return FakeResponse(self.comments)

    def patch(self, url, json, headers, timeout):
        self.calls.append(("PATCH", url, json["body"]))
        return FakeResponse({})

    def post(self, url, json, headers, timeout):
        self.calls.append(("POST", url, json["body"]))
        return FakeResponse({})


def test_comment_is_updated_not_duplicated():
    session = FakeSession([{"id": 1, "body": "unrelated"}, {"id": 7, "body": MARKER + "\nold diff"}])
    assert github.upsert_comment("o/r", 5, "new diff", "t", session, api="https://api.example") == "updated"
    assert session.calls[-1] == ("PATCH", "https://api.example/repos/o/r/issues/comments/7", MARKER + "\nnew diff")


def test_comment_is_created_when_absent():
    session = FakeSession([{"id": 1, "body": "unrelated"}])
    assert github.upsert_comment("o/r", 5, MARKER + "\nx", "t", session, api="https://api.example") == "created"
    assert session.calls[-1][0:2] == ("POST", "https://api.example/repos/o/r/issues/5/comments")


def test_pr_comment_needs_a_token(tmp_path):
    body = tmp_path / "b.md"
    body.write_text("x")
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "scripts", "pr-comment", "--body-file", str(body),
                           "--repository", "o/r", "--pr", "1"], cwd=REPO, env=dict(env, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "GITHUB_TOKEN is not set" in proc.stderr
