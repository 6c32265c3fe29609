"""Flux image automation as the validator sees it: the settings in
config/policy.yaml, the image policy markers written as YAML comments, and
the facts about the Flux image objects that the policy rules need.

The markers follow image-automation-controller v1.2 (Flux 2.9), `Setters`
strategy: the controller reads every `.yaml`/`.yml` file (and files named
`Kustomization`) under the ImageUpdateAutomation's `update.path` that holds
the text `"$imagepolicy"`, and treats a comment on a *scalar value* as a
marker when, with its leading `#` and surrounding blanks removed, it is one
JSON object of strings whose `$imagepolicy` key names a setter. It
registers four setters per ImagePolicy of its own namespace:
`NAMESPACE:NAME` (the whole reference, name:tag@digest), `NAMESPACE:NAME:tag`,
`NAMESPACE:NAME:name` and `NAMESPACE:NAME:digest` (empty unless the policy
reflects digests). A marker that does not parse, names no such setter, or
sits on a key, a list or a mapping is ignored without a word; one on the
wrong scalar overwrites it. `scan_markers` finds every comment that
mentions `$imagepolicy` with its line, and what it would set.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from scripts.core.errors import InputError

MARKER_KEY = "$imagepolicy"
SUFFIXES = ("tag", "name", "digest")
IMAGE_API_GROUP = "image.toolkit.fluxcd.io"
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# An images: entry's field and the setter suffix that belongs on it.
IMAGES_ENTRY_FIELDS = {"newTag": "tag", "digest": "digest", "newName": "name"}
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Directories no Git checkout holds (or none the controller would read): never walked.
_NOT_IN_A_CHECKOUT = {".git", ".venv", "venv", "node_modules", "__pycache__", ".cache", ".pytest_cache"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# libyaml's scanner and composer (about 50 times faster than PyYAML's own
# here); their marks count characters, as PyYAML's do.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Tokens PyYAML emits with no width (structure, not text).
_ZERO_WIDTH = (yaml.StreamStartToken, yaml.StreamEndToken, yaml.BlockMappingStartToken,
               yaml.BlockSequenceStartToken, yaml.BlockEndToken, yaml.KeyToken)


# -- settings (config/policy.yaml `image_automation:`) ----------------------

@dataclass(frozen=True)
class TagRule:
    """Which tags an environment's canary follows: a semver range, or a
    regular expression the tags must match (the ImagePolicy's filterTags)."""

    semver: str | None = None
    tag_pattern: str | None = None

    def describe(self) -> str:
        return f"semver {self.semver!r}" if self.semver is not None else f"tag pattern {self.tag_pattern!r}"


@dataclass(frozen=True)
class ImageAutomationSettings:
    cluster: str | None = None  # the one clusters/<name> that runs the automation
    slot: str = "v2"  # the model slot whose images: entry it may move
    environments: dict[str, TagRule] = field(default_factory=dict)

    @classmethod
    def load(cls, data: Any, environments: dict[str, dict[str, Any]], where: str) -> ImageAutomationSettings:
        """From the `image_automation` mapping; one-line InputErrors."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InputError(f"`image_automation` must be a mapping, found {type(data).__name__}", where)
        unknown = sorted(set(data) - {"cluster", "slot", "environments"})
        if unknown:
            raise InputError(f"`image_automation` has unknown keys {unknown} (known: cluster, slot, environments)",
                             where)
        cluster, slot = data.get("cluster"), data.get("slot", "v2")
        envs = data.get("environments") or {}
        if cluster is not None and (not isinstance(cluster, str) or not _DNS_LABEL.match(cluster)):
            raise InputError(f"`image_automation.cluster` must name a directory of clusters/, found {cluster!r}",
                             where)
        if not isinstance(slot, str) or not _DNS_LABEL.match(slot):
            raise InputError(f"`image_automation.slot` must be a model slot such as v2, found {slot!r}", where)
        if not isinstance(envs, dict):
            raise InputError("`image_automation.environments` must map an environment to {semver} or "
                             "{tag_pattern}", where)
        if envs and cluster is None:
            raise InputError("`image_automation.cluster` is required when environments are automated", where)
        rules = {}
        for name, rule in envs.items():
            key = f"image_automation.environments.{name}"
            if name not in environments:
                raise InputError(f"`{key}`: {name} is not an environment of `environments:`", where)
            if (environments.get(name) or {}).get("ha"):
                raise InputError(f"`{key}`: {name} is highly available (production): it moves by `promote` after "
                                 "canary analysis, never by image automation", where)
            if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in ("semver", "tag_pattern"):
                raise InputError(f"`{key}` must be exactly one of {{semver: RANGE}} or {{tag_pattern: REGEX}}", where)
            (kind, value), = rule.items()
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"`{key}.{kind}` must be a non-empty string", where)
            if kind == "tag_pattern":
                try:
                    re.compile(value)
                except re.error as exc:
                    raise InputError(f"`{key}.tag_pattern` is not a regular expression: {exc}", where) from None
            rules[str(name)] = TagRule(**{kind: value})
        return cls(cluster=cluster, slot=slot, environments=rules)


# -- markers -----------------------------------------------------------------

@dataclass(frozen=True)
class Marker:
    """One comment that mentions `$imagepolicy`, and what it would set."""

    file: str
    line: int  # 1-based
    text: str  # the comment as written, from its `#`
    setter: str | None = None  # NAMESPACE:NAME[:SUFFIX], when the comment is a marker the controller reads
    problem: str | None = None  # why the controller would not read it, or would misplace it
    path: tuple[str | int, ...] = ()  # where the scalar it sits on is, in its document
    field_kind: str | None = None  # "images-entry" | "container-image" | "other", when placed on a scalar
    entry: dict[str, str] = field(default_factory=dict)  # the images: entry's scalar fields, when on one
    entry_line: int | None = None  # where that entry starts (1-based)

    @property
    def parts(self) -> tuple[str, str, str | None]:
        assert self.setter is not None
        pieces = self.setter.split(":")
        return pieces[0], pieces[1], pieces[2] if len(pieces) == 3 else None

    @property
    def policy(self) -> str:
        """namespace/name of the ImagePolicy it names."""
        namespace, name, _ = self.parts
        return f"{namespace}/{name}"

    @property
    def suffix(self) -> str | None:
        return self.parts[2]

    @property
    def key(self) -> str | None:
        """The field it sits on (its last path element), when a mapping key."""
        return self.path[-1] if self.path and isinstance(self.path[-1], str) else None

    @property
    def where(self) -> str:
        """The marked field, for messages: images[NAME].newTag or a YAML path."""
        if self.field_kind == "images-entry":
            return f"images[{self.entry.get('name', '?')}].{self.key}"
        return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in self.path) or "(no field)"


def parse_setter(comment: str) -> tuple[str | None, str | None]:
    """(setter, None) when the controller reads this comment as a marker,
    else (None, why not)."""
    if comment.count(MARKER_KEY) > 1:
        return None, "holds more than one marker: the automation reads a comment as one JSON object, so it " \
                     "reads none of them"
    body = comment.lstrip("#").strip()
    try:
        data = json.loads(body)
    except ValueError:
        return None, f"is not one JSON object (expected # {{\"{MARKER_KEY}\": \"NAMESPACE:POLICY:tag\"}}, nothing " \
                     "after it): the automation ignores it"
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None, "is not a JSON object of strings: the automation ignores it"
    setter = data.get(MARKER_KEY)
    if not setter:
        return None, f"has no \"{MARKER_KEY}\" key (the key is case-sensitive): the automation ignores it"
    parts = setter.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        return None, f"names {setter!r}, not NAMESPACE:POLICY or NAMESPACE:POLICY:SUFFIX: the automation " \
                     "ignores it"
    if len(parts) == 3 and parts[2] not in SUFFIXES:
        return None, f"names {setter!r}: :{parts[2]} is not a setter the automation has (:tag, :name, :digest)"
    if not _DNS_LABEL.match(parts[0]) or not _DNS_SUBDOMAIN.match(parts[1]):
        return None, f"names {setter!r}: no ImagePolicy can have that namespace and name"
    return setter, None


@dataclass
class _Scalar:
    node: yaml.ScalarNode
    path: tuple[str | int, ...]
    role: str  # "key", "value" or "item"
    flow: bool  # inside a flow collection
    parent: yaml.Node | None


def _index_nodes(root: yaml.Node) -> tuple[dict[int, _Scalar], list[_Scalar]]:
    """Every scalar of a document by start offset, and every key with its
    value (for comments that follow `key:`)."""
    scalars: dict[int, _Scalar] = {}
    keys: list[_Scalar] = []

    def walk(node: yaml.Node, path: tuple[str | int, ...], role: str, flow: bool, parent: yaml.Node | None) -> None:
        if isinstance(node, yaml.ScalarNode):
            scalars[node.start_mark.index] = _Scalar(node, path, role, flow, parent)
        elif isinstance(node, yaml.MappingNode):
            inner = flow or bool(node.flow_style)
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                if isinstance(key, yaml.ScalarNode):
                    entry = _Scalar(key, (*path, name), "key", inner, node)
                    scalars[key.start_mark.index] = entry
                    keys.append(entry)
                walk(value, (*path, name), "value", inner, node)
        elif isinstance(node, yaml.SequenceNode):
            inner = flow or bool(node.flow_style)
            for position, item in enumerate(node.value):
                walk(item, (*path, position), "item", inner, node)

    walk(root, (), "value", False, None)
    return scalars, keys


def _comments(text: str, tokens: list[yaml.Token]) -> list[tuple[int, int]]:
    """(start, end) offsets of every comment: a `#` outside every token,
    at a line's start or after a blank, to the end of its line."""
    spans = sorted((t.start_mark.index, t.end_mark.index) for t in tokens if t.end_mark.index > t.start_mark.index)
    found, position = [], 0
    for start, end in [*spans, (len(text), len(text))]:
        cursor = position
        while cursor < start:
            hash_at = text.find("#", cursor, start)
            if hash_at < 0:
                break
            if hash_at == 0 or text[hash_at - 1] in " \t\n\r":
                line_end = text.find("\n", hash_at)
                line_end = len(text) if line_end < 0 else line_end
                found.append((hash_at, line_end))
                cursor = line_end
            else:
                cursor = hash_at + 1
        position = max(position, end)
    return found


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _entry_fields(mapping: yaml.Node | None) -> dict[str, str]:
    if not isinstance(mapping, yaml.MappingNode):
        return {}
    return {k.value: v.value for k, v in mapping.value
            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)}


def is_kustomization(file: str, document: yaml.Node | None) -> bool:
    if PurePosixPath(file).name in KUSTOMIZATION_FILES:
        return True
    fields = _entry_fields(document)
    return fields.get("apiVersion", "").startswith("kustomize.config.k8s.io/")


def _classify(path: tuple[str | int, ...], kustomization: bool) -> str:
    if kustomization and len(path) == 3 and path[0] == "images" and isinstance(path[1], int):
        return "images-entry"
    if len(path) >= 3 and path[-1] == "image" and isinstance(path[-2], int) and path[-3] in CONTAINER_LISTS:
        return "container-image"
    return "other"


def scan_markers(text: str, file: str) -> list[Marker]:
    """Every comment of a YAML text that mentions `$imagepolicy`, with its
    line, the setter it names (or why it names none), and the scalar it
    sits on. A text PyYAML cannot read yields nothing: the render and lint
    stages report it."""
    if MARKER_KEY not in text:
        return []
    try:
        tokens = list(yaml.scan(text, Loader=_Loader))
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError:
        return []
    scalars: dict[int, _Scalar] = {}
    keys: list[_Scalar] = []
    kustomization_by_start: list[tuple[int, bool]] = []
    for document in documents:
        if document is None:
            continue
        found, found_keys = _index_nodes(document)
        scalars.update(found)
        keys += found_keys
        kustomization_by_start.append((document.start_mark.index, is_kustomization(file, document)))
    wide = sorted((t for t in tokens if not isinstance(t, _ZERO_WIDTH)), key=lambda t: t.end_mark.index)
    markers: list[Marker] = []
    covered = 0
    comments = _comments(text, tokens)
    for start, end in comments:
        comment = text[start:end].rstrip()
        if MARKER_KEY not in comment:
            continue
        covered += comment.count(MARKER_KEY)
        line = _line_of(text, start)
        setter, problem = parse_setter(comment)
        before = [t for t in wide if t.end_mark.index <= start and t.end_mark.line == line - 1]
        last = before[-1] if before else None
        place = _place(last, scalars, keys, line)
        if isinstance(place, str):
            markers.append(Marker(file, line, comment, setter, problem or place))
            continue
        kustomization = next((k for s, k in reversed(kustomization_by_start) if s <= start), False)
        kind = _classify(place.path, kustomization)
        entry = _entry_fields(place.parent) if kind == "images-entry" else {}
        entry_line = place.parent.start_mark.line + 1 if kind == "images-entry" and place.parent else None
        markers.append(Marker(file, line, comment, setter, problem, place.path, kind, entry, entry_line))
    if text.count(MARKER_KEY) > covered:
        offset = text.find(MARKER_KEY)
        while offset >= 0:
            if not any(s <= offset < e for s, e in comments):
                markers.append(Marker(file, _line_of(text, offset), MARKER_KEY, None,
                                      f"mentions {MARKER_KEY} outside a comment at the end of a field's line "
                                      "(inside a value or a block scalar's header): the automation cannot be "
                                      "relied on to read it"))
            offset = text.find(MARKER_KEY, offset + 1)
    return sorted(markers, key=lambda m: m.line)


def _place(last: yaml.Token | None, scalars: dict[int, _Scalar], keys: list[_Scalar], line: int) -> _Scalar | str:
    """The scalar value a comment marks, or why it marks none."""
    if last is None or isinstance(last, yaml.BlockEntryToken):
        return "is on a line of its own: the automation may attach it to the next node, or to none; write it " \
               "at the end of the line of the field it sets"
    if isinstance(last, (yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken, yaml.FlowEntryToken,
                         yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)):
        return "follows a flow-style collection ({...} or [...]): the automation sets only a scalar that the " \
               "comment follows; write the entry in block style, one field per line"
    if isinstance(last, yaml.ValueToken):
        # `key:` then the comment: an empty value is a scalar the automation sets; a value on the next lines is not.
        owner = max((k for k in keys if k.node.end_mark.index <= last.start_mark.index
                     and k.node.end_mark.line == line - 1), key=lambda k: k.node.end_mark.index, default=None)
        value = None
        if owner is not None and isinstance(owner.parent, yaml.MappingNode):
            value = next((v for k, v in owner.parent.value if k is owner.node), None)
        if isinstance(value, yaml.ScalarNode) and value.value == "" and value.start_mark.line == line - 1:
            return _Scalar(value, owner.path, "value", owner.flow, owner.parent)
        return "follows a key whose value is not on this line (a list, a mapping, or a value on the next line): " \
               "the automation ignores it; write it after a scalar value on the same line"
    if isinstance(last, yaml.ScalarToken):
        scalar = scalars.get(last.start_mark.index)
        if scalar is None:
            return "follows a value the automation cannot set"
        if scalar.flow:
            return "is inside a flow-style collection ({...} or [...]): the automation sets only a scalar of a " \
                   "block mapping reliably; write the entry in block style, one field per line"
        if scalar.role == "key":
            return "follows a key, not a value: the automation ignores it"
        if scalar.role == "item":
            return "sits on a list item, not a named field: the automation would overwrite that item"
        return scalar
    return "follows something the automation cannot set (a tag, an anchor or an alias)"


# -- Flux image objects ------------------------------------------------------

def is_image_object(obj: Any, kind: str) -> bool:
    return obj.kind == kind and obj.api_version.startswith(IMAGE_API_GROUP + "/")


def repository_path(path: Any) -> str | None:
    """A Flux path (`./overlays/dev`, `overlays/dev/`, `./`) relative to
    the repository root: "" for the root, None if it leaves the repository."""
    text = str(path or "./").strip()
    parts: list[str] = []
    for piece in text.split("/"):
        if piece in ("", "."):
            continue
        if piece == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(piece)
    return "/".join(parts)


def covers(directory: str, file: str) -> bool:
    """Whether a repository-relative directory ("" is the root) holds a file or directory."""
    return directory == "" or file == directory or file.startswith(directory + "/")


def environment_of_file(file: str) -> str | None:
    """The environment whose overlay holds a file: the directory just below
    the nearest `overlays/` on its path."""
    parts = PurePosixPath(file).parts[:-1]
    for position in range(len(parts) - 1, 0, -1):
        if parts[position - 1] == "overlays":
            return parts[position]
    return None


def slot_of_image_name(name: str) -> str | None:
    """The model slot an images: entry pins (ai-inference-service-v2 -> v2)."""
    _, sep, slot = name.rpartition("-")
    return slot if sep and re.fullmatch(r"v[0-9]+", slot) else None


def normalized_url(url: Any) -> str:
    text = str(url or "").strip().rstrip("/")
    return text[:-4] if text.endswith(".git") else text


def push_branches(spec: dict[str, Any], checkout: str | None) -> list[str]:
    """The branches an ImageUpdateAutomation pushes to: `push.branch`, the
    destination of `push.refspec` when it is a branch, and the checkout
    branch when neither is set (or with only a refspec, as the controller
    does)."""
    push = (spec.get("git") or {}).get("push") or {}
    branches = []
    if push.get("branch"):
        branches.append(str(push["branch"]))
    refspec = str(push.get("refspec") or "")
    if refspec:
        destination = refspec.lstrip("+").rpartition(":")[2]
        if destination.startswith("refs/heads/"):
            branches.append(destination.removeprefix("refs/heads/"))
    if not push.get("branch") and checkout:
        branches.append(checkout)
    return branches


def controller_reads(path: str) -> bool:
    """The files the controller screens for markers."""
    name = PurePosixPath(path).name
    return name.endswith((".yaml", ".yml")) or name == "Kustomization"


def files_under(repo: Path, directory: str) -> list[str]:
    """The files the controller would read under a repository-relative
    directory ("" is the root), repository-relative and sorted."""
    found = []
    for root, dirs, files in os.walk(repo / directory if directory else repo):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_IN_A_CHECKOUT)
        for name in sorted(files):
            relative = (Path(root) / name).relative_to(repo).as_posix()
            if controller_reads(relative):
                found.append(relative)
    return found
