"""The policy stage alone, uncontended: each session input and each rule
over every render of a tree bench wrote, slowest first. Shows what the
stage costs without the other stages sharing the cores, and which rule
grows faster than the number of roots.

Not a test (pytest does not collect it). From the repository root:

    .venv/bin/python -m scripts bench --services 50 --out /tmp/b50 --skip-changed
    PYTHONPATH=. .venv/bin/python tests/perf/policy_cost.py /tmp/b50
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from scripts import validate
from scripts.stages import policy
from scripts.stages.policy_support import PolicyConfig


def main(repo: Path) -> None:
    report = validate.run(validate.Options(repo=repo, stages=["schema"]))  # render and parse only
    renders = [r for r in report.renders if r.ok]
    print(f"{len(renders)} renders, {sum(len(r.objects) for r in renders)} objects")
    run = policy.PolicyRun(repo, report.kubernetes_version, PolicyConfig.load(repo))
    seconds: Counter[str] = Counter()
    for name, compute in policy.session_inputs().items():
        started = time.perf_counter()
        run._values[name] = compute(renders)  # as finish() would compute it, timed on its own
        seconds[f"input {name}"] = time.perf_counter() - started
    for rule in run.rules:
        started = time.perf_counter()
        for render in renders:
            run._check(rule, render)
        seconds[rule.name] = time.perf_counter() - started
    print(f"total {sum(seconds.values()):.2f} s")
    for name, value in seconds.most_common(15):
        print(f"{value * 1000:9.1f} ms  {name}")


if __name__ == "__main__":  # spawn-started workers import this module: run only as a script
    main(Path(sys.argv[1]).resolve())
