"""CPU seconds and peak memory of each process a command starts, read
from /proc while it runs: which of validate's processes (this process,
the lint process, the checkov workers, kustomize) spends what.

Not a test (pytest does not collect it). From the repository root:

    .venv/bin/python -m scripts bench --services 200 --out /tmp/b200 --skip-changed
    python3 tests/perf/cpu_by_process.py .venv/bin/python -m scripts validate --repo /tmp/b200 -q

Processes that live less than the sampling interval (most kustomize runs)
are missed: compare their total with `validate --stage schema` (render and
schema only) against bench's kustomize floor instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _processes() -> dict[int, tuple[int, float, int]]:
    """pid -> (parent, CPU seconds, resident bytes) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stream:
                stat = stream.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE)
    return table


def _descendants(root: int, table: dict[int, tuple[int, float, int]]) -> list[int]:
    out = []
    for pid in table:
        parent = pid
        while parent in table and parent != root:
            parent = table[parent][0]
        if parent == root:
            out.append(pid)
    return out


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return stream.read().replace(b"\0", b" ").decode(errors="replace").strip()[:100]
    except OSError:
        return "?"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    peak: dict[int, tuple[float, int]] = {}
    commands: dict[int, str] = {}
    while child.poll() is None:
        table = _processes()
        for pid in _descendants(child.pid, table):
            commands.setdefault(pid, _command(pid))
            cpu, rss = peak.get(pid, (0.0, 0))
            peak[pid] = (max(cpu, table[pid][1]), max(rss, table[pid][2]))
        time.sleep(0.5)
    print(f"wall {time.perf_counter() - started:.1f} s, exit {child.returncode}")
    for pid, (cpu, rss) in sorted(peak.items(), key=lambda item: -item[1][0])[:10]:
        print(f"{cpu:8.1f} s CPU  {rss / 2**20:6.0f} MB  {commands[pid]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
