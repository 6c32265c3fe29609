"""Strict JSON schemas for custom resources (Istio, Prometheus Operator, Flux).

Two sources, both usable offline:
- `generate`: from the cloudcoil model packages (generated from the upstream
  CRDs, pinned in requirements.txt) into schemas/generated/, committed.
- CRD manifests kept in schemas/crds/ (exported with `kubectl get crd -o
  yaml`, or fetched at pinned upstream versions by `schemas sync`). These
  win over the generated ones, so a cluster's exact CRDs can be validated.

Upstream schemas accept unknown fields; kubeconform's -strict rejects them,
and so do we: every object schema that lists its properties is closed.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scripts.errors import InputError
from scripts.yamlio import load_all_text

CLOUDCOIL_PACKAGES = (
    "cloudcoil.models.istio",
    "cloudcoil.models.fluxcd",
    "cloudcoil.models.prometheus_operator",
)
_DROP_KEYS = {"title", "description", "default", "examples"}


def strictify(node: Any) -> Any:
    """Close every object schema that lists its properties, recursively,
    unless Kubernetes says the field keeps unknown fields."""
    if isinstance(node, list):
        return [strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    # Documentation keys go (smaller files); a property that happens to be
    # called "description" or "default" is a schema (a dict) and stays.
    out = {k: strictify(v) for k, v in node.items()
           if k not in _DROP_KEYS or not isinstance(v, (str, int, float, type(None)))}
    # pydantic writes Optional[X] as anyOf [X, null]; an absent field is how
    # manifests say "unset", and X alone gives errors that point inside X.
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and {"type": "null"} in any_of:
        rest = [branch for branch in any_of if branch != {"type": "null"}]
        if len(rest) == 1:
            del out["anyOf"]
            out.update(rest[0])
        else:
            out["anyOf"] = rest
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return {k: v for k, v in out.items() if not k.startswith("x-kubernetes-")}


def schema_path(root: Path, api_version: str, kind: str) -> Path:
    group, _, version = api_version.rpartition("/")
    return root / (group or "core") / version / f"{kind.lower()}.json"


def _cloudcoil_resources() -> Iterable[tuple[str, str, Any]]:
    from cloudcoil.resources import Resource

    for package_name in CLOUDCOIL_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for cls in vars(module).values():
                if not (inspect.isclass(cls) and issubclass(cls, Resource) and cls.__module__ == module.__name__):
                    continue
                api_version = cls.model_fields["api_version"].default
                kind = cls.model_fields["kind"].default
                if isinstance(api_version, str) and isinstance(kind, str):
                    yield api_version, kind, cls


def generated_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict schema, from the installed cloudcoil models."""
    schemas = {}
    for api_version, kind, cls in _cloudcoil_resources():
        schema = strictify(cls.model_json_schema(by_alias=True, mode="validation"))
        props = schema.get("properties", {})
        props["apiVersion"] = {"const": api_version}
        props["kind"] = {"const": kind}
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schemas[(api_version, kind)] = schema
    return schemas


def write_generated(out: Path) -> list[Path]:
    written = []
    for (api_version, kind), schema in sorted(generated_schemas().items()):
        path = schema_path(out, api_version, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def schemas_from_crd_text(text: str, file: str) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict schema for every served version of every
    CustomResourceDefinition in a YAML text (other objects are ignored)."""
    found = {}
    for doc in load_all_text(text, file):
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
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
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            found[(api_version, kind)] = schema
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


def sync(sources_file: Path, out: Path, session: Any = None) -> list[Path]:
    """Fetch the CRDs named in sources_file (name -> pinned URL) into `out`,
    one YAML file per source holding only the CustomResourceDefinitions."""
    import requests
    import yaml

    from scripts.yamlio import load_file

    config = load_file(sources_file, str(sources_file)) or {}
    sources = config.get("sources") if isinstance(config, dict) else None
    if not isinstance(sources, dict) or not sources:
        raise InputError("expected a `sources:` mapping of name to URL", str(sources_file))
    session = session or requests.Session()
    written = []
    for name, url in sorted(sources.items()):
        try:
            response = session.get(url, timeout=60)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise InputError(f"cannot fetch {name} from {url}: {exc}", str(sources_file)) from None
        crds = [d for d in load_all_text(response.text, url)
                if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
        if not crds:
            raise InputError(f"{url} holds no CustomResourceDefinition", str(sources_file))
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.yaml"
        header = f"# Fetched by `python -m scripts schemas sync` from {url}\n"
        path.write_text(header + yaml.safe_dump_all(crds, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
