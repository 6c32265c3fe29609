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


def _path_state(repo: Path, path: Path) -> str:
    """What a named path is, as kustomize will find it."""
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return "unresolvable"
    inside = os.path.relpath(real, os.path.realpath(repo)).replace(os.sep, "/")
    where = inside if not inside.startswith("..") else "outside:" + real
    if os.path.isdir(real):
        present = ",".join(n for n in KUSTOMIZATION_FILES if os.path.isfile(os.path.join(real, n)))
        return f"dir:{where}:{present}"
    if os.path.isfile(real):
        return f"file:{where}"
    return "missing" if not os.path.lexists(path) else f"dangling:{where}"


def _kustomization_states(repo: Path, file: str) -> list[str]:
    """The state of every local path one kustomization names."""
    path = repo / file
    try:
        doc = load_file(path, file)
    except InputError:
        return ["unparsable"]  # its bytes are in the key; kustomize reports it
    if not isinstance(doc, dict):
        return ["not-a-mapping"]
    for key in UNFOLLOWED_FIELDS:
        if doc.get(key):
            raise Uncacheable(f"{file}: {key}")
    directory = path.parent
    states = []
    for key in ("resources", "components", "bases"):
        entries = doc.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, str):
                continue
            if _is_remote(entry):
                raise Uncacheable(f"{file}: remote {entry}")
            states.append(f"{key}:{entry}={_path_state(repo, directory / entry)}")
    try:
        named = _file_entries(doc)
    except (AttributeError, TypeError):  # a shape discovery reports; its bytes are in the key
        named = []
    for entry in named:
        if isinstance(entry, str) and "://" in entry:
            raise Uncacheable(f"{file}: remote {entry}")
        states.append(f"file:{entry}={_path_state(repo, directory / entry)}")
    return states


def _source_state(repo: Path, file: str) -> list[str]:
    path = repo / file
    link = ""
    try:
        if path.is_symlink():
            link = os.readlink(path)
    except OSError:
        link = "unreadable-link"
    return [file, file_digest(path), link, _path_state(repo, path)]


def _flux_state(repo: Path, target: Target, kustomizations: dict[str, Kustomization]) -> list[str]:
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
            parts += _source_state(repo, file)
            if Path(file).name in KUSTOMIZATION_FILES:
                parts += _kustomization_states(repo, file)
    return parts


def target_digest(repo: Path, target: Target, kustomizations: dict[str, Kustomization]) -> str | None:
    """The digest of everything this root's build reads; None if that cannot be named."""
    parts = [target.path, target.directory, str(target.generated), ",".join(target.resource_files),
             _path_state(repo, repo / target.directory)]
    try:
        for file in target.sources:
            parts += _source_state(repo, file)
            if Path(file).name in KUSTOMIZATION_FILES:
                parts += _kustomization_states(repo, file)
        parts += _flux_state(repo, target, kustomizations)
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
