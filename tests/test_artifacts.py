"""The ExternalArtifacts an ArtifactGenerator makes: its copy rules, one by
one, as source-watcher v2.2.1 runs them (internal/builder), on small trees."""

from __future__ import annotations

import pytest

from scripts.loading import artifacts
from scripts.loading.artifacts import CopyError, build_artifact, doublestar


def tree(*paths: str) -> artifacts.Tree:
    return {p: (f"repo/{p}",) for p in paths}


REPO = tree("apps/base/app/kustomization.yaml", "apps/base/app/deploy.yaml", "apps/prod/kustomization.yaml",
            "apps/prod/values.yaml", "apps/prod/README.md", "apps/prod/testdata/x.yaml", "config.yaml",
            "apps/.hidden.yaml")


def make(*copies: dict, sources: dict | None = None) -> dict[str, tuple[str, ...]]:
    return build_artifact({"name": "a", "copy": list(copies)}, sources or {"repo": REPO})


def test_dir_star_star_copies_the_contents_without_the_prefix():
    made = make({"from": "@repo/apps/**", "to": "@artifact/"})
    assert set(made) == {"base/app/kustomization.yaml", "base/app/deploy.yaml", "prod/kustomization.yaml",
                         "prod/values.yaml", "prod/README.md", "prod/testdata/x.yaml", ".hidden.yaml"}
    assert made["base/app/deploy.yaml"] == ("repo/apps/base/app/deploy.yaml",)


def test_a_glob_does_not_cross_directories_and_keeps_the_match_path():
    # Go's fs.Glob: `*` stays inside one segment; the match path is kept under `to`.
    assert set(make({"from": "@repo/apps/prod/*.yaml", "to": "@artifact/out/"})) == {
        "out/apps/prod/kustomization.yaml", "out/apps/prod/values.yaml"}
    # `**` in the middle is one segment, as in fs.Glob, not any depth
    assert set(make({"from": "@repo/apps/**/kustomization.yaml", "to": "@artifact/"})) == {
        "apps/prod/kustomization.yaml"}


def test_a_single_directory_is_copied_as_a_subdirectory():
    assert set(make({"from": "@repo/apps/prod/", "to": "@artifact/envs/"})) == {
        "envs/prod/kustomization.yaml", "envs/prod/values.yaml", "envs/prod/README.md", "envs/prod/testdata/x.yaml"}
    whole = make({"from": "@repo/", "to": "@artifact/"})
    assert set(whole) == set(REPO)


def test_a_single_file_goes_to_a_file_or_into_a_directory():
    assert set(make({"from": "@repo/config.yaml", "to": "@artifact/app.yaml"})) == {"app.yaml"}
    assert set(make({"from": "@repo/config.yaml", "to": "@artifact/apps/"})) == {"apps/config.yaml"}
    # into a directory made by an earlier rule, even without the slash
    made = make({"from": "@repo/apps/prod/**", "to": "@artifact/prod/"},
                {"from": "@repo/config.yaml", "to": "@artifact/prod"})
    assert "prod/config.yaml" in made


def test_later_rules_overwrite_and_merge_layers():
    made = make({"from": "@repo/config.yaml", "to": "@artifact/v.yaml"},
                {"from": "@repo/apps/prod/values.yaml", "to": "@artifact/v.yaml"})
    assert made["v.yaml"] == ("repo/apps/prod/values.yaml",)
    merged = make({"from": "@repo/config.yaml", "to": "@artifact/v.yaml"},
                  {"from": "@repo/apps/prod/values.yaml", "to": "@artifact/v.yaml", "strategy": "Merge"})
    assert merged["v.yaml"] == ("repo/config.yaml", "repo/apps/prod/values.yaml")


@pytest.mark.parametrize("exclude, gone", [
    (["*.md"], {"prod/README.md"}),  # no slash: the file name, at any depth
    (["**/testdata/**"], {"prod/testdata/x.yaml"}),
    (["prod/**"], {"prod/kustomization.yaml", "prod/values.yaml", "prod/README.md", "prod/testdata/x.yaml"}),
    (["apps/base/**"], {"base/app/kustomization.yaml", "base/app/deploy.yaml"}),  # relative to the source
    (["{*.md,.hidden.yaml}"], {"prod/README.md", ".hidden.yaml"}),
])
def test_exclude_patterns(exclude, gone):
    everything = set(make({"from": "@repo/apps/**", "to": "@artifact/"}))
    assert everything - set(make({"from": "@repo/apps/**", "to": "@artifact/", "exclude": exclude})) == gone


@pytest.mark.parametrize("copy, message", [
    ({"from": "@repo/nothing/*.yaml", "to": "@artifact/"}, "no file matches"),
    ({"from": "@repo/apps/prod/*.md", "to": "@artifact/", "exclude": ["*.md"]}, "is excluded"),
    ({"from": "@repo/missing.yaml", "to": "@artifact/"}, "does not exist in @repo"),
    ({"from": "@other/x.yaml", "to": "@artifact/"}, "alias 'other' is not in spec.sources"),
    ({"from": "repo/x.yaml", "to": "@artifact/"}, "must be @alias/path"),
    ({"from": "@repo/config.yaml", "to": "out/"}, "must start with @artifact/"),
    ({"from": "@repo/config.yaml", "to": "@artifact/../up.yaml"}, "leads out of the artifact"),
    ({"from": "@repo/config.yaml", "to": "@artifact/", "strategy": "Extract"}, "Extract"),
    ({"from": "@repo/config.yaml", "to": "@artifact/", "strategy": "Sideways"}, "expected Overwrite"),
])
def test_a_rule_the_controller_refuses_names_itself(copy, message):
    with pytest.raises(CopyError, match=message) as caught:
        make({"from": "@repo/config.yaml", "to": "@artifact/ok.yaml"}, copy)
    assert str(caught.value).startswith("copy[1] ")


def test_the_archive_leaves_out_flux_default_exclusions():
    sources = {"repo": tree("app/deploy.yaml", "app/.git/config", "app/logo.png", "app/.github/workflows/ci.yaml")}
    assert set(make({"from": "@repo/app/**", "to": "@artifact/"}, sources=sources)) == {"deploy.yaml"}


@pytest.mark.parametrize("pattern, path, matches", [
    ("**", "a/b/c", True), ("a/**", "a", True), ("a/**", "a/b/c", True), ("a/**/c", "a/c", True),
    ("a/**/c", "a/x/y/c", True), ("**/c", "c", True), ("*.md", "a/b.md", False), ("a/*", "a/b/c", False),
    ("[ab].yaml", "b.yaml", True), ("[!ab].yaml", "b.yaml", False), ("x{1,2}", "x2", True),
])
def test_doublestar(pattern, path, matches):
    assert bool(doublestar(pattern).match(path)) is matches
