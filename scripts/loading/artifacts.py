"""The ExternalArtifacts that source-watcher's ArtifactGenerator makes
(`source.extensions.fluxcd.io/v1beta1`), computed from this repository.

An ArtifactGenerator names its inputs (`spec.sources`, each with an
`alias`) and, per artifact, a list of `copy` operations from `@alias/<path
or glob>` to `@artifact/<path>`. The controller runs them in order in an
empty directory and archives the result as an ExternalArtifact of the same
name; a Flux Kustomization then builds `spec.path` inside that artifact,
not inside the repository.

The rules below follow source-watcher v2.2.1 (internal/builder):
- A `from` without glob characters (`*?[]`) is one path: a file goes to
  `to` (into it when `to` ends in `/` or is an existing directory), a
  directory goes to `to/<its name>/`, recursively.
- A glob is matched one path segment at a time like Go's fs.Glob (`*` never
  crosses a `/`; `**` is the same as `*`); each match is copied to
  `to/<match>`, except that a pattern ending in `/**` drops its directory
  prefix (`@repo/apps/**` to `@artifact/` copies the contents of apps/). A
  glob that matches nothing, or only excluded paths, fails the artifact.
- `exclude` patterns are doublestar globs (`**` spans directories), tried on
  the source-relative path and on the path relative to the glob's literal
  prefix; a pattern without `/` is tried on the file name too.
- `strategy: Merge` merges a YAML file into the one already at `to` (maps
  deep-merged, lists replaced); `Extract` unpacks tarballs, which a tree of
  YAML sources does not hold: it is reported, not modelled.
- The archive leaves out Flux's default exclusions (VCS files, CI config).

A tree is a mapping of file path to the repository files it is made of
(one, or several for a merged file), so every object of a build is still
traced to the file a person edits.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from scripts.core.yamlio import _Dumper, load_file
from scripts.loading import sourceignore

Tree = dict[str, tuple[str, ...]]  # file path in the tree -> the repository files it is made of


class CopyError(Exception):
    """A copy operation the controller refuses; the artifact is not made."""


@dataclass
class Listing:
    """A tree's directories and their entries, for globbing."""

    files: Tree
    dirs: dict[str, list[str]] = field(default_factory=dict)  # directory -> sorted entry names

    @classmethod
    def of(cls, files: Tree) -> Listing:
        children: dict[str, set[str]] = {".": set()}
        for path in files:
            parent, _, name = path.rpartition("/")
            parent = parent or "."
            while True:
                children.setdefault(parent, set()).add(name)
                if parent == ".":
                    break
                parent, _, name = parent.rpartition("/")
                parent = parent or "."
        return cls(files, {d: sorted(names) for d, names in children.items()})

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.dirs

    def below(self, directory: str) -> Iterable[str]:
        """Every file under a directory, in walk order."""
        prefix = "" if directory == "." else directory + "/"
        return (path for path in sorted(self.files) if path.startswith(prefix))


# ---- patterns -----------------------------------------------------------

def _segment_regex(segment: str, braces: bool) -> str:
    """One path segment of a glob as a regex: Go's path.Match syntax, plus
    doublestar's {a,b} alternatives when `braces`."""
    out, i = [], 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif c == "[":
            end = segment.find("]", i + 2)
            if end < 0:
                raise CopyError(f"unclosed [ in pattern {segment!r}")
            body = segment[i + 1:end]
            negate = body[:1] in ("^", "!")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "{" and braces:
            end = segment.find("}", i)
            if end < 0:
                raise CopyError(f"unclosed {{ in pattern {segment!r}")
            choices = segment[i + 1:end].split(",")
            out.append("(?:" + "|".join(_segment_regex(choice, braces) for choice in choices) + ")")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def doublestar(pattern: str) -> re.Pattern[str]:
    """doublestar.Match: `**` as a whole segment matches any number of
    directories (none included); anything else within one segment."""
    segments = pattern.split("/")
    parts: list[str] = []
    separator_pending = False
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            if index == 0:
                parts.append(".*" if last else "(?:.*/)?")
            else:
                parts.append("(?:/.*)?" if last else "/(?:.*/)?")
            separator_pending = False
            continue
        if separator_pending:
            parts.append("/")
        parts.append(_segment_regex(segment, braces=True))
        separator_pending = True
    return re.compile("".join(parts) + r"\Z")


def _excluded(path: str, base: str, patterns: list[re.Pattern[str]], plain: list[bool]) -> bool:
    """shouldExcludePath: the source-relative path, then the path relative
    to the glob's literal prefix; a pattern without `/` also on the name."""
    def match(candidate: str) -> bool:
        name = candidate.rpartition("/")[2]
        return any(p.match(candidate) or (simple and p.match(name)) for p, simple in zip(patterns, plain, strict=True))

    if match(path):
        return True
    if base in (".", ""):
        return False
    if not path.startswith(base + "/"):
        return False
    return match(path[len(base) + 1:])


def _has_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[]")


def _glob(listing: Listing, pattern: str) -> list[str]:
    """Go's fs.Glob over a tree: matched one segment at a time, each
    directory's entries in name order."""
    current = ["."]
    for segment in pattern.split("/"):
        if not segment:
            return []
        nxt = []
        if not _has_glob(segment) and "\\" not in segment:
            for directory in current:
                path = segment if directory == "." else f"{directory}/{segment}"
                if listing.exists(path):
                    nxt.append(path)
        else:
            regex = re.compile(_segment_regex(segment, braces=False) + r"\Z")
            for directory in current:
                for name in listing.dirs.get(directory, ()):
                    if regex.match(name):
                        nxt.append(name if directory == "." else f"{directory}/{name}")
        current = nxt
    return current


def _join(*parts: str) -> str:
    joined = posixpath.normpath(posixpath.join(*[p for p in parts if p])) if any(parts) else "."
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        raise CopyError(f"{'/'.join(parts)} leads out of the artifact")
    return joined


def _parse_from(value: object) -> tuple[str, str]:
    if not isinstance(value, str) or not value.startswith("@") or "/" not in value:
        raise CopyError(f"`from: {value!r}` must be @alias/path")
    alias, _, pattern = value[1:].partition("/")
    return alias, pattern


def _parse_to(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("@artifact/"):
        raise CopyError(f"`to: {value!r}` must start with @artifact/")
    return value[len("@artifact/"):]


# ---- one artifact ---------------------------------------------------------

class _Staging:
    """The artifact being made: its files, and the directories created."""

    def __init__(self) -> None:
        self.files: Tree = {}
        self.dirs: set[str] = {"."}

    def mkdir(self, path: str) -> None:
        while path not in self.dirs:
            if path in self.files:
                raise CopyError(f"{path} is a file, not a directory")
            self.dirs.add(path)
            path = path.rpartition("/")[0] or "."

    def put(self, path: str, origin: tuple[str, ...], merge: bool) -> None:
        if path in self.dirs:
            raise CopyError(f"cannot copy a file over the directory {path}")
        self.mkdir(path.rpartition("/")[0] or ".")
        if merge and path in self.files:
            self.files[path] = self.files[path] + origin
        else:
            self.files[path] = origin


def build_artifact(artifact: dict, sources: dict[str, Tree]) -> Tree:
    """The files of one `spec.artifacts[]` entry, its copy rules run in order
    over the aliased source trees. CopyError names the rule that fails."""
    staging = _Staging()
    listings: dict[str, Listing] = {}
    copies = artifact.get("copy")
    if not isinstance(copies, list) or not copies:
        raise CopyError("`copy` must be a non-empty list of {from, to}")
    for number, op in enumerate(copies):
        if not isinstance(op, dict):
            raise CopyError(f"copy[{number}] must be a mapping with from and to")
        try:
            _copy(op, sources, listings, staging)
        except CopyError as exc:
            raise CopyError(f"copy[{number}] (from {op.get('from')!r} to {op.get('to')!r}): {exc}") from None
    keep = sourceignore.matcher(sourceignore.DEFAULT_PATTERNS)  # the archive's own exclusions
    return {path: origin for path, origin in sorted(staging.files.items()) if not keep(path)}


def _copy(op: dict, sources: dict[str, Tree], listings: dict[str, Listing], staging: _Staging) -> None:
    alias, pattern = _parse_from(op.get("from"))
    to = op.get("to")
    dest = _parse_to(to)
    if alias not in sources:
        raise CopyError(f"source alias {alias!r} is not in spec.sources")
    strategy = op.get("strategy") or "Overwrite"
    if strategy not in ("Overwrite", "Merge", "Extract"):
        raise CopyError(f"strategy {strategy!r}: expected Overwrite, Merge or Extract")
    if strategy == "Extract":
        raise CopyError("strategy Extract unpacks tarballs, which are not modelled here")
    excludes = op.get("exclude") or []
    if not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes):
        raise CopyError("`exclude` must be a list of glob patterns")
    compiled = [doublestar(e) for e in excludes]
    plain = ["/" not in e for e in excludes]
    listing = listings.get(alias) or listings.setdefault(alias, Listing.of(sources[alias]))
    merge = strategy == "Merge"
    into_dir = str(to).endswith("/")

    if not _has_glob(pattern):
        source = posixpath.normpath(pattern) if pattern else "."
        if not listing.exists(source):
            raise CopyError(f"{source} does not exist in @{alias}")
        if listing.is_dir(source):
            name = "" if source == "." else source.rpartition("/")[2]
            _copy_dir(listing, source, _join(dest, name), compiled, plain, source, staging)
            return
        if _excluded(source, ".", compiled, plain):
            return
        name = source.rpartition("/")[2]
        target = _join(dest, name) if into_dir or _join(dest) in staging.dirs else _join(dest)
        staging.put(target, listing.files[source], merge)
        return

    matches = [m for m in _glob(listing, pattern) if m not in (".", "..")]
    if not matches:
        raise CopyError(f"no file matches {pattern!r} in @{alias}")
    base = _literal_prefix(pattern)
    kept = [m for m in matches if not _excluded(m, base, compiled, plain)]
    if not kept:
        raise CopyError(f"every file matching {pattern!r} in @{alias} is excluded")
    strip = pattern[:-3] if pattern.endswith("/**") else None
    for match in kept:
        relative = match[len(strip) + 1:] if strip is not None and match.startswith(strip + "/") else match
        target = _join(dest, relative)
        if listing.is_dir(match):
            _copy_dir(listing, match, target, compiled, plain, base, staging)
        else:
            staging.put(target, listing.files[match], merge)


def _literal_prefix(pattern: str) -> str:
    parts = []
    for part in posixpath.normpath(pattern).split("/"):
        if _has_glob(part):
            break
        parts.append(part)
    return "/".join(parts) or "."


def _copy_dir(listing: Listing, source: str, dest: str, compiled: list, plain: list, base: str,
              staging: _Staging) -> None:
    """A directory, recursively; an excluded directory is skipped whole."""
    staging.mkdir(dest)
    prefix = "" if source == "." else source + "/"
    for path in listing.below(source):
        relative = path[len(prefix):]
        # Every directory between source and the file may be excluded too.
        steps = relative.split("/")
        if any(_excluded(prefix + "/".join(steps[:depth]), base, compiled, plain)
               for depth in range(1, len(steps) + 1)):
            continue
        staging.put(_join(dest, relative), listing.files[path], merge=False)


# ---- the repository as a source, and the tree on disk -------------------------------

def repository_tree(repo: Path, excluded: Callable[[str], bool]) -> Tree:
    """This repository as its GitRepository's artifact holds it."""
    tree: Tree = {}
    for root, dirs, files in os.walk(repo):
        relative = Path(root).relative_to(repo).as_posix()
        prefix = "" if relative == "." else relative + "/"
        dirs[:] = sorted(d for d in dirs if d not in sourceignore.NOT_CHECKED_OUT
                         and not excluded(f"{prefix}{d}/"))
        for name in sorted(files):
            path = prefix + name
            if not excluded(path):
                tree[path] = (path,)
    return tree


def materialise(repo: Path, files: Iterable[tuple[str, tuple[str, ...]]], into: Path) -> None:
    """Lay an artifact out under `into`: real directories, each file a link
    to the repository file it is, or a merged file written here."""
    for path, origin in files:
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if len(origin) == 1:
            os.symlink(repo / origin[0], target)
            continue
        merged: object = None
        for part in origin:
            merged = merge_values(merged, load_file(repo / part, part))
        target.write_text(yaml.dump(merged, Dumper=_Dumper, sort_keys=False), encoding="utf-8")


def merge_values(base: object, override: object) -> object:
    """Helm's way of layering values files: maps merged key by key, anything
    else (lists included) replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge_values(base.get(key), value) if key in base else value
        return merged
    return override if override is not None else base


def check_generator(doc: dict) -> str | None:
    """The first field of an ArtifactGenerator that has the wrong shape."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return "spec: expected a mapping with sources and artifacts"
    sources = spec.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, dict) and s.get("alias") for s in sources):
        return "spec.sources: expected a list of {alias, kind, name}"
    artifacts = spec.get("artifacts")
    if not isinstance(artifacts, list) or not all(isinstance(a, dict) and a.get("name") for a in artifacts):
        return "spec.artifacts: expected a list of {name, copy}"
    return None
