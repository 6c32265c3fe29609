"""CPU seconds (this process and its children, and the whole machine's
busy and idle seconds from /proc/stat) of validate and of each half of
bench's floor, on a tree bench wrote: where validate's CPU goes beyond
the floor's, and whether cores stood idle.

Not a test (pytest does not collect it). From the repository root:

    .venv/bin/python -m scripts bench --services 50 --out /tmp/b50 --skip-changed
    rm -rf /tmp/b50/.cache   # lint from a cold cache, as bench does
    PYTHONPATH=. .venv/bin/python tests/perf/cpu_totals.py /tmp/b50
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path


def _machine() -> tuple[float, float]:
    """The whole machine's busy and idle CPU seconds so far (/proc/stat):
    busy is user + nice + system, idle includes iowait."""
    with open("/proc/stat", encoding="ascii") as stream:
        fields = [int(v) for v in stream.readline().split()[1:9]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (fields[0] + fields[1] + fields[2]) / ticks, (fields[3] + fields[4]) / ticks


def _usage() -> tuple[float, float, float, float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children: kustomize, workers
    busy, idle = _machine()
    return (own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, time.perf_counter(), busy, idle)


def _line(label: str, before: tuple, after: tuple) -> str:
    own, children = after[0] - before[0], after[1] - before[1]
    return (f"{label}: wall {after[2] - before[2]:.1f} s, CPU {own + children:.1f} s "
            f"(this process {own:.1f}, children {children:.1f}); whole machine: busy {after[3] - before[3]:.1f} s, "
            f"idle {after[4] - before[4]:.1f} s")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    from scripts import bench
    from scripts.validate import Options, run

    repo = Path(argv[0])
    start = _usage()
    result = run(Options(repo=repo))
    validated = _usage()
    bench.render_floor(repo, result.renders, os.cpu_count() or 1)
    rendered = _usage()
    bench.security_floor(repo, result.renders, os.cpu_count() or 1)
    scanned = _usage()
    print(_line("validate", start, validated))
    print(_line("floor: kustomize alone", validated, rendered))
    print(_line("floor: checkov alone", rendered, scanned))
    return 0


if __name__ == "__main__":  # the checkov workers are spawned: they import this file
    sys.exit(main(sys.argv[1:]))
