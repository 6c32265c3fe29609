"""A report that cannot be written: one line naming the file and the
system's reason, exit 2; never a truncated file, never a good one
clobbered by a partial one, never a temporary file left beside it."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scripts.core import outputs
from scripts.core.errors import OutputError
from tests.conftest import REPO

FULL = "No space left on device"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300)


def one_line(proc: subprocess.CompletedProcess, path: str, reason: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"python -m scripts: error: {path}: cannot write: {reason}\n"


QUICK = ("validate", "--repo", str(REPO), "--target", "overlays/dev", "--stage", "render")


@pytest.mark.parametrize(("flag", "path", "reason"), [
    ("--report-json", "/proc/r.json", "No such file or directory"),
    ("--report-json", "/dev/full", FULL),
    ("--sarif", "/dev/full", FULL),
    ("--junit", "/dev/full", FULL),
])
def test_validate_report_that_cannot_be_written(flag, path, reason):
    one_line(cli(*QUICK, flag, path), path, reason)


@pytest.fixture(scope="module")
def shard_report(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shard") / "shard.json"
    proc = cli(*QUICK, "--report-json", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.mark.parametrize(("flag", "path", "reason"), [
    ("--out", "/proc/x.json", "No such file or directory"),
    ("--out", "/dev/full", FULL),
    ("--markdown-summary", "/dev/full", FULL),
])
def test_merged_report_that_cannot_be_written(shard_report, flag, path, reason):
    one_line(cli("report", str(shard_report), flag, path), path, reason)


def test_bench_report_that_cannot_be_written(tmp_path):
    proc = cli("bench", "--services", "1", "--out", str(tmp_path / "tree"), "--skip-changed",
               "--report-json", "/dev/full")
    one_line(proc, "/dev/full", FULL)


def test_the_exit_status_is_documented():
    help_text = cli("--help").stdout
    assert "2 usage error, or a file to write that cannot be written" in " ".join(help_text.split())
    for doc in (REPO / "README.md", REPO / "docs/validation.md"):
        assert "cannot be written" in doc.read_text(), doc


# ---- the writer ------------------------------------------------------------

def test_a_report_is_written_whole_with_a_new_file_s_mode(tmp_path):
    target = tmp_path / "reports" / "r.json"  # the directory is made, as before
    outputs.write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.json"]


def test_a_replaced_report_keeps_its_mode_and_a_link_stays_a_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    outputs.write_text(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


FSIZE_CHILD = """
import resource, sys
from pathlib import Path
from scripts.core import outputs
from scripts.core.errors import OutputError
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    getattr(outputs, sys.argv[1])(Path(sys.argv[2]), "x" * 100_000)
except OutputError as exc:
    print(exc)
"""


@pytest.mark.parametrize("function", ["write_text", "append_text"])
def test_a_write_cut_short_leaves_the_previous_file_and_no_temporary(tmp_path, function):
    """A file-size limit fails the write part way (EFBIG), as a full disk
    would (ENOSPC): the old report stays as it was, whole."""
    target = tmp_path / "r.json"
    target.write_text('{"previous": true}\n')
    proc = subprocess.run([sys.executable, "-c", FSIZE_CHILD, function, str(target)], cwd=REPO,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout == f"{target}: cannot write: File too large\n", proc.stderr
    assert target.read_text() == '{"previous": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_full_disk_at_sync_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("previous\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", full)
    with pytest.raises(OutputError, match=f"{target}: cannot write: {FULL}$"):
        outputs.write_text(target, "new\n")
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_missing_directory_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write: Not a directory"):
        outputs.write_text(blocker / "sub" / "r.json", "{}")


def test_a_fifo_is_written_directly_not_renamed_over(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    outputs.write_text(fifo, json.dumps({"ok": True}))
    reader.join(timeout=10)
    assert received == [b'{"ok": true}'] and stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_an_append_adds_to_what_is_there(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    outputs.append_text(summary, "| a | b |\n")
    assert summary.read_text() == "# earlier step\n| a | b |\n"


def test_validate_prints_its_answer_and_writes_every_other_report_when_one_fails(tmp_path):
    """The table comes first and each report is attempted: a full disk under
    one report costs neither the run's answer nor the other reports."""
    good = tmp_path / "r.json"
    proc = cli(*QUICK, "--sarif", "/dev/full", "--report-json", str(good), "--junit", "/proc/j.xml")
    assert proc.returncode == 2, proc.stderr
    assert "overlays/dev" in proc.stdout  # the stage table was printed
    assert proc.stderr == (f"python -m scripts: error: /proc/j.xml: cannot write: No such file or directory\n"
                           f"python -m scripts: error: /dev/full: cannot write: {FULL}\n")
    assert json.loads(good.read_text())["ok"] is True
