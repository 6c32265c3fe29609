"""The benchmark's tree and its output contract (timings themselves are
measured by `python -m scripts bench`, never asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scripts import bench
from scripts.core.errors import UsageError
from scripts.loading.discover import discover
from tests.conftest import REPO


def test_copies_are_renamed_apart(tmp_path):
    out = tmp_path / "tree"
    bench.write_tree(out, 2)
    found = discover(out)
    paths = [t.path for t in found.targets]
    assert "services/svc-001/overlays/prod" in paths and "services/svc-002/clusters/prod" in paths
    assert len(paths) == 14 and found.findings == []
    for file in (out / "services").rglob("*"):
        if file.is_file():
            assert "ai-inference-" not in file.read_text(), file  # every name renamed
    flux = (out / "services/svc-002/clusters/prod/svc-002-prod.yaml").read_text()
    assert "path: ./services/svc-002/overlays/prod" in flux
    assert (out / "config/policy.yaml").is_file() and (out / "schemas/generated").is_dir()


def test_out_must_not_exist(tmp_path):
    with pytest.raises(UsageError, match="already exists"):
        bench.write_tree(tmp_path, 1)


def test_bench_prints_the_contract_as_its_last_line(tmp_path):
    out = tmp_path / "tree"
    proc = subprocess.run([sys.executable, "-m", "scripts", "bench", "--services", "1", "--out", str(out),
                           "--skip-changed", "--repeat", "2", "--report-json", str(tmp_path / "r.json")], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {"services", "targets", "objects", "seconds", "peak_rss_mb", "floor_seconds", "ratio",
                           "cold_ratio_median", "cold_cpu_ratio_median", "warm_seconds", "warm_ratio",
                           "warm_edit_seconds", "overlay_cold_seconds", "warm_edit_ratio", "tree",
                           "api_and_effects_share", "api_and_effects_cpu_share"}
    assert result["floor_seconds"] > 0
    assert result["ratio"] == pytest.approx(result["seconds"]["total"] / result["floor_seconds"], abs=0.01)
    assert "floor (alone, same run" in proc.stdout and "ratio validate / floor" in proc.stdout
    # --repeat: validate and both parts of the floor run twice; the fastest of each is the figure
    validate_line = next(line for line in proc.stdout.splitlines() if line.startswith("validate: "))
    floor_line = next(line for line in proc.stdout.splitlines() if line.startswith("floor "))
    assert "best of 2" in validate_line and floor_line.count("best of 2") == 2
    runs = [float(v) for v in validate_line.split("best of 2: ")[1].rstrip(")").split(", ")]
    assert result["seconds"]["total"] == pytest.approx(min(runs), abs=0.01)
    assert result["services"] == 1 and result["targets"] == 11 and result["objects"] > 150
    assert set(result["seconds"]) == {"render", "lint", "schema", "security", "policy", "total"}
    assert result["peak_rss_mb"] > 0
    # The warm runs take their renders from the cache the cold run left: faster than cold.
    assert 0 < result["warm_ratio"] < 1 and result["warm_seconds"] < result["seconds"]["total"]
    assert result["warm_edit_seconds"] > 0 and result["overlay_cold_seconds"] > 0
    assert "warm, nothing changed: " in proc.stdout and "warm after one overlay edit" in proc.stdout
    assert result["tree"] == "synthetic" and 0 < result["api_and_effects_share"] < 1
    assert 0 < result["api_and_effects_cpu_share"] < 1
    assert "median of 2" in next(line for line in proc.stdout.splitlines() if line.startswith("warm, nothing"))
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True


def test_bench_refuses_an_existing_directory(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scripts", "bench", "--services", "1", "--out", str(tmp_path)],
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert proc.returncode == 2 and "already exists" in proc.stderr


def test_the_copies_config_names_every_copy(tmp_path):
    """The model path and monitoring rules read the service's names from
    config/policy.yaml: each copy must be there, or its series and its model
    ConfigMap would be unknown."""
    from scripts.stages.policy_support import PolicyConfig

    bench.write_tree(tmp_path / "tree", 3)
    config = PolicyConfig.load(tmp_path / "tree")
    assert config.egress is not None and config.monitoring is not None
    assert config.egress.model_store.configmaps == tuple(f"svc-00{n}-service-models" for n in (1, 2, 3))
    assert set(config.monitoring.exports) == {f"svc-00{n}-service" for n in (1, 2, 3)}


def test_bench_measures_this_repositorys_own_tree(tmp_path):
    """--tree: the same figures on a copy of this repository's tree, with
    overlays/prod as the overlay edited."""
    proc = subprocess.run([sys.executable, "-m", "scripts", "bench", "--tree", "--out", str(tmp_path / "t"),
                           "--skip-changed"], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["tree"] == "this repository" and result["services"] == 0 and result["targets"] == 11
    assert "warm after one overlay edit (overlays/prod)" in proc.stdout
    assert result["cold_ratio_median"] > 0 and result["warm_edit_ratio"] > 0


def test_bench_wants_a_size(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scripts", "bench", "--out", str(tmp_path / "t")], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert proc.returncode == 2 and "one of the arguments --services --tree is required" in proc.stderr
