"""Which files of this repository a Flux GitRepository leaves out of its
artifact, so a build that reads one fails here as it fails in the cluster.

source-controller's rule (source-controller v1.9, storage.SourceIgnoreFilter):
the patterns are those of every `.sourceignore` file in the checkout (each
applying below its own directory) followed by the GitRepository's
`spec.ignore`. With no pattern at all, Flux's default exclusions apply (VCS
files, CI configuration, binaries and archives); with any pattern, only the
VCS ones are kept in front of them. Patterns use .gitignore syntax and the
last match wins; pathspec's GitIgnoreSpec implements that syntax.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pathspec

SOURCEIGNORE = ".sourceignore"
VCS_PATTERNS = [".git/", ".gitignore", ".gitmodules", ".gitattributes"]
DEFAULT_PATTERNS = [
    *VCS_PATTERNS,
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
    ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml",
    "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
    "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
]
# Not part of any Git checkout Flux would see, and large: never walked.
NOT_CHECKED_OUT = {".git", ".venv", "venv", "node_modules", "__pycache__", ".cache", ".pytest_cache"}


def _scoped(line: str, directory: str) -> str | None:
    """A pattern of `directory`/.sourceignore, rewritten to apply from the
    repository root (go-git's domain: it matches below its directory only)."""
    text = line.rstrip("\n").rstrip()
    if not text or text.startswith("#"):
        return None
    if not directory:
        return text
    negate, body = ("!", text[1:]) if text.startswith("!") else ("", text)
    trimmed = body.rstrip("/")
    anchored = body.startswith("/") or "/" in trimmed
    prefix = f"/{directory}/" if anchored else f"/{directory}/**/"
    return negate + prefix + body.lstrip("/")


def repository_patterns(repo: Path, within: str | None = None) -> list[str]:
    """The patterns of every .sourceignore in the tree, shallow ones first.
    With `within` (a repository-relative directory), only those that can
    match a path at or under it: the root's, each enclosing directory's and
    its own subtree's (a .sourceignore applies below its directory only), so
    the rest of a large tree is not walked."""
    found: list[tuple[int, str, list[str]]] = []

    def read(directory: Path) -> None:
        relative = directory.relative_to(repo).as_posix()
        relative = "" if relative == "." else relative
        try:
            lines = (directory / SOURCEIGNORE).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        found.append((relative.count("/") + bool(relative), relative, lines))

    parts = Path(within).parts if within else ()
    for depth in range(len(parts)):
        if (repo.joinpath(*parts[:depth]) / SOURCEIGNORE).is_file():
            read(repo.joinpath(*parts[:depth]))
    for root, dirs, files in os.walk(repo.joinpath(*parts)):
        dirs[:] = sorted(d for d in dirs if d not in NOT_CHECKED_OUT)
        if SOURCEIGNORE in files:
            read(Path(root))
    patterns = []
    for _, directory, lines in sorted(found):
        patterns += [p for p in (_scoped(line, directory) for line in lines) if p]
    return patterns


def artifact_patterns(repository_patterns: list[str], spec_ignore: str | None) -> tuple[str, ...]:
    """Every pattern that decides what a GitRepository's artifact leaves out."""
    patterns = list(repository_patterns)
    if isinstance(spec_ignore, str):
        patterns += [p for p in (_scoped(line, "") for line in spec_ignore.splitlines()) if p]
    return tuple(VCS_PATTERNS + patterns if patterns else DEFAULT_PATTERNS)


def matcher(patterns: tuple[str, ...] | list[str]) -> Callable[[str], bool]:
    """A test of such patterns: is this repository-relative path left out?
    (A directory is asked about with a trailing slash.)"""
    return pathspec.GitIgnoreSpec.from_lines(list(patterns)).match_file


def artifact_excludes(repository_patterns: list[str], spec_ignore: str | None) -> Callable[[str], bool]:
    """A test: is this repository-relative path left out of the artifact?"""
    return matcher(artifact_patterns(repository_patterns, spec_ignore))
