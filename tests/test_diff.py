"""`diff` and `validate --changed` on a throwaway git repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.pullrequest import diff
from tests.conftest import REPO

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: ghcr.io/example-org/web:1.0
"""


FLUX = """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: repo, namespace: flux-system}
spec: {interval: 1m, url: https://example.invalid/r, ref: {branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: a, namespace: flux-system}
spec: {interval: 5m, prune: true, path: ./apps/a, sourceRef: {kind: GitRepository, name: repo}}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")).stdout


def run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts", *args, "--repo", str(repo)], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)


@pytest.fixture
def history(tmp_path):
    """Two commits: the second changes a field, adds an object, removes an
    object, reformats a file without changing it, and adds a root."""
    repo = tmp_path / "repo"
    (repo / "apps/a").mkdir(parents=True)
    (repo / "apps/b").mkdir(parents=True)
    (repo / "apps/a/kustomization.yaml").write_text("resources: [deploy.yaml, cm.yaml]\n")
    (repo / "apps/a/deploy.yaml").write_text(DEPLOY.format(replicas=2))
    (repo / "apps/a/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\ndata: {a: '1'}\n")
    (repo / "apps/b/kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (repo / "apps/b/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {x: y, z: w}\n")
    (repo / "clusters/x").mkdir(parents=True)
    (repo / "clusters/x/kustomization.yaml").write_text("resources: [flux.yaml]\n")
    (repo / "clusters/x/flux.yaml").write_text(FLUX)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    (repo / "apps/a/deploy.yaml").write_text(DEPLOY.format(replicas=3))
    (repo / "apps/a/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\ndata: {a: '1'}\n")
    (repo / "apps/b/cm.yaml").write_text(
        "# same object, other layout\nkind: ConfigMap\napiVersion: v1\ndata:\n  z: w\n  x: y\nmetadata:\n  name: b\n")
    (repo / "apps/c").mkdir()
    (repo / "apps/c/kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (repo / "apps/c/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two")
    return repo


def test_diff_json_between_refs(history):
    proc = run(history, "diff", "--base", "HEAD~1", "--head", "HEAD", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    targets = {t["path"]: t for t in data["targets"]}
    assert targets["apps/b"]["status"] == "unchanged"  # formatting and key order only
    assert targets["apps/c"]["status"] == "added"
    a = {o["key"]: o for o in targets["apps/a"]["objects"]}
    assert a["Deployment/-/web"]["change"] == "changed"
    assert a["Deployment/-/web"]["fields"] == [{"path": "spec.replicas", "old": 2, "new": 3}]
    assert a["ConfigMap/-/new"]["change"] == "added" and a["ConfigMap/-/new"]["object"]["metadata"]["name"] == "new"
    assert a["ConfigMap/-/old"]["change"] == "removed"
    # the Flux build of apps/a is what the cluster receives: it changes with it
    assert targets["clusters/x#a"]["status"] == "changed" and targets["clusters/x"]["status"] == "unchanged"
    assert data["summary"]["changed"] == 2 and data["summary"]["added"] == 1 and data["summary"]["unchanged"] == 2


def test_diff_text_and_markdown(history):
    text = run(history, "diff", "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "apps/b: unchanged" in text
    assert "-   spec.replicas: 2\n" in text and "+   spec.replicas: 3\n" in text
    markdown = run(history, "diff", "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert markdown.startswith(diff.MARKER)
    assert "<summary><code>apps/a</code>: changed (1 changed, 1 added, 1 removed)</summary>" in markdown
    assert "Unchanged: `apps/b`" in markdown


def test_diff_of_a_removed_root_and_working_tree(history):
    shutil.rmtree(history / "apps/c")
    data = json.loads(run(history, "diff", "--base", "HEAD", "--format", "json").stdout)
    assert {t["path"]: t["status"] for t in data["targets"]}["apps/c"] == "removed"
    assert git(history, "status", "--porcelain").strip().startswith("D")  # checkout untouched by diff


def test_diff_bad_ref_is_a_usage_error(history):
    proc = run(history, "diff", "--base", "no-such-ref")
    assert proc.returncode == 2 and "not a commit" in proc.stderr and "Traceback" not in proc.stderr


def test_default_base_is_the_merge_base(history):
    git(history, "checkout", "-qb", "feature")
    (history / "apps/b/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {x: q}\n")
    git(history, "commit", "-qam", "feature change")
    data = json.loads(run(history, "diff", "--format", "json").stdout)
    assert [t["path"] for t in data["targets"] if t["status"] != "unchanged"] == ["apps/b"]


def test_markdown_is_capped():
    big = [diff.TargetDiff(f"t{i}", "changed", [diff.ObjectChange("ConfigMap/-/x", "changed",
                                                                    [diff.FieldChange("data.x", "a" * 500, "b")])])
           for i in range(300)]
    text = diff.to_markdown(big, "a", "b", limit=20000)
    assert len(text) < 21000 and "more changed targets omitted" in text


def test_validate_changed_selects_changed_renders_only(history):
    (history / "apps/a/deploy.yaml").write_text(DEPLOY.format(replicas=5))
    (history / "apps/b/cm.yaml").write_text((history / "apps/b/cm.yaml").read_text() + "# a comment only\n")
    report = history / "r.json"
    proc = run(history, "validate", "--changed", "--base", "HEAD", "--stage", "schema", "--report-json", str(report))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [t["path"] for t in json.loads(report.read_text())["targets"]] == ["apps/a", "clusters/x#a"]
    git(history, "checkout", "--", ".")
    proc = run(history, "validate", "--changed", "--base", "HEAD", "--stage", "schema", "--report-json", str(report))
    assert json.loads(report.read_text())["targets"] == []


def test_validate_changed_selects_a_marker_only_edit(history):
    """An image policy marker is a comment that Flux's automation reads and
    the policy rules check: adding one, or removing one, selects the root
    although its render is the same; any other comment still does not."""
    marked = DEPLOY.format(replicas=3).replace("web:1.0", 'web:1.0 # {"$imagepolicy": "flux-system:web"}')
    report = history / "r.json"

    def selected() -> list[str]:
        proc = run(history, "validate", "--changed", "--base", "HEAD", "--stage", "schema",
                   "--report-json", str(report))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return [t["path"] for t in json.loads(report.read_text())["targets"]]

    (history / "apps/b/cm.yaml").write_text((history / "apps/b/cm.yaml").read_text() + "# a comment only\n")
    (history / "apps/a/deploy.yaml").write_text(marked)
    assert selected() == ["apps/a", "clusters/x#a"]
    git(history, "commit", "-qam", "marker")
    (history / "apps/a/deploy.yaml").write_text(DEPLOY.format(replicas=3))  # the marker taken out
    assert selected() == ["apps/a", "clusters/x#a"]


def test_validate_changed_lints_a_change_no_render_shows(history):
    """A trailing space leaves every render as it was, so no root is chosen;
    lint still reads the changed file (it is one a build reads) and reports
    it on the root that owns it."""
    (history / "apps/b/cm.yaml").write_text((history / "apps/b/cm.yaml").read_text().replace("name: b", "name: b   "))
    report = history / "r.json"
    proc = run(history, "validate", "--changed", "--base", "HEAD", "--stage", "lint", "--report-json", str(report))
    data = json.loads(report.read_text())
    assert data["targets"] == []
    assert {(f["target"], f["rule"], f["file"]) for f in data["findings"]} == \
        {("apps/b", "yamllint/trailing-spaces", "apps/b/cm.yaml")}, proc.stdout + proc.stderr
    assert proc.returncode == 1


def test_base_without_changed_is_a_usage_error(history):
    proc = run(history, "validate", "--base", "HEAD")
    assert proc.returncode == 2 and "--base goes with --changed" in proc.stderr
