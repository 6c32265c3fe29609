"""Flux builds see only what their GitRepository's artifact holds."""

from __future__ import annotations

import json

import pytest

from scripts.loading import sourceignore
from tests.test_validate_cli import validate


def _findings(tree, *args):
    out = tree.parent / "report.json"
    proc = validate("--stage", "render", "--report-json", str(out), *args, cwd=tree)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(out.read_text())["findings"]


def test_the_tree_builds_within_its_artifacts(tree):
    code, findings = _findings(tree)
    assert code == 0 and findings == []


def test_an_overlay_that_reads_a_directory_spec_ignore_leaves_out_fails(tree):
    """clusters/*/source.yaml keeps base, istio, monitoring and overlays only:
    a new top-level directory is in the repository but not in the artifact."""
    (tree / "shared").mkdir()
    (tree / "shared" / "kustomization.yaml").write_text("resources:\n  - extra.yaml\n")
    (tree / "shared" / "extra.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n")
    kustomization = tree / "overlays" / "prod" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace(
        "resources:\n  - ../../base\n", "resources:\n  - ../../base\n  - ../../shared\n"))
    code, findings = _findings(tree)
    ignored = [f for f in findings if f["rule"] == "flux-source-ignored"]
    assert code == 1
    assert [f["target"] for f in ignored] == ["clusters/prod#ai-inference-prod"]
    assert "shared/" in ignored[0]["message"] and "ai-inference-service" in ignored[0]["message"]
    assert ignored[0]["file"].startswith("clusters/prod/")
    # The overlay on its own still builds: only what Flux applies is affected.
    assert not [f for f in findings if f["target"] == "overlays/prod"]


def test_a_sourceignore_in_a_subdirectory_applies_below_it(tree):
    (tree / "overlays" / "staging" / ".sourceignore").write_text("# keep drafts out\nkustomization.yaml\n")
    code, findings = _findings(tree)
    assert code == 1
    assert [(f["target"], f["rule"]) for f in findings] == \
        [("clusters/staging#ai-inference-staging", "flux-source-ignored")]


def test_ignore_missing_components_drops_the_missing_one(tree):
    flux = tree / "clusters" / "prod" / "apps.yaml"
    if not flux.exists():
        flux = next(p for p in (tree / "clusters" / "prod").glob("*.yaml") if "path: ./overlays/prod" in p.read_text())
    text = flux.read_text()
    marker = "  path: ./overlays/prod\n"
    flux.write_text(text.replace(marker, marker + "  components:\n    - ../../not-there\n", 1))
    code, findings = _findings(tree)
    assert code == 1 and any("not-there" in f["message"] for f in findings)
    flux.write_text(text.replace(marker, marker + "  ignoreMissingComponents: true\n"
                                              "  components:\n    - ../../not-there\n", 1))
    code, findings = _findings(tree)
    assert (code, findings) == (0, [])


@pytest.mark.parametrize("patterns, ignore, path, excluded", [
    ([], None, "overlays/prod/kustomization.yaml", False),
    ([], None, ".github/workflows/x.yaml", True),  # Flux's defaults with no pattern
    ([], "/*\n!/overlays/\n", ".github/workflows/x.yaml", True),
    ([], "/*\n!/overlays/\n", "overlays/prod/kustomization.yaml", False),
    ([], "/*\n!/overlays/\n", "base/deployment.yaml", True),
    (["/overlays/**/drafts/"], None, "overlays/prod/drafts/a.yaml", True),
    (["/overlays/**/drafts/"], None, ".github/ci.yaml", False),  # any pattern replaces the defaults
])
def test_artifact_excludes(patterns, ignore, path, excluded):
    assert sourceignore.artifact_excludes(patterns, ignore)(path) is excluded


def test_sourceignore_patterns_are_scoped_to_their_directory(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".sourceignore").write_text("*.md\n")
    (tmp_path / "a" / ".sourceignore").write_text("secret.yaml\n/only-here.yaml\n!keep.md\n")
    patterns = sourceignore.repository_patterns(tmp_path)
    assert patterns == ["*.md", "/a/**/secret.yaml", "/a/only-here.yaml", "!/a/**/keep.md"]
    excluded = sourceignore.artifact_excludes(patterns, None)
    assert excluded("a/b/secret.yaml") and not excluded("secret.yaml")
    assert excluded("a/only-here.yaml") and not excluded("a/b/only-here.yaml")
    assert excluded("x/readme.md") and not excluded("a/b/keep.md")


def test_validate_changed_reports_a_build_the_artifact_cannot_make(tree):
    """--changed must not drop a Flux build that can no longer be made: the
    build vanishes from the head, so a render diff alone would pass it."""
    from tests.test_diff import git

    git(tree, "init", "-q", "-b", "main")
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "base")
    (tree / "overlays" / "staging" / ".sourceignore").write_text("kustomization.yaml\n")
    code, findings = _findings(tree, "--changed", "--base", "HEAD")
    assert code == 1
    assert [(f["target"], f["rule"]) for f in findings] == \
        [("clusters/staging#ai-inference-staging", "flux-source-ignored")]
    source = tree / "clusters" / "prod" / "source.yaml"
    (tree / "overlays" / "staging" / ".sourceignore").unlink()
    source.write_text(source.read_text().replace("    !/base/\n", ""))
    code, findings = _findings(tree, "--changed", "--base", "HEAD")
    assert code == 1
    assert {(f["target"], f["rule"]) for f in findings} == \
        {("clusters/prod#ai-inference-gpu", "flux-source-ignored"),
         ("clusters/prod#ai-inference-prod", "flux-source-ignored")}
