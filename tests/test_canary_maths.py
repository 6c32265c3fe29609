"""Threshold maths of `canary analyze`, config/canary.yaml errors, and the
Prometheus client's error paths (no server needed)."""

from __future__ import annotations

import dataclasses

import pytest
import requests

from scripts.core.errors import InputError, UsageError
from scripts.pullrequest import analysis, canary, canaryconfig, prometheus
from scripts.pullrequest.analysis import SlotStats
from tests.conftest import REPO

LIMITS = canaryconfig.load(REPO, canary.environments(REPO))["prod"]


def test_wilson_interval():
    low, high = analysis.wilson(0, 1000)
    assert low == pytest.approx(0, abs=1e-12) and 0 < high < 0.005
    low, high = analysis.wilson(50, 1000)
    assert 0.035 < low < 0.05 < high < 0.066
    assert analysis.wilson(0, 0) == (0.0, 1.0)


def test_difference_bound_tolerates_noise_and_sees_regressions():
    # 3 errors in 5,000 against 1 in 45,000: more, but nowhere near a 0.5 % regression
    assert analysis.difference_lower_bound(1, 45000, 3, 5000) < 0.005
    # 6 % against 0.1 % on a thousand requests each: a regression
    assert analysis.difference_lower_bound(1, 1000, 60, 1000) > 0.005


def _verdicts(v1, v2, limits=LIMITS):
    return {c.name: c.verdict for c in analysis.judge(v1, v2, limits)}


def test_a_handful_of_errors_is_not_a_regression():
    checks = _verdicts(SlotStats(45000, 10, 120), SlotStats(5000, 3, 125))
    assert set(checks.values()) == {"pass", "n/a"} and checks["model drift score"] == "n/a"


def test_few_requests_that_all_fail_are_unhealthy_not_inconclusive():
    checks = _verdicts(SlotStats(45000, 10, 120), SlotStats(40, 40, None))
    assert checks["5xx share"] == "fail" and checks["canary traffic"] == "inconclusive"
    result = analysis.Analysis("prod", "ns", "10m", "http://p", SlotStats(), SlotStats(),
                               analysis.judge(SlotStats(45000, 10, 120), SlotStats(40, 40, None), LIMITS))
    assert result.verdict == "unhealthy" and result.exit_code == 1


def test_latency_ratio_needs_more_than_the_slack():
    slow_but_close = _verdicts(SlotStats(45000, 0, 40), SlotStats(5000, 0, 60))  # 1.5x but 20 ms
    assert slow_but_close["p99 latency vs v1"] == "pass"
    slower = _verdicts(SlotStats(45000, 0, 200), SlotStats(5000, 0, 400))
    assert slower["p99 latency vs v1"] == "fail" and slower["p99 latency"] == "pass"


def test_no_v1_traffic_leaves_only_the_absolute_checks():
    checks = _verdicts(SlotStats(), SlotStats(5000, 0, 100))
    assert checks["5xx share vs v1"] == "n/a" and checks["p99 latency vs v1"] == "n/a"
    assert analysis.Analysis("e", "n", "w", "p", SlotStats(), SlotStats(),
                             analysis.judge(SlotStats(), SlotStats(5000, 0, 100), LIMITS)).verdict == "healthy"


def test_drift_score_is_judged_when_reported():
    assert _verdicts(SlotStats(45000, 0, 100), SlotStats(5000, 0, 100))["model drift score"] == "n/a"
    assert _verdicts(SlotStats(45000, 0, 100), SlotStats(5000, 0, 100, drift_score=0.2))["model drift score"] == "pass"
    assert _verdicts(SlotStats(45000, 0, 100), SlotStats(5000, 0, 100, drift_score=0.4))["model drift score"] == "fail"


def test_model_load_failures_fail_the_canary():
    checks = _verdicts(SlotStats(45000, 0, 100), SlotStats(5000, 0, 100, load_failures=2))
    assert checks["model load failures"] == "fail"


def test_schedule_steps():
    assert LIMITS.next_weight(0) == 5 and LIMITS.next_weight(10) == 25 and LIMITS.next_weight(7) == 10
    assert LIMITS.next_weight(100) is None


@pytest.mark.parametrize("text, error", [
    ("defaults: {window: 10m}\n", "defaults lacks min_requests"),
    ("defaults: []\n", "defaults must be a mapping"),
    ("thresholds: {}\n", "thresholds: unknown key"),
    ("environments:\n  prod: {min_requests: 0}\n", "environments.prod.min_requests must be"),
    ("environments:\n  prod: {error_rate_max: 2}\n", "environments.prod.error_rate_max must be a fraction"),
    ("environments:\n  prod: {min_requests: true}\n", "environments.prod.min_requests must be"),
    ("environments:\n  prod: {schedule: [10, 5, 100]}\n", "schedule must be a rising list"),
    ("environments:\n  prod: {schedule: [10, 50]}\n", "ends at 100"),
    ("environments:\n  prod: {window: ten}\n", "window must be a Prometheus duration"),
    ("environments:\n  prod: {typo: 1}\n", "environments.prod.typo: unknown setting"),
    ("environments:\n  prod: {drift_score_max: 1.5}\n", "drift_score_max must be a score between 0 and 1"),
    ("environments:\n  qa: {}\n", "environments.qa: no such overlay"),
])
def test_config_errors_name_the_file_and_key(tmp_path, text, error):
    (tmp_path / "config").mkdir()
    good = (REPO / "config" / "canary.yaml").read_text()
    defaults_only = good.split("environments:")[0]
    body = text if text.startswith(("defaults", "thresholds")) else defaults_only + text
    (tmp_path / "config" / "canary.yaml").write_text(body)
    with pytest.raises(InputError, match=error) as caught:
        canaryconfig.load(tmp_path, ["dev", "prod"])
    assert caught.value.file == "config/canary.yaml"


def test_the_committed_config_loads_for_every_environment():
    loaded = canaryconfig.load(REPO, canary.environments(REPO))
    assert set(loaded) == {"dev", "staging", "prod", "gpu"}
    assert loaded["gpu"].latency_p99_max_ms == 2000 and loaded["dev"].schedule == (25, 50, 100)
    # every overlay's current weight is a step of its schedule, so step moves predictably
    for env, limits in loaded.items():
        weight = canary.Overlay(REPO, env).weight("v2")
        assert weight == 0 or weight in limits.schedule, env


class FakeResponse:
    def __init__(self, status, body):
        self.status_code = status
        self._body = body

    def json(self):
        if isinstance(self._body, Exception):
            raise self._body
        return self._body


class FakeSession:
    def __init__(self, outcome):
        self.outcome = outcome
        self.headers = {}
        self.calls = []

    def get(self, url, params, timeout):
        self.calls.append((url, params, timeout))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize("outcome, message", [
    (requests.exceptions.SSLError("bad cert"), "TLS verification failed"),
    (requests.exceptions.ReadTimeout("slow"), "no answer within 30 s"),
    (requests.exceptions.ConnectionError("Name or service not known"), "cannot connect (name or service not known)"),
    (FakeResponse(401, {"status": "error"}), "HTTP 401: not authorised (is PROMETHEUS_TOKEN set and valid?)"),
    (FakeResponse(502, ValueError("html")), "HTTP 502: not Prometheus' query API"),
    (FakeResponse(400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
     "HTTP 400: bad_data: parse error"),
    (FakeResponse(200, {"status": "success", "data": {"resultType": "matrix", "result": []}}), "expected a vector"),
    (FakeResponse(200, {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1]}]}}),
     "a malformed sample"),
])
def test_client_errors_are_one_line_without_secrets(outcome, message):
    client = prometheus.Prometheus("https://user:pw@prom.example.com:9090/prefix/?x=1", token="s3cr3t",
                                   session=FakeSession(outcome))
    with pytest.raises(prometheus.PrometheusError) as caught:
        client.query("up")
    text = str(caught.value)
    assert text.startswith("Prometheus at https://prom.example.com:9090/prefix: ") and message in text
    assert "s3cr3t" not in text and "pw" not in text


def test_client_sends_the_token_and_a_timeout():
    session = FakeSession(FakeResponse(200, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"destination_version": "v2"}, "value": [1, "NaN"]},
        {"metric": {"destination_version": "v1"}, "value": [1, "12.5"]}]}}))
    client = prometheus.Prometheus("https://prom.example.com", token="t0k", session=session)
    samples = client.query("up", at=100.0)
    assert session.headers["Authorization"] == "Bearer t0k"
    assert session.calls == [("https://prom.example.com/api/v1/query", {"query": "up", "time": "100.000"},
                              prometheus.TIMEOUT)]
    assert [s.value for s in samples] == [None, 12.5]


def test_retries_are_bounded():
    adapter = prometheus._session(2).get_adapter("https://x")
    assert adapter.max_retries.total == 2 and 503 in adapter.max_retries.status_forcelist


@pytest.mark.parametrize("url", ["prom:9090", "ftp://prom", "http://", "http://h:99999"])
def test_bad_urls_are_usage_errors(url):
    with pytest.raises(UsageError):
        prometheus.check_url(url)


def test_thresholds_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LIMITS.min_requests = 1  # type: ignore[misc]
