"""A real Prometheus for the tests: Debian's `prometheus` package, started on
127.0.0.1 at a free port, with synthetic Istio series backfilled by
`promtool tsdb create-blocks-from openmetrics`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
STEP = 15  # seconds between samples, as a scrape interval
SPAN = 40 * 60  # seconds of history written


def available() -> bool:
    return bool(shutil.which("prometheus") and shutil.which("promtool"))


@dataclass
class Slot:
    """Traffic of one version in one namespace: requests per second, the
    share that fails with 5xx, how latency spreads over the buckets
    (upper bound in ms -> share of requests at or under it), and model load
    failures per hour."""
    rate: float
    error_share: float = 0.0
    latency: dict[float, float] = field(default_factory=lambda: {50: 0.90, 100: 0.98, 250: 0.999, 500: 1.0})
    load_failures_per_hour: float = 0.0
    drift_score: float | None = None  # a gauge, when the slot reports one


def _labels(namespace: str, version: str, extra: str = "") -> str:
    return (f'reporter="destination",destination_workload_namespace="{namespace}",'
            f'destination_service_name="ai-inference-service",destination_version="{version}"{extra}')


def openmetrics(scenarios: dict[str, dict[str, Slot]], end: float) -> str:
    """Counters and histograms for each namespace and version, one sample
    every STEP seconds for SPAN seconds up to `end`."""
    times = [end - SPAN + i * STEP for i in range(SPAN // STEP + 1)]
    requests_lines, histogram_lines, load_lines, drift_lines = [], [], [], []
    for namespace, slots in scenarios.items():
        for version, slot in slots.items():
            for code, share in (("200", 1 - slot.error_share), ("503", slot.error_share)):
                labels = _labels(namespace, version, ',response_code="' + code + '"')
                series = f"istio_requests_total{{{labels}}}"
                requests_lines += [f"{series} {slot.rate * share * (t - times[0]):.3f} {t:.3f}" for t in times]
            for bound in (*BUCKETS, "+Inf"):
                covered = 1.0 if bound == "+Inf" else max(
                    [share for upper, share in slot.latency.items() if upper <= bound], default=0.0)
                labels = _labels(namespace, version, ',le="' + str(bound) + '"')
                series = f"istio_request_duration_milliseconds_bucket{{{labels}}}"
                histogram_lines += [f"{series} {slot.rate * covered * (t - times[0]):.3f} {t:.3f}" for t in times]
            for suffix, per_request in (("count", 1.0), ("sum", 60.0)):
                series = f"istio_request_duration_milliseconds_{suffix}{{{_labels(namespace, version)}}}"
                histogram_lines += [f"{series} {slot.rate * per_request * (t - times[0]):.3f} {t:.3f}"
                                    for t in times]
            series = f'model_load_failures_total{{job="ai-inference-service",namespace="{namespace}",' \
                     f'version="{version}"}}'
            load_lines += [f"{series} {slot.load_failures_per_hour * (t - times[0]) / 3600:.3f} {t:.3f}"
                           for t in times]
            if slot.drift_score is not None:
                series = f'model_drift_score{{job="ai-inference-service",namespace="{namespace}",' \
                         f'version="{version}"}}'
                drift_lines += [f"{series} {slot.drift_score:.3f} {t:.3f}" for t in times]
    return "\n".join([
        "# TYPE istio_requests counter", *requests_lines,
        "# TYPE istio_request_duration_milliseconds histogram", *histogram_lines,
        "# TYPE model_load_failures counter", *load_lines,
        "# TYPE model_drift_score gauge", *drift_lines,
        "# EOF", ""])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def prometheus(directory: Path, scenarios: dict[str, dict[str, Slot]]) -> Iterator[str]:
    """A running Prometheus holding the scenarios' series; yields its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    source = directory / "series.om"
    source.write_text(openmetrics(scenarios, time.time() - 30))
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                   check=True, capture_output=True, text=True, timeout=120)
    config = directory / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    port = _free_port()
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=10y"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {(directory / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
