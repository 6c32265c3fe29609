"""Worker process pools that end when told to, whatever their workers are doing."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued, terminate the workers (kill those that do not
    go within 5 s) and wait for them, so none outlives the command."""
    processes = list((pool._processes or {}).values())
    # Taken before shutdown(), which drops the pool's reference to it.
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
    # Let the pool's manager thread finish closing its wake-up pipe now: left
    # running, it can close the pipe while the interpreter's exit hook writes
    # to it, which prints a traceback after an interrupt ("Bad file descriptor").
    if manager is not None:
        manager.join(timeout=5)
