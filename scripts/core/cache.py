"""A content-addressed store of JSON entries under a directory, shared
safely by concurrent runs and never trusted blindly.

Each entry is one file named by its key (a hex digest of everything that
can change what it holds). Its first line is a JSON header with a format
tag, the key again and the SHA-256 of the rest, the payload as JSON (parsed
once: an envelope holding the payload as a string made every hit parse it
twice); an entry whose tag, key or checksum does not match, or that does not
parse, is a miss, and the run makes it again. JSON, not pickle: an entry someone else wrote is data, never
code to run. Writes go to a temporary file in the same directory, then
os.replace, so a reader sees a whole entry or none. A directory that cannot
be written leaves the run without a cache, never failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "validate-cache/2"


def digest(*parts: str | bytes) -> str:
    """The SHA-256 of the parts, each length-prefixed so no two splits of
    the same bytes collide."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        hasher.update(f"{len(data)}:".encode())
        hasher.update(data)
    return hasher.hexdigest()


def file_digest(path: Path) -> str:
    """The content's digest; "missing" or "unreadable" when it has none."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "missing"
    except IsADirectoryError:
        return "directory"
    except OSError:
        return "unreadable"


def tree_digest(top: Path, skip: Iterable[str] = ("__pycache__",), known: Mapping[str, str] | None = None) -> str:
    """Every file below `top`, by relative path and bytes (read every run:
    a few MB of small files cost milliseconds, and a matching size and mtime
    is no proof the bytes are the same). `known`: digests of files already
    read in this run, by relative path, not read again."""
    skipped = set(skip)
    known = known or {}
    parts: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in skipped)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / name
            relative = path.relative_to(top).as_posix()
            parts += [relative, known.get(relative) or file_digest(path)]
    return digest(*parts)


@dataclass
class Store:
    """Entries under `directory`; `None` from get() is a miss, whatever the reason."""

    directory: Path
    writable: bool = True
    hits: int = 0
    misses: int = 0
    written: int = 0
    _made: set[str] = field(default_factory=set)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any:
        try:
            raw = self._path(key).read_bytes()
            header_line, _, payload = raw.partition(b"\n")
            header = json.loads(header_line)
            valid = (isinstance(header, dict) and header.get("format") == FORMAT and header.get("key") == key
                     and hashlib.sha256(payload).hexdigest() == header.get("sha256"))
            value = json.loads(payload) if valid else None
        except (OSError, ValueError, KeyError, TypeError, UnicodeError, RecursionError):
            value = None
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        """Write atomically; any failure (read-only tree, full disk) just
        leaves this entry out."""
        if not self.writable:
            return
        payload = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        header = json.dumps({"format": FORMAT, "key": key, "sha256": hashlib.sha256(payload).hexdigest()})
        entry = header.encode("utf-8") + b"\n" + payload
        path = self._path(key)
        tmp = None
        try:
            if path.parent.name not in self._made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent.name)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".entry-")
            with os.fdopen(fd, "wb") as stream:
                stream.write(entry)
            os.replace(tmp, path)
            tmp = None
            self.written += 1
        except (OSError, ValueError):
            self.writable = False  # one failure: the rest would fail the same way
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def has_entries(self) -> bool:
        """Whether any entry may be here (a fresh cache: every lookup will miss)."""
        try:
            return any(self.directory.iterdir())
        except OSError:
            return False
