"""The security stage: checkov's kubernetes checks on every render, each
render scanned on its own, with results mapped back to target, kind and name.

checkov's command line cannot do this: given several `-d` directories it
scans only the first and reports it once per directory (checkov issue
#7327), and one directory holding every render makes one graph that links
every object to every other by labels (quadratic, and across clusters that
never meet). So each render is scanned on its own, in worker processes
started with the run, while this process runs the other stages.

Two engines scan a render. `direct` (the stage's): checkov's own check
objects called on the objects we parsed, and its six graph policies
evaluated without its graph library (checkov_direct), about 15 times less
CPU per render and a tenth of the import; it is proven equal to checkov's
Runner for one checkov version (tests/test_checkov_equal.py) and refuses
any other. `runner`: checkov's kubernetes Runner itself (checkov_runner),
which `bench` times as the floor.
"""

from __future__ import annotations

import math
import os
import pickle
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
from scripts.core.processes import WorkerPool, stop_pool
from scripts.core.yamlio import load_file
from scripts.stages.checkov_direct import DirectChecks, Record, version_problem
from scripts.stages.checkov_runner import CHECKOV_ENV, RunnerChecks

CONFIG_FILE = "config/checkov.yaml"
ENGINES = ("direct", "runner")
# One direct worker's checks cost about a tenth of kustomize's time per
# render, so one worker keeps pace with this many kustomize processes; the
# Runner, fifteen times dearer, gets one worker per job.
JOBS_PER_DIRECT_WORKER = 8


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
        if ":" in str(item["id"]):
            # checkov's ID:regex form skips by the scanned file's path; a render has none of its own.
            raise InputError(f"skip `{item['id']}`: a skip applies to every render; give the check id alone "
                             "(patterns such as CKV_K8S_* are accepted), without `:`", CONFIG_FILE)
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


def _worker_init(skips: tuple[str, ...], scratch: str, engine: str = "direct") -> None:
    # SIGINT is ignored already (WorkerPool): the parent decides what to do.
    os.environ.update(CHECKOV_ENV)
    import logging

    logging.disable(logging.WARNING)
    _WORKER["checks"] = RunnerChecks(skips, scratch) if engine == "runner" else DirectChecks(skips)


def _ready() -> None:
    """An empty task: the worker has run its initializer (checkov imported)."""


def scan(documents: bytes | None, text: str) -> tuple[list[CheckResult], int]:
    """checkov's kubernetes checks (resource and graph) on one render, and
    how many objects checkov read from it. The direct engine takes the
    render's parsed documents (pickled) and its text; the Runner, the text."""
    checks = _WORKER["checks"]
    if documents is not None and isinstance(checks, DirectChecks):
        records, read = checks.records_of(pickle.loads(documents), text)
    else:
        records, read = checks.records(text)
    return [_failure(r) for r in records if r.result == "FAILED"], read


def _failure(record: Record) -> CheckResult:
    return CheckResult(record.check_id, record.check_name, record.resource, record.guideline)


def _scan_in_worker(documents: bytes | None, text: str) -> tuple[list[CheckResult], int]:
    try:
        return scan(documents, text)
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

    def __init__(self, repo: Path, renders: list[Render] | None = None, jobs: int | None = None,
                 engine: str = "direct"):
        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r}: choose from {', '.join(ENGINES)}")
        self.engine = engine
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.submitted: list[tuple[Render, Future]] = []
        self.lock = threading.Lock()
        skips = tuple(sorted(load_skips(repo)))
        # The Runner reads each render from a file written here; the parent
        # owns it, so it goes even if a worker is killed.
        self.scratch = tempfile.TemporaryDirectory(prefix="checkov-")
        self.pool: ProcessPoolExecutor | None = None
        # Another checkov than the direct checks were proven for: one error
        # for the run, and no scan at all rather than a different one.
        self.refused = version_problem() if engine == "direct" else None
        if self.refused:
            self.scratch.cleanup()
            return
        workers = _workers(engine, jobs, len(renders) if renders is not None else None)
        self.pool = WorkerPool(workers, initializer=_worker_init, initargs=(skips, self.scratch.name, engine))
        # A spawning pool starts a worker only when work arrives and none is
        # idle: one empty task per worker starts them all now, so checkov's
        # import overlaps discovery and the first renders instead of
        # following the first render.
        for _ in range(workers):
            self.pool.submit(_ready)
        for render in renders or []:
            self.submit(render)

    def submit(self, render: Render) -> None:
        """Scan this render (thread-safe; a render that failed is skipped)."""
        if self.pool is None or not render.ok or not (render.text or render._objects):
            return
        documents = None
        if self.engine == "direct":
            # Pickled now, not by the pool's feeder thread later: the other
            # stages read these objects meanwhile, and tests edit them.
            documents = pickle.dumps([o.doc for o in render.objects], pickle.HIGHEST_PROTOCOL)
            if not render.ok:  # kustomize's output did not parse: the render stage reports it
                return
        text = _render_text(render)
        with self.lock:
            if self.pool is None:
                return
            try:
                future = self.pool.submit(_scan_in_worker, documents, text)
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
        if self.refused:
            self.seconds = time.perf_counter() - self.started
            return [Finding(stage="security", target=".", rule="checkov-version", severity="error",
                            message=self.refused)]
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
                # By object, then check: the same order whichever engine scanned.
                for finding in _map(render, sorted(results, key=lambda r: (r.resource, r.check_id))):
                    key = (finding.target, finding.rule, finding.kind, finding.namespace, finding.name)
                    if key not in seen:
                        seen.add(key)
                        findings.append(finding)
        finally:
            self.seconds = time.perf_counter() - self.started
            self.stop()
        return findings


def _workers(engine: str, jobs: int | None, renders: int | None) -> int:
    """Worker processes for a run: `jobs` (default: the cores) for the
    Runner, one per JOBS_PER_DIRECT_WORKER jobs for the direct checks, never
    more than there are renders."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    workers = jobs if engine == "runner" else math.ceil(jobs / JOBS_PER_DIRECT_WORKER)
    return min(workers, max(1, renders)) if renders is not None else workers


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


def run(repo: Path, renders: list[Render], jobs: int | None = None, engine: str = "direct") -> list[Finding]:
    """checkov over every render, waiting for it."""
    if not any(r.ok and (r.text or r._objects) for r in renders):
        return []
    return CheckovRun(repo, renders, jobs, engine).findings()
