"""`validate --changed`: only the roots whose render differs from the base.

Cheap by construction: git names the files changed since the base; only
roots whose build reads one of them are candidates; only candidates are
rendered at the base (from a `git archive` export) and compared. A change
that leaves a render identical (formatting, comments) selects nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from scripts import diff, flux, gitrefs
from scripts.discover import discover
from scripts.model import Render, Target
from scripts.render import SourceIndex, render_all


def changed_roots(repo: Path, base: str | None, jobs: int | None = None) -> tuple[list[str], dict[str, Render]]:
    """(paths of roots whose render changed, their head renders)."""
    repo = repo.resolve()
    top = gitrefs.toplevel(repo)
    base = base or gitrefs.default_base(top)
    prefix = os.path.relpath(repo, top).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"
    files = {f[len(prefix):] for f in gitrefs.changed_files(top, base) if f.startswith(prefix)}
    found = discover(repo)
    head = _candidate_renders(repo, found, files, jobs)
    if not head:
        return [], {}
    with gitrefs.tree_at(top, base) as old_top:
        old_root = old_top / prefix if prefix else old_top
        old = diff.render_tree(old_root, only=set(head), jobs=jobs)
    changed = [path for path in sorted(head)
               if diff.diff_render(old.get(path), head[path], path).status != "unchanged"]
    return changed, {p: head[p] for p in changed}


def _touches(target: Target, files: set[str]) -> bool:
    return bool(files & set(target.sources)) or any(f.startswith(target.directory + "/") for f in files)


def _declares_flux(repo: Path, target: Target) -> bool:
    """Only roots whose files mention Flux's API can hold Flux Kustomizations;
    only those are rendered to find the builds a change touches."""
    for file in target.resource_files:
        try:
            if flux.FLUX_GROUP in (repo / file).read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


def _candidate_renders(repo: Path, found, files: set[str], jobs: int | None) -> dict[str, Render]:
    """Head renders of the roots and Flux builds whose sources changed."""
    index = SourceIndex(repo)
    roots = [t for t in found.targets if _touches(t, files)]
    flux_roots = [t for t in found.targets if _declares_flux(repo, t)]
    rendered = {r.target.path: r for r in render_all(repo, list({t.path: t for t in roots + flux_roots}.values()),
                                                     jobs, index)}
    builds = []
    for target in flux_roots:
        render = rendered[target.path]
        if render.ok:
            builds += [b for b in flux.expand(repo, render, found.kustomizations)[0] if _touches(b, files)]
    head = {t.path: rendered[t.path] for t in roots}
    head.update({r.target.path: r for r in render_all(repo, builds, jobs, index)})
    return head
