"""The processes a command starts: each leaves stopping to the command.

A terminal sends Ctrl-C's SIGINT to its whole foreground process group, not
only to this process. A child that got it would stop on its own, and a
Python one would print a KeyboardInterrupt traceback above our one line. So
no child is left in that group with SIGINT in effect: subprocesses are put in
a process group of their own, and pool workers start with SIGINT blocked,
then ignore it and leave the group. This process alone turns the signal into
an orderly stop (scripts/cli.py), and it kills its children on the way out.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back in this thread (not lost: it is delivered to another
    thread, or here once unblocked). A process started meanwhile inherits the
    blocked mask across fork and exec, so it cannot be interrupted before its
    first line of Python has a say."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    # Runs first in each worker, with SIGINT still blocked since its exec.
    # Why blocked rather than ignored: the ignore disposition would have to be
    # set in this process while it spawns (a signal handler is reset by exec,
    # an ignored signal stays ignored), and a Ctrl-C in that window would be
    # lost for this process too; a blocked one waits. Ignoring it here then
    # discards one that arrived meanwhile, and unblocking is safe after that.
    # (CPython starts its resource tracker the same way.)
    # Its own process group: out of reach of the terminal's Ctrl-C, and the
    # parent can stop the worker together with whatever the worker started.
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if initializer is not None:
        initializer(*initargs)


class WorkerPool(ProcessPoolExecutor):
    """A pool of spawned (not forked) worker processes that ignore SIGINT
    from their first instruction; stop it with `stop_pool`.

    spawn, not fork: the parent runs threads (renders, lint), and a fork
    copies their locks in whatever state they were."""

    def __init__(self, max_workers: int, initializer: Callable[..., None] | None = None,
                 initargs: Sequence[Any] = ()):
        super().__init__(max_workers=max_workers, mp_context=multiprocessing.get_context("spawn"),
                         initializer=_start_worker, initargs=(initializer, tuple(initargs)))

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[override]
        # A spawning pool starts its workers in submit(), when work arrives
        # and none is idle: every worker is started with SIGINT blocked.
        with _sigint_blocked():
            return super().submit(fn, *args, **kwargs)


def _signal_group(pid: int, signum: int) -> bool:
    """Signal the process group a worker leads; False if it leads none (yet)."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued, terminate the workers and what they started
    (kill those that do not go within 5 s) and wait for them, so none
    outlives the command."""
    processes = list((pool._processes or {}).values())
    # Taken before shutdown(), which drops the pool's reference to it.
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive() and not _signal_group(process.pid, signal.SIGTERM):
            process.terminate()  # still starting: not yet leading a group of its own
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        # Whatever the worker started and left running (a checker lint runs)
        # is in the worker's group: it goes too.
        _signal_group(process.pid, signal.SIGKILL)
    # Let the pool's manager thread finish closing its wake-up pipe now: left
    # running, it can close the pipe while the interpreter's exit hook writes
    # to it, which prints a traceback after an interrupt ("Bad file descriptor").
    if manager is not None:
        manager.join(timeout=5)


def run(command: Sequence[str], *, timeout: float | None = None, capture_output: bool = True,
        **popen: Any) -> subprocess.CompletedProcess:
    """subprocess.run(command, check=False) for a child that leaves stopping
    to us: in this command's main process it gets a process group of its own
    (the terminal's Ctrl-C reaches only this process); in a pool worker it
    stays in the worker's group, which the parent stops whole. Its stdin is
    /dev/null: a child outside the terminal's foreground group that read the
    terminal would be stopped. On a timeout or an interrupt while waiting, the
    child's group is killed and reaped before the exception goes on."""
    own_group = multiprocessing.parent_process() is None
    if capture_output:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
    popen.setdefault("stdin", subprocess.DEVNULL)
    with subprocess.Popen(command, process_group=0 if own_group else None, **popen) as child:
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except BaseException:
            if not (own_group and _signal_group(child.pid, signal.SIGKILL)):
                child.kill()
            child.wait()
            raise
    return subprocess.CompletedProcess(list(command), child.returncode, stdout, stderr)
