"""config/canary.yaml: the thresholds `canary analyze` judges v2 by, and the
weight schedule `canary step` follows, per environment (validated on load)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scripts.core.errors import InputError
from scripts.core.yamlio import load_file

# The environment variable holding Prometheus' bearer token (here, not in
# prometheus.py, so --help does not import an HTTP client to print it).
TOKEN_ENV = "PROMETHEUS_TOKEN"

CONFIG_FILE = "config/canary.yaml"
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class Thresholds:
    window: str
    min_requests: int
    error_rate_max: float
    error_rate_margin: float
    latency_p99_max_ms: float
    latency_p99_ratio_max: float
    latency_p99_slack_ms: float
    model_load_failures_max: int
    drift_score_max: float
    schedule: tuple[int, ...]

    def next_weight(self, current: int) -> int | None:
        """The schedule's next step above the current weight (None at 100)."""
        return next((step for step in self.schedule if step > current), None)


_KINDS: dict[str, tuple[type, str]] = {
    "window": (str, "a Prometheus duration such as 10m"),
    "min_requests": (int, "a whole number of requests, at least 1"),
    "error_rate_max": (float, "a fraction between 0 and 1"),
    "error_rate_margin": (float, "a fraction between 0 and 1"),
    "latency_p99_max_ms": (float, "milliseconds, more than 0"),
    "latency_p99_ratio_max": (float, "a ratio of at least 1"),
    "latency_p99_slack_ms": (float, "milliseconds, 0 or more"),
    "model_load_failures_max": (int, "a whole number, 0 or more"),
    "drift_score_max": (float, "a score between 0 and 1"),
    "schedule": (list, "a rising list of weights from 1 to 100 that ends at 100"),
}


def window_seconds(window: str) -> float:
    match = _DURATION.match(window)
    if not match:
        raise ValueError(window)
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _check(key: str, value: object, where: str) -> object:
    kind, expected = _KINDS[key]
    problem = f"{where}.{key} must be {expected}, found {value!r}"
    if isinstance(value, bool):
        raise InputError(problem, CONFIG_FILE)
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind):
        raise InputError(problem, CONFIG_FILE)
    ok = {
        "window": lambda v: bool(_DURATION.match(v)) and window_seconds(v) > 0,
        "min_requests": lambda v: v >= 1,
        "error_rate_max": lambda v: 0 <= v <= 1,
        "error_rate_margin": lambda v: 0 <= v <= 1,
        "latency_p99_max_ms": lambda v: v > 0,
        "latency_p99_ratio_max": lambda v: v >= 1,
        "latency_p99_slack_ms": lambda v: v >= 0,
        "model_load_failures_max": lambda v: v >= 0,
        "drift_score_max": lambda v: 0 <= v <= 1,
        "schedule": lambda v: bool(v) and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 100
                                              for s in v)
        and all(a < b for a, b in zip(v, v[1:], strict=False)) and v[-1] == 100,
    }[key]
    if not ok(value):
        raise InputError(problem, CONFIG_FILE)
    return tuple(value) if key == "schedule" else value


def _section(data: object, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a mapping of threshold names to values", CONFIG_FILE)
    unknown = sorted(set(data) - set(_KINDS))
    if unknown:
        raise InputError(f"{where}.{unknown[0]}: unknown setting (known: {', '.join(_KINDS)})", CONFIG_FILE)
    return {key: _check(key, value, where) for key, value in data.items()}


def load(repo: Path, environments: list[str]) -> dict[str, Thresholds]:
    """Thresholds per environment; every key checked, every environment named
    in the file must exist under overlays/."""
    path = repo / CONFIG_FILE
    if not path.is_file():
        raise InputError("missing: canary analysis needs its thresholds", CONFIG_FILE)
    data = load_file(path, CONFIG_FILE)
    if not isinstance(data, dict):
        raise InputError("expected a mapping with `defaults` and `environments`", CONFIG_FILE)
    unknown = sorted(set(data) - {"defaults", "environments"})
    if unknown:
        raise InputError(f"{unknown[0]}: unknown key (expected `defaults` and `environments`)", CONFIG_FILE)
    defaults = _section(data.get("defaults"), "defaults")
    missing = [key for key in _KINDS if key not in defaults]
    if missing:
        raise InputError(f"defaults lacks {', '.join(missing)}", CONFIG_FILE)
    per_env = data.get("environments") or {}
    if not isinstance(per_env, dict):
        raise InputError("environments must map an environment name to its overrides", CONFIG_FILE)
    strangers = sorted(set(per_env) - set(environments))
    if strangers:
        raise InputError(f"environments.{strangers[0]}: no such overlay (overlays/: {', '.join(environments)})",
                         CONFIG_FILE)
    return {env: Thresholds(**{**defaults, **_section(per_env.get(env), f"environments.{env}")})
            for env in environments}
