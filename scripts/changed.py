"""`validate --changed`: only the roots whose render differs from the base.

Cheap by construction: git names the files changed since the base; only
roots whose build reads one of them are candidates; only candidates are
rendered at the base (from a `git archive` export) and compared. A change
that leaves a render identical (formatting, comments) selects nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from scripts import diff, gitrefs
from scripts.discover import discover
from scripts.model import Render
from scripts.render import render_all


def changed_roots(repo: Path, base: str | None, jobs: int | None = None) -> tuple[list[str], dict[str, Render]]:
    """(paths of roots whose render changed, their head renders)."""
    repo = repo.resolve()
    top = gitrefs.toplevel(repo)
    base = base or gitrefs.default_base(top)
    prefix = os.path.relpath(repo, top).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"
    files = {f[len(prefix):] for f in gitrefs.changed_files(top, base) if f.startswith(prefix)}
    found = discover(repo)
    candidates = [t for t in found.targets if files & set(t.sources) or any(
        f.startswith(t.directory + "/") for f in files)]
    if not candidates:
        return [], {}
    head = {r.target.path: r for r in render_all(repo, candidates, jobs)}
    with gitrefs.tree_at(top, base) as old_top:
        old_root = old_top / prefix if prefix else old_top
        old = diff.render_tree(old_root, only=set(head), jobs=jobs)
    changed = [path for path in head
               if diff.diff_render(old.get(path), head[path], path).status != "unchanged"]
    return changed, {p: head[p] for p in changed}
