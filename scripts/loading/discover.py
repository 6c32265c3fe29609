"""Find the roots of a tree: kustomizations that nothing else pulls in.

A kustomization reached through another one's `resources` or `components`
is part of that build, not a root. Everything a build reads (resource and
patch files, generator inputs) is recorded, so findings on source files
and `--changed` can be mapped back to the roots that use them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from scripts.core.errors import InputError, UsageError
from scripts.core.model import Finding, Target
from scripts.core.yamlio import load_file

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}


@dataclass
class Kustomization:
    directory: str  # repository-relative, "." for the top
    file: str
    children: list[str] = field(default_factory=list)  # kustomization dirs it pulls in
    files: list[str] = field(default_factory=list)  # plain files it reads
    resource_files: list[str] = field(default_factory=list)  # files listed as resources
    error: InputError | None = None


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


def scan(repo: Path) -> dict[str, Kustomization]:
    """Every kustomization in the tree, keyed by its directory."""
    found: dict[str, Kustomization] = {}
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        if any(name in filenames for name in KUSTOMIZATION_FILES):
            k = read_kustomization(repo, Path(dirpath))
            found[k.directory] = k
    return found


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
    kustomizations = scan(repo)
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
                              resource_files=resource_files))
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
