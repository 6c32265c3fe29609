"""The policy results the cache keeps beyond each render: the rules that
read the repository only to locate a field in the build (kept with each
render, as their declaration says, and proven here by every file they
open), and the run-wide rules (kept for the whole run under a key that
holds every render's key and every file of the repository)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scripts.loading.buildinputs import _RealPaths
from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux
from scripts.stages.policy import PolicyRun, load_rules
from scripts.stages.policy_support import PolicyConfig
from scripts.validate import CACHE_DIR, Options, cacheable_rule, run

LAST = "overlays/staging"
STRAY_MARKER = ('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\ndata:\n'
                '  image: "x" # {"$imagepolicy": "flux-system:no-such-policy:tag"}\n')


def validate(tree: Path, **options):
    return run(Options(repo=tree, stages=["policy"], jobs=2, **options))


def test_a_file_no_build_reads_still_reaches_the_run_wide_rules(tree):
    """A marker in a file that no kustomization lists is written by Flux's
    image automation all the same: after a warm run, adding one to the last
    root's directory makes the finding appear, though every render (and so
    every render's key) is unchanged."""
    cold = validate(tree)
    assert not cold.findings
    again = validate(tree)
    assert not again.findings
    (tree / LAST / "stray.yaml").write_text(STRAY_MARKER)
    after = validate(tree)
    assert {(f.rule, f.file) for f in after.findings} == {("image_update_automation", f"{LAST}/stray.yaml")}
    (tree / LAST / "stray.yaml").unlink()
    assert not validate(tree).findings


def test_the_run_wide_results_are_kept_and_a_damaged_entry_is_recomputed(tree, monkeypatch):
    (tree / LAST / "stray.yaml").write_text(STRAY_MARKER)
    expected = {(f.rule, f.target, f.file) for f in validate(tree).findings}
    assert expected
    calls = []
    real = PolicyRun._check

    def counted(self, rule, render):
        calls.append(rule.name)
        return real(self, rule, render)
    monkeypatch.setattr(PolicyRun, "_check", counted)
    assert {(f.rule, f.target, f.file) for f in validate(tree).findings} == expected
    assert calls == [], "a warm run of an unchanged tree ran policy rules"
    # Every entry damaged: each is ignored, and the rules run again.
    for entry in (tree / CACHE_DIR).rglob("*.json"):
        entry.write_bytes(entry.read_bytes()[:-7])
    assert {(f.rule, f.target, f.file) for f in validate(tree).findings} == expected
    assert "image_update_automation" in calls


def test_no_cache_runs_every_rule(tree, monkeypatch):
    validate(tree)
    calls = []
    real = PolicyRun._check
    monkeypatch.setattr(PolicyRun, "_check",
                        lambda self, rule, render: calls.append(rule.name) or real(self, rule, render))
    validate(tree, cache=False)
    assert "image_update_automation" in calls and "egress_endpoints_open" in calls


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_rules_that_read_the_build_only_open_only_the_build_files(tree):
    """The declaration `reads = "build"` lets a rule's results be kept with
    each render: every file such a rule opens, on every render of this
    repository with defects the rules locate (a patch, a generator, a
    component's file), is one of the render's build inputs."""
    (tree / "overlays/staging/egress.yaml").write_text("- op: remove\n  path: /spec/egress/0\n")
    _replace(tree / "overlays/staging/kustomization.yaml", "patches:\n",
             "patches:\n  - path: egress.yaml\n    target:\n      kind: NetworkPolicy\n"
             "      name: ai-inference-service\n"
             "  - target:\n      kind: PrometheusRule\n    patch: |-\n      - op: replace\n"
             "        path: /spec/groups/1/rules/0/expr\n        value: ai_inference:error:ratio_rate5m > 0.05\n")
    _replace(tree / "overlays/prod/kustomization.yaml", "- bucket=ai-models-prod", "- store=ai-models-prod")
    found = discover(tree)
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    config = PolicyConfig.load(found.repo)
    readers = [rule for rule in load_rules() if rule.reads == "build"]
    assert {rule.name for rule in readers} >= {"egress_endpoints_open", "monitoring_series_exist"}
    assert all(cacheable_rule(rule) for rule in readers)
    assert not [r.name for r in load_rules() if "repo" in r.params and r.reads != "build" and cacheable_rule(r)]
    opened: list[str] = []
    recording = [False]

    def hook(event: str, args: tuple) -> None:
        if recording[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))
    sys.addaudithook(hook)  # for this process's life: it records only while the flag is set
    top = str(found.repo) + os.sep
    run_ = PolicyRun(found.repo, config.kubernetes_version, config)
    checked = 0
    for render in renders:
        if not render.ok:
            continue
        render.objects  # noqa: B018 - parsed before recording: the render is the rule's input
        allowed = set(render.target.sources)
        for rule in readers:
            opened.clear()
            recording[0] = True
            try:
                run_._check(rule, render)
            finally:
                recording[0] = False
            read = {os.path.relpath(p, found.repo) for p in opened if p.startswith(top)}
            read = {p for p in read if not p.startswith(("config/", "schemas/"))}  # in the run's fingerprint
            assert read <= allowed, (rule.name, render.target.path, read - allowed)
            checked += bool(read)
    assert checked >= 3, "the rules located too little: the proof would hold vacuously"


def test_real_paths_resolve_as_the_system_does(tmp_path):
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/f.yaml").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    (tmp_path / "a/flink.yaml").symlink_to(tmp_path / "a/b/f.yaml")
    (tmp_path / "a/dangling").symlink_to(tmp_path / "nowhere")
    resolve = _RealPaths()
    for path in ("link/b/f.yaml", "link/b/../flink.yaml", "a/flink.yaml", "link/dangling", "a/b/..",
                 "link/b/.", "a/missing/x", "link/../a/b/f.yaml", "link"):
        full = str(tmp_path / path)
        assert resolve(full) == os.path.realpath(full), path
        assert resolve(full) == os.path.realpath(full), path  # and again, from its memory

