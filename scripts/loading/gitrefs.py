"""Trees at git refs, exported to temporary directories with `git archive`,
so the user's checkout, index and worktree list are never touched."""

from __future__ import annotations

import contextlib
import io
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from scripts.core import processes
from scripts.core.errors import UsageError

WORKTREE = None  # the `--head` default: the working tree as it is


def git(repo: Path, *args: str) -> str:
    proc = processes.run(["git", "-C", str(repo), *args], text=True)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or ["git failed"])[-1]
        raise UsageError(f"git {' '.join(args)}: {message}")
    return proc.stdout


def toplevel(repo: Path) -> Path:
    return Path(git(repo, "rev-parse", "--show-toplevel").strip())


def resolve(repo: Path, ref: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except UsageError:
        raise UsageError(f"{ref!r} is not a commit in {repo}") from None


def default_base(repo: Path) -> str:
    """The merge base of HEAD with the default branch (origin's HEAD, else
    main or master), as a pull request would be compared."""
    candidates = []
    with contextlib.suppress(UsageError):
        candidates.append(git(repo, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD").strip())
    candidates += ["origin/main", "main", "origin/master", "master"]
    for branch in candidates:
        try:
            resolve(repo, branch)
        except UsageError:
            continue
        return git(repo, "merge-base", "HEAD", branch).strip()
    raise UsageError("no default branch (main or master) to compare with: pass --base REF")


@contextlib.contextmanager
def tree_at(repo: Path, ref: str | None, paths: list[str] | None = None) -> Iterator[Path]:
    """The repository's tree at `ref` in a temporary directory (or the
    working tree itself when ref is None); only `paths` (files or
    directories, those that exist at ref) when given."""
    if ref is WORKTREE:
        yield repo
        return
    commit = resolve(repo, ref)
    pathspec: list[str] = []
    if paths is not None:
        wanted = sorted(set(paths))
        listed = git(repo, "ls-tree", "-r", "--name-only", commit, "--", *wanted).splitlines() if wanted else []
        if not listed:
            with tempfile.TemporaryDirectory(prefix="ref-") as empty:
                yield Path(empty)
            return
        pathspec = ["--", *listed]
    archive = processes.run(["git", "-C", str(repo), "archive", "--format=tar", commit, *pathspec])
    if archive.returncode != 0:
        raise UsageError(f"git archive {ref}: {archive.stderr.decode(errors='replace').strip()}")
    with tempfile.TemporaryDirectory(prefix="ref-") as tmp:
        refused: list[str] = []

        def inside_only(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
            # A committed link out of the tree (absolute, or up past the top)
            # is not extracted, as Flux's source would not have what it
            # points at; the builds that read it then fail and say so.
            try:
                return tarfile.data_filter(member, path)
            except tarfile.FilterError as exc:
                refused.append(f"{member.name} ({type(exc).__name__})")
                return None

        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter=inside_only)
        if refused:
            print(f"note: at {ref}, links out of the repository not extracted: {', '.join(refused[:5])}",
                  file=sys.stderr)
        yield Path(tmp)


def changed_files(repo: Path, base: str) -> set[str]:
    """Files that differ between `base` and the working tree, untracked
    (not ignored) files included; repository-relative."""
    commit = resolve(repo, base)
    changed = set(git(repo, "diff", "--name-only", "--no-renames", commit, "--").splitlines())
    changed |= set(git(repo, "ls-files", "--others", "--exclude-standard").splitlines())
    return {c for c in changed if c}
