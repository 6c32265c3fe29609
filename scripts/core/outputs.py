"""Writing the files a command was asked to write (reports, summaries):
whole or not at all, and a failure is one line naming the file.

A full disk or a path the system refuses is the environment, not a bug:
OutputError, exit 2 like any other unusable argument."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from scripts.core.errors import OutputError


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` in full, or leave it as it was.

    A regular file (or a new one) is written to a temporary file beside it,
    synced, and renamed over it: a reader, a crash or a full disk never
    sees a truncated report, and an existing one is not clobbered by a
    partial one. A path that exists and is not a regular file (a device such
    as /dev/stdout or /dev/full, a fifo) cannot be renamed over: it is
    written directly. So is an existing file in a directory we may not
    create files in (its write cannot be atomic there)."""
    target = Path(path)
    data = text.encode("utf-8")
    try:
        if target.is_symlink():
            target = Path(os.path.realpath(target))  # the link's file is the report, not the link
        existing = _stat(target)
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            _write_in_place(target, data)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            temporary, fd = _create_beside(target)
        except PermissionError:
            if existing is None:
                raise
            _write_in_place(target, data)
            return
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            if existing is not None:
                os.chmod(temporary, stat.S_IMODE(existing.st_mode))
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {_reason(exc)}") from None


def append_text(path: str | os.PathLike[str], text: str) -> None:
    """Append `text` (UTF-8) to `path` (e.g. $GITHUB_STEP_SUMMARY, which
    others append to as well, so it is not replaced). An append cannot be
    atomic: if it fails, a regular file is cut back to the size it had, so
    no partial summary stays (a reader meanwhile may have seen one)."""
    data = text.encode("utf-8")
    try:
        with open(path, "ab") as stream:
            size = stream.tell()
            try:
                stream.write(data)
                stream.flush()
            except OSError:
                if stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                    os.ftruncate(stream.fileno(), size)
                raise
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {_reason(exc)}") from None


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _create_beside(target: Path) -> tuple[Path, int]:
    """A new file in the target's directory (so the rename stays on one file
    system), readable as a new report would be: mode 0666 less the umask."""
    while True:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _write_in_place(target: Path, data: bytes) -> None:
    # Buffered writes report a full device at flush or close: both are inside.
    with open(target, "wb") as stream:
        stream.write(data)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
