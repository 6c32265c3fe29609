"""Hostile input and faults: every case ends in a finding or one clear line
with the right exit code; never a traceback, a false pass, a change
outside the repository, or a rejected edit left on disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

FLUX_PROD = "clusters/prod/ai-inference-prod.yaml"


def cli(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "scripts", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode != 70, proc.stderr  # the crash guard caught a bug of ours


def findings(tree: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    report = tree / "fault-report.json"
    proc = cli("validate", "--repo", str(tree), "--report-json", str(report), *args)
    no_traceback(proc)
    return proc, json.loads(report.read_text())["findings"] if report.exists() else []


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new, 1))


# ---- one broken overlay must not crash everything Flux-related -----------

@pytest.mark.parametrize("content", [
    b"resources: [../../base\n",  # YAML syntax error
    b"namespace: ai-inference-dev\nresources:\n  - ../../base\n# caf\xe9\n",  # not UTF-8
    b"- just\n- a list\n",  # not a mapping
    b"patches: 5\nresources: [../../base]\n",  # a key of the wrong type
])
def test_broken_overlay_is_a_finding_for_it_and_its_flux_build(tree, content):
    (tree / "overlays/dev/kustomization.yaml").write_bytes(content)
    proc, found = findings(tree, "--stage", "render")
    assert proc.returncode == 1
    targets = {f["target"] for f in found if f["severity"] == "error"}
    assert "overlays/dev" in targets or any(f["file"] == "overlays/dev/kustomization.yaml" for f in found)
    assert "clusters/dev#ai-inference-dev" in targets
    flux = next(f for f in found if f["target"] == "clusters/dev#ai-inference-dev")
    assert flux["file"] == "overlays/dev/kustomization.yaml"
    # The other environments still render and are reported.
    assert not [f for f in found if "prod" in f["target"] or "staging" in f["target"]]


@pytest.mark.parametrize("old,new,words", [
    ("  sourceRef:\n    kind: GitRepository\n    name: ai-inference-service\n", "  sourceRef: ai-inference-service\n",
     "spec.sourceRef: expected a mapping"),
    ("  prune: true\n", "  prune: true\n  dependsOn: [ai-inference-base]\n", "spec.dependsOn[0]: expected a mapping"),
    ("  prune: true\n", "  prune: true\n  images: 5\n", "spec.images: expected a list"),
    ("  prune: true\n", "  prune: true\n  patches: 5\n", "spec.patches: expected a list"),
    ("  postBuild:\n", "  postBuild: x\n  ignored:\n", "spec.postBuild: expected a mapping"),
    ("    substituteFrom:\n      - kind: ConfigMap\n        name: cluster-settings\n",
     "    substituteFrom: [cluster-settings]\n", "spec.postBuild.substituteFrom[0]: expected a mapping"),
])
def test_wrong_shaped_flux_fields_are_findings(tree, old, new, words):
    replace(tree / FLUX_PROD, old, new)
    proc, found = findings(tree, "--stage", "render", "--target", str(tree / "clusters/prod"))
    assert proc.returncode == 1
    hit = [f for f in found if f["rule"] == "flux-kustomization-invalid"]
    assert hit and words in hit[0]["message"], found
    assert hit[0]["target"] == "clusters/prod#ai-inference-prod" and hit[0]["file"] == FLUX_PROD


def test_bad_base64_in_a_substituted_secret_is_a_finding(tree):
    (tree / "clusters/prod/secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: cluster-secret, namespace: flux-system}\n"
        "data: {region: '!!not base64!!'}\n")
    replace(tree / "clusters/prod/kustomization.yaml", "  - cluster-settings.yaml\n",
            "  - cluster-settings.yaml\n  - secret.yaml\n")
    replace(tree / FLUX_PROD, "      - kind: ConfigMap\n        name: cluster-settings\n",
            "      - kind: ConfigMap\n        name: cluster-settings\n"
            "      - kind: Secret\n        name: cluster-secret\n")
    proc, found = findings(tree, "--stage", "render", "--target", str(tree / "clusters/prod"))
    assert proc.returncode == 1
    hit = next(f for f in found if f["target"] == "clusters/prod#ai-inference-prod")
    assert "Secret/cluster-secret: data.region is not base64" in hit["message"]


def test_flux_path_of_a_dot_directory_keeps_its_name(tree):
    (tree / ".deploy").mkdir()
    (tree / ".deploy/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    replace(tree / FLUX_PROD, "  path: ./overlays/prod\n", "  path: ./.deploy\n")
    replace(tree / "clusters/prod/source.yaml", "    !/overlays/\n", "    !/overlays/\n    !/.deploy/\n")
    from scripts.loading.discover import discover
    from scripts.loading.render import render_with_flux

    found = discover(tree)
    renders, _ = render_with_flux(tree, [t for t in found.targets if t.path == "clusters/prod"],
                                  found.kustomizations)
    build = next(r for r in renders if r.target.path == "clusters/prod#ai-inference-prod")
    assert ".deploy/cm.yaml" in build.target.sources and build.ok, build.error


# ---- canary / promote ------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["promote", "--from", "dev", "--to", "prod/"],
    ["promote", "--from", "dev", "--to", "./prod"],
    ["promote", "--from", "dev", "--to", "../overlays/prod"],
    ["promote", "--from", "../../../elsewhere", "--to", "prod"],
    ["canary", "set", "--env", "../../../elsewhere", "--weight", "5"],
    ["canary", "set", "--env", "prod/..", "--weight", "5"],
    ["promote", "--env", "/etc"],
])
def test_environment_names_are_never_paths(tree, args):
    outside = tree.parent / "elsewhere"
    (outside / "overlays").mkdir(parents=True)
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    proc = cli(*args, "--repo", str(tree))
    no_traceback(proc)
    assert proc.returncode == 2 and "not an environment" in proc.stderr, proc.stderr
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and p in before} == before
    assert list(outside.rglob("*.yaml")) == []


def _bad_staging_image(tree: Path) -> None:
    replace(tree / "overlays/staging/kustomization.yaml",
            'newName: ghcr.io/example-org/ai-inference-service\n    newTag: "1.5.0"',
            'newName: docker.io/someone/inference\n    newTag: "1.5.0"')


def test_concurrent_rejected_edits_leave_prod_as_it_was(tree):
    _bad_staging_image(tree)
    prod = tree / "overlays/prod/kustomization.yaml"
    before = prod.read_bytes()
    environment = dict(os.environ, PYTHONPATH=str(REPO))
    runs = [subprocess.Popen([sys.executable, "-m", "scripts", "promote", "--from", "staging", "--to", "prod",
                              "--repo", str(tree)], cwd=REPO, env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 1 and "edit refused" in err and "Traceback" not in err
    assert prod.read_bytes() == before


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5, 2.5])
def test_sigterm_during_an_edit_leaves_old_or_new_files(tree, delay):
    weights = tree / "overlays/prod/canary-weights.yaml"
    before = weights.read_text()
    after = before.replace("value: 90", "value: 75").replace("value: 10", "value: 25")
    run = subprocess.Popen([sys.executable, "-m", "scripts", "canary", "set", "--env", "prod", "--weight", "25",
                            "--repo", str(tree)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert "Traceback" not in err
    assert weights.read_text() in (before, after)
    # 143: stopped by our handler; -15: killed while Python was still
    # starting, before any handler (or any edit) existed; 0: finished first.
    assert run.returncode in (0, 143, -signal.SIGTERM)
    assert not [p for p in weights.parent.iterdir() if p.name.startswith(".")], "a staged temp file was left"


def test_kustomize_edit_style_files_keep_their_style_and_untouched_files_their_bytes(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    flush = "\n".join(line[2:] if line.startswith("  - ") or (line.startswith("    ") and not
                                                                  line.startswith("      ")) else line
                      for line in kfile.read_text().splitlines()) + "\n"
    import yaml

    if yaml.safe_load(flush) != yaml.safe_load(kfile.read_text()):
        pytest.skip("could not rewrite the kustomization in kustomize-edit style")
    kfile.write_text(flush)
    proc = cli("canary", "set", "--env", "prod", "--weight", "20", "--repo", str(tree))
    assert proc.returncode == 0, proc.stderr
    assert kfile.read_text() == flush  # not touched by a weights edit
    proc = cli("promote", "--env", "prod", "--repo", str(tree))
    assert proc.returncode == 0, proc.stderr
    text = kfile.read_text()
    assert "\n- name: ai-inference-service-v1\n" in text and "\n  - name: ai-inference" not in text, text


@pytest.mark.parametrize("name", ["kustomization.yml", "Kustomization"])
def test_overlays_with_other_kustomization_file_names(tree, name):
    (tree / "overlays/prod/kustomization.yaml").rename(tree / "overlays/prod" / name)
    proc = cli("canary", "set", "--env", "prod", "--weight", "30", "--repo", str(tree))
    assert proc.returncode == 0, proc.stderr
    assert "value: 30" in (tree / "overlays/prod/canary-weights.yaml").read_text()


# ---- links -----------------------------------------------------------------

def test_a_link_out_of_the_repository_is_a_finding(tree, tmp_path):
    secret = tmp_path / "outside.yaml"
    secret.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\n")
    (tree / "base/outside.yaml").symlink_to(secret)
    replace(tree / "base/kustomization.yaml", "  - service.yaml\n", "  - service.yaml\n  - outside.yaml\n")
    proc, found = findings(tree, "--stage", "render", "--target", str(tree / "overlays/dev"))
    assert proc.returncode == 1
    assert any("link out of the repository" in f["message"] and f["file"] == "base/outside.yaml" for f in found)


def test_a_link_loop_does_not_crash_discovery(tree):
    (tree / "base/loop-a.yaml").symlink_to(tree / "base/loop-b.yaml")
    (tree / "base/loop-b.yaml").symlink_to(tree / "base/loop-a.yaml")
    replace(tree / "base/kustomization.yaml", "  - service.yaml\n", "  - service.yaml\n  - loop-a.yaml\n")
    proc, found = findings(tree, "--stage", "render", "--target", str(tree / "overlays/dev"))
    assert proc.returncode == 1 and found


# ---- config, output files, empty repositories ------------------------------

@pytest.mark.parametrize("file,text,words", [
    ("config/policy.yaml", "registries: ghcr.io/\nenvironments: {}\n", "`registries` must be a list"),
    ("config/policy.yaml", "registries: [5]\n", "`registries` must be a list of non-empty strings"),
    ("config/policy.yaml", "environments: [dev]\n", "`environments` must be a mapping"),
    ("config/policy.yaml", "ha_min_replicas: many\n", "`ha_min_replicas` must be a whole number"),
    ("config/limits.yaml", "render_timeout_seconds: soon\n", "must be a positive number"),
    ("config/limits.yaml", "render_memory_mib: 64\n", "at least 1024"),
    ("config/limits.yaml", "bogus: 1\n", "unknown key `bogus`"),
])
def test_wrong_typed_config_is_one_line(tree, file, text, words):
    (tree / file).write_text(text)
    proc = cli("validate", "--repo", str(tree), "--target", str(tree / "overlays/dev"))
    no_traceback(proc)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and words in lines[0] and file in lines[0], proc.stderr


@pytest.mark.parametrize("flag", ["--report-json", "--junit", "--sarif"])
def test_unwritable_report_path_is_refused_before_the_run(tmp_path, flag):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    started = time.perf_counter()
    proc = cli("validate", flag, str(blocker / "report.out"))
    assert proc.returncode == 2 and "is not a directory" in proc.stderr
    assert time.perf_counter() - started < 10  # refused before rendering anything
    proc = cli("validate", flag, str(tmp_path))
    assert proc.returncode == 2 and "is a directory" in proc.stderr


def test_empty_repository_is_not_ok(tmp_path):
    proc = cli("validate", "--repo", str(tmp_path))
    assert proc.returncode == 2 and "nothing to validate" in proc.stderr


def test_merged_report_does_not_show_a_stage_that_never_ran_as_passed(tmp_path):
    out = tmp_path / "shard.json"
    assert cli("validate", "--stage", "schema", "--target", "overlays/dev", "--report-json", str(out),
               "-q").returncode == 0
    assert json.loads(out.read_text())["timings"]["security"] is None
    proc = cli("report", str(out))
    assert proc.returncode == 0
    row = next(line for line in proc.stdout.splitlines() if "`overlays/dev`" in line)
    assert row.count("not run") == 3 and row.count("✅") == 2  # render and schema ran


# ---- resources and messages ------------------------------------------------

BOMB = """apiVersion: v1
kind: ConfigMap
metadata:
  name: lol
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.skipif(not shutil.which("prlimit"), reason="prlimit (util-linux) enforces the memory bound")
def test_a_yaml_bomb_hits_the_memory_bound(tree):
    (tree / "base/bomb.yaml").write_text(BOMB)
    replace(tree / "base/kustomization.yaml", "  - service.yaml\n", "  - service.yaml\n  - bomb.yaml\n")
    (tree / "config/limits.yaml").write_text("render_memory_mib: 1024\nrender_timeout_seconds: 60\n")
    proc, found = findings(tree, "--stage", "render", "--target", str(tree / "overlays/dev"))
    assert proc.returncode == 1
    assert any("ran out of memory" in f["message"] and "render_memory_mib" in f["message"] for f in found), found


def test_a_slow_render_hits_the_time_bound(tree):
    (tree / "config/limits.yaml").write_text("render_timeout_seconds: 0.001\n")
    proc, found = findings(tree, "--stage", "render", "--target", str(tree / "overlays/dev"))
    assert proc.returncode == 1
    assert any("did not finish within 0.001 s" in f["message"] for f in found), found


def test_a_large_data_file_is_not_linted(tree):
    (tree / "config/limits.yaml").write_text("lint_max_file_kib: 1\n")
    proc, found = findings(tree, "--stage", "lint", "--target", str(tree / "overlays/prod"))
    notices = [f for f in found if f["rule"] == "not-linted"]
    assert notices and all(f["severity"] == "warning" for f in notices)
    assert proc.returncode == 0, proc.stdout


def test_duplicate_key_is_blamed_on_its_file_and_line(tree):
    replace(tree / "base/service.yaml", "  name: ai-inference-service\n",
            "  name: ai-inference-service\n  name: again\n")
    proc, found = findings(tree, "--stage", "render", "--target", str(tree / "overlays/dev"))
    hit = next(f for f in found if f["rule"] == "render-failed")
    assert hit["file"] == "base/service.yaml" and hit["line"] and "duplicate key 'name'" in hit["message"]


def test_kustomize_cause_is_kept_not_only_its_last_line(tree):
    replace(tree / "overlays/dev/kustomization.yaml", "resources:\n", "helmCharts:\n  - name: x\n    repo: "
            "https://example.invalid\nresources:\n")
    proc, found = findings(tree, "--stage", "render", "--target", str(tree / "overlays/dev"))
    hit = next(f for f in found if f["rule"] == "render-failed")
    assert "enable-helm" in hit["message"] and len(hit["message"]) > 40


# ---- the crash guard and interrupts ---------------------------------------

def test_a_malformed_report_is_one_line(tmp_path):
    bad = tmp_path / "report.json"
    bad.write_text(json.dumps({"ok": True, "kubernetes_version": "1.34", "targets": [],
                               "findings": [], "timings": {"render": "fast"}}))
    proc = cli("report", str(bad))
    no_traceback(proc)
    assert proc.returncode == 1 and "timings" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_an_internal_error_is_one_line_with_a_pointer_to_debug(monkeypatch, capsys):
    from scripts import cli as cli_module

    def broken(args):
        raise ValueError("a bug of ours")

    monkeypatch.setitem(cli_module.COMMANDS, "report", broken)
    assert cli_module.main(["report", "x.json"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ValueError: a bug of ours" in err and "--debug" in err
    with pytest.raises(ValueError):
        cli_module.main(["report", "x.json", "--debug"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_children_removes_temp_files_and_writes_no_report(tree, tmp_path, signum):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    marker = f"fault-test-{os.getpid()}-{signum}"
    report = tmp_path / "r.json"
    run = subprocess.Popen([sys.executable, "-m", "scripts", "validate", "--repo", str(tree), "--report-json",
                            str(report)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(scratch), FAULT_MARKER=marker))
    # Mid-run: while kustomize renders (the workers are started by then).
    deadline = time.monotonic() + 60
    while not any(b"kustomize" in _command_line(pid) for pid in _processes_with(marker)):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.01)
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 128 + signum, err
    assert "Traceback" not in err and "no report written" in err
    assert not report.exists()
    # multiprocessing's resource tracker notices its parent is gone a moment
    # later: give every child up to 10 s, then none may be left.
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == []
    # lark (under checkov) keeps a grammar cache in the temp directory on
    # purpose; it is not a leftover of the interrupted run.
    assert [p for p in scratch.iterdir() if not p.name.startswith(".lark_cache")] == []


def _processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                            GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com"))


@pytest.mark.parametrize("link", ["/etc/hostname", "../../../../outside.yaml", "loop.yaml"])
def test_committed_links_do_not_break_diff_or_changed(tree, link):
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-qm", "base")
    (tree / "base/linked.yaml").symlink_to(link)
    replace(tree / "base/kustomization.yaml", "  - service.yaml\n", "  - service.yaml\n  - linked.yaml\n")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-qm", "a link")
    proc = cli("diff", "--repo", str(tree), "--base", "HEAD~1", "--head", "HEAD", "--target", "overlays/dev",
               cwd=tree)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    replace(tree / "overlays/dev/canary-weights.yaml", "value: 50", "value: 40")
    proc, found = findings(tree, "--changed", "--base", "HEAD~1", "--stage", "render")
    assert proc.returncode == 1 and any(f["rule"] == "render-failed" for f in found), proc.stdout + proc.stderr
