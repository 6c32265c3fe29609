"""Errors that end a command with one clear line instead of a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """Bad flags or arguments: exit status 2."""


class OutputError(UsageError):
    """A file we were asked to write cannot be written (a full disk, a path
    the system refuses): the environment, not a bug; exit status 2, like the
    unusable path it is. Names the file and the system's reason."""


class InputError(Exception):
    """A file the user wrote cannot be read: names the file and line."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        self.file = file
        self.line = line
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(f"{where}{message}")
        self.message = message


class Interrupted(BaseException):
    """SIGINT or SIGTERM: stop, clean up, write no report; exit 128 + signal.

    A BaseException, like KeyboardInterrupt, so that no `except Exception`
    on the way turns it into a finding."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")
