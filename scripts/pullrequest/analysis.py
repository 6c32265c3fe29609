"""`canary analyze`: is the canary slot (v2) healthy enough for more traffic?

The evidence is what the mesh already measures: Istio's standard metrics as
the destination proxies report them (`istio_requests_total` for traffic and
the 5xx share, `istio_request_duration_milliseconds_bucket` for p99 latency),
for the Service's v1 and v2 workloads in the environment's namespace, plus
the model server's own metrics that monitoring/ alerts on:
`model_load_failures_total` and `model_drift_score` (the model's behaviour on
live inputs). Shares are judged with 95 % confidence bounds, so a handful of errors
among thousands of requests is noise, not a regression.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from scripts.pullrequest.canaryconfig import Thresholds
from scripts.pullrequest.prometheus import Prometheus

SERVICE = "ai-inference-service"
Z95 = 1.959964  # two-sided 95 %
VERDICT_EXIT = {"healthy": 0, "unhealthy": 1, "inconclusive": 3}


@dataclass
class SlotStats:
    requests: float = 0.0
    errors: float = 0.0  # 5xx responses
    p99_ms: float | None = None
    load_failures: float = 0.0
    drift_score: float | None = None  # highest model_drift_score in the window; None: not reported

    @property
    def error_share(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None


@dataclass
class Check:
    name: str
    v1: str
    v2: str
    threshold: str
    verdict: str  # pass | fail | inconclusive | n/a
    detail: str = ""


@dataclass
class Analysis:
    env: str
    namespace: str
    window: str
    prometheus: str
    v1: SlotStats
    v2: SlotStats
    checks: list[Check] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        verdicts = {c.verdict for c in self.checks}
        return "unhealthy" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "healthy"

    @property
    def exit_code(self) -> int:
        return VERDICT_EXIT[self.verdict]

    def to_json(self) -> dict:
        return {"env": self.env, "namespace": self.namespace, "window": self.window,
                "prometheus": self.prometheus, "verdict": self.verdict, "exit_code": self.exit_code,
                "checks": [asdict(c) for c in self.checks], "v1": asdict(self.v1), "v2": asdict(self.v2)}


def _selector(namespace: str, extra: str = "") -> str:
    return (f'reporter="destination",destination_workload_namespace="{namespace}",'
            f'destination_service_name="{SERVICE}"{extra}')


def queries(namespace: str, window: str) -> dict[str, str]:
    """The PromQL, by what it measures; each answers by version."""
    base = _selector(namespace)
    failed = _selector(namespace, ',response_code=~"5.."')
    return {
        "requests": f"sum by (destination_version) (increase(istio_requests_total{{{base}}}[{window}]))",
        "errors": "sum by (destination_version) "
                  f"(increase(istio_requests_total{{{failed}}}[{window}]))",
        "p99_ms": "histogram_quantile(0.99, sum by (destination_version, le) "
                  f"(rate(istio_request_duration_milliseconds_bucket{{{base}}}[{window}])))",
        "load_failures": "sum by (version) (increase(model_load_failures_total"
                         f"{{job=\"{SERVICE}\",namespace=\"{namespace}\"}}[{window}]))",
        "drift_score": "max by (version) (max_over_time(model_drift_score"
                       f"{{job=\"{SERVICE}\",namespace=\"{namespace}\"}}[{window}]))",
    }


def collect(prometheus: Prometheus, namespace: str, window: str, at: float | None = None
            ) -> tuple[SlotStats, SlotStats]:
    stats = {"v1": SlotStats(), "v2": SlotStats()}
    for measure, expression in queries(namespace, window).items():
        for sample in prometheus.query(expression, at):
            slot = sample.labels.get("destination_version") or sample.labels.get("version")
            if slot in stats:
                value = sample.value
                setattr(stats[slot], measure, value if measure in ("p99_ms", "drift_score") else (value or 0.0))
    return stats["v1"], stats["v2"]


def wilson(errors: float, total: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a share: honest at small counts and at 0."""
    if total <= 0:
        return 0.0, 1.0
    share = errors / total
    centre = share + z * z / (2 * total)
    spread = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    denominator = 1 + z * z / total
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def difference_lower_bound(e1: float, n1: float, e2: float, n2: float, z: float = Z95) -> float:
    """Lower confidence bound of (v2's share - v1's share), Agresti-Caffo
    (one error and one success added to each side keeps it sane at 0)."""
    p1, p2 = (e1 + 1) / (n1 + 2), (e2 + 1) / (n2 + 2)
    return (p2 - p1) - z * math.sqrt(p1 * (1 - p1) / (n1 + 2) + p2 * (1 - p2) / (n2 + 2))


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.2f}%"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def judge(v1: SlotStats, v2: SlotStats, limits: Thresholds) -> list[Check]:
    enough = v2.requests >= limits.min_requests
    checks = [Check("canary traffic", f"{v1.requests:.0f}", f"{v2.requests:.0f}", f">= {limits.min_requests}",
                    "pass" if enough else "inconclusive",
                    "" if enough else "not enough canary requests in the window to judge")]

    low, _ = wilson(v2.errors, v2.requests)
    if v2.requests > 0 and low > limits.error_rate_max:
        verdict, detail = "fail", f"v2's 5xx share is above the ceiling even at its 95 % lower bound ({low:.2%})"
    else:
        verdict, detail = ("pass", "") if enough else ("inconclusive", "too few requests")
    checks.append(Check("5xx share", _percent(v1.error_share), _percent(v2.error_share),
                        f"<= {_percent(limits.error_rate_max)}", verdict, detail))

    if v1.requests <= 0:
        checks.append(Check("5xx share vs v1", "-", _percent(v2.error_share),
                            f"<= v1 + {_percent(limits.error_rate_margin)}", "n/a", "v1 served no requests"))
    else:
        lower = difference_lower_bound(v1.errors, v1.requests, v2.errors, v2.requests)
        if v2.requests > 0 and lower > limits.error_rate_margin:
            verdict, detail = "fail", f"v2 fails more than v1 by at least {lower:.2%} (95 % lower bound)"
        else:
            verdict, detail = ("pass", "") if enough else ("inconclusive", "too few requests")
        checks.append(Check("5xx share vs v1", _percent(v1.error_share), _percent(v2.error_share),
                            f"<= v1 + {_percent(limits.error_rate_margin)}", verdict, detail))

    if not enough or v2.p99_ms is None:
        verdict, detail = "inconclusive", "too few requests" if not enough else "no latency data for v2"
    elif v2.p99_ms > limits.latency_p99_max_ms:
        verdict, detail = "fail", "v2's p99 latency is above the ceiling"
    else:
        verdict, detail = "pass", ""
    checks.append(Check("p99 latency", _ms(v1.p99_ms), _ms(v2.p99_ms), f"<= {_ms(limits.latency_p99_max_ms)}",
                        verdict, detail))

    threshold = f"<= v1 x {limits.latency_p99_ratio_max:g}"
    if v1.p99_ms is None or v1.requests <= 0:
        checks.append(Check("p99 latency vs v1", _ms(v1.p99_ms), _ms(v2.p99_ms), threshold, "n/a",
                            "no latency data for v1"))
    elif not enough or v2.p99_ms is None:
        checks.append(Check("p99 latency vs v1", _ms(v1.p99_ms), _ms(v2.p99_ms), threshold, "inconclusive",
                            "too few requests" if not enough else "no latency data for v2"))
    else:
        slower = v2.p99_ms > v1.p99_ms * limits.latency_p99_ratio_max \
            and v2.p99_ms - v1.p99_ms > limits.latency_p99_slack_ms
        checks.append(Check("p99 latency vs v1", _ms(v1.p99_ms), _ms(v2.p99_ms), threshold,
                            "fail" if slower else "pass",
                            f"v2 is {v2.p99_ms / v1.p99_ms:.2f}x v1" if slower else ""))

    if v2.drift_score is None:
        checks.append(Check("model drift score", _score(v1.drift_score), "-", f"<= {limits.drift_score_max:g}",
                            "n/a", "v2 reports no model_drift_score"))
    else:
        drifted = v2.drift_score > limits.drift_score_max
        checks.append(Check("model drift score", _score(v1.drift_score), _score(v2.drift_score),
                            f"<= {limits.drift_score_max:g}", "fail" if drifted else "pass",
                            "v2's live inputs drift from its training data" if drifted else ""))

    failed_loads = v2.load_failures > limits.model_load_failures_max
    checks.append(Check("model load failures", f"{v1.load_failures:.0f}", f"{v2.load_failures:.0f}",
                        f"<= {limits.model_load_failures_max}", "fail" if failed_loads else "pass",
                        "v2's pods failed to load the model" if failed_loads else ""))
    return checks


def analyze(prometheus: Prometheus, env: str, namespace: str, limits: Thresholds, window: str | None = None,
            at: float | None = None) -> Analysis:
    window = window or limits.window
    v1, v2 = collect(prometheus, namespace, window, at)
    return Analysis(env=env, namespace=namespace, window=window, prometheus=prometheus.where,
                    v1=v1, v2=v2, checks=judge(v1, v2, limits))
