"""`canary analyze` and `canary step` against a real Prometheus holding
synthetic Istio series: a healthy canary (prod), a 5xx regression
(staging), a latency regression (gpu) and no canary traffic (dev)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import promserver
from tests.conftest import REPO
from tests.promserver import Slot

pytestmark = pytest.mark.skipif(not promserver.available(),
                                reason="prometheus/promtool are not installed (Debian package prometheus)")

SCENARIOS = {
    # 10 % canary; a handful of errors among a thousand requests is noise.
    "ai-inference-prod": {"v1": Slot(15, error_share=0.001, drift_score=0.12),
                          "v2": Slot(1.7, error_share=0.002, drift_score=0.15)},
    # v2 fails 5 % of requests, v1 0.2 %.
    "ai-inference-staging": {"v1": Slot(8, error_share=0.002), "v2": Slot(2, error_share=0.05)},
    # v2's tail is seconds long: p99 above gpu's 2,000 ms ceiling and far above v1's.
    "ai-inference-gpu": {"v1": Slot(10, latency={100: 0.9, 250: 0.985, 500: 1.0}),
                         "v2": Slot(2, latency={250: 0.5, 1000: 0.9, 2500: 0.95, 5000: 1.0})},
    # weight 50 in the overlay, but nothing reaches v2 (its pods are not ready)
    "ai-inference-dev": {"v1": Slot(3), "v2": Slot(0)},
    # healthy traffic, but the new model sees inputs far from its training data
    "ai-inference-drift": {"v1": Slot(15, drift_score=0.1), "v2": Slot(2, drift_score=0.55)},
}


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory):
    with promserver.prometheus(tmp_path_factory.mktemp("prometheus"), SCENARIOS) as url:
        yield url


def canary(*args: str, repo: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts", "canary", *args, "--repo", str(repo)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          capture_output=True, text=True, timeout=120)


def _report(tmp_path, prometheus_url, env):
    out = tmp_path / f"{env}.json"
    proc = canary("analyze", "--env", env, "--prometheus", prometheus_url, "--report-json", str(out))
    return proc, json.loads(out.read_text()) if out.exists() else None


def _checks(report):
    return {c["name"]: c["verdict"] for c in report["checks"]}


def test_a_healthy_canary_advances(tmp_path, prometheus_url):
    proc, report = _report(tmp_path, prometheus_url, "prod")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["verdict"] == "healthy" and report["exit_code"] == 0
    assert set(_checks(report).values()) == {"pass"}
    assert report["namespace"] == "ai-inference-prod" and report["window"] == "10m"
    assert 900 < report["v2"]["requests"] < 1100 and report["v2"]["errors"] > 0  # errors, but noise
    assert report["v2"]["drift_score"] == pytest.approx(0.15) and _checks(report)["model drift score"] == "pass"
    assert "verdict: healthy (advance)" in proc.stdout
    for column in ("check", "v1", "v2", "threshold", "verdict"):
        assert column in proc.stdout.splitlines()[1]


def test_a_5xx_regression_rolls_back(tmp_path, prometheus_url):
    proc, report = _report(tmp_path, prometheus_url, "staging")
    assert proc.returncode == 1 and report["verdict"] == "unhealthy"
    checks = _checks(report)
    assert checks["5xx share"] == "fail" and checks["5xx share vs v1"] == "fail"
    assert checks["p99 latency"] == "pass"


def test_a_latency_regression_rolls_back(tmp_path, prometheus_url):
    proc, report = _report(tmp_path, prometheus_url, "gpu")
    assert proc.returncode == 1 and report["verdict"] == "unhealthy"
    checks = _checks(report)
    assert checks["p99 latency"] == "fail" and checks["p99 latency vs v1"] == "fail"
    assert checks["5xx share"] == "pass"
    assert report["v2"]["p99_ms"] > 2000 > report["v1"]["p99_ms"]


def test_no_canary_traffic_is_inconclusive(tmp_path, prometheus_url):
    proc, report = _report(tmp_path, prometheus_url, "dev")
    assert proc.returncode == 3 and report["verdict"] == "inconclusive"
    assert _checks(report)["canary traffic"] == "inconclusive"
    assert "hold: not enough evidence" in proc.stdout


def test_a_drifting_model_rolls_back(tmp_path, prometheus_url):
    """The drift scenario runs in a namespace of its own: analyze reads the
    namespace from the overlay, so a copy of prod pointing there is judged."""
    from scripts.pullrequest import analysis, canary, canaryconfig, prometheus

    limits = canaryconfig.load(REPO, canary.environments(REPO))["prod"]
    result = analysis.analyze(prometheus.Prometheus(prometheus_url), "prod", "ai-inference-drift", limits)
    checks = {c.name: c.verdict for c in result.checks}
    assert checks["model drift score"] == "fail" and result.verdict == "unhealthy"
    assert checks["5xx share"] == "pass" and checks["p99 latency"] == "pass"


def test_a_window_with_no_data_is_inconclusive(tmp_path, prometheus_url):
    proc = canary("analyze", "--env", "prod", "--prometheus", prometheus_url, "--window", "10s")
    assert proc.returncode == 3, proc.stdout + proc.stderr


@pytest.mark.parametrize(("path", "reason"), [("/dev/full", "No space left on device"),
                                            ("/proc/analysis.json", "No such file or directory")])
def test_a_report_that_cannot_be_written_is_one_line_and_exit_2(prometheus_url, path, reason):
    proc = canary("analyze", "--env", "prod", "--prometheus", prometheus_url, "--report-json", path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"python -m scripts: error: {path}: cannot write: {reason}\n"


def test_prometheus_down_is_one_line_and_exit_2():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = canary("analyze", "--env", "prod", "--prometheus", f"http://user:pw@127.0.0.1:{port}/",
                  env={"PROMETHEUS_TOKEN": "s3cr3t-token"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"canary analyze: Prometheus at http://127.0.0.1:{port}: "
                                   "cannot connect (connection refused)")
    assert "s3cr3t" not in proc.stdout + proc.stderr and "pw@" not in proc.stderr


def test_prometheus_answering_an_error_is_exit_2(prometheus_url):
    proc = canary("analyze", "--env", "prod", "--prometheus", prometheus_url + "/not-the-api")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"canary analyze: Prometheus at {prometheus_url}/not-the-api: HTTP 404")


@pytest.mark.parametrize("args, message", [
    (["--env", "nowhere", "--prometheus", "http://127.0.0.1:9"], "--env nowhere: not an environment"),
    (["--env", "prod", "--prometheus", "ftp://x"], "expected an http:// or https:// URL"),
    (["--env", "prod", "--prometheus", "http://127.0.0.1:9", "--window", "ten"], "--window ten"),
])
def test_usage_errors(args, message):
    proc = canary("analyze", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def _weights(tree: Path, env: str) -> tuple[int, int]:
    text = (tree / "overlays" / env / "canary-weights.yaml").read_text()
    values = [int(line.split(":")[1]) for line in text.splitlines() if line.strip().startswith("value:")]
    return values[0], values[1]


def test_step_advances_a_healthy_canary_to_the_next_step(tree, prometheus_url):
    assert _weights(tree, "prod") == (90, 10)
    proc = canary("step", "--env", "prod", "--prometheus", prometheus_url, repo=tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _weights(tree, "prod") == (75, 25)  # schedule 5, 10, 25, ...
    lines = proc.stdout.splitlines()
    assert lines[0] == "canary(prod): advance v2 10% -> 25%" and lines[1] == ""
    assert "| check | v1 | v2 | threshold | verdict |" in proc.stdout and "Action: v2 weight 10% -> 25%." in proc.stdout
    # comments kept
    assert "# v2, canary" in (tree / "overlays/prod/canary-weights.yaml").read_text()


def test_step_rolls_back_an_unhealthy_canary(tree, prometheus_url):
    proc = canary("step", "--env", "staging", "--prometheus", prometheus_url, repo=tree)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _weights(tree, "staging") == (100, 0)
    assert proc.stdout.splitlines()[0] == "canary(staging): roll back v2 (20% -> 0%)"


def test_step_holds_when_inconclusive(tree, prometheus_url):
    before = (tree / "overlays/dev/canary-weights.yaml").stat().st_mtime_ns
    proc = canary("step", "--env", "dev", "--prometheus", prometheus_url, repo=tree)
    assert proc.returncode == 3
    assert (tree / "overlays/dev/canary-weights.yaml").stat().st_mtime_ns == before
    assert proc.stdout.splitlines()[0] == "canary(dev): hold v2 at 50% (inconclusive)"


def test_step_at_100_promotes(tree, prometheus_url):
    assert canary("set", "--env", "prod", "--weight", "100", repo=tree).returncode == 0
    proc = canary("step", "--env", "prod", "--prometheus", prometheus_url, repo=tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == "canary(prod): promote v2 to stable"
    kustomization = (tree / "overlays/prod/kustomization.yaml").read_text()
    assert kustomization.count('newTag: "1.5.0"') == 2 and "v1=2024.09.0" in kustomization
    assert _weights(tree, "prod") == (100, 0)


def test_step_prometheus_down_changes_nothing(tree):
    before = (tree / "overlays/prod/canary-weights.yaml").read_text()
    proc = canary("step", "--env", "prod", "--prometheus", "http://127.0.0.1:9", repo=tree)
    assert proc.returncode == 2 and proc.stderr.startswith("canary step: Prometheus at http://127.0.0.1:9")
    assert (tree / "overlays/prod/canary-weights.yaml").read_text() == before
