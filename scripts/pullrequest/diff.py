"""`diff`: what each root renders at one ref versus another, object by
object and field by field (a semantic diff, not a text diff of YAML)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.core.model import Finding, Render
from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux
from scripts.stages import immutable

# kustomize appends a content hash to generated ConfigMaps and Secrets; the
# same generator at two refs is the same object, whatever its hash.
_HASH_SUFFIX = re.compile(r"-[2456789bcdfghkmt]{10}$")
_MISSING = object()


@dataclass
class FieldChange:
    path: str
    old: Any
    new: Any


@dataclass
class ObjectChange:
    key: str  # kind/namespace/name
    change: str  # added | removed | changed
    fields: list[FieldChange] = field(default_factory=list)
    object: dict | None = None  # whole object, for added and removed


@dataclass
class TargetDiff:
    path: str
    status: str  # changed | unchanged | added | removed | error
    objects: list[ObjectChange] = field(default_factory=list)
    error: str | None = None
    immutable: list[Finding] = field(default_factory=list)  # updates the API server refuses


def object_key(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    name = str(meta.get("name") or "")
    if doc.get("kind") in ("ConfigMap", "Secret"):
        name = _HASH_SUFFIX.sub("", name)
    return f"{doc.get('kind')}/{meta.get('namespace') or '-'}/{name}"


def _list_key(items: list) -> str | None:
    """Lists of named things (containers, env, ports) are matched by name."""
    if items and all(isinstance(i, dict) and "name" in i for i in items):
        names = [i["name"] for i in items]
        if len(set(names)) == len(names):
            return "name"
    return None


def compare(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if a is _MISSING:
                changes.append(FieldChange(sub, None, b))
            elif b is _MISSING:
                changes.append(FieldChange(sub, a, None))
            else:
                changes.extend(compare(a, b, sub))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        key = _list_key(old) if _list_key(old) == _list_key(new) else None
        if key:
            old_by = {i[key]: i for i in old}
            new_by = {i[key]: i for i in new}
            changes = []
            for name in list(dict.fromkeys([*old_by, *new_by])):
                sub = f"{path}[{key}={name}]"
                if name not in old_by:
                    changes.append(FieldChange(sub, None, new_by[name]))
                elif name not in new_by:
                    changes.append(FieldChange(sub, old_by[name], None))
                else:
                    changes.extend(compare(old_by[name], new_by[name], sub))
            if not changes and [i[key] for i in old] != [i[key] for i in new]:
                changes.append(FieldChange(f"{path} (order)", [i[key] for i in old], [i[key] for i in new]))
            return changes
        if len(old) == len(new):
            return [c for i, (a, b) in enumerate(zip(old, new, strict=True)) for c in compare(a, b, f"{path}[{i}]")]
        return [FieldChange(path, old, new)]
    return [] if old == new else [FieldChange(path, old, new)]


def diff_render(old: Render | None, new: Render | None, path: str) -> TargetDiff:
    if old is None and new is not None:
        return TargetDiff(path, "added", [ObjectChange(object_key(o.doc), "added", object=o.doc) for o in new.objects])
    if new is None and old is not None:
        return TargetDiff(path, "removed", [ObjectChange(object_key(o.doc), "removed", object=o.doc)
                                            for o in old.objects])
    assert old is not None and new is not None
    if not new.ok or not old.ok:
        which = "head" if not new.ok else "base"
        return TargetDiff(path, "error", error=f"does not render at {which}: {(new if not new.ok else old).error}")
    before = {object_key(o.doc): o.doc for o in old.objects}
    after = {object_key(o.doc): o.doc for o in new.objects}
    objects = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            objects.append(ObjectChange(key, "added", object=after[key]))
        elif key not in after:
            objects.append(ObjectChange(key, "removed", object=before[key]))
        else:
            fields = compare(before[key], after[key])
            if fields:
                objects.append(ObjectChange(key, "changed", fields))
    return TargetDiff(path, "changed" if objects else "unchanged", objects, immutable=immutable.findings(old, new))


def render_tree(root: Path, prefixes: list[str] | None = None, jobs: int | None = None,
                only: set[str] | None = None) -> dict[str, Render]:
    """Renders of the roots of the tree at `root` (none if it does not exist),
    limited to repository-relative path prefixes and/or exact root paths."""
    if not root.is_dir():
        return {}
    found = discover(root)
    chosen = found.targets
    if prefixes:
        chosen = [t for t in chosen if any(p in (".", "") or t.path == p or t.path.startswith(p.rstrip("/") + "/")
                                           or t.path.startswith(p + "#") for p in prefixes)]
    if only is not None:
        chosen = [t for t in chosen if t.path.split("#")[0] in {p.split("#")[0] for p in only}]
    renders, _ = render_with_flux(found.repo, chosen, found.kustomizations, jobs)
    return {r.target.path: r for r in renders if only is None or r.target.path in only}


def diff_trees(old: dict[str, Render], new: dict[str, Render]) -> list[TargetDiff]:
    return [diff_render(old.get(path), new.get(path), path) for path in sorted(set(old) | set(new))]


# ---- output ---------------------------------------------------------------

def _value(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return json.dumps(value) if isinstance(value, str) else str(value)


def _object_lines(change: ObjectChange) -> list[str]:
    if change.change == "added":
        return [f"+ {change.key} (added)"]
    if change.change == "removed":
        return [f"- {change.key} (removed)"]
    lines = [f"~ {change.key}"]
    for f in change.fields:
        if f.old is None:
            lines.append(f"+   {f.path}: {_value(f.new)}")
        elif f.new is None:
            lines.append(f"-   {f.path}: {_value(f.old)}")
        else:
            lines.append(f"-   {f.path}: {_value(f.old)}")
            lines.append(f"+   {f.path}: {_value(f.new)}")
    return lines


def _refused(finding: Finding) -> str:
    return f"refused on update: {finding.kind}/{finding.name}: {finding.message}"


def summary_counts(diffs: list[TargetDiff]) -> dict[str, int]:
    counts = {s: 0 for s in ("changed", "unchanged", "added", "removed", "error")}
    for d in diffs:
        counts[d.status] += 1
    counts["objects_changed"] = sum(1 for d in diffs for o in d.objects if o.change == "changed")
    counts["objects_added"] = sum(1 for d in diffs for o in d.objects if o.change == "added")
    counts["objects_removed"] = sum(1 for d in diffs for o in d.objects if o.change == "removed")
    return counts


def to_text(diffs: list[TargetDiff]) -> str:
    lines = []
    for d in diffs:
        if d.status == "unchanged":
            lines.append(f"{d.path}: unchanged")
            continue
        lines.append(f"{d.path}: {d.status}" + (f" ({d.error})" if d.error else ""))
        for change in d.objects:
            lines.extend("  " + line for line in _object_lines(change))
        lines.extend(f"  ! {_refused(f)}" for f in d.immutable)
    c = summary_counts(diffs)
    lines.append(f"{c['changed']} changed, {c['added']} added, {c['removed']} removed, {c['unchanged']} unchanged "
                 f"targets; objects: {c['objects_changed']} changed, {c['objects_added']} added, "
                 f"{c['objects_removed']} removed")
    return "\n".join(lines) + "\n"


MARKER = "<!-- ai-inference-rendered-diff -->"


def to_markdown(diffs: list[TargetDiff], base: str, head: str, limit: int = 60000) -> str:
    """The pull-request comment: a summary line, one collapsed section per
    changed target, the unchanged ones listed; capped under GitHub's limit."""
    c = summary_counts(diffs)
    out = [MARKER, "### Rendered diff", "",
           f"`{base}` → `{head}`: **{c['changed']} changed**, {c['added']} added, {c['removed']} removed, "
           f"{c['unchanged']} unchanged targets ({c['objects_changed']} objects changed, {c['objects_added']} added, "
           f"{c['objects_removed']} removed)", ""]
    size = sum(len(x) + 1 for x in out)
    omitted = []
    for d in diffs:
        if d.status == "unchanged":
            continue
        counts = {k: sum(1 for o in d.objects if o.change == k) for k in ("changed", "added", "removed")}
        title = f"<code>{d.path}</code>: {d.status}" + (
            f" ({counts['changed']} changed, {counts['added']} added, {counts['removed']} removed)"
            if d.status != "error" else "")
        body = [d.error] if d.error else [line for change in d.objects for line in _object_lines(change)]
        body += [f"! {_refused(f)}" for f in d.immutable]
        section = "\n".join(["<details>", f"<summary>{title}</summary>", "", "```diff", *body, "```", "</details>", ""])
        if size + len(section) > limit - 4000:  # room for the closing lists
            omitted.append(d.path)
            continue
        out.append(section)
        size += len(section) + 1
    if omitted:
        names = ", ".join(omitted[:40]) + (", …" if len(omitted) > 40 else "")
        out.append(f"_{len(omitted)} more changed targets omitted to fit a comment: {names}. "
                   "Run `python -m scripts diff` locally for all of it._\n")
    unchanged = [d.path for d in diffs if d.status == "unchanged"]
    if unchanged:
        shown = ", ".join(f"`{p}`" for p in unchanged[:100])
        out.append("Unchanged: " + shown + (f" and {len(unchanged) - 100} more" if len(unchanged) > 100 else ""))
    return "\n".join(out).rstrip() + "\n"


def to_json(diffs: list[TargetDiff], base: str, head: str) -> dict[str, Any]:
    return {
        "base": base, "head": head, "summary": summary_counts(diffs),
        "targets": [{
            "path": d.path, "status": d.status, "error": d.error,
            "objects": [{"key": o.key, "change": o.change,
                         "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in o.fields],
                         "object": o.object} for o in d.objects],
            "immutable": [{"kind": f.kind, "namespace": f.namespace, "name": f.name, "file": f.file,
                           "message": f.message} for f in d.immutable],
        } for d in diffs],
    }
