"""`validate --changed`: only the roots whose render differs from the base.

Cheap by construction: git names the files changed since the base; only
roots whose build reads one of them are candidates; only candidates are
rendered at the base (from a `git archive` export) and compared. A change
that leaves a render identical (formatting, comments) selects nothing, with
one exception: a comment that is an image policy marker is read by Flux's
image automation and checked by the policy rules, so a root reading a
changed file that holds a marker, now or at the base, counts as changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from scripts.core.model import Finding, Render, Target
from scripts.core.yamlio import _Loader
from scripts.loading import flux, fluxcluster, gitrefs, helm, sourceignore
from scripts.loading.discover import Discovery, closure, discover
from scripts.loading.render import SourceIndex, render_all
from scripts.pullrequest import diff
from scripts.stages.imageautomation import MARKER_KEY


@dataclass
class ChangedRoots:
    paths: list[str]  # roots whose render changed
    head: dict[str, Render]  # their renders now
    base: dict[str, Render]  # their renders at the base, where they existed
    findings: list[Finding]  # about the Flux objects of the cluster roots looked at
    files: list[str] = field(default_factory=list)  # every file changed since the base, repository-relative


def changed_roots(repo: Path, base: str | None, jobs: int | None = None, found: Discovery | None = None
                  ) -> ChangedRoots:
    repo = repo.resolve()
    top = gitrefs.toplevel(repo)
    base = base or gitrefs.default_base(top)
    prefix = os.path.relpath(repo, top).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"
    files = {f[len(prefix):] for f in gitrefs.changed_files(top, base) if f.startswith(prefix)}
    found = found or discover(repo)
    head, flux_findings = _candidate_renders(repo, found, files, jobs)
    if not head:
        return ChangedRoots([], {}, {}, flux_findings, sorted(files))
    # Only what the candidates read is exported from the base, not the tree.
    wanted = {prefix + f for r in head.values() for f in (*r.target.sources, r.target.directory + "/")}
    wanted |= {prefix + r.target.path.split("#")[0] + "/" for r in head.values()}
    with gitrefs.tree_at(top, base, sorted(w.rstrip("/") for w in wanted)) as old_top:
        old_root = old_top / prefix if prefix else old_top
        old = diff.render_tree(old_root, only=set(head), jobs=jobs)
        marked = {f for f in files if _mentions_marker(repo / f) or _mentions_marker(old_root / f)}
    changed = [path for path in sorted(head)
               if marked & set(head[path].target.sources)
               or diff.diff_render(old.get(path), head[path], path).status != "unchanged"]
    return ChangedRoots(changed, {p: head[p] for p in changed}, {p: old[p] for p in changed if p in old},
                        flux_findings, sorted(files))


def _mentions_marker(path: Path) -> bool:
    """Does the file hold an image policy marker (text only: a marker is a comment)?"""
    try:
        return MARKER_KEY.encode() in path.read_bytes()
    except OSError:
        return False


def _touches(target: Target, files: set[str]) -> bool:
    return bool(files & set(target.sources)) or any(f.startswith(target.directory + "/") for f in files)


def _flux_paths(repo: Path, target: Target) -> list[str] | None:
    """The spec.path of every Flux Kustomization written in a root's files,
    read without rendering; None when the root holds no Flux objects.
    Only roots whose files mention Flux's API are read at all."""
    paths: list[str] = []
    declares = False
    for file in target.resource_files:
        try:
            text = (repo / file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if flux.FLUX_GROUP not in text:
            continue
        declares = True
        try:
            docs = yaml.load_all(text, Loader=_Loader)
            for doc in docs:
                if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(flux.FLUX_GROUP):
                    path = str((doc.get("spec") or {}).get("path") or "./")
                    paths.append(os.path.normpath(path.lstrip("/")).replace(os.sep, "/"))
        except yaml.YAMLError:
            return [""]  # unreadable here: let the render decide
    return paths if declares else None


def _candidate_renders(repo: Path, found, files: set[str], jobs: int | None
                       ) -> tuple[dict[str, Render], list[Finding]]:
    """Head renders of the roots and Flux builds whose sources changed. A
    cluster root is rendered only if one of its own files changed or one of
    its Flux Kustomizations builds a path whose files changed."""
    index = SourceIndex(repo)
    roots = [t for t in found.targets if _touches(t, files)]
    # What a Flux build may read is decided by .sourceignore files anywhere
    # and by its GitRepository (a file of the cluster root).
    ignore_changed = any(f.rpartition("/")[2] == sourceignore.SOURCEIGNORE for f in files)
    flux_roots = []
    for target in found.targets:
        paths = _flux_paths(repo, target)
        if paths is None:
            continue
        reads = set(target.sources)
        for path in paths:
            if path in found.kustomizations:
                reads |= set(closure(found.kustomizations, path)[0])
            else:
                reads.add(path + "/")
        if files & reads or any(f.startswith(p) for f in files for p in reads if p.endswith("/")) or "" in paths \
                or ignore_changed:
            flux_roots.append(target)
    chosen = list({t.path: t for t in roots + flux_roots}.values())
    rendered = {r.target.path: r for r in render_all(repo, chosen, jobs, index)}
    flux_findings: list[Finding] = []
    context = fluxcluster.RunContext(repo)
    head = {t.path: rendered[t.path] for t in roots}
    clusters: dict[str, fluxcluster.Cluster] = {}
    for target in flux_roots:
        render = rendered[target.path]
        if not fluxcluster.declares_flux(render):
            continue
        own_files_changed = ignore_changed or bool(files & set(target.sources))
        cluster = clusters[target.path] = fluxcluster.Cluster(target, found.kustomizations, context)
        builds = cluster.add(render)
        # Builds whose files changed, and what they lead to (a build that
        # declares further Kustomizations), level by level.
        while builds:
            chosen_builds = [b for b in builds if own_files_changed or _touches(b, files)]
            builds = []
            for build in render_all(repo, chosen_builds, jobs, index):
                head[build.target.path] = build
                if build.ok:
                    builds += cluster.add(build)
        # A build that can no longer be made (its path left out of the
        # artifact, a dependency cycle) is reported, not dropped.
        flux_findings += cluster.finish()
    # HelmReleases of the renders chosen, as a whole run reports them.
    flux_findings += helm.findings(repo, list(head.values()), clusters, context)
    return head, flux_findings
