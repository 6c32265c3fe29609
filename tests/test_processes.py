"""stop_pool leaves nothing behind that could print at interpreter exit."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import multiprocessing, sys, time
from concurrent.futures import ProcessPoolExecutor
from scripts.core.processes import stop_pool
if __name__ == "__main__":
    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    futures = [pool.submit(time.sleep, 5) for _ in range(4)]
    time.sleep(float(sys.argv[1]))
    stop_pool(pool)
    print("stopped")
"""


def test_a_stopped_pool_exits_quietly(tmp_path):
    """Its manager thread, still closing its wake-up pipe when the interpreter
    exits, made the exit hook write to a closed pipe: a traceback about once
    in twelve interrupted runs. Fifteen runs at several moments, none may."""
    script = tmp_path / "pool.py"
    script.write_text(SCRIPT)
    for run in range(15):
        proc = subprocess.run([sys.executable, str(script), f"0.{run % 5 + 1}"], cwd=REPO, capture_output=True,
                              text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert proc.returncode == 0 and proc.stdout.strip() == "stopped", proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr


def test_stop_pool_waits_for_the_pool_manager_thread():
    """shutdown() drops the pool's reference to its manager thread, so the
    thread must be taken before it: once stop_pool returns, the thread has
    closed its wake-up pipe and ended (the exit hook cannot race it)."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from scripts.core.processes import stop_pool

    for _ in range(3):
        pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(time.sleep, 5) for _ in range(4)]
        time.sleep(0.5)
        manager = pool._executor_manager_thread
        assert manager is not None and manager.is_alive()
        stop_pool(pool)
        assert not manager.is_alive()
        assert all(f.done() for f in futures)
