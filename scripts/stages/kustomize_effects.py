"""kustomize entries that do nothing: a `patches` entry whose target selects
no object at the point kustomize applies it, an `images` entry that matches no
container image, a `replacements` target that selects nothing. kustomize (and
kustomize-controller) build such a root without a word, and what the entry
was meant to change silently keeps its base value: a typo in the name of
prod's canary-weights patch sends prod back to the base weights.

kustomize builds a kustomization in this order: its resources (each a file or
a built kustomization), its components (each applied to everything
accumulated so far), its generators, then its transformers (patches first,
then namespace, prefixes and suffixes, labels, images, replacements last). A
patch selects by kind, group and version, by name and namespace (regular
expressions, matched against an object's original or current name), and by
label and annotation selectors. This module follows each rendered object from
the file (or generator) that made it up to the root, so each entry is judged
against the objects, names and images as they are when it runs.

Where the render alone cannot tell (labels at an intermediate point, images
a patch sets), the check assumes the entry may match: it never reports an
entry that did something.

The entries kustomize itself refuses (a strategic-merge patch with no target
that matches nothing, a replacement source that selects nothing, a generator
with `behavior: merge` or `replace` and nothing to merge into) fail the build;
`explain_failure` turns kustomize's message into one naming the entry's file
and line.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scripts.core.errors import InputError
from scripts.core.model import Finding, Render, Resource, SourceRef, Target
from scripts.core.yamlio import document_lines, load_render

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_PATHS = 64  # ways an object can reach the root (a diamond per level would explode)


# ---- reading kustomizations with line numbers -------------------------------------------

# libyaml's composer gives the same nodes and marks, about 10x faster than
# the pure-Python one, which was most of this check's time.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None


def _mapping(node: yaml.Node | None) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _text(node: yaml.Node | None) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


@dataclass(frozen=True)
class Selector:
    """A kustomize target selector (types.Selector)."""

    group: str | None = None
    version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    label_selector: str | None = None
    annotation_selector: str | None = None

    @classmethod
    def from_node(cls, node: yaml.Node | None) -> Selector | None:
        fields = _mapping(node)
        if not fields:
            return None
        def get(key: str) -> str | None:
            value = _text(fields.get(key))
            return value if value else None
        return cls(get("group"), get("version"), get("kind"), get("name"), get("namespace"),
                   get("labelSelector"), get("annotationSelector"))

    def describe(self) -> str:
        parts = [f"{key}={value}" for key, value in (
            ("group", self.group), ("version", self.version), ("kind", self.kind), ("name", self.name),
            ("namespace", self.namespace), ("labelSelector", self.label_selector),
            ("annotationSelector", self.annotation_selector)) if value is not None]
        return ", ".join(parts) or "everything"


@dataclass(frozen=True)
class Entry:
    """An entry whose effect is checked: where it is written and what it selects."""

    kind: str  # "patch", "image", "replacement target"
    label: str  # e.g. "patches[2]"
    file: str
    line: int
    selector: Selector | None = None  # patches, replacement targets
    reject: tuple[Selector, ...] = ()  # replacement targets: what the select must not pick
    image: str | None = None  # images: the image name to match

    @functools.cached_property
    def key(self) -> tuple[str, int, str]:
        """Where it is written: what the findings and the set of entries that acted hold."""
        return (self.file, self.line, self.label)


@dataclass(frozen=True)
class Generator:
    kind: str  # ConfigMap or Secret
    name: str
    behavior: str
    file: str
    line: int


@dataclass
class Node:
    """One kustomization file, as far as this check reads it."""

    directory: str
    file: str
    resource_files: list[str] = field(default_factory=list)
    resource_dirs: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    generators: list[Generator] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    replacement_sources: list[tuple[Selector, str, int]] = field(default_factory=list)
    prefix: str = ""
    suffix: str = ""
    namespace: str | None = None
    images: list[tuple[str, str | None]] = field(default_factory=list)  # (name, newName)
    labels_added: frozenset[str] = frozenset()  # label keys its labels/commonLabels set


def _join(directory: str, entry: str) -> str:
    return os.path.normpath(os.path.join(directory, entry)).replace(os.sep, "/")


def parse_kustomization(repo: Path, file: str) -> Node | None:
    """The parts of a kustomization that decide what its entries select."""
    try:
        text = (repo / file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    root = _compose(text)
    fields = _mapping(root)
    directory = os.path.dirname(file) or "."
    node = Node(directory=directory, file=file)
    for key in ("resources", "bases"):
        for item in _items(fields.get(key)):
            entry = _text(item)
            if not entry or "://" in entry or entry.startswith(("github.com/", "git@")):
                continue
            path = _join(directory, entry)
            if any((repo / path / name).is_file() for name in KUSTOMIZATION_FILES):
                node.resource_dirs.append(path)
            else:
                node.resource_files.append(path)
    for item in _items(fields.get("components")):
        entry = _text(item)
        if entry:
            node.components.append(_join(directory, entry))
    for key, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for item in _items(fields.get(key)):
            spec = _mapping(item)
            name = _text(spec.get("name"))
            if name:
                node.generators.append(Generator(kind, name, _text(spec.get("behavior")) or "create", file,
                                                 _line(item)))
    for key in ("patches", "patchesJson6902"):
        for index, item in enumerate(_items(fields.get(key))):
            selector = Selector.from_node(_mapping(item).get("target"))
            if selector is not None:
                node.entries.append(Entry("patch", f"{key}[{index}]", file, _line(item), selector=selector))
    for index, item in enumerate(_items(fields.get("images"))):
        spec = _mapping(item)
        name = _text(spec.get("name"))
        if name:
            node.entries.append(Entry("image", f"images[{index}]", file, _line(item), image=name))
            node.images.append((name, _text(spec.get("newName"))))
    for index, item in enumerate(_items(fields.get("replacements"))):
        spec = _mapping(item)
        if "path" in spec:  # a replacement file: its own mapping, lines in that file
            path = _join(directory, _text(spec["path"]) or "")
            try:
                inner = _compose((repo / path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
            _replacement(node, inner, f"replacements[{index}]", path)
        else:
            _replacement(node, item, f"replacements[{index}]", file)
    added = set(_mapping(fields.get("commonLabels")))
    for item in _items(fields.get("labels")):
        added |= set(_mapping(_mapping(item).get("pairs")))
    node.labels_added = frozenset(added)
    node.prefix = _text(fields.get("namePrefix")) or ""
    node.suffix = _text(fields.get("nameSuffix")) or ""
    node.namespace = _text(fields.get("namespace")) or None
    return node


def _replacement(node: Node, item: yaml.Node | None, label: str, file: str) -> None:
    spec = _mapping(item)
    source = Selector.from_node(spec.get("source"))
    if source is not None and item is not None:
        node.replacement_sources.append((source, file, _line(item)))
    for index, target in enumerate(_items(spec.get("targets"))):
        target_fields = _mapping(target)
        selector = Selector.from_node(target_fields.get("select"))
        rejects = tuple(s for s in (Selector.from_node(r) for r in _items(target_fields.get("reject"))) if s)
        if selector is not None:
            node.entries.append(Entry("replacement target", f"{label}.targets[{index}]", file, _line(target),
                                      selector=selector, reject=rejects))


def _flux_entries(repo: Path, target: Target) -> list[Entry]:
    """spec.patches and spec.images of a Flux Kustomization: applied with the
    root kustomization's own, at the same point."""
    if target.flux is None or not target.flux.file:
        return []
    try:
        text = (repo / target.flux.file).read_text(encoding="utf-8")
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    name = (target.flux.kustomization.get("metadata") or {}).get("name")
    for document in documents:
        fields = _mapping(document)
        if _text(fields.get("kind")) != "Kustomization" or _text(_mapping(fields.get("metadata")).get("name")) != name:
            continue
        spec = _mapping(fields.get("spec"))
        out = []
        for index, item in enumerate(_items(spec.get("patches"))):
            selector = Selector.from_node(_mapping(item).get("target"))
            if selector is not None:
                out.append(Entry("patch", f"spec.patches[{index}]", target.flux.file, _line(item),
                                 selector=selector))
        for index, item in enumerate(_items(spec.get("images"))):
            image = _text(_mapping(item).get("name"))
            if image:
                out.append(Entry("image", f"spec.images[{index}]", target.flux.file, _line(item), image=image))
        return out
    return []


# ---- selectors -------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)  # the same few selectors, once per object and step
def _anchored(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(f"(?:{pattern})\\Z")
    except re.error:
        return None


_REQUIREMENT = re.compile(r"\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|\s+(in|notin)\s*"
                          r"\(([^)]*)\))?\s*")


def _split_requirements(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def selector_matches(text: str, labels: dict[str, str]) -> bool | None:
    """A Kubernetes label selector string against labels; None when the
    selector is not understood (then nothing is claimed about it)."""
    for requirement in _split_requirements(text):
        match = _REQUIREMENT.fullmatch(requirement)
        if match is None:
            return None
        negate, key, operator, value, set_operator, values = match.groups()
        present = key in labels
        if operator in ("=", "=="):
            ok = labels.get(key) == value
        elif operator == "!=":
            ok = labels.get(key) != value
        elif set_operator is not None:
            members = {v.strip() for v in values.split(",") if v.strip()}
            ok = (labels.get(key) in members) if set_operator == "in" else (labels.get(key) not in members)
        else:
            ok = present
        if negate:
            ok = not present if operator is None and set_operator is None else None
            if ok is None:
                return None
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Identity:
    """An object as an entry sees it at the point the entry runs."""

    group: str
    version: str
    kind: str
    names: frozenset[str]  # the original name and the current one
    namespaces: frozenset[str]
    labels: dict[str, str]
    annotations: dict[str, str]


def _regex_mismatch(pattern_text: str | None, values: set[str] | frozenset[str]) -> bool:
    """Is there a pattern, readable, that matches none of the values?
    (kustomize reads every selector field but the label selectors as an
    anchored regular expression.)"""
    if pattern_text is None:
        return False
    pattern = _anchored(pattern_text)
    return pattern is not None and not any(pattern.match(v) for v in values)


def matches(selector: Selector, identity: Identity) -> bool:
    if _regex_mismatch(selector.kind, {identity.kind}) or _regex_mismatch(selector.group, {identity.group}) \
            or _regex_mismatch(selector.version, {identity.version}):
        return False
    if selector.name is not None:
        pattern = _anchored(selector.name)
        if pattern is None or not any(pattern.match(n) for n in identity.names):
            return pattern is None  # a pattern Python cannot read: assume it matches
    if selector.namespace is not None:
        pattern = _anchored(selector.namespace)
        if pattern is None or not any(pattern.match(n) for n in identity.namespaces):
            return pattern is None
    for text, values in ((selector.label_selector, identity.labels),
                         (selector.annotation_selector, identity.annotations)):
        if text is not None and selector_matches(text, values) is False:
            return False
    return True


# ---- following objects from their source to the root -----------------------------------

@dataclass(frozen=True)
class Step:
    """A kustomization that acts on an object on its way to the root, in order."""

    node: Node
    generated_here: bool = False  # the object is made by this node's generator


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


_POD_KINDS = frozenset(("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"))
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def _images(doc: Any) -> Iterator[str]:
    """Every image of every container list in an object (looked for in
    nested mappings, as kustomize's image transformer does, not in lists of
    other things: a dashboard or a rule group holds no pod)."""
    if not isinstance(doc, dict):
        return
    for key, value in doc.items():
        if key in _CONTAINER_LISTS and isinstance(value, list):
            for container in value:
                if isinstance(container, dict) and isinstance(container.get("image"), str):
                    yield container["image"]
        elif isinstance(value, dict) and key not in ("metadata", "data", "status"):
            yield from _images(value)


class KustomizeEffects:
    """Checks each render's kustomization entries; files read once per run."""

    def __init__(self, repo: Path):
        self.repo = repo
        self._nodes: dict[str, Node | None] = {}
        self._sources: dict[str, dict[int, dict[str, Any]]] = {}
        self._graphs: dict[str, tuple[dict[str, Node], dict[str, list[tuple[str, int | None]]]]] = {}
        self._chain_cache: dict[tuple[str, str, bool], list[list[Step]]] = {}
        self._flux: dict[tuple[str, str], list[Entry]] = {}

    def _node(self, directory: str) -> Node | None:
        if directory not in self._nodes:
            file = next((f"{directory}/{name}" if directory != "." else name for name in KUSTOMIZATION_FILES
                         if (self.repo / directory / name).is_file()), None)
            self._nodes[directory] = parse_kustomization(self.repo, file) if file else None
        return self._nodes[directory]

    def _source_doc(self, source: SourceRef) -> dict[str, Any] | None:
        """The document an object was written as (by the line its source names)."""
        if source.file not in self._sources:
            try:
                text = (self.repo / source.file).read_text(encoding="utf-8")
                docs = load_render(text, source.file)  # as the render's documents are read
                by_line = {line: d for line, d in zip(document_lines(text), docs, strict=False) if isinstance(d, dict)}
            except (OSError, UnicodeDecodeError, InputError):
                by_line = {}
            self._sources[source.file] = by_line
        return self._sources[source.file].get(source.line or 0)

    def _graph(self, root: str) -> tuple[dict[str, Node], dict[str, list[tuple[str, int | None]]]]:
        """The build's kustomizations, and for each the parents that pull it
        in: (parent, None) for a resource, (parent, i) for its i-th component."""
        if root not in self._graphs:
            self._graphs[root] = self._make_graph(root)
        return self._graphs[root]

    def _make_graph(self, root: str) -> tuple[dict[str, Node], dict[str, list[tuple[str, int | None]]]]:
        nodes: dict[str, Node] = {}
        parents: dict[str, list[tuple[str, int | None]]] = {}
        todo = [root]
        while todo:
            directory = todo.pop()
            if directory in nodes:
                continue
            node = self._node(directory)
            if node is None:
                continue
            nodes[directory] = node
            for child in node.resource_dirs:
                parents.setdefault(child, []).append((directory, None))
                todo.append(child)
            for index, child in enumerate(node.components):
                parents.setdefault(child, []).append((directory, index))
                todo.append(child)
        return nodes, parents

    def _chains(self, origin: str, generated: bool, root: str, nodes: dict[str, Node],
                parents: dict[str, list[tuple[str, int | None]]]) -> list[list[Step]]:
        """Every sequence of kustomizations that act on an object from
        `origin` (a kustomization's resources, or its generator), in order."""
        def own(node: Node, after_component: int | None, generated_here: bool) -> list[Step]:
            # Components run before the node's generators and transformers,
            # each on what was accumulated when it ran.
            if generated_here:
                return [Step(node, generated_here=True)]
            start = 0 if after_component is None else after_component + 1
            steps = []
            for component in node.components[start:]:
                steps += [Step(n) for n in self._component_steps(component, nodes)]
            return steps + [Step(node)]

        key = (root, origin, generated)
        if key in self._chain_cache:
            return self._chain_cache[key]
        results: list[list[Step]] = []
        self._chain_cache[key] = results

        def climb(directory: str, steps: list[Step], seen: frozenset[str]) -> None:
            if len(results) >= MAX_PATHS:
                return
            if directory == root:
                results.append(steps)
                return
            for parent, component_index in parents.get(directory, []):
                if parent in seen or parent not in nodes:
                    continue
                climb(parent, steps + own(nodes[parent], component_index, False), seen | {parent})

        if origin not in nodes:
            return []
        climb(origin, own(nodes[origin], None, generated), frozenset({origin}))
        return results

    def _component_steps(self, component: str, nodes: dict[str, Node]) -> list[Node]:
        """A component applied to objects from outside it: its own components, then itself."""
        node = nodes.get(component)
        if node is None:
            return []
        out: list[Node] = []
        for inner in node.components:
            out += self._component_steps(inner, nodes)
        return out + [node]

    def _origins(self, obj: Resource, nodes: dict[str, Node]) -> list[tuple[str, bool, str, str | None]]:
        """(origin kustomization, generated?, original name, original namespace) candidates."""
        out = []
        if obj.source is not None:
            doc = self._source_doc(obj.source)
            meta = (doc or {}).get("metadata") or {}
            name = str(meta.get("name") or obj.name)
            for directory, node in nodes.items():
                if obj.source.file in node.resource_files:
                    out.append((directory, False, name, meta.get("namespace")))
        for directory, node in nodes.items():
            for generator in node.generators:
                if generator.kind == obj.kind and generator.name in obj.name and generator.behavior == "create":
                    out.append((directory, True, generator.name, None))
        return out

    def check(self, render: Render) -> list[Finding]:
        """The entries of the render's build that select nothing."""
        if not render.ok or not render.objects:
            return []
        target = render.target
        nodes, parents = self._graph(target.directory)
        if target.directory not in nodes:
            return []
        entries = {e.key: e for node in nodes.values() for e in node.entries}
        flux_key = (target.flux.file or "", str((target.flux.kustomization.get("metadata") or {}).get("name"))) \
            if target.flux is not None else ("", "")
        if flux_key not in self._flux:
            self._flux[flux_key] = _flux_entries(self.repo, target)
        flux = self._flux[flux_key]
        entries.update({e.key: e for e in flux})
        hit: set[tuple[str, int, str]] = set()
        root = nodes[target.directory]
        # Per kind, the entries that could select such an object at all
        # (kind patterns are read once per kind, not once per object).
        by_kind: dict[str, list[tuple[tuple[str, int, str], Entry]]] = {}
        images = [(key, entry) for key, entry in entries.items() if entry.kind == "image"]
        # Workloads first: they are what most entries act on, so the rest are
        # usually proven by the time the other objects come (and skipped).
        ordered = sorted(render.objects, key=lambda o: o.kind not in _POD_KINDS)
        for obj in ordered:
            if len(hit) == len(entries):
                break  # every entry has acted: nothing is left to find
            kind = obj.kind
            if kind not in by_kind:
                by_kind[kind] = [(key, entry) for key, entry in entries.items()
                                 if entry.kind != "image" and _may_select(entry, kind, False)]
            selecting = any(key not in hit for key, _ in by_kind[kind])
            # Images are looked for only while an images entry is still to prove.
            final_images = {_image_name(i) for i in _images(obj.doc)} \
                if any(key not in hit for key, _ in images) else set()
            if not selecting and not final_images:
                continue  # no entry still to prove could act on this object
            followed = False
            for origin, generated, name, namespace in self._origins(obj, nodes):
                for chain in self._chains(origin, generated, target.directory, nodes, parents):
                    if _reaches(chain, name, generated, obj.name):
                        self._mark(chain, obj, name, namespace, final_images, hit, root, flux)
                        followed = True
            if not followed:
                # An object we cannot follow to its source: any entry that
                # could have selected it is given the benefit of the doubt.
                self._mark_any(obj, final_images, entries, hit)
        return [_finding(target, entry) for key, entry in sorted(entries.items()) if key not in hit]

    @staticmethod
    def _mark_any(obj: Resource, final_images: set[str], entries: dict[tuple[str, int, str], Entry],
                  hit: set[tuple[str, int, str]]) -> None:
        group, _, version = obj.api_version.rpartition("/")
        annotations = obj.metadata.get("annotations")
        identity = Identity(group, version, obj.kind, frozenset({obj.name}), frozenset({obj.namespace or "default"}),
                            obj.labels, annotations if isinstance(annotations, dict) else {})
        for key, entry in entries.items():
            if entry.kind == "image":
                if entry.image in final_images or final_images:
                    hit.add(key)
            elif entry.selector is not None and matches(Selector(entry.selector.group, entry.selector.version,
                                                                 entry.selector.kind), identity):  # kind alone
                hit.add(key)

    def _mark(self, chain: list[Step], obj: Resource, name: str, namespace: str | None, final_images: set[str],
              hit: set[tuple[str, int, str]], root: Node, flux: list[Entry]) -> None:
        pending = any(e.key not in hit
                      for step in chain for e in step.node.entries + (flux if step.node is root else []))
        if not pending:
            return  # every entry on this way has acted already
        group, _, version = obj.api_version.rpartition("/")
        labels, annotations = obj.labels, obj.metadata.get("annotations") or {}
        source_doc = self._source_doc(obj.source) if obj.source is not None else None
        images = {_image_name(i) for i in _images(source_doc)} if source_doc else set()
        source_labels = ((source_doc or {}).get("metadata") or {}).get("labels") or {}
        # Labels that this step or a later one adds were not there yet when
        # the step's patches ran (labels are set after patches), unless the
        # source had them already.
        later_added: list[frozenset[str]] = []
        added: frozenset[str] = frozenset()
        for step in reversed(chain):
            added = added | step.node.labels_added
            later_added.append(added)
        later_added.reverse()
        current, current_ns = name, namespace or "default"
        earlier: frozenset[str] = frozenset()
        for position, step in enumerate(chain):
            node = step.node
            not_yet = later_added[position] - set(source_labels) - earlier
            earlier = earlier | node.labels_added
            labels_then = {k: v for k, v in labels.items() if k not in not_yet} if not_yet else labels
            before = Identity(group, version, obj.kind, frozenset({name, current}),
                              frozenset({namespace or "default", current_ns}), labels_then,
                              annotations if isinstance(annotations, dict) else {})
            after_name = node.prefix + current + node.suffix
            after_ns = node.namespace or current_ns
            after = Identity(group, version, obj.kind, frozenset({name, current, after_name}),
                             frozenset({namespace or "default", current_ns, after_ns}), labels, before.annotations)
            step_entries = node.entries + (flux if node is root else [])
            seen_images = images | final_images
            for entry in step_entries:
                key = entry.key
                if key not in hit and _selects(entry, before, after, seen_images):
                    hit.add(key)
            for image_name, new_name in node.images:
                if new_name and image_name in images:
                    images = (images - {image_name}) | {_image_name(new_name)}
            current, current_ns = after_name, after_ns


def _may_select(entry: Entry, kind: str, has_images: bool) -> bool:
    """A cheap bound: could the entry act on an object of this kind at all?"""
    if entry.kind == "image":
        return has_images
    return entry.selector is not None and _kind_may_match(entry.selector.kind, kind)


@functools.lru_cache(maxsize=4096)  # a few kind patterns, a few kinds
def _kind_may_match(pattern: str | None, kind: str) -> bool:
    return not _regex_mismatch(pattern, {kind})


def _selects(entry: Entry, before: Identity, after: Identity, images: set[str]) -> bool:
    """Does the entry act on the object? Patches run before the node's own
    prefix and suffix, replacements after every other transformer."""
    if entry.kind == "image":
        return entry.image in images
    if entry.selector is None:
        return False
    if entry.kind == "patch":
        return matches(entry.selector, before)
    return matches(entry.selector, after) and not any(matches(r, after) for r in entry.reject)


def _reaches(chain: list[Step], name: str, generated: bool, final: str) -> bool:
    """Does this way up to the root give the object its rendered name?"""
    predicted = name
    for step in chain:
        predicted = step.node.prefix + predicted + step.node.suffix
    if generated:
        # A generated name ends with the content hash, unless hashing is off.
        return final == predicted or re.fullmatch(re.escape(predicted) + r"-[a-z0-9]{10}", final) is not None
    return final == predicted


def _finding(target: Target, entry: Entry) -> Finding:
    if entry.kind == "image":
        problem = (f"{entry.label} (image {entry.image!r}) matches no container image of the build, so kustomize "
                   "changes nothing; fix its `name` to the image as the resources name it (without tag or digest)")
        rule = "kustomize-image-unmatched"
    elif entry.kind == "patch":
        problem = (f"{entry.label} selects no object ({entry.selector.describe() if entry.selector else ''}) "
                   "where kustomize applies it, so the patch does nothing and the objects keep their base values; "
                   "fix the target (names are matched before this kustomization's prefix and suffix)")
        rule = "kustomize-patch-unmatched"
    else:
        problem = (f"{entry.label} selects no object ({entry.selector.describe() if entry.selector else ''}), "
                   "so the replacement writes nothing; fix its `select`")
        rule = "kustomize-replacement-unmatched"
    return Finding(stage="render", target=target.path, rule=rule, severity="error", message=problem,
                   file=entry.file, line=entry.line)


# ---- the build failures kustomize does report, told in terms of the entry -----------------

_SMP_NO_MATCH = re.compile(r'no resource matches strategic merge patch "([^."]+)\.[^/"]*/([^."]+)\.')
_REPLACEMENT_SOURCE = re.compile(r"nothing selected by ([^.\s]+)\.[^/\s]*/([^.\s:]+)\.[^:\s]*:(\S+)")
_GENERATOR_MERGE = re.compile(r'Kind:"([^"]+)".*?Name:"([^"]+)".*?does not exist; cannot merge or replace')


def explain_failure(repo: Path, target: Target, error: str) -> tuple[str, SourceRef] | None:
    """For a build kustomize refused because an entry selects nothing: the
    message and the entry's file and line."""
    kustomizations = [f for f in target.sources if os.path.basename(f) in KUSTOMIZATION_FILES]
    if (match := _GENERATOR_MERGE.search(error)) is not None:
        kind, name = match.groups()
        for file in kustomizations:
            node = parse_kustomization(repo, file)
            for generator in node.generators if node else []:
                if generator.kind == kind and generator.name == name and generator.behavior in ("merge", "replace"):
                    return (f"{kind.lower()}Generator {name!r} has behavior: {generator.behavior}, but no {kind} "
                            f"named {name!r} comes from this kustomization's resources to {generator.behavior}; "
                            "kustomize refuses the build (drop the behavior, or fix the name)",
                            SourceRef(generator.file, generator.line))
    if (match := _REPLACEMENT_SOURCE.search(error)) is not None:
        kind, name, field_path = match.groups()
        for file in kustomizations:
            node = parse_kustomization(repo, file)
            for selector, where, line in node.replacement_sources if node else []:
                if selector.kind in (None, kind) and selector.name in (None, name):
                    return (f"the replacement source {kind}/{name} ({field_path}) selects no object, so kustomize "
                            "refuses the build; fix the source's kind and name", SourceRef(where, line))
    if (match := _SMP_NO_MATCH.search(error)) is not None:
        kind, name = match.groups()
        for file in kustomizations:
            located = _smp_patch(repo, file, kind, name)
            if located is not None:
                return (f"the strategic-merge patch of {kind}/{name} has no target and matches no object, so "
                        "kustomize refuses the build; fix its kind or metadata.name (they name the object it "
                        "patches), or give the entry a target", located)
    return None


def _smp_patch(repo: Path, file: str, kind: str, name: str) -> SourceRef | None:
    try:
        root = _compose((repo / file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    fields = _mapping(root)
    directory = os.path.dirname(file) or "."
    candidates = [(item, _mapping(item).get("patch"), _text(_mapping(item).get("path")))
                  for item in _items(fields.get("patches"))]
    candidates += [(item, item if _text(item) and "\n" in (_text(item) or "") else None,
                    _text(item) if _text(item) and "\n" not in (_text(item) or "") else None)
                   for item in _items(fields.get("patchesStrategicMerge"))]
    for item, inline, path in candidates:
        texts = []
        if inline is not None and _text(inline):
            texts.append(_text(inline) or "")
        elif path:
            try:
                texts.append((repo / _join(directory, path)).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
        for text in texts:
            try:
                docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
            except yaml.YAMLError:
                continue
            if any(d.get("kind") == kind and (d.get("metadata") or {}).get("name") == name for d in docs):
                return SourceRef(file, _line(item))
    return None
