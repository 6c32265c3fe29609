"""The security stage: checkov's kubernetes checks on every render, each
render scanned on its own, with results mapped back to target, kind and name.

checkov's command line cannot do this: given several `-d` directories it
scans only the first and reports it once per directory (checkov issue
#7327), and one directory holding every render makes one graph that links
every object to every other by labels (quadratic, and across clusters that
never meet). So checkov's kubernetes `Runner` is called in process, one
render at a time, in worker processes that each pay checkov's import once;
the renders are dealt over the workers while this process runs the other
stages. Each render is its own graph, as it would be scanned alone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import threading
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import yaml

from scripts.core.errors import InputError
from scripts.core.model import Finding, Render, Resource, finding_for
from scripts.core.processes import stop_pool
from scripts.core.yamlio import load_file

CONFIG_FILE = "config/checkov.yaml"
# What checkov reads from the environment: no calls home for guideline
# mappings or package scans; the same settings in every worker.
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR",
               # Our workers are the parallelism: checkov forking processes of its
               # own per render costs time and leaves grandchildren on a stop.
               "CHECKOV_PARALLELIZATION_TYPE": "none"}


def load_skips(repo: Path) -> dict[str, str]:
    """check id -> reason, from the committed config; a skip without a reason is refused."""
    path = repo / CONFIG_FILE
    if not path.is_file():
        return {}
    data = load_file(path, CONFIG_FILE) or {}
    skips = data.get("skip", []) if isinstance(data, dict) else None
    if not isinstance(skips, list):
        raise InputError("`skip` must be a list of {id, reason}", CONFIG_FILE)
    out = {}
    for item in skips:
        if not isinstance(item, dict) or not item.get("id") or not str(item.get("reason") or "").strip():
            raise InputError("every checkov skip needs an `id` and a non-empty `reason`", CONFIG_FILE)
        out[str(item["id"])] = str(item["reason"])
    return out


@dataclass(frozen=True)
class CheckResult:
    """One failed checkov check on one object, as a worker returns it."""

    check_id: str
    check_name: str
    resource: str  # checkov's "Kind.namespace.name"
    guideline: str | None = None


# --- worker side: one checkov import per process, then one render per call ---

_WORKER: dict = {}


def _worker_init(skips: tuple[str, ...], scratch: str) -> None:
    # Ctrl-C reaches the whole process group; the parent decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(CHECKOV_ENV)
    import logging

    logging.disable(logging.WARNING)
    from checkov.kubernetes.runner import Runner
    from checkov.runner_filter import RunnerFilter

    _WORKER["Runner"] = Runner
    _WORKER["filter"] = lambda: RunnerFilter(framework=["kubernetes"], skip_checks=list(skips),
                                             run_image_referencer=False, show_progress_bar=False)
    _WORKER["dir"] = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=scratch)


def _ready() -> None:
    """An empty task: the worker has run its initializer (checkov imported)."""


def scan_text(text: str) -> tuple[list[CheckResult], int]:
    """checkov's kubernetes checks (resource and graph) on one render, and
    how many objects checkov read from it."""
    path = os.path.join(_WORKER["dir"], "render.yaml")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)
    runner = _WORKER["Runner"]()
    try:
        report = runner.run(root_folder=None, files=[path], runner_filter=_WORKER["filter"]())
    finally:
        os.unlink(path)
    reports = report if isinstance(report, list) else [report]
    read = sum(len(entities) for entities in (runner.definitions or {}).values())
    return [CheckResult(str(c.check_id), str(c.check_name), str(c.resource), c.guideline or None)
            for r in reports for c in r.failed_checks], read


def _scan_in_worker(text: str) -> tuple[list[CheckResult], int]:
    try:
        return scan_text(text)
    except Exception as exc:  # noqa: BLE001 - one render's failure is that render's finding
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
        raise RuntimeError(f"{type(exc).__name__}: {exc}{where}") from None


# --- parent side ---


def _parse_resource(resource: str) -> tuple[str, str | None, str]:
    kind, _, rest = resource.partition(".")
    namespace, _, name = rest.partition(".")
    return kind, namespace or None, name


def _render_text(render: Render) -> str:
    if render.text is not None:
        return render.text
    return yaml.safe_dump_all([o.doc for o in render.objects], sort_keys=False)


class CheckovRun:
    """checkov in worker processes, started before the renders exist so
    its import overlaps discovery; each render is handed over as soon as it
    is made (`submit`), and `findings()` waits for them all."""

    def __init__(self, repo: Path, renders: list[Render] | None = None, jobs: int | None = None):
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.submitted: list[tuple[Render, Future]] = []
        self.lock = threading.Lock()
        skips = tuple(sorted(load_skips(repo)))
        # The workers write each render to a file here (checkov reads files);
        # the parent owns it, so it goes even if a worker is killed.
        self.scratch = tempfile.TemporaryDirectory(prefix="checkov-")
        workers = max(1, jobs or os.cpu_count() or 1)
        if renders is not None:
            workers = min(workers, max(1, len(renders)))
        # spawn, not fork: this process runs threads (renders, lint), and a
        # fork copies their locks in whatever state they were.
        self.pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init, initargs=(skips, self.scratch.name))
        # A spawning pool starts a worker only when work arrives and none is
        # idle: one empty task per worker starts them all now, so checkov's
        # import (about 1.5 s of CPU each) overlaps discovery and the first
        # renders instead of following the first render.
        for _ in range(workers):
            self.pool.submit(_ready)
        for render in renders or []:
            self.submit(render)

    def submit(self, render: Render) -> None:
        """Scan this render (thread-safe; a render that failed is skipped)."""
        if not render.ok or not (render.text or render._objects):
            return
        with self.lock:
            if self.pool is None:
                return
            try:
                future = self.pool.submit(_scan_in_worker, _render_text(render))
            except BrokenProcessPool as exc:  # a worker died already: this render's finding, not a crash
                future = Future()
                future.set_exception(exc)
            self.submitted.append((render, future))

    def stop(self) -> None:
        """End checkov early (the run failed elsewhere, or was interrupted)."""
        with self.lock:
            pool, self.pool = self.pool, None
        if pool is None:
            return
        for _, future in self.submitted:
            future.cancel()
        stop_pool(pool)
        self.scratch.cleanup()

    def findings(self) -> list[Finding]:
        if self.pool is None:
            return []
        findings: list[Finding] = []
        seen: set[tuple] = set()
        try:
            # In render order, whatever order they were handed over in.
            for render, future in sorted(self.submitted, key=lambda pair: pair[0].target.path):
                try:
                    results, read = future.result()
                except BrokenProcessPool:
                    findings.append(_failed(render, "a checkov worker process died (out of memory?)"))
                    continue
                except RuntimeError as exc:
                    findings.append(_failed(render, str(exc)))
                    continue
                if read < len(render.objects):
                    # checkov drops a file it cannot parse without a word:
                    # unscanned objects must not read as a pass.
                    findings.append(_failed(render, f"checkov read {read} of its {len(render.objects)} objects"))
                for finding in _map(render, results):
                    key = (finding.target, finding.rule, finding.kind, finding.namespace, finding.name)
                    if key not in seen:
                        seen.add(key)
                        findings.append(finding)
        finally:
            self.seconds = time.perf_counter() - self.started
            self.stop()
        return findings


def _failed(render: Render, reason: str) -> Finding:
    return Finding(stage="security", target=render.target.path, rule="checkov-failed", severity="error",
                   message=f"checkov could not scan this render: {reason}")


def _map(render: Render, results: list[CheckResult]) -> list[Finding]:
    """checkov's results on one render as findings on its objects."""
    by_key: dict[tuple[str, str | None, str], Resource] = {}
    by_name: dict[tuple[str, str], Resource] = {}
    for obj in render.objects:
        by_key.setdefault((obj.kind, obj.namespace, obj.name), obj)
        by_name.setdefault((obj.kind, obj.name), obj)
    findings = []
    for result in results:
        kind, namespace, name = _parse_resource(result.resource)
        # checkov puts cluster-scoped objects in namespace "default".
        obj = by_key.get((kind, namespace, name)) or by_name.get((kind, name))
        message = f"{result.check_name} ({result.check_id})"
        if result.guideline:
            message += f"; see {result.guideline}"
        rule = f"checkov/{result.check_id}"
        if obj is not None:
            findings.append(finding_for(obj, stage="security", target=render.target.path, rule=rule,
                                        message=message))
        else:
            findings.append(Finding(stage="security", target=render.target.path, rule=rule, severity="error",
                                    message=message, kind=kind or None, name=name or None,
                                    namespace=namespace))
    return findings


def run(repo: Path, renders: list[Render], jobs: int | None = None) -> list[Finding]:
    """checkov over every render, waiting for it."""
    if not any(r.ok and (r.text or r._objects) for r in renders):
        return []
    return CheckovRun(repo, renders, jobs).findings()
