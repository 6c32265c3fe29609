"""Find the roots of a tree: kustomizations that nothing else pulls in.

A kustomization reached through another one's `resources` or `components`
is part of that build, not a root. Everything a build reads (resource and
patch files, generator inputs) is recorded, so findings on source files
and `--changed` can be mapped back to the roots that use them.

Flux applies directories that have no kustomization file too: kustomize-
controller generates one listing every manifest below the path (see
`generated_listing`). `flux bootstrap`'s `clusters/<name>/` is such a
directory. So a directory without a kustomization file whose own YAML files
declare a Flux Kustomization is a root as well (a generated one), unless a
kustomization lists those files or a directory above it is such a root
already (its generated kustomization reaches them). Its Flux Kustomizations
are then built like any cluster's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scripts.core.errors import InputError, UsageError
from scripts.core.model import Finding, Target
from scripts.core.yamlio import load_file, load_render
from scripts.loading import sourceignore
from scripts.loading.fluxkinds import KUSTOMIZE_GROUP, is_flux_kustomization

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}
# Directories at the top of the repository that hold other repositories'
# trees as test data (tests/fixtures/flux2-kustomize-helm-example): their
# kustomizations are not roots of this one.
SKIP_PATHS = ("tests/fixtures",)


@dataclass
class Kustomization:
    directory: str  # repository-relative, "." for the top
    file: str
    children: list[str] = field(default_factory=list)  # kustomization dirs it pulls in
    files: list[str] = field(default_factory=list)  # plain files it reads
    resource_files: list[str] = field(default_factory=list)  # files listed as resources
    error: InputError | None = None
    generated: bool = False  # no kustomization file: the one kustomize-controller generates
    # The file as read (a mapping), for what else reads it in the same run.
    doc: dict | None = field(default=None, repr=False, compare=False)


@dataclass
class Discovery:
    repo: Path
    kustomizations: dict[str, Kustomization]
    targets: list[Target]
    findings: list[Finding]


def _rel(repo: Path, path: Path) -> str:
    rel = os.path.relpath(path, repo)
    return rel.replace(os.sep, "/")


def _is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("github.com/", "git@", "gitlab.com/"))


_LIST_KEYS = ("resources", "components", "bases", "patches", "patchesStrategicMerge", "patchesJson6902",
              "configMapGenerator", "secretGenerator", "crds", "transformers", "generators", "validators",
              "configurations", "replacements", "images")


def shape_problem(doc: dict) -> str | None:
    """The first key of a kustomization with a shape kustomize refuses."""
    for key in _LIST_KEYS:
        value = doc.get(key)
        if value is not None and not isinstance(value, list):
            return f"`{key}` must be a list, found {type(value).__name__} {value!r}"[:200]
    for key in ("patchesJson6902", "configMapGenerator", "secretGenerator", "replacements", "images"):
        for index, item in enumerate(doc.get(key) or []):
            if not isinstance(item, dict):
                return f"`{key}[{index}]` must be a mapping, found {type(item).__name__}"
    for key in ("configMapGenerator", "secretGenerator"):
        for index, item in enumerate(doc.get(key) or []):
            for sub in ("files", "envs", "literals"):
                if item.get(sub) is not None and not isinstance(item[sub], list):
                    return f"`{key}[{index}].{sub}` must be a list, found {type(item[sub]).__name__}"
    for index, patch in enumerate(doc.get("patches") or []):
        if not isinstance(patch, (dict, str)):
            return f"`patches[{index}]` must be a mapping with path or patch, found {type(patch).__name__}"
    return None


def _file_entries(doc: dict) -> list[str]:
    """Plain files named by a kustomization (not resources: those may be dirs)."""
    entries: list[str] = []
    for patch in doc.get("patches") or []:
        if isinstance(patch, dict) and isinstance(patch.get("path"), str):
            entries.append(patch["path"])
    for patch in doc.get("patchesStrategicMerge") or []:
        if isinstance(patch, str) and "\n" not in patch:
            entries.append(patch)
    for patch in doc.get("patchesJson6902") or []:
        if isinstance(patch, dict) and isinstance(patch.get("path"), str):
            entries.append(patch["path"])
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in doc.get(key) or []:
            if not isinstance(gen, dict):
                continue
            for item in (gen.get("files") or []) + (gen.get("envs") or []):
                if isinstance(item, str):
                    entries.append(item.split("=", 1)[-1])
            if isinstance(gen.get("env"), str):
                entries.append(gen["env"])
    for key in ("crds", "transformers", "generators", "validators", "configurations"):
        entries.extend(e for e in doc.get(key) or [] if isinstance(e, str))
    for replacement in doc.get("replacements") or []:
        if isinstance(replacement, dict) and isinstance(replacement.get("path"), str):
            entries.append(replacement["path"])
    return entries


def _resolve(path: Path) -> Path | None:
    """path with links followed; None for a link loop (kustomize's error then names it).
    (Path.resolve is os.path.realpath, and raises RuntimeError on a loop.)"""
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError, ValueError):
        return None


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def read_kustomization(repo: Path, directory: Path) -> Kustomization:
    file = kustomization_file(directory)
    assert file is not None
    result = Kustomization(directory=_rel(repo, directory), file=_rel(repo, file))
    try:
        doc = load_file(file, result.file)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise InputError("a kustomization must be a YAML mapping", result.file)
        problem = shape_problem(doc)
        if problem:
            raise InputError(problem, result.file)
    except InputError as exc:
        result.error = exc
        return result
    result.doc = doc
    result.files.append(result.file)
    for key in ("resources", "components", "bases"):
        for entry in doc.get(key) or []:
            if not isinstance(entry, str) or _is_remote(entry):
                continue
            path = _resolve(directory / entry)
            if path is None:
                continue
            # Files by the path written (a link keeps its own name, so a link
            # out of the repository is reported where it is); directories by
            # where they lead, to find their kustomization.
            written = Path(os.path.normpath(directory / entry))
            if path.is_dir() and kustomization_file(path):
                result.children.append(_rel(repo, path))
            elif path.is_file():
                result.files.append(_rel(repo, written))
                result.resource_files.append(_rel(repo, written))
            # A missing entry is left to kustomize, which names it in its error.
    for entry in _file_entries(doc):
        path = _resolve(directory / entry)
        if path is not None and path.is_file():
            result.files.append(_rel(repo, Path(os.path.normpath(directory / entry))))
    return result


def scan(repo: Path, flux_dirs: list[str] | None = None) -> dict[str, Kustomization]:
    """Every kustomization in the tree, keyed by its directory. Directories
    without one whose YAML files may declare a Flux Kustomization (their
    text names its API group) are appended to `flux_dirs`."""
    found: dict[str, Kustomization] = {}
    for dirpath, dirnames, filenames in os.walk(repo):
        relative = _rel(repo, Path(dirpath))
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
                             and (d if relative == "." else f"{relative}/{d}") not in SKIP_PATHS)
        if any(name in filenames for name in KUSTOMIZATION_FILES):
            k = read_kustomization(repo, Path(dirpath))
            found[k.directory] = k
        elif flux_dirs is not None and any(_declares_flux(Path(dirpath) / name) for name in sorted(filenames)
                                           if name.endswith((".yaml", ".yml"))):
            flux_dirs.append(relative)
    return found


def _declares_flux(path: Path) -> bool:
    """Does this file hold a Flux Kustomization? Read only when its text
    names the API group; a file that does not parse is left to the render."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if KUSTOMIZE_GROUP not in text:
        return False
    try:
        docs = load_render(text, str(path))
    except InputError:
        return False
    return any(isinstance(doc, dict) and is_flux_kustomization(doc) for doc in docs)


def generated_listing(repo: Path, directory: str, excluded: Callable[[str], bool]
                      ) -> tuple[list[str], list[str]]:
    """What kustomize-controller's generated kustomization for `directory`
    lists (fluxcd/pkg kustomize generator): every .yaml/.yml file below it,
    and each subdirectory that has a kustomization file as a directory
    resource, not descended into. Paths the source's artifact leaves out
    (.sourceignore, spec.ignore) are not there. Returns (kustomization
    directories, files), repository-relative."""
    children: list[str] = []
    files: list[str] = []
    top = repo / directory
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        relative = _rel(repo, here)
        prefix = "" if relative == "." else relative + "/"
        kept = []
        for name in sorted(dirnames):
            path = prefix + name
            if excluded(path + "/"):
                continue
            if kustomization_file(here / name) is not None:
                children.append(path)
            else:
                kept.append(name)
        dirnames[:] = kept
        files += [prefix + name for name in sorted(filenames)
                  if name.endswith((".yaml", ".yml")) and not excluded(prefix + name)]
    return children, files


def _generated_roots(repo: Path, kustomizations: dict[str, Kustomization], flux_dirs: list[str]
                     ) -> dict[str, Kustomization]:
    """The directories Flux applies with a generated kustomization that are
    roots: see the module's docstring."""
    if not flux_dirs:
        return {}
    excluded = sourceignore.artifact_excludes(sourceignore.repository_patterns(repo), None)
    listed = {f for k in kustomizations.values() for f in k.resource_files}
    listings = {d: generated_listing(repo, d, excluded) for d in flux_dirs}
    applied = _applied_paths(repo, listed | {f for _, files in listings.values() for f in files})
    roots: dict[str, Kustomization] = {}
    for directory in sorted(flux_dirs, key=lambda d: (d.count("/"), d)):
        if directory != "." and excluded(directory + "/"):
            continue
        if any(directory == r or directory.startswith(r + "/") or r == "." for r in roots):
            continue
        children, files = listings[directory]
        if any(f in listed for f in files if f.rpartition("/")[0] == directory):
            continue
        # Applied by a Flux Kustomization written elsewhere: that build is how
        # it is validated. (One written inside it, as bootstrap's flux-system
        # Kustomization is, applies the directory that holds it: still a root.)
        if any(not _under(file, directory) for file in applied.get(directory, ())):
            continue
        roots[directory] = Kustomization(directory=directory, file=directory, children=children, files=files,
                                         resource_files=list(files), generated=True)
    return roots


def _under(file: str, directory: str) -> bool:
    return directory == "." or file.startswith(directory + "/")


def _applied_paths(repo: Path, files: set[str]) -> dict[str, list[str]]:
    """spec.path -> the files whose Flux Kustomizations (of a GitRepository,
    so a path of this repository) apply it."""
    applied: dict[str, list[str]] = {}
    for file in sorted(files):
        try:
            text = (repo / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if KUSTOMIZE_GROUP not in text:
            continue
        try:
            docs = load_render(text, file)
        except InputError:
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not is_flux_kustomization(doc) or not isinstance(doc.get("spec"), dict):
                continue
            ref = doc["spec"].get("sourceRef")
            if isinstance(ref, dict) and ref.get("kind") not in (None, "GitRepository"):
                continue
            path = os.path.normpath(str(doc["spec"].get("path") or "./").lstrip("/")).replace(os.sep, "/")
            applied.setdefault(path, []).append(file)
    return applied


def closure(kustomizations: dict[str, Kustomization], root: str
            ) -> tuple[tuple[str, ...], tuple[str, ...], list[list[str]]]:
    """Files a root's build reads, those of them that are resources, and cycles met."""
    files: list[str] = []
    resource_files: list[str] = []
    seen: set[str] = set()
    cycles: list[list[str]] = []

    def visit(directory: str, stack: list[str]) -> None:
        if directory in stack:
            cycles.append(stack[stack.index(directory):] + [directory])
            return
        if directory in seen:
            return
        seen.add(directory)
        k = kustomizations.get(directory)
        if k is None:
            return
        files.extend(k.files)
        resource_files.extend(k.resource_files)
        for child in k.children:
            visit(child, stack + [directory])

    visit(root, [])
    return tuple(dict.fromkeys(files)), tuple(dict.fromkeys(resource_files)), cycles


def discover(repo: Path) -> Discovery:
    repo = repo.resolve()
    flux_dirs: list[str] = []
    kustomizations = scan(repo, flux_dirs)
    kustomizations.update(_generated_roots(repo, kustomizations, flux_dirs))
    pulled_in = {child for k in kustomizations.values() for child in k.children if child != k.directory}
    targets: list[Target] = []
    findings: list[Finding] = []
    reported_cycles: set[frozenset[str]] = set()
    for directory in sorted(kustomizations):
        k = kustomizations[directory]
        if k.error is not None:
            findings.append(Finding(
                stage="render", target=directory, rule="kustomization-invalid", severity="error",
                message=k.error.message, file=k.error.file, line=k.error.line))
        if directory in pulled_in:
            continue
        files, resource_files, cycles = closure(kustomizations, directory)
        for cycle in cycles:
            key = frozenset(cycle)
            if key in reported_cycles:
                continue
            reported_cycles.add(key)
            findings.append(Finding(
                stage="render", target=directory, rule="kustomization-cycle", severity="error",
                message="kustomizations pull each other in: " + " -> ".join(cycle),
                file=kustomizations[cycle[0]].file))
        targets.append(Target(path=directory, directory=directory, sources=files,
                              resource_files=resource_files, generated=k.generated))
    # Roots that are only reachable through a cycle have no root of their own.
    reachable = {d for t in targets for d in _dirs_of(kustomizations, t.directory)}
    for directory in sorted(set(kustomizations) - reachable):
        for cycle in closure(kustomizations, directory)[2]:
            key = frozenset(cycle)
            if key not in reported_cycles:
                reported_cycles.add(key)
                findings.append(Finding(
                    stage="render", target=directory, rule="kustomization-cycle", severity="error",
                    message="kustomizations pull each other in: " + " -> ".join(cycle),
                    file=kustomizations[cycle[0]].file))
    return Discovery(repo=repo, kustomizations=kustomizations, targets=targets, findings=findings)


def _dirs_of(kustomizations: dict[str, Kustomization], root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        directory = todo.pop()
        if directory in seen:
            continue
        seen.add(directory)
        k = kustomizations.get(directory)
        if k:
            todo.extend(k.children)
    return seen


def select(targets: list[Target], repo: Path, wanted: list[str]) -> list[Target]:
    """Targets at or under each `--target` path; a path with none is a usage error."""
    if not wanted:
        return targets
    chosen: dict[str, Target] = {}
    for raw in wanted:
        # A path is taken relative to the working directory, as a shell user
        # means it; a root's own name (overlays/prod) works from anywhere.
        path = Path(raw)
        absolute = (path if path.is_absolute() else Path.cwd() / path).resolve()
        rel = raw if raw in {t.path for t in targets} else _rel(repo, absolute)
        if rel.startswith(".."):
            raise UsageError(f"--target {raw}: outside the repository {repo}")
        matched = [t for t in targets
                   if rel in (".", "") or t.path == rel or t.path.startswith(rel.rstrip("/") + "/")
                   or t.path.startswith(rel + "#")]
        if not matched:
            raise UsageError(f"--target {raw}: no root kustomization at or under this path")
        for t in matched:
            chosen[t.path] = t
    return [t for t in targets if t.path in chosen]
