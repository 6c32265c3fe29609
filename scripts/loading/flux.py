"""Build what Flux applies: each Flux Kustomization of a cluster root, built
the way kustomize-controller builds it.

kustomize-controller takes the kustomization at `spec.path` and edits it in
place (in its own copy of the source): `targetNamespace` becomes
`namespace`, `namePrefix`/`nameSuffix` are set, `patches` and `components`
appended, `images` replace an entry of the same name or are appended. It
builds that with kustomize (load restrictions off), then runs post-build
variable substitution on every object, then sets `commonMetadata` labels and
annotations on every object. We do the same, in that order: the edit goes
into a kustomization.yaml in a mirror of the tree made of symlinks, so the
repository is never written to.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from pathlib import Path

import yaml

from scripts.core.errors import InputError
from scripts.core.model import FluxSource, Resource, Target
from scripts.core.yamlio import _Loader, load_file
from scripts.loading import artifacts, sourceignore
from scripts.loading.discover import KUSTOMIZATION_FILES, generated_listing
from scripts.loading.fluxkinds import KUSTOMIZE_GROUP

FLUX_GROUP = KUSTOMIZE_GROUP
DISABLED_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute"
_VAR_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
# ${name}, ${name:=default}, ${name:-default}, ${name=default}, ${name-default};
# $${...} is an escaped literal. $name without braces is left alone, as Flux does.
_REFERENCE = re.compile(r"\$(\$?)\{([^}:=\-]*)(?:(:?[=\-])([^}]*))?\}")


def is_flux_kustomization(obj: Resource) -> bool:
    return obj.kind == "Kustomization" and obj.api_version.startswith(FLUX_GROUP)


def inside(repo: Path, path: Path) -> bool:
    """Is path, links followed, inside the repository? Flux's source artifact
    holds the repository only: a link out of it is not there in the cluster."""
    try:
        real = Path(os.path.realpath(path))
        return real == Path(os.path.realpath(repo)) or Path(os.path.realpath(repo)) in real.parents
    except (OSError, RuntimeError):
        return False


def _ns(obj: dict, default: str | None) -> str | None:
    return (obj.get("metadata") or {}).get("namespace") or default


def _expect(value: object, kind: type | tuple[type, ...], where: str, what: str) -> str | None:
    return None if isinstance(value, kind) else f"{where}: expected {what}, found {_describe(value)}"


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _list_of(value: object, kind: type, where: str, what: str, required: tuple[str, ...] = ()) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return f"{where}: expected a list of {what}, found {_describe(value)}"
    for index, item in enumerate(value):
        if not isinstance(item, kind):
            return f"{where}[{index}]: expected {what}, found {_describe(item)}"
        for key in required:
            if not isinstance(item.get(key), str) or not item.get(key):  # type: ignore[union-attr]
                return f"{where}[{index}].{key}: expected a non-empty string"
    return None


def shape_problem(doc: dict) -> str | None:
    """The first field of a Flux Kustomization that the build reads and
    that has the wrong shape (the schema stage reports the rest)."""
    spec = doc.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return f"spec: expected a mapping, found {_describe(spec)}"
    checks = [
        _expect(spec.get("path", ""), str, "spec.path", "a string"),
        _expect(spec.get("sourceRef", {}), dict, "spec.sourceRef", "a mapping with kind and name"),
        _list_of(spec.get("dependsOn"), dict, "spec.dependsOn", "a mapping with a name", ("name",)),
        _list_of(spec.get("patches"), dict, "spec.patches", "a mapping with patch and target"),
        _list_of(spec.get("images"), dict, "spec.images", "a mapping with a name", ("name",)),
        _list_of(spec.get("components"), str, "spec.components", "a path"),
        _expect(spec.get("postBuild") or {}, dict, "spec.postBuild", "a mapping"),
        _expect(spec.get("commonMetadata") or {}, dict, "spec.commonMetadata", "a mapping"),
    ]
    for key in ("targetNamespace", "namePrefix", "nameSuffix"):
        checks.append(_expect(spec.get(key) or "", str, f"spec.{key}", "a string"))
    for index, patch in enumerate(spec.get("patches") or [] if isinstance(spec.get("patches"), list) else []):
        if isinstance(patch, dict):
            checks.append(_expect(patch.get("patch", ""), str, f"spec.patches[{index}].patch", "a string"))
            checks.append(_expect(patch.get("target") or {}, dict, f"spec.patches[{index}].target", "a mapping"))
    post = spec.get("postBuild") if isinstance(spec.get("postBuild"), dict) else {}
    checks.append(_expect(post.get("substitute") or {}, dict, "spec.postBuild.substitute", "a mapping"))
    checks.append(_list_of(post.get("substituteFrom"), dict, "spec.postBuild.substituteFrom",
                           "a mapping with kind and name", ("kind", "name")))
    common = spec.get("commonMetadata") if isinstance(spec.get("commonMetadata"), dict) else {}
    for key in ("labels", "annotations"):
        checks.append(_expect(common.get(key) or {}, dict, f"spec.commonMetadata.{key}", "a mapping"))
    return next((problem for problem in checks if problem), None)


# ---- the build ------------------------------------------------------------

def _mirror(repo: Path, directory: str, tmp: Path, needed: set[str] | None = None) -> Path:
    """A tree under tmp where entries link back to the repository, except
    the directories on the way to `directory`, which are real so the
    kustomization file in `directory` can be replaced.

    Above `directory`, a sibling directory is linked only if the build reads
    something under it (`needed`: repository-relative paths); files are always
    linked. Linking every sibling made each build cost as much as the tree is
    wide (a platform repository with hundreds of services). In `directory`
    itself every entry is linked."""
    parts = [] if directory == "." else directory.split("/")
    src, dst = repo, tmp
    for depth in range(len(parts) + 1):
        dst.mkdir(exist_ok=True)
        keep = parts[depth] if depth < len(parts) else None
        prefix = "/".join(parts[:depth])
        wanted = None
        if keep is not None and needed is not None:
            wanted = {p[len(prefix) + 1:].split("/")[0] if prefix else p.split("/")[0]
                      for p in needed if not prefix or p.startswith(prefix + "/")}
        # scandir: the entry's type comes with the listing, no stat per
        # sibling (at 200 services, 800 builds times 200 siblings).
        with os.scandir(src) as entries:
            for entry in entries:
                name = entry.name
                if name == keep or (keep is None and name in KUSTOMIZATION_FILES):
                    continue
                if wanted is not None and name not in wanted and entry.is_dir():
                    continue
                os.symlink(entry.path, dst / name)
        if keep is None:
            break
        src, dst = src / keep, dst / keep
    return dst


def _edited_kustomization(tree: Path, directory: str, spec: dict, excluded: Callable[[str], bool],
                          display: Callable[[Path], str]) -> dict:
    """The kustomization the controller builds at `directory` of `tree` (the
    repository, or an artifact laid out on disk): the one there, or the one it
    generates, with the Kustomization's fields applied."""
    existing = next((tree / directory / n for n in KUSTOMIZATION_FILES if (tree / directory / n).is_file()), None)
    if existing is not None:
        shown = display(existing)
        kus = load_file(existing, shown) or {}
        if not isinstance(kus, dict):
            raise InputError("a kustomization must be a YAML mapping", shown)
        for key in ("patches", "images", "components"):
            if kus.get(key) is not None and not isinstance(kus[key], list):
                raise InputError(f"`{key}` must be a list, found {_describe(kus[key])}", shown)
        if any(not isinstance(e, dict) for e in kus.get("images") or []):
            raise InputError("every `images` entry must be a mapping", shown)
    else:  # the controller generates one listing every manifest below the path
        children, files = generated_listing(tree, directory, excluded)
        top = "" if directory == "." else directory + "/"
        kus = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "resources": sorted(p[len(top):] for p in children + files)}
    if spec.get("targetNamespace"):
        kus["namespace"] = spec["targetNamespace"]
    if spec.get("namePrefix"):
        kus["namePrefix"] = spec["namePrefix"]
    if spec.get("nameSuffix"):
        kus["nameSuffix"] = spec["nameSuffix"]
    for patch in spec.get("patches") or []:
        entry = {"patch": patch.get("patch", "")}
        if patch.get("target"):
            entry["target"] = patch["target"]
        kus.setdefault("patches", []).append(entry)
    for image in spec.get("images") or []:
        images = kus.setdefault("images", [])
        index = next((i for i, e in enumerate(images) if e.get("name") == image.get("name")), None)
        new = {k: image[k] for k in ("name", "newName", "newTag", "digest") if image.get(k)}
        if index is None:
            images.append(new)
        else:
            images[index] = new
    for component in spec.get("components") or []:
        kus.setdefault("components", []).append(component)
    return kus


def substitute(text: str, variables: dict[str, str]) -> str:
    """Flux's post-build substitution (drone/envsubst on ${...} only), strict:
    a variable with no value and no default is an error."""
    def replace(match: re.Match) -> str:
        escaped, name, operator, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if not _VAR_NAME.match(name):
            raise InputError(f"invalid variable reference {match.group(0)!r}")
        value = variables.get(name)
        if operator in (":=", ":-") and not value:
            return default or ""
        if operator in ("=", "-") and value is None:
            return default or ""
        if value is None:
            raise InputError(f"variable {name!r} is not set and has no default (strict substitution)")
        return value
    return _REFERENCE.sub(replace, text)


def _variables(source: FluxSource, namespace: str | None) -> dict[str, str]:
    post = (source.kustomization.get("spec") or {}).get("postBuild") or {}
    variables: dict[str, str] = {}
    for ref in post.get("substituteFrom") or []:
        kind, name = ref.get("kind"), ref.get("name")
        found = next((d for d in source.inputs if d.get("kind") == kind
                      and (d.get("metadata") or {}).get("name") == name
                      and _ns(d, namespace) == namespace), None)
        if found is None:
            if ref.get("optional"):
                continue
            raise InputError(f"postBuild.substituteFrom {kind}/{name} is not in this cluster's render "
                             "(mark it optional: true if it is created elsewhere)")
        data = found.get("data") or {}
        if not isinstance(data, dict) or not isinstance(found.get("stringData") or {}, dict):
            raise InputError(f"postBuild.substituteFrom {kind}/{name}: data must be a mapping")
        data = dict(data)
        if kind == "Secret":
            decoded = {}
            for key, value in data.items():
                try:
                    decoded[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
                except (ValueError, UnicodeDecodeError):
                    raise InputError(f"postBuild.substituteFrom Secret/{name}: data.{key} is not base64 "
                                     "of UTF-8 text") from None
            data = decoded
            data.update(found.get("stringData") or {})
        for key, value in data.items():
            variables[key] = str(value).replace("\n", "")
    for key, value in (post.get("substitute") or {}).items():
        variables[key] = str(value).replace("\n", "")
    bad = [k for k in variables if not _VAR_NAME.match(k)]
    if bad:
        raise InputError(f"variable name {bad[0]!r} is invalid, must match {_VAR_NAME.pattern}")
    return variables


try:  # libyaml's emitter, for the rare objects that must be re-serialised
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Dumper = yaml.SafeDumper


def split_documents(text: str) -> list[str]:
    """kustomize's output, one YAML document each (kustomize writes `---`
    only as a separator line; block scalars are always indented)."""
    return [doc for doc in re.split(r"(?m)^---[ \t]*\n", text) if doc.strip()]


def _disabled(doc: dict) -> bool:
    meta = doc.get("metadata") or {}
    return "disabled" in ((meta.get("labels") or {}).get(DISABLED_ANNOTATION),
                          (meta.get("annotations") or {}).get(DISABLED_ANNOTATION))


def _post_build(document: str, source: FluxSource, variables: dict[str, str] | None) -> str:
    """One document after substitution (unless it opts out) and
    commonMetadata. Substitution works on the text, as Flux's does."""
    common = (source.kustomization.get("spec") or {}).get("commonMetadata") or {}
    opted_out = DISABLED_ANNOTATION in document and _disabled(yaml.load(document, Loader=_Loader) or {})
    if variables is not None and not opted_out:
        try:
            document = substitute(document, variables)
        except InputError as exc:
            doc = yaml.load(document, Loader=_Loader) or {}
            meta = doc.get("metadata") or {}
            raise InputError(f"{doc.get('kind')}/{meta.get('name')}: {exc.message}") from None
    if common:
        doc = yaml.load(document, Loader=_Loader) or {}
        meta = doc.setdefault("metadata", {})
        if common.get("labels"):
            meta.setdefault("labels", {}).update(common["labels"])
        if common.get("annotations"):
            meta.setdefault("annotations", {}).update(common["annotations"])
        document = yaml.dump(doc, Dumper=_Dumper, sort_keys=False)
    return document


def prepare(repo: Path, target: Target, tmp: Path) -> Path:
    """The directory kustomize builds for a Flux build (or a root with a
    generated kustomization): a tree under tmp with the edited kustomization
    at spec.path. From this repository, a mirror of the tree made of links;
    from an ExternalArtifact, the artifact laid out from its files."""
    spec = (target.flux.kustomization.get("spec") or {}) if target.flux is not None else {}
    if target.flux is not None and target.flux.artifact is not None:
        tree = tmp / "artifact"
        tree.mkdir()
        artifacts.materialise(repo, target.flux.artifact, tree)
        leaf = tree / target.flux.artifact_path
        origins = dict(target.flux.artifact)

        def display(path: Path) -> str:
            inner = path.relative_to(tree).as_posix()
            return origins.get(inner, (inner,))[0]
        edited = _edited_kustomization(tree, target.flux.artifact_path, spec, lambda _: False, display)
        for name in KUSTOMIZATION_FILES:
            (leaf / name).unlink(missing_ok=True)
    else:
        # What the build reads: its files, and the Flux components (relative to spec.path).
        needed = {f for f in target.sources if not f.startswith("..")}
        for component in spec.get("components") or []:
            needed.add(os.path.normpath(os.path.join(target.directory, str(component))).replace(os.sep, "/"))
        leaf = _mirror(repo, target.directory, tmp, needed if needed else None)
        patterns = target.flux.ignore if target.flux is not None else \
            sourceignore.artifact_patterns(sourceignore.repository_patterns(repo), None)
        edited = _edited_kustomization(repo, target.directory, spec, sourceignore.matcher(patterns),
                                       lambda path: path.relative_to(repo).as_posix())
    (leaf / "kustomization.yaml").write_text(yaml.dump(edited, Dumper=_Dumper, sort_keys=False), encoding="utf-8")
    return leaf


# The Kustomization fields the controller writes into the kustomization it builds.
_REWRITING_FIELDS = ("targetNamespace", "namePrefix", "nameSuffix", "patches", "images", "components")


def builds_as_root(build: Target, root: Target) -> bool:
    """Is kustomize's output for this Flux build the same as for the root at
    its path? So when the build reads that directory's own kustomization,
    unedited (no field of the Kustomization rewrites it), from this
    repository (not an ExternalArtifact), and exactly the files the root
    reads, none outside the repository. kustomize then reads the same bytes
    in both builds: the controller's load restrictions are off, which only
    lets more builds succeed, so a root that built gives the same output.
    The controller's post-build steps still apply (post_build)."""
    if build.flux is None or build.flux.artifact is not None or build.generated:
        return False
    if root.flux is not None or root.generated or root.directory != build.directory:
        return False
    spec = build.flux.kustomization.get("spec")
    if not isinstance(spec, dict) or any(spec.get(field) for field in _REWRITING_FIELDS):
        return False
    # A build's sources hold its Kustomization's own file besides what kustomize reads.
    read = set(build.sources) - {build.flux.file}
    return read == set(root.sources) and not any(f.startswith("..") for f in read)


def kustomize_command(kubectl: str, leaf: Path) -> list[str]:
    # Flux builds with load restrictions off; so do we, and the floor in bench.
    return [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(leaf)]


def post_build(built: str, target: Target) -> str:
    """kustomize's output after the controller's post-build steps
    (substitution, commonMetadata); InputError says what failed."""
    if target.flux is None:
        return built
    spec = target.flux.kustomization.get("spec") or {}
    post = spec.get("postBuild")
    if not post and not spec.get("commonMetadata"):
        return built
    namespace = (target.flux.kustomization.get("metadata") or {}).get("namespace")
    try:
        variables = _variables(target.flux, namespace) if post else None
        documents = [_post_build(d, target.flux, variables) for d in split_documents(built)]
    except InputError as exc:
        raise InputError(f"post-build substitution: {exc.message}") from None
    return "---\n".join(d if d.endswith("\n") else d + "\n" for d in documents)
