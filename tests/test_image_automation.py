"""Flux image automation: the marker scanner on odd layouts, and every
breakage of markers and automation as an error on the right root, with the
defect in the last root it can be in (staging, the last automated overlay;
clusters/dev, the one cluster that runs the automation; clusters/staging,
the last cluster that must not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.core.errors import InputError
from scripts.loading.discover import discover
from scripts.loading.render import render_all
from scripts.stages.imageautomation import ImageAutomationSettings, push_branches, repository_path, scan_markers
from scripts.stages.policy_support import PolicyConfig
from tests.conftest import REPO
from tests.policy.test_image_automation import check_image_policy_markers, check_image_update_automation

STAGING = "overlays/staging/kustomization.yaml"
AUTOMATION = "clusters/dev/image-automation.yaml"
TAG = '# {"$imagepolicy": "flux-system:ai-inference-service-staging:tag"}'
DIGEST = '# {"$imagepolicy": "flux-system:ai-inference-service-staging:digest"}'


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# -- the scanner -------------------------------------------------------------

KUSTOMIZATION = """\
images:
  - name: app-v2
    newName: ghcr.io/example-org/app
    newTag: "1.5.0" # {"$imagepolicy": "flux-system:app:tag"}
    digest: sha256:abc # {"$imagepolicy": "flux-system:app:digest"}
"""


def _one(text: str, file: str = "overlays/dev/kustomization.yaml"):
    markers = scan_markers(text, file)
    assert len(markers) == 1, markers
    return markers[0]


def test_well_formed_markers_with_their_lines_and_fields():
    tag, digest = scan_markers(KUSTOMIZATION, "overlays/dev/kustomization.yaml")
    assert (tag.line, tag.setter, tag.path, tag.field_kind, tag.problem) == \
        (4, "flux-system:app:tag", ("images", 0, "newTag"), "images-entry", None)
    assert (digest.line, digest.suffix, digest.where, digest.entry_line) == (5, "digest", "images[app-v2].digest", 2)
    assert tag.entry == {"name": "app-v2", "newName": "ghcr.io/example-org/app", "newTag": "1.5.0",
                         "digest": "sha256:abc"}
    assert scan_markers(KUSTOMIZATION.replace("$imagepolicy", "imagepolicy"), "k.yaml") == []


@pytest.mark.parametrize("line,words", [
    ('  - {name: a, newTag: "1"} # {"$imagepolicy": "flux-system:app:tag"}', "flow-style"),
    ('  - name: a\n    newTag: {v: "1"} # {"$imagepolicy": "flux-system:app:tag"}', "flow-style"),
    ('  - {name: a,\n     newTag: "1", # {"$imagepolicy": "flux-system:app:tag"}\n    }', "flow-style"),
    ('  - {name: a,\n     newTag: "1" # {"$imagepolicy": "flux-system:app:tag"}\n    }', "inside a flow-style"),
    ('  - name: a\n    newTag: "1" # {"$imagepolicy": "flux-system:app:tag"} # {"$imagepolicy": "a:b:digest"}',
     "more than one marker"),
    ('  - name: a\n    newTag: "1" # {"$imagepolicy": "flux-system:app:tag"', "not one JSON object"),
    ('  - name: a\n    newTag: "1" # {"$imagepolicy": "flux-system:app:tag"} trailing', "not one JSON object"),
    ('  - name: a\n    newTag: "1" # tag: {"$imagepolicy": "flux-system:app:tag"}', "not one JSON object"),
    ("  - name: a\n    newTag: \"1\" # {'$imagepolicy': 'flux-system:app:tag'}", "not one JSON object"),
    ('  - name: a\n    newTag: "1" # {"$imagepolicy": 5}', "not a JSON object of strings"),
    ('  - name: a\n    newTag: "1" # {"$imagePolicy": "flux-system:app:tag", "x": "$imagepolicy"}',
     'no "$imagepolicy"'),
    ('  - name: a\n    newTag: "1" # {"$imagepolicy": "app:tag:extra:more"}', "not NAMESPACE:POLICY"),
    ('  - name: a\n    newTag: "1" # {"$imagepolicy": "app"}', "not NAMESPACE:POLICY"),
    ('  - name: a\n    newTag: "1" # {"$imagepolicy": "flux-system:app:version"}', ":version is not a setter"),
    ('  - name: a\n    newTag: "1" # {"$imagepolicy": "Flux_System:app:tag"}', "no ImagePolicy can have"),
    ('  # {"$imagepolicy": "flux-system:app:tag"}\n  - name: a', "line of its own"),
    ('  - name: a\n    tags: # {"$imagepolicy": "flux-system:app:tag"}\n      - "1"', "value is not on this line"),
    ('  - name: a\n    newTag: # {"$imagepolicy": "flux-system:app:tag"}\n      "1"', "value is not on this line"),
    ('  - name: a\n    list:\n      - "1" # {"$imagepolicy": "flux-system:app:tag"}', "list item"),
    ('  - name: a\n    note: | # {"$imagepolicy": "flux-system:app:tag"}\n      text', "outside a comment"),
    ('  - name: a\n    note: "see {\\"$imagepolicy\\": 1}"', "outside a comment"),
])
def test_odd_layouts_are_named(line, words):
    marker = _one("images:\n" + line + "\n")
    assert marker.problem and words in marker.problem, marker


def test_an_empty_value_after_the_key_is_a_field_the_automation_sets():
    marker = _one('images:\n  - name: a\n    digest: # {"$imagepolicy": "flux-system:app:digest"}\n')
    assert marker.problem is None and marker.where == "images[a].digest"


def test_markers_in_every_document_and_on_container_images():
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
            '        - name: server\n          image: ghcr.io/x:1 # {"$imagepolicy": "flux-system:app"}\n')
    marker = _one(text, "base/deployment.yaml")
    assert (marker.line, marker.field_kind, marker.suffix) == (12, "container-image", None)
    other = _one('metadata:\n  name: x # {"$imagepolicy": "flux-system:app:tag"}\n', "base/x.yaml")
    assert other.field_kind == "other" and other.problem is None


def test_a_text_that_does_not_parse_yields_no_marker():
    assert scan_markers('a: [ # {"$imagepolicy": "x:y"}\n', "x.yaml") == []


def test_branches_and_paths():
    assert push_branches({"git": {"push": {"branch": "auto"}}}, "main") == ["auto"]
    assert push_branches({"git": {"push": {"refspec": "refs/heads/main:refs/heads/auto"}}}, "main") == \
        ["auto", "main"]  # a refspec alone: the checkout branch is pushed too
    assert push_branches({}, "main") == ["main"]
    assert push_branches({"git": {"push": {"refspec": "HEAD:refs/for/main"}}}, None) == []
    assert [repository_path(p) for p in ("./overlays/dev", "overlays/dev/", "./", None, "../x", "/a/../b")] == \
        ["overlays/dev", "overlays/dev", "", "", None, "b"]


# -- the settings ------------------------------------------------------------

ENVIRONMENTS = {"dev": {}, "staging": {}, "prod": {"ha": True}}


@pytest.mark.parametrize("data,words", [
    ("x", "must be a mapping"),
    ({"clusters": "dev"}, "unknown keys"),
    ({"cluster": "clusters/dev"}, "must name a directory of clusters/"),
    ({"environments": {"dev": {"semver": ">=1"}}}, "cluster` is required"),
    ({"cluster": "dev", "environments": {"qa": {"semver": ">=1"}}}, "qa is not an environment"),
    ({"cluster": "dev", "environments": {"prod": {"semver": ">=1"}}}, "prod is highly available"),
    ({"cluster": "dev", "environments": {"dev": {"semver": ">=1", "tag_pattern": "x"}}}, "exactly one of"),
    ({"cluster": "dev", "environments": {"dev": {"semver": ""}}}, "non-empty string"),
    ({"cluster": "dev", "environments": {"dev": {"tag_pattern": "("}}}, "not a regular expression"),
    ({"cluster": "dev", "slot": "v 2"}, "model slot"),
])
def test_bad_settings_are_one_line(data, words):
    with pytest.raises(InputError) as error:
        ImageAutomationSettings.load(data, ENVIRONMENTS, "config/policy.yaml")
    assert words in str(error.value) and str(error.value).startswith("config/policy.yaml: ")


def test_bad_settings_in_the_config_file_stop_validate_with_one_line(tree):
    config = tree / "config/policy.yaml"
    config.write_text(config.read_text().replace("    staging: {semver: \">=1.0.0\"}", "    prod: {semver: \">=1\"}"))
    proc = subprocess.run([sys.executable, "-m", "scripts", "validate", "--repo", str(tree), "--stage", "policy"],
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "config/policy.yaml: `image_automation.environments.prod`: prod is highly available" in proc.stderr


# -- the rules on a copy of the tree ----------------------------------------

def _edit(tree: Path, file: str, old: str, new: str) -> int:
    """Replace text in a file of the copy, once; the line where it was."""
    path = tree / file
    text = path.read_text()
    assert old in text, (file, old)
    path.write_text(text.replace(old, new, 1))
    return text.count("\n", 0, text.index(old)) + 1


def _findings(tree: Path, real_renders, rerender: tuple[str, ...] = ()) -> list[tuple[str, str, str, int | None, str]]:
    """(rule, target, file, line, text) of both rules on every render: the
    real ones (marker edits leave renders as they are: comments), and the
    copy's own render of each root in `rerender`."""
    renders = dict(real_renders)
    if rerender:
        found = discover(tree)
        renders.update({r.target.path: r for r in render_all(tree, [t for t in found.targets if t.path in rerender])})
    config = PolicyConfig.load(tree)
    out = []
    for path in sorted(renders):
        render = renders[path]
        assert render.ok, render.error
        for rule, check in (("image_policy_markers", check_image_policy_markers),
                            ("image_update_automation", check_image_update_automation)):
            for violation in check(render, config, tree):
                source = violation.obj.source
                out.append((rule, path, source.file if source else None, source.line if source else None,
                            violation.line()))
    return out


def test_the_real_tree_passes(tree, real_renders):
    assert _findings(tree, real_renders) == []


def _only(findings, rule: str, target: str, file: str, line: int | None, words: str) -> None:
    assert findings, "nothing found"
    assert all(f[1] == target for f in findings), findings
    hit = [f for f in findings if f[0] == rule and f[2] == file and (line is None or f[3] == line) and words in f[4]]
    assert hit, findings


MARKER_BREAKS = {
    "malformed JSON": (DIGEST, DIGEST[:-1], "not one JSON object"),
    "two markers on one line": (TAG, TAG + " " + DIGEST, "more than one marker"),
    "tag setter on the digest": (DIGEST, DIGEST.replace(":digest", ":tag"), "puts the image's tag into digest"),
    "whole reference on newTag": (TAG, TAG.replace(":tag", ""), "puts the image's whole reference"),
    "on the entry's name": ('- name: ai-inference-service-v2\n', '- name: ai-inference-service-v2 ' + TAG + '\n',
                            "sits on images[ai-inference-service-v2].name"),
    "on the v1 slot": ('newTag: "1.4.0"', 'newTag: "1.4.0" ' + TAG, "moves the v1 slot's image"),
    "tag without digest": (" " + DIGEST, "", "no :digest marker"),
    "digest without tag": (" " + TAG, "", "no :tag marker"),
    "two policies in one entry": (DIGEST, DIGEST.replace("-staging:", "-dev:"), "name different ImagePolicies"),
    "a line of its own": ('    # yamllint disable-line rule:line-length\n', "    " + TAG + "\n", "line of its own"),
}


@pytest.mark.parametrize("name", sorted(MARKER_BREAKS))
def test_a_broken_marker_is_an_error_of_the_last_overlay(tree, real_renders, name):
    old, new, words = MARKER_BREAKS[name]
    line = _edit(tree, STAGING, old, new)
    findings = [f for f in _findings(tree, real_renders) if f[0] == "image_policy_markers"]
    # A pair's finding is on the entry's first marker, not where the edit was.
    pair = not new.strip() or name == "two policies in one entry"
    _only(findings, "image_policy_markers", "overlays/staging", STAGING, None if pair else line, words)


def test_markers_on_prod_are_an_error_of_prod(tree, real_renders):
    prod = "overlays/prod/kustomization.yaml"
    line = _edit(tree, prod, 'newTag: "1.5.0"', 'newTag: "1.5.0" ' + TAG)
    findings = _findings(tree, real_renders)
    _only([f for f in findings if f[0] == "image_policy_markers"], "image_policy_markers", "overlays/prod", prod,
          line, "environment prod), which does not follow the registry")


def test_a_marker_in_a_shared_base_is_an_error_of_every_overlay_that_reads_it(tree, real_renders):
    base = "base/workload/deployment.yaml"
    line = _edit(tree, base, "image: ai-inference-service\n",
                 'image: ai-inference-service # {"$imagepolicy": "flux-system:ai-inference-service-dev"}\n')
    findings = _findings(tree, real_renders)
    targets = {f[1] for f in findings if f[2] == base and f[3] == line and "container's image directly" in f[4]}
    assert targets == {"overlays/dev", "overlays/staging", "overlays/prod", "overlays/gpu"}, findings


CROSS_BREAKS = {
    "a policy the cluster does not declare": (TAG, TAG.replace("-staging:", "-stagin:"), "does not declare"),
    "a policy of another namespace": (TAG, TAG.replace("flux-system:", "apps:"),
                                      "reads only the ImagePolicies of flux-system"),
    "another environment's policy": (TAG, TAG.replace("-staging:", "-dev:"), "does not select"),
}


@pytest.mark.parametrize("name", sorted(CROSS_BREAKS))
def test_a_marker_the_automation_would_not_set_is_an_error_of_its_cluster(tree, real_renders, name):
    old, new, words = CROSS_BREAKS[name]
    line = _edit(tree, STAGING, old, new)
    findings = [f for f in _findings(tree, real_renders) if f[0] == "image_update_automation"]
    _only(findings, "image_update_automation", "clusters/dev", STAGING, line, words)


AUTOMATION_BREAKS = {
    "push to the reconciled branch": ("branch: image-updates/staging", "branch: main", "the branch Flux reconciles"),
    "a refspec onto the reconciled branch": (
        "      branch: image-updates/staging\n",
        "      branch: image-updates/staging\n      refspec: refs/heads/main:refs/heads/main\n",
        "pushes to main, the branch Flux reconciles"),
    "no push, checkout of another branch": (
        "    push:\n      branch: image-updates/staging\n", "", "pushes to release, the branch it checks out"),
    "one branch for two automations": ("branch: image-updates/staging", "branch: image-updates/dev",
                                       "erases the other's update"),
    "a path over every overlay": ("path: ./overlays/staging", "path: ./overlays",
                                  "covers overlays/gpu: gpu moves only by `promote`"),
    "a path outside the artifact": ("path: ./overlays/staging", "path: ./clusters/dev", "outside what"),
    "a path out of the repository": ("path: ./overlays/staging", "path: ../elsewhere", "leaves the repository"),
    "a path that does not exist": ("path: ./overlays/staging", "path: ./overlays/qa", "is not a directory"),
    "a source that is not declared": ("    name: ai-inference-service\n  policySelector:\n    matchLabels:\n"
                                      "      environment: staging",
                                      "    name: ai-inference-gitops\n  policySelector:\n    matchLabels:\n"
                                      "      environment: staging", "is not a GitRepository of clusters/dev"),
    "a policy that reflects no digest": ("  digestReflectionPolicy: IfNotPresent\n  policy:\n    semver:\n"
                                         "      range: \">=1.0.0\"\n",
                                         "  policy:\n    semver:\n      range: \">=1.0.0\"\n",
                                         "does not reflect digests"),
    "a range the config does not give": ('range: ">=1.0.0"\n', 'range: ">=2.0.0"\n',
                                         "config/policy.yaml image_automation.environments.staging says"),
    "a registry that is not allowed": ("image: ghcr.io/example-org/ai-inference-service",
                                       "image: docker.io/someone/ai-inference-service", "not from an allowed registry"),
    "a repository that is not declared": ("  imageRepositoryRef:\n    name: ai-inference-service\n"
                                          "  digestReflectionPolicy: IfNotPresent\n  policy:\n    semver:\n"
                                          "      range: \">=1.0.0\"",
                                          "  imageRepositoryRef:\n    name: ai-inference\n"
                                          "  digestReflectionPolicy: IfNotPresent\n  policy:\n    semver:\n"
                                          "      range: \">=1.0.0\"", "does not declare"),
}


@pytest.mark.parametrize("name", sorted(AUTOMATION_BREAKS))
def test_a_broken_automation_is_an_error_of_its_cluster(tree, real_renders, name):
    old, new, words = AUTOMATION_BREAKS[name]
    _edit(tree, AUTOMATION, old, new)
    if name == "no push, checkout of another branch":
        text = (tree / AUTOMATION).read_text()
        at = text.rindex("        branch: main\n")  # staging's checkout
        (tree / AUTOMATION).write_text(text[:at] + text[at:].replace("branch: main", "branch: release", 1))
    findings = [f for f in _findings(tree, real_renders, ("clusters/dev",)) if f[0] == "image_update_automation"]
    _only(findings, "image_update_automation", "clusters/dev", AUTOMATION, None, words)


def test_the_marked_image_must_be_the_one_the_policy_follows(tree, real_renders):
    _edit(tree, STAGING, "  - name: ai-inference-service-v2\n    newName: ghcr.io/example-org/ai-inference-service\n",
          "  - name: ai-inference-service-v2\n    newName: ghcr.io/example-org/other-service\n")
    findings = _findings(tree, real_renders)
    _only(findings, "image_update_automation", "clusters/dev", STAGING, None, "it would pin the wrong image")


def test_an_environment_without_its_automation_or_markers(tree, real_renders):
    text = (tree / AUTOMATION).read_text()
    (tree / AUTOMATION).write_text(text[:text.rindex("---\n")])  # staging's automation gone
    findings = _findings(tree, real_renders, ("clusters/dev",))
    _only(findings, "image_update_automation", "clusters/dev", AUTOMATION, None,
          "automates staging, but no ImageUpdateAutomation")
    (tree / AUTOMATION).write_text(text)
    _edit(tree, STAGING, " " + TAG, "")
    _edit(tree, STAGING, " " + DIGEST, "")
    findings = [f for f in _findings(tree, real_renders, ("clusters/dev",)) if f[0] == "image_update_automation"]
    _only(findings, "image_update_automation", "clusters/dev", AUTOMATION, None, "has no image policy markers")


def test_a_marked_file_the_artifact_leaves_out(tree, real_renders):
    (tree / "overlays/staging/.sourceignore").write_text("kustomization.yaml\n")
    findings = [f for f in _findings(tree, real_renders) if f[0] == "image_update_automation"]
    _only(findings, "image_update_automation", "clusters/dev", STAGING, None, "leaves out of its artifact")


def test_automation_in_a_second_cluster_is_an_error_of_that_cluster(tree, real_renders):
    (tree / "clusters/staging/image-automation.yaml").write_text((tree / AUTOMATION).read_text())
    _edit(tree, "clusters/staging/kustomization.yaml", "  - ai-inference-staging.yaml\n",
          "  - ai-inference-staging.yaml\n  - image-automation.yaml\n")
    findings = [f for f in _findings(tree, real_renders, ("clusters/staging",)) if f[0] == "image_update_automation"]
    _only(findings, "image_update_automation", "clusters/staging", "clusters/staging/image-automation.yaml", None,
          "two clusters writing to one repository race")
    assert len(findings) == 2  # each of its two automations


def test_validate_reports_each_breakage_on_its_root_with_file_and_line(tree):
    """End to end: staging's marker broken, staging's automation pushing to
    main, dev's overlay untouched."""
    line = _edit(tree, STAGING, DIGEST, DIGEST.replace(":digest", ":digst"))
    _edit(tree, AUTOMATION, "branch: image-updates/staging", "branch: main")
    report = tree / "r.json"
    proc = subprocess.run([sys.executable, "-m", "scripts", "validate", "--repo", str(tree), "--stage", "policy",
                           "--report-json", str(report), "-q"], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = {(f["rule"], f["target"], f["file"], f["line"])
             for f in json.loads(report.read_text())["findings"] if f["rule"].startswith("image_")}
    automation_line = _line((tree / AUTOMATION).read_text(), "name: ai-inference-staging") - 3  # its apiVersion
    assert found == {("image_policy_markers", "overlays/staging", STAGING, line),
                     ("image_update_automation", "clusters/dev", AUTOMATION, automation_line)}, found


def test_sourceignore_patterns_within_a_directory_are_those_that_can_apply_to_it(tmp_path):
    from scripts.loading.sourceignore import repository_patterns

    for file, text in {".sourceignore": "root\n", "a/.sourceignore": "x\n", "a/b/.sourceignore": "/y\n",
                       "a/b/c/.sourceignore": "z\n", "q/.sourceignore": "w\n"}.items():
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text(text)
    every = repository_patterns(tmp_path)
    assert every == ["root", "/a/**/x", "/q/**/w", "/a/b/y", "/a/b/c/**/z"]
    assert repository_patterns(tmp_path, "a/b") == [p for p in every if p != "/q/**/w"]  # q's applies below q only
    assert repository_patterns(tmp_path, "") == every
