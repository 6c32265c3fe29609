"""`bench`: a synthetic platform repository of N copies of this service,
validated in full, with stage timings and peak memory.

Each copy lives in services/svc-NNN/ with every overlay, component and
cluster entry, renamed (service, namespaces, images, Flux paths) so no two
copies collide. The repository's config/ and schemas/ are copied to the
top, so the copies are validated exactly as this repository is.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scripts.core.errors import UsageError
from scripts.core.model import STAGES

SERVICE_DIRS = ("base", "istio", "monitoring", "overlays", "clusters")
SHARED = ("config", "schemas", ".yamllint.yaml")
REPO = Path(__file__).resolve().parent.parent
# The overlay the warm and --changed figures edit, in each kind of tree.
SYNTHETIC_EDITED_OVERLAY = "services/svc-001/overlays/prod"
OWN_EDITED_OVERLAY = "overlays/prod"


def rename(text: str, number: int) -> str:
    tag = f"svc-{number:03d}"
    return (text.replace("ai-inference-service", f"{tag}-service")
                .replace("ai-inference-", f"{tag}-")
                .replace("path: ./overlays/", f"path: ./services/{tag}/overlays/")
                # the GitRepository's artifact keeps this copy's directories
                .replace("    !/", f"    !/services/{tag}/"))


def copy_entries(source: Path, out: Path, entries: tuple[str, ...]) -> None:
    """Copy top-level files and directories of a tree, those that exist."""
    for entry in entries:
        src = source / entry
        if src.is_dir():
            shutil.copytree(src, out / entry)
        elif src.is_file():
            shutil.copy2(src, out / entry)


def service_config(text: str, services: int) -> str:
    """config/policy.yaml for the copies: the settings that name the service
    (the model ConfigMap, the series its Service exports) name every copy."""
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        key = line.strip().rstrip(":")
        indent = len(line) - len(line.lstrip())
        if line.strip().startswith("configmap: ai-inference-"):
            name = line.split(":", 1)[1].strip()
            out.append(" " * indent + "configmap:")
            out += [" " * (indent + 2) + "- " + rename(name, n) for n in range(1, services + 1)]
            index += 1
            continue
        if line.strip().endswith(":") and key.startswith("ai-inference-") and out and out[-1].strip() == "exports:":
            block = [line]
            index += 1
            while index < len(lines) and len(lines[index]) - len(lines[index].lstrip()) > indent:
                block.append(lines[index])
                index += 1
            out += [rename(entry, n) for n in range(1, services + 1) for entry in block]
            continue
        out.append(line)
        index += 1
    return "\n".join(out) + "\n"


def write_tree(out: Path, services: int, source: Path = REPO) -> None:
    if out.exists():
        raise UsageError(f"--out {out}: already exists (bench writes a new tree)")
    out.mkdir(parents=True)
    copy_entries(source, out, SHARED)
    policy = out / "config" / "policy.yaml"
    if policy.is_file():
        policy.write_text(service_config(policy.read_text(encoding="utf-8"), services), encoding="utf-8")
    files = [p for d in SERVICE_DIRS for p in sorted((source / d).rglob("*")) if p.is_file()]
    texts = {p.relative_to(source): p.read_text(encoding="utf-8") for p in files}
    for number in range(1, services + 1):
        root = out / "services" / f"svc-{number:03d}"
        for rel, text in texts.items():
            target = root / rename(rel.as_posix(), number)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rename(text, number), encoding="utf-8")


def write_own_tree(out: Path, source: Path = REPO) -> None:
    """A copy of this repository's own tree (its roots as they are)."""
    if out.exists():
        raise UsageError(f"--out {out}: already exists (bench writes a new tree)")
    out.mkdir(parents=True)
    copy_entries(source, out, SERVICE_DIRS + SHARED)


def peak_rss_mb() -> float:
    """Peak resident memory of this process or of any one child (kustomize,
    checkov), whichever is larger."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # ru_maxrss is in KiB on Linux


def render_floor(repo: Path, renders: list, jobs: int) -> float:
    """Seconds to run kustomize alone on every root validate rendered,
    `jobs` at a time: the same command on the same input. A Flux build's
    input (a mirror of the tree with the controller's edits) is prepared
    before the clock starts."""
    from scripts.loading import flux
    from scripts.loading.render import Limits, kubectl_binary, kustomize_env

    kubectl = kubectl_binary()
    env = kustomize_env(Limits.load(repo))  # the same way validate runs it
    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        commands = []
        for number, render in enumerate(renders):
            target = render.target
            if target.flux is not None:
                leaf = flux.prepare(repo, target, Path(tmp, str(number)))
                commands.append(flux.kustomize_command(kubectl, leaf))
            else:
                commands.append([kubectl, "kustomize", str(repo / target.directory)])

        def one(command: list[str]) -> None:
            subprocess.run(command, capture_output=True, check=False, env=env)

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, commands))
        return time.perf_counter() - started


def measure_changed(out: Path, jobs: int | None, repeat: int = 1, edited: str = SYNTHETIC_EDITED_OVERLAY
                    ) -> tuple[list[float], list[float], list[str]]:
    """Seconds for `validate --changed` after editing one overlay (canary
    weights of svc-001's prod, or of prod in this repository's own tree),
    and for validating that overlay alone; one of each per repetition."""
    from scripts.validate import Options
    from scripts.validate import run as validate

    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid")
    for args in (["init", "-q", "-b", "main"], ["add", "-A", "--", ".", ":!.cache"], ["commit", "-qm", "bench tree"]):
        subprocess.run(["git", "-C", str(out), *args], check=True, capture_output=True, env=env)
    overlay = out / edited
    edit_overlay(out, 10, edited)  # weights no warm run of `run` left them at

    changed_runs, single_runs = [], []
    paths: list[str] = []
    for _ in range(repeat):
        started = time.perf_counter()
        validate(Options(repo=out, targets=[str(overlay)], jobs=jobs, cache=False))
        single_runs.append(time.perf_counter() - started)

        started = time.perf_counter()
        result = validate(Options(repo=out, changed=True, base="HEAD", jobs=jobs))
        changed_runs.append(time.perf_counter() - started)
        paths = [render.target.path for render in result.renders]
    return changed_runs, single_runs, paths


def security_floor(repo: Path, renders: list, jobs: int) -> float:
    """Seconds for checkov alone on every render, the cheapest correct way
    its interfaces allow: its kubernetes Runner in `jobs` worker processes
    (checkov's import paid once per worker), each render its own scan."""
    from scripts.stages import security

    started = time.perf_counter()
    security.run(repo, renders, jobs, engine="runner")
    return time.perf_counter() - started


@dataclass
class Floor:
    """Other people's programs alone, measured in the same run as validate."""

    kustomize: float
    checkov: float

    @property
    def seconds(self) -> float:
        return self.kustomize + self.checkov


def measure_floor(repo: Path, renders: list, jobs: int) -> Floor:
    # kustomize on every root validate rendered, Flux builds included, then
    # checkov on every render: one after the other, each with the cores to itself.
    return Floor(kustomize=render_floor(repo, renders, jobs), checkov=security_floor(repo, renders, jobs))


def cpu_seconds() -> float:
    """CPU-seconds of this process and of every child it has waited for
    (kustomize, checkov's and lint's workers), user and system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Timed:
    """One validate: wall seconds and CPU-seconds of every process."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class RunFigures:
    """What bench reports of a validate run, without its renders."""

    ok: bool
    findings: int
    targets: int
    objects: int
    timings: dict

    @classmethod
    def of(cls, report) -> RunFigures:  # noqa: ANN001 - validate's Report, imported late
        return cls(report.ok, len(report.findings), len(report.renders),
                   sum(len(r.objects) for r in report.renders), dict(report.timings))


def timed(options) -> tuple[Timed, object]:  # noqa: ANN001 - validate's Options, imported late
    from scripts.validate import run as validate

    cpu0, started = cpu_seconds(), time.perf_counter()
    result = validate(options)
    return Timed(time.perf_counter() - started, cpu_seconds() - cpu0), result


def timed_process(arguments: list[str]) -> Timed:
    """One `python -m scripts validate` as a user starts it (interpreter,
    imports and all): wall seconds and the CPU-seconds of it and its children."""
    command = [sys.executable, "-m", "scripts", "validate", "-q", *arguments]
    cpu0, started = cpu_seconds(), time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    if proc.returncode not in (0, 1):
        raise UsageError(f"bench: {' '.join(command[3:])} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return Timed(time.perf_counter() - started, cpu_seconds() - cpu0)


def edit_overlay(out: Path, number: int, overlay: str = SYNTHETIC_EDITED_OVERLAY) -> None:
    """A one-line edit of one overlay (the canary weights), different each time."""
    weights = out / overlay / "canary-weights.yaml"
    text = weights.read_text(encoding="utf-8")
    new = 80 - number % 20
    weights.write_text(re.sub(r"value: \d+\n(.*?)value: \d+", f"value: {new}\n\\1value: {100 - new}", text,
                              count=1, flags=re.S), encoding="utf-8")


def _spread(values: list[float]) -> str:
    """The median, and the range when there are several runs."""
    middle = f"{statistics.median(values):.2f}"
    runs = ", ".join(f"{v:.2f}" for v in values)
    return middle if len(values) == 1 else f"{middle} (median of {len(values)}: {runs})"


def _runs(values: list[float]) -> str:
    """The best of several runs, and all of them when there were several."""
    best = f"{min(values):.2f}s"
    return best if len(values) == 1 else f"{best} (best of {len(values)}: {', '.join(f'{v:.2f}' for v in values)})"


def run(services: int | None, out: Path, report_json: str | None, jobs: int | None = None,
        with_changed: bool = True, repeat: int = 1) -> dict:
    """Validate the synthetic tree and measure the floor `repeat` times,
    alternately (validate, kustomize alone, checkov alone, and again), each
    validate with a cold lint cache; each figure is the fastest of its runs.
    This machine's speed drifts by 10 % and more over minutes: the fastest
    run is the one least disturbed, for validate and floor alike."""
    from scripts.reports import report
    from scripts.stages import schema
    from scripts.validate import Options

    if services is not None and services < 1:
        raise UsageError("--services must be at least 1")
    if repeat < 1:
        raise UsageError("--repeat must be at least 1")
    if services is None:  # this repository's own tree
        write_own_tree(out)
        overlay = OWN_EDITED_OVERLAY
    else:
        write_tree(out, services)
        overlay = SYNTHETIC_EDITED_OVERLAY
    job_flags = ["--jobs", str(jobs)] if jobs else []
    workers = jobs or os.cpu_count() or 1
    totals, floors = [], []
    result: RunFigures | None = None  # of the fastest cold run: its figures, not its renders
    latest = None
    colds: list[Timed] = []
    warms: list[Timed] = []  # nothing changed since the cold run
    edited: list[Timed] = []  # one overlay edited since the last run
    alone: list[Timed] = []  # that overlay alone, cold
    floor_cpu: list[float] = []
    for number in range(repeat):
        del latest  # one run's renders alive at a time: the peak memory is a validate's, not bench's
        shutil.rmtree(out / ".cache", ignore_errors=True)  # cold: no lint cache, no render cache
        cold, latest = timed(Options(repo=out, jobs=jobs, progress=True))
        colds.append(cold)
        totals.append(latest.timings["total"])
        cpu0 = cpu_seconds()
        floors.append(measure_floor(out, latest.renders, workers))
        floor_cpu.append(cpu_seconds() - cpu0)
        if result is None or latest.timings["total"] < result.timings["total"]:
            result = RunFigures.of(latest)
            if report_json:
                report.write_json(report_json, latest)
        # Warm runs are whole processes, as a user (or a pre-commit hook) starts them.
        warms.append(timed_process(["--repo", str(out), *job_flags]))
        edit_overlay(out, number, overlay)
        edited.append(timed_process(["--repo", str(out), *job_flags]))
        alone.append(timed_process(["--repo", str(out), "--target", str(out / overlay), "--no-cache", *job_flags]))
    assert result is not None and latest is not None
    timings = {stage: round(value, 3) for stage, value in result.timings.items()
               if value is not None and stage in (*STAGES, "total")}
    api_seconds = result.timings.get("api") or 0.0  # the API server's checks, part of schema
    summary = {
        "services": services if services is not None else 0,
        "tree": "synthetic" if services is not None else "this repository",
        "targets": result.targets,
        "objects": result.objects,
        "seconds": timings,
        "peak_rss_mb": peak_rss_mb(),
    }
    floor = Floor(kustomize=min(f.kustomize for f in floors), checkov=min(f.checkov for f in floors))
    ratio = timings["total"] / floor.seconds
    summary["floor_seconds"] = round(floor.seconds, 3)
    summary["ratio"] = round(ratio, 3)
    # Paired figures: each run against the one it was measured beside, median of the pairs.
    cold_wall = [c.wall for c in colds]
    summary["cold_ratio_median"] = round(statistics.median(
        c.wall / (f.kustomize + f.checkov) for c, f in zip(colds, floors, strict=True)), 3)
    summary["cold_cpu_ratio_median"] = round(statistics.median(
        c.cpu / max(f, 1e-9) for c, f in zip(colds, floor_cpu, strict=True)), 3)
    summary["warm_seconds"] = round(statistics.median(w.wall for w in warms), 3)
    summary["warm_ratio"] = round(statistics.median(
        w.wall / c for w, c in zip([w for w in warms], cold_wall, strict=True)), 3)
    summary["warm_edit_seconds"] = round(statistics.median(e.wall for e in edited), 3)
    summary["overlay_cold_seconds"] = round(statistics.median(a.wall for a in alone), 3)
    summary["warm_edit_ratio"] = round(statistics.median(
        e.wall / a.wall for e, a in zip(edited, alone, strict=True)), 3)
    # Validation alone (objects already parsed, validators compiled afresh).
    rates = []
    for _ in range(repeat):  # on the last run's renders (the objects are the same in every run)
        started = time.perf_counter()
        schema.run(out, latest.renders, latest.kubernetes_version)
        rates.append(summary["objects"] / max(time.perf_counter() - started, 1e-9))
    print(f"ok={result.ok} findings={result.findings} targets={summary['targets']} "
          f"objects={summary['objects']}")
    print(f"validate: {_runs(totals)}")
    print(f"floor (alone, same run, {workers} jobs): kustomize {_runs([f.kustomize for f in floors])} + checkov "
          f"{_runs([f.checkov for f in floors])} = {floor.seconds:.2f}s")
    print(f"ratio validate / floor: {ratio:.3f}")
    print(f"cold (empty cache) / floor measured right after it: median {summary['cold_ratio_median']:.3f} "
          f"(wall), {summary['cold_cpu_ratio_median']:.3f} (CPU-seconds of every process: "
          f"{_spread([c.cpu for c in colds])} against {_spread(floor_cpu)})")
    print(f"warm, nothing changed: {_spread([w.wall for w in warms])}s, {summary['warm_ratio']:.3f}x cold "
          f"(CPU {_spread([w.cpu for w in warms])}s)")
    print(f"warm after one overlay edit ({overlay}): {_spread([e.wall for e in edited])}s; that overlay "
          f"alone, cold: {_spread([a.wall for a in alone])}s ({summary['warm_edit_ratio']:.2f}x, median of pairs)")
    print("own work per stage: " + ", ".join(
        f"{stage} {timings[stage]:.2f}s" for stage in ("lint", "schema", "policy")) + f" (of schema, the API server's "
          f"checks {api_seconds:.2f}s)")
    effects_seconds = result.timings.get("effects") or 0.0  # kustomize entries that select nothing, part of render
    summary["api_and_effects_share"] = round((api_seconds + effects_seconds) / timings["total"], 4)
    # Against validate's CPU-seconds too: the checks' cost is CPU, and validate's
    # wall time on N cores is about its CPU-seconds over N.
    summary["api_and_effects_cpu_share"] = round(
        (api_seconds + effects_seconds) / max(statistics.median(c.cpu for c in colds), 1e-9), 4)
    print(f"the API server's checks and kustomize's no-ops (CPU-seconds of their threads): {api_seconds:.2f}s + "
          f"{effects_seconds:.2f}s = {summary['api_and_effects_share']:.1%} of validate's wall time, "
          f"{summary['api_and_effects_cpu_share']:.1%} of its CPU-seconds")
    print(f"schema validation: {max(rates):,.0f} objects/s (one core)")
    if with_changed:
        changed, single, roots = measure_changed(out, jobs, repeat, overlay)
        print(f"--changed after one overlay edit: {_runs(changed)} for {roots}; that overlay alone: "
              f"{_runs(single)} ({min(changed) / min(single):.2f}x)")
    print(json.dumps(summary))
    return summary
