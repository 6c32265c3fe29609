"""The alerting rules' unit tests (promtool test rules), on the rules as
overlays/prod renders them. Runs where promtool is installed (.ci/run
installs Debian's prometheus package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import find

ALERT_TESTS = Path(__file__).parent / "alerts" / "ai-inference-service.test.yaml"
pytestmark = pytest.mark.skipif(not shutil.which("promtool"),
                                reason="promtool is not installed (Debian package prometheus)")


def promtool_test(groups: list, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    return subprocess.run(["promtool", "test", "rules", ALERT_TESTS.name], cwd=tmp_path,
                          capture_output=True, text=True)


def test_alert_unit_tests_pass(render_of, tmp_path):
    groups = find(render_of("overlays/prod"), "PrometheusRule").doc["spec"]["groups"]
    proc = promtool_test(groups, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alert_unit_tests_catch_a_weakened_rule(render_of, tmp_path):
    groups = find(render_of("overlays/prod"), "PrometheusRule").doc["spec"]["groups"]
    alert = next(r for r in groups[1]["rules"] if r.get("alert") == "AIInferenceHighErrorRate")
    alert["expr"] = "ai_inference:errors:ratio_rate5m > 0.5"
    proc = promtool_test(groups, tmp_path)
    assert proc.returncode != 0
    assert "AIInferenceHighErrorRate" in proc.stdout + proc.stderr
