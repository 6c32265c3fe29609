"""Strict JSON schemas for custom resources (Istio, Prometheus Operator, Flux),
generated from the upstream CustomResourceDefinitions.

- `schemas/sources.yaml` pins each upstream CRD file: project, version, path
  in its repository at the release tag, URL and sha256.
- `sync` downloads those files into .cache/crds/ (the only step that needs
  the network) and checks each digest against its pin.
- `generate` reads the downloaded files (digests checked again) and writes one
  strict schema per served version and kind into schemas/generated/, with the
  CRD's `x-kubernetes-validations` (CEL) rules kept beside it under `x-cel`.
- CRD manifests kept in schemas/crds/ (for example `kubectl get crd -o yaml`
  from a cluster) win over the generated schemas, CEL rules included.

Upstream schemas accept unknown fields; kubeconform's -strict rejects them,
and so do we: every object schema that lists its properties is closed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.core.errors import InputError
from scripts.core.yamlio import load_all_text, load_file

_DROP_KEYS = {"title", "description", "examples"}
CEL_KEY = "x-cel"  # the CRD's CEL rules, beside the schema they belong to
SOURCE_KEY = "x-source"  # which pinned upstream file a generated schema came from


@dataclass(frozen=True)
class Source:
    """One pinned upstream CRD file."""
    project: str
    component: str
    version: str
    path: str
    url: str
    sha256: str

    @property
    def local_name(self) -> str:
        """Where sync puts it under the download directory."""
        return f"{self.component}/{Path(self.path).name}"


def load_sources(sources_file: Path, display: str | None = None) -> list[Source]:
    display = display or str(sources_file)
    data = load_file(sources_file, display) or {}
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InputError("expected `sources:`, a list of {project, component, version, path, url, sha256}",
                         display)
    sources = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"sources[{number}] must be a mapping", display)
        missing = [key for key in ("project", "component", "version", "path", "url", "sha256")
                   if not str(entry.get(key) or "").strip()]
        if missing:
            raise InputError(f"sources[{number}] lacks {', '.join(missing)}", display)
        sha = str(entry["sha256"]).lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise InputError(f"sources[{number}].sha256 is not a sha256 digest", display)
        sources.append(Source(str(entry["project"]), str(entry["component"]), str(entry["version"]),
                              str(entry["path"]), str(entry["url"]), sha))
    names = [s.local_name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"two sources download to the same file: {duplicates[0]}", display)
    return sources


def strictify(node: Any) -> Any:
    """Close every object schema that lists its properties, recursively,
    unless Kubernetes says the field keeps unknown fields. A schema's
    `default` is kept as it is (data, not a schema): the API server sets it
    before the CRD's CEL rules run, and so does the schema stage."""
    if isinstance(node, list):
        return [strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "default":
            out[key] = value
        elif key == "properties" and isinstance(value, dict):
            # field names, each with its schema ("description" or "default" may be a field)
            out[key] = {name: strictify(schema) for name, schema in value.items()}
        elif key not in _DROP_KEYS or not isinstance(value, (str, int, float, type(None))):
            out[key] = strictify(value)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return {k: v for k, v in out.items() if not k.startswith("x-kubernetes-")}


def cel_rules(openapi: dict) -> list[dict]:
    """Every x-kubernetes-validations rule of a CRD schema, with the path of
    the node it sits on ("*" for a list item or a map value)."""
    found: list[dict] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        for rule in node.get("x-kubernetes-validations") or []:
            if isinstance(rule, dict) and rule.get("rule"):
                entry = {"path": list(path), "rule": rule["rule"]}
                for key in ("message", "messageExpression", "fieldPath", "reason", "optionalOldSelf"):
                    if rule.get(key) not in (None, ""):
                        entry[key] = rule[key]
                found.append(entry)
        for name, child in (node.get("properties") or {}).items():
            walk(child, (*path, name))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], (*path, "*"))
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key) or []:
                walk(child, path)

    walk(openapi, ())
    return found


def schema_path(root: Path, api_version: str, kind: str) -> Path:
    group, _, version = api_version.rpartition("/")
    return root / (group or "core") / version / f"{kind.lower()}.json"


def _crd_schemas(doc: dict, file: str) -> Iterator[tuple[tuple[str, str], dict]]:
    spec = doc.get("spec") or {}
    group = spec.get("group")
    kind = (spec.get("names") or {}).get("kind")
    if not group or not kind:
        raise InputError("CustomResourceDefinition without spec.group or spec.names.kind", file)
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        openapi = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(openapi, dict):
            continue
        api_version = f"{group}/{version['name']}"
        schema = strictify(openapi)
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"const": api_version}
        props["kind"] = {"const": kind}
        # CRDs leave metadata open ({type: object}); the API server still
        # checks it, so validate it as the ObjectMeta it is.
        props["metadata"] = {"type": "object", "required": ["name"]}
        schema["additionalProperties"] = False
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        rules = cel_rules(openapi)
        if rules:
            schema[CEL_KEY] = rules
        yield (api_version, kind), schema


def schemas_from_crd_text(text: str, file: str) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict schema for every served version of every
    CustomResourceDefinition in a YAML text (other objects are ignored)."""
    found = {}
    for doc in load_all_text(text, file):
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            found.update(_crd_schemas(doc, file))
    return found


def load_crd_dir(directory: Path, repo: Path) -> dict[tuple[str, str], dict]:
    schemas: dict[tuple[str, str], dict] = {}
    if not directory.is_dir():
        return schemas
    for path in sorted(directory.rglob("*.y*ml")):
        display = path.relative_to(repo).as_posix() if path.is_relative_to(repo) else str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read: {exc}", display) from None
        schemas.update(schemas_from_crd_text(text, display))
    return schemas


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_digest(source: Source, data: bytes, where: str, sources_display: str) -> None:
    actual = _digest(data)
    if actual != source.sha256:
        raise InputError(f"{where}: sha256 is {actual}, the pin says {source.sha256} "
                         f"(if you bumped {source.component} to {source.version}, set its sha256 to {actual})",
                         sources_display)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sync(sources_file: Path, out: Path, session: Any = None) -> list[Path]:
    """Download every pinned CRD file into `out`, each checked against its
    sha256 before it is written (a wrong download never replaces a good one)."""
    import requests

    sources = load_sources(sources_file)
    session = session or requests.Session()
    written = []
    for source in sources:
        try:
            response = session.get(source.url, timeout=60)
            response.raise_for_status()
        except requests.HTTPError as exc:
            raise InputError(f"cannot fetch {source.component} from {source.url}: HTTP "
                             f"{exc.response.status_code if exc.response is not None else '?'}",
                             str(sources_file)) from None
        except requests.RequestException as exc:
            text = str(exc)
            reason = next((m.lower() for m in ("Name or service not known", "Failed to resolve",
                                               "Connection refused", "timed out", "certificate verify failed")
                           if m in text), type(exc).__name__)
            raise InputError(f"cannot fetch {source.component} from {source.url}: {reason}",
                             str(sources_file)) from None
        data = response.content
        _check_digest(source, data, source.url, str(sources_file))
        if not any(isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
                   for d in load_all_text(data.decode("utf-8"), source.url)):
            raise InputError(f"{source.url} holds no CustomResourceDefinition", str(sources_file))
        path = out / source.local_name
        _write_atomic(path, data)
        written.append(path)
    return written


def generated_schemas(sources_file: Path, crd_dir: Path) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict schema from the downloaded CRD files,
    each checked against its pin first."""
    schemas: dict[tuple[str, str], dict] = {}
    for source in load_sources(sources_file):
        path = crd_dir / source.local_name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{path} is missing: run `python -m scripts schemas sync` first",
                             str(sources_file)) from None
        _check_digest(source, data, str(path), str(sources_file))
        for key, schema in schemas_from_crd_text(data.decode("utf-8"), str(path)).items():
            # Provenance in every schema: a pin bumped without regenerating
            # is caught offline (tests compare this with schemas/sources.yaml).
            schema[SOURCE_KEY] = {"project": source.project, "component": source.component,
                                  "version": source.version, "path": source.path, "sha256": source.sha256}
            schemas[key] = schema
    return schemas


def write_generated(sources_file: Path, crd_dir: Path, out: Path) -> list[Path]:
    """Write the schemas, and remove the ones no pinned CRD serves any more."""
    schemas = generated_schemas(sources_file, crd_dir)
    written = []
    for (api_version, kind), schema in sorted(schemas.items()):
        path = schema_path(out, api_version, kind)
        _write_atomic(path, (json.dumps(schema, indent=1, sort_keys=True) + "\n").encode("utf-8"))
        written.append(path)
    keep = set(written)
    for stale in out.rglob("*.json") if out.is_dir() else ():
        if stale not in keep:
            stale.unlink()
    for directory in sorted((d for d in out.rglob("*") if d.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    return written
