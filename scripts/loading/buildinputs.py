"""What one root's build reads, as a digest: the key of its cached render.

Discovery records the files a build reads (Target.sources). That is not all
that decides the result: a path a kustomization names that does not exist
yet makes the build fail, and creating it must change the key; a directory
entry builds only if it holds a kustomization file; a link leads where it
leads. So each kustomization of the build is read again and the state of
every local path it names is part of the digest (missing, a file, a
directory and which kustomization file it has). A Flux build adds the
Kustomization object, the cluster's ConfigMaps and Secrets it substitutes
from, its components (which spec.components adds, not the kustomization),
its ignore patterns, and for an ExternalArtifact every file the artifact is
made of. A generated kustomization adds the listing it is generated from.

A build whose inputs cannot all be named is not cached (None): a remote
resource (its content is on the network), and kustomize fields that read
files this module does not follow (helmCharts, openapi).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from scripts.core.cache import digest, file_digest
from scripts.core.errors import InputError
from scripts.core.model import Target
from scripts.core.yamlio import load_file
from scripts.loading import sourceignore
from scripts.loading.discover import (
    KUSTOMIZATION_FILES,
    Kustomization,
    _file_entries,
    _is_remote,
    closure,
    generated_listing,
)

# Fields whose files kustomize reads without discovery following them.
UNFOLLOWED_FIELDS = ("helmCharts", "helmChartInflationGenerator", "helmGlobals", "openapi")


class Uncacheable(Exception):
    """A build input that cannot be named: the build is not cached."""


class InputDigests:
    """target_digest for the roots of one run: the files, kustomizations and
    paths the builds share (every service's base) are read once per run,
    not once per root. Only within a run: the next run reads them again."""

    def __init__(self, repo: Path, kustomizations: dict[str, Kustomization]):
        self.repo = repo
        self.kustomizations = kustomizations
        self._states: dict[str, list[str] | Uncacheable] = {}
        self._sources: dict[str, list[str]] = {}
        self._real_repo = os.path.realpath(repo)
        self._realpath = _RealPaths()
        # The kustomizations discovery read in this run, by file.
        self._read = {k.file: k.doc for k in kustomizations.values() if k.doc is not None}

    def kustomization_states(self, file: str) -> list[str]:
        known = self._states.get(file)
        if known is None:
            try:
                known = _kustomization_states(self.repo, file, self._read.get(file), self._real_repo, self._realpath)
            except Uncacheable as exc:
                known = exc
            self._states[file] = known
        if isinstance(known, Uncacheable):
            raise known
        return known

    def source_state(self, file: str) -> list[str]:
        known = self._sources.get(file)
        if known is None:
            known = self._sources[file] = _source_state(self.repo, file, self._real_repo, self._realpath)
        return known

    def target_digest(self, target: Target) -> str | None:
        return target_digest(self.repo, target, self.kustomizations, self)

    def file_digests(self) -> dict[str, str]:
        """The content digest of every file read so far, by repository path
        (a link's is its target's content, as a walk of the tree reads it)."""
        return {file: state[1] for file, state in self._sources.items() if len(state[1]) == 64}


class _RealPaths:
    """os.path.realpath with each directory resolved once: the real path of
    DIR/NAME is that of DIR joined with NAME, unless NAME is itself a link."""

    def __init__(self) -> None:
        self._directories: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        head, tail = os.path.split(path)
        if not head or tail in ("", ".", ".."):
            return os.path.realpath(path)
        parent = self._directories.get(head)
        if parent is None:
            parent = self._directories[head] = os.path.realpath(head)
        candidate = os.path.join(parent, tail)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate


def _path_state(repo: Path, path: Path | str, real_repo: str | None = None,
                realpath: Callable[[str], str] = os.path.realpath) -> str:
    """What a named path is, as kustomize will find it."""
    try:
        real = realpath(os.fspath(path))
    except (OSError, ValueError):
        return "unresolvable"
    top = real_repo or os.path.realpath(repo)
    inside = "." if real == top else real[len(top) + 1:] if real.startswith(top + os.sep) else None
    where = inside.replace(os.sep, "/") if inside is not None else "outside:" + real
    if os.path.isdir(real):
        present = ",".join(n for n in KUSTOMIZATION_FILES if os.path.isfile(os.path.join(real, n)))
        return f"dir:{where}:{present}"
    if os.path.isfile(real):
        return f"file:{where}"
    return "missing" if not os.path.lexists(path) else f"dangling:{where}"


def _kustomization_states(repo: Path, file: str, doc: dict | None = None, real_repo: str | None = None,
                          realpath: Callable[[str], str] = os.path.realpath) -> list[str]:
    """The state of every local path one kustomization names (`doc`: the
    file as discovery read it in this run, else it is read here)."""
    path = repo / file
    if doc is None:
        try:
            doc = load_file(path, file)
        except InputError:
            return ["unparsable"]  # its bytes are in the key; kustomize reports it
    if not isinstance(doc, dict):
        return ["not-a-mapping"]
    for key in UNFOLLOWED_FIELDS:
        if doc.get(key):
            raise Uncacheable(f"{file}: {key}")
    directory = str(path.parent)
    states = []
    for key in ("resources", "components", "bases"):
        entries = doc.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, str):
                continue
            if _is_remote(entry):
                raise Uncacheable(f"{file}: remote {entry}")
            states.append(f"{key}:{entry}={_path_state(repo, os.path.join(directory, entry), real_repo, realpath)}")
    try:
        named = _file_entries(doc)
    except (AttributeError, TypeError):  # a shape discovery reports; its bytes are in the key
        named = []
    for entry in named:
        if isinstance(entry, str) and "://" in entry:
            raise Uncacheable(f"{file}: remote {entry}")
        states.append(f"file:{entry}={_path_state(repo, os.path.join(directory, str(entry)), real_repo, realpath)}")
    return states


def _source_state(repo: Path, file: str, real_repo: str | None = None,
                  realpath: Callable[[str], str] = os.path.realpath) -> list[str]:
    path = repo / file
    link = ""
    try:
        if path.is_symlink():
            link = os.readlink(path)
    except OSError:
        link = "unreadable-link"
    return [file, file_digest(path), link, _path_state(repo, path, real_repo, realpath)]


def _flux_state(repo: Path, target: Target, kustomizations: dict[str, Kustomization], memo: InputDigests
                ) -> list[str]:
    flux = target.flux
    if flux is None:
        return []
    parts = [json.dumps([flux.kustomization, list(flux.inputs), flux.file, flux.artifact_path, list(flux.ignore)],
                        sort_keys=True, default=str)]
    if flux.artifact is not None:
        for inner, origins in flux.artifact:
            parts += [inner, *(f"{o}={file_digest(repo / o)}" for o in origins)]
        return parts
    spec = flux.kustomization.get("spec") if isinstance(flux.kustomization.get("spec"), dict) else {}
    for component in spec.get("components") or []:
        directory = os.path.normpath(os.path.join(target.directory, str(component))).replace(os.sep, "/")
        parts.append(f"component:{component}={_path_state(repo, repo / directory)}")
        files, _, _ = closure(kustomizations, directory)
        for file in files:
            parts += memo.source_state(file)
            if Path(file).name in KUSTOMIZATION_FILES:
                parts += memo.kustomization_states(file)
    return parts


def target_digest(repo: Path, target: Target, kustomizations: dict[str, Kustomization],
                  memo: InputDigests | None = None) -> str | None:
    """The digest of everything this root's build reads; None if that cannot be named."""
    memo = memo or InputDigests(repo, kustomizations)
    parts = [target.path, target.directory, str(target.generated), ",".join(target.resource_files),
             _path_state(repo, repo / target.directory)]
    try:
        for file in target.sources:
            parts += memo.source_state(file)
            if Path(file).name in KUSTOMIZATION_FILES:
                parts += memo.kustomization_states(file)
        parts += _flux_state(repo, target, kustomizations, memo)
    except Uncacheable:
        return None
    local = target.flux is None or target.flux.artifact is None
    has_own = any((repo / target.directory / n).is_file() for n in KUSTOMIZATION_FILES)
    if local and not has_own:
        # The kustomization kustomize-controller generates: what it lists.
        patterns = target.flux.ignore if target.flux is not None else \
            sourceignore.artifact_patterns(sourceignore.repository_patterns(repo), None)
        children, files = generated_listing(repo, target.directory, sourceignore.matcher(patterns))
        parts += ["generated", *children, "|", *files]
    return digest(*parts)
