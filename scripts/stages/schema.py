"""The schema stage: every rendered object against a strict schema.

Like kubeconform -strict: unknown fields are errors, and so is a kind with
no schema at all (unless it is in the committed skip list with a reason);
kubeconform's -ignore-missing-schemas is exactly how Istio and Prometheus
Operator objects usually go unchecked. Custom resources are also held to
their CRDs' CEL rules (x-kubernetes-validations), which kubeconform ignores.
Validators and rules are compiled once per (apiVersion, kind) and Kubernetes
version, and cached for the run.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs

from scripts.core.errors import InputError, UsageError
from scripts.core.model import Finding, Render, Resource, finding_for
from scripts.core.yamlio import load_file
from scripts.loading.fieldlines import FieldLocator
from scripts.stages import celrules
from scripts.stages.crdschemas import CEL_KEY, load_crd_dir, schema_path

GENERATED_DIR = Path(__file__).resolve().parents[2] / "schemas" / "generated"
_MISSING = object()


@functools.cache
def _k8s_schema_root() -> Path:
    # Found, not imported: importing kubernetes_validate imports the jsonschema
    # package (70 ms per process) for files we only read.
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise UsageError("kubernetes-validate is not installed: run `make setup`")
    return Path(spec.origin).parent / "kubernetes-json-schema"


@functools.cache  # the installed package's directory: listed once per process, not once per render
def available_versions() -> tuple[str, ...]:
    versions = set()
    for entry in _k8s_schema_root().iterdir():
        match = re.match(r"^v(\d+\.\d+)\.\d+-local-strict$", entry.name)
        if match:
            versions.add(match.group(1))
    return tuple(sorted(versions, key=lambda v: tuple(int(p) for p in v.split("."))))


def check_version(version: str) -> str:
    if not re.fullmatch(r"\d+\.\d+", version):
        raise UsageError(f"Kubernetes version {version}: expected MAJOR.MINOR, e.g. 1.34")
    known = available_versions()
    if version not in known:
        raise UsageError(f"Kubernetes version {version}: the schemas ship {known[0]} to {known[-1]}")
    return version


@functools.cache
def builtin_groups() -> frozenset[str]:
    """Every API group Kubernetes itself serves in some shipped version: the
    groups of the kinds in kubernetes-validate's definitions (read as text,
    once per process). A `*.k8s.io` name is no sign of one: Gateway API
    (gateway.networking.k8s.io), snapshots (snapshot.storage.k8s.io) and
    the metrics APIs are installed by CRDs or add-ons."""
    groups: set[str] = set()
    for version in available_versions():
        text = (_k8s_schema_root() / f"v{version}.0-local-strict" / "_definitions.json").read_text()
        groups.update(re.findall(r'"group":\s*"([a-z0-9.-]*)"', text))
    return frozenset(groups)


def is_core_group(api_version: str) -> bool:
    """Groups served by Kubernetes itself (schemas from kubernetes-validate);
    any other group is a custom resource's, whose schema comes from its CRD."""
    group = api_version.rpartition("/")[0]
    # An undotted group that Kubernetes lacks is a typo (a CRD's group has a dot).
    return group == "" or "." not in group or group in builtin_groups()


@dataclass
class SkipList:
    entries: dict[tuple[str, str], str] = field(default_factory=dict)  # (apiVersion|*, kind) -> reason

    def reason(self, api_version: str, kind: str) -> str | None:
        return self.entries.get((api_version, kind)) or self.entries.get(("*", kind))

    @classmethod
    def load(cls, path: Path, display: str) -> SkipList:
        if not path.is_file():
            return cls()
        data = load_file(path, display) or {}
        skips = data.get("skip") if isinstance(data, dict) else None
        if skips is None:
            return cls()
        if not isinstance(skips, list):
            raise InputError("`skip` must be a list of {apiVersion, kind, reason}", display)
        entries = {}
        for item in skips:
            if not isinstance(item, dict) or not item.get("kind") or not str(item.get("reason") or "").strip():
                raise InputError("every skip needs a `kind` and a non-empty `reason`", display)
            entries[(str(item.get("apiVersion") or "*"), str(item["kind"]))] = str(item["reason"])
        return cls(entries)


class SchemaStore:
    """Finds and compiles schemas; one compiled validator per kind and version."""

    def __init__(self, repo: Path, kubernetes_version: str, crd_dir: Path | None = None,
                 generated_dir: Path = GENERATED_DIR):
        self.repo = repo
        self.version = kubernetes_version
        self.generated_dir = generated_dir
        self.user_crds = load_crd_dir(crd_dir if crd_dir is not None else repo / "schemas" / "crds", repo)
        self._validators: dict[tuple[str, str, str], Any] = {}
        self._registries: dict[str, Any] = {}
        self._served: dict[tuple[str, str, str], bool] = {}  # does a version serve this kind
        self._cel: dict[tuple[str, str], list[celrules.CompiledRule]] = {}
        self._cel_environment: celrules.Environment | None = None
        self._defaults: dict[tuple[str, str], Any] = {}  # the schema, for kinds whose schema has defaults

    def _k8s_dir(self, version: str) -> Path:
        return _k8s_schema_root() / f"v{version}.0-local-strict"

    def _k8s_registry(self, version: str) -> Any:
        registry = self._registries.get(version)
        if registry is None:
            defs = json.loads((self._k8s_dir(version) / "_definitions.json").read_text())
            registry = jsonschema_rs.Registry([(defs["$id"], defs)])
            self._registries[version] = registry
        return registry

    def _k8s_schema_file(self, version: str, api_version: str, kind: str) -> Path:
        group, _, ver = api_version.rpartition("/")
        short_group = group.split(".")[0]
        name = f"{kind.lower()}-{short_group}-{ver}.json" if group else f"{kind.lower()}-{ver}.json"
        return self._k8s_dir(version) / name

    def has_core_schema(self, version: str, api_version: str, kind: str) -> bool:
        key = (version, api_version, kind)
        found = self._served.get(key)
        if found is None:
            found = self._served[key] = self._k8s_schema_file(version, api_version, kind).is_file()
        return found

    def validator(self, api_version: str, kind: str, version: str | None = None) -> Any:
        """A compiled validator, or None when no schema exists for the kind."""
        version = version or self.version
        key = (version, api_version, kind)
        cached = self._validators.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        compiled = None
        if is_core_group(api_version):
            path = self._k8s_schema_file(version, api_version, kind)
            if path.is_file():
                schema = json.loads(path.read_text())
                compiled = jsonschema_rs.validator_for(schema, registry=self._k8s_registry(version))
        else:
            schema = self._custom_schema(api_version, kind)
            if schema is not None:
                compiled = jsonschema_rs.validator_for(schema)
        self._validators[key] = compiled
        return compiled

    def _custom_schema(self, api_version: str, kind: str) -> dict | None:
        schema = self.user_crds.get((api_version, kind))
        if schema is None:
            path = schema_path(self.generated_dir, api_version, kind)
            schema = json.loads(path.read_text()) if path.is_file() else None
        return schema

    def defaulted(self, api_version: str, kind: str, doc: dict) -> dict:
        """The object as the API server holds it when the CRD's rules run:
        every absent field with a schema default set to it (the object itself
        when its schema has none)."""
        key = (api_version, kind)
        schema = self._defaults.get(key, _MISSING)
        if schema is _MISSING:
            found = None if is_core_group(api_version) else self._custom_schema(api_version, kind)
            schema = self._defaults[key] = found if found is not None and _has_default(found) else None
        return with_defaults(schema, doc) if schema is not None else doc

    def cel_rules(self, api_version: str, kind: str) -> list[celrules.CompiledRule]:
        """The CRD's CEL rules for the kind, compiled once per run."""
        key = (api_version, kind)
        compiled = self._cel.get(key)
        if compiled is None:
            schema = None if is_core_group(api_version) else self._custom_schema(api_version, kind)
            raw = (schema or {}).get(CEL_KEY) or []
            if raw and self._cel_environment is None:
                self._cel_environment = celrules.Environment()
            compiled = self._cel[key] = self._cel_environment.compile_rules(
                [celrules.Rule.from_json(rule) for rule in raw]) if raw else []
        return compiled


def _has_default(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "default" in schema or any(_has_default(v) for k, v in schema.items() if k != CEL_KEY)
    if isinstance(schema, list):
        return any(_has_default(v) for v in schema)
    return False


def with_defaults(schema: Any, value: Any) -> Any:
    """Structural-schema defaulting, as the API server does on decode: an
    absent field whose schema has a default gets it, in objects, in list
    items and in map values, recursively. Copies what it changes only."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        changed: dict | None = None
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        for name, sub in properties.items():
            if not isinstance(sub, dict):
                continue
            if name in value:
                new = with_defaults(sub, value[name])
            elif "default" in sub:
                new = with_defaults(sub, copy.deepcopy(sub["default"]))
            else:
                continue
            if name not in value or new is not value[name]:
                changed = changed if changed is not None else dict(value)
                changed[name] = new
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name in properties:
                    continue
                new = with_defaults(extra, item)
                if new is not item:
                    changed = changed if changed is not None else dict(value)
                    changed[name] = new
        return changed if changed is not None else value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = [with_defaults(schema["items"], item) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


def _path(parts: list) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _leaf_errors(error: Any) -> list[Any]:
    """For anyOf/oneOf, the errors of the alternative that came closest,
    so the message names the wrong field instead of the whole object."""
    context = getattr(error.kind, "context", None)
    if not context:
        return [error]
    best = min(context, key=lambda branch: (len(branch) == 1 and "null" in branch[0].message, len(branch)))
    leaves = [leaf for branch_error in best for leaf in _leaf_errors(branch_error)]
    return leaves or [error]


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def validate_object(store: SchemaStore, skips: SkipList, target: str, obj: Resource,
                    next_version: str | None) -> list[Finding]:
    if not obj.api_version or not obj.kind:
        return [finding_for(obj, stage="schema", target=target, rule="schema-invalid",
                            message="object has no apiVersion or kind")]
    if not obj.name:
        return [finding_for(obj, stage="schema", target=target, rule="schema-invalid",
                            message="object has no metadata.name")]
    validator = store.validator(obj.api_version, obj.kind)
    if validator is None:
        reason = skips.reason(obj.api_version, obj.kind)
        if reason:
            return []
        where = ("is not served by Kubernetes " + store.version) if is_core_group(obj.api_version) else \
            ("has no schema: its group is not built into Kubernetes, so a CRD serves it; add that CRD to "
             "schemas/crds/ (or a reasoned entry to schemas/skip.yaml)")
        return [finding_for(obj, stage="schema", target=target, rule="schema-missing",
                            message=f"{obj.api_version} {obj.kind} {where}")]
    findings = []
    # Most objects are valid: the boolean check is the fast path, errors are
    # only collected (and explained) for the ones that are not.
    errors = [] if validator.is_valid(obj.doc) else \
        [leaf for error in validator.iter_errors(obj.doc) for leaf in _leaf_errors(error)]
    if not errors:
        # Like the API server, CEL rules judge objects of the right shape,
        # with the schema's defaults set.
        rules = store.cel_rules(obj.api_version, obj.kind)
        doc = store.defaulted(obj.api_version, obj.kind, obj.doc) if rules else obj.doc
        for failure in celrules.evaluate(rules, doc):
            findings.append(finding_for(
                obj, stage="schema", target=target,
                rule="schema-cel-not-evaluated" if failure.compile_error else "schema-cel",
                severity="warning" if failure.compile_error else "error",
                message=f"{failure.path}: {failure.message}"))
    seen = set()
    for error in sorted(errors, key=lambda e: list(map(str, e.instance_path)))[:20]:
        message = f"{_path(list(error.instance_path))}: {_short(error.message)}"
        if message not in seen:
            seen.add(message)
            findings.append(finding_for(obj, stage="schema", target=target, rule="schema-invalid",
                                        message=message))
    if next_version and not errors and is_core_group(obj.api_version):
        findings += _next_version_findings(store, target, obj, next_version)
    return findings


def _next_version_findings(store: SchemaStore, target: str, obj: Resource, version: str) -> list[Finding]:
    """Warnings for what the next Kubernetes minor would refuse: an API it
    no longer serves, or a field it no longer accepts."""
    upcoming = store.validator(obj.api_version, obj.kind, version)
    if upcoming is None:
        return [finding_for(obj, stage="schema", target=target, rule="schema-next-version", severity="warning",
                            message=f"{obj.api_version} {obj.kind} is not served by Kubernetes {version}; "
                                    "migrate before upgrading")]
    if upcoming.is_valid(obj.doc):
        return []
    leaves = [leaf for error in upcoming.iter_errors(obj.doc) for leaf in _leaf_errors(error)][:5]
    return [finding_for(obj, stage="schema", target=target, rule="schema-next-version", severity="warning",
                        message=f"at Kubernetes {version}: {_path(list(e.instance_path))}: {_short(e.message)}")
            for e in leaves]


def next_minor(version: str) -> str | None:
    """The next Kubernetes minor, if the schemas ship it."""
    major, minor = version.split(".")
    upcoming = f"{major}.{int(minor) + 1}"
    return upcoming if upcoming in available_versions() else None


class ApiServerChecks:
    """The API server's own validation of the kinds it serves (see
    scripts/stages/apivalidation), each error a finding located at the
    line that wrote the field."""

    def __init__(self, repo: Path, kubernetes_version: str):
        self.kubernetes_version = kubernetes_version
        self._context = None  # made on the first object: a run with every render kept needs none
        self.locator = FieldLocator(repo)
        # CPU-seconds of this thread in these checks (part of the schema stage's
        # time, shown beside it): wall time would count the waits for the
        # interpreter lock while the render threads and checkov's hand-over run.
        self.seconds = 0.0

    @property
    def context(self):  # noqa: ANN201 - apivalidation.Context, imported with it
        if self._context is None:
            from scripts.stages import apivalidation

            self._context = apivalidation.Context(self.kubernetes_version)
        return self._context

    def findings(self, render: Render, obj: Resource) -> list[Finding]:
        from scripts.stages import apivalidation

        t0 = time.thread_time()
        try:
            errors = apivalidation.validate(obj.doc, self.context)
        except Exception as error:  # noqa: BLE001 - a check that crashes must not read as a pass
            errors = None
            failure = f"{type(error).__name__}: {error}"
        out = []
        if errors is None:
            out.append(finding_for(obj, stage="schema", target=render.target.path, rule="api-validation-failed",
                                   message=f"the API-server checks could not judge this object ({failure}); "
                                           "please report it"))
        for error in errors or []:
            finding = finding_for(obj, stage="schema", target=render.target.path, rule=error.check,
                                  message=error.message())
            parts = tuple(p.name if isinstance(p, apivalidation.errors.Key) else p for p in error.path.parts)
            where = self.locator.locate(render.target, obj.source, obj.kind, parts, _value_at(obj.doc, parts))
            if where is not None:
                finding.file, finding.line = where.file, where.line
            out.append(finding)
        self.seconds += time.thread_time() - t0
        return out


def _value_at(doc: Any, parts: tuple) -> Any:
    for part in parts:
        if isinstance(doc, dict) and isinstance(part, str):
            doc = doc.get(part)
        elif isinstance(doc, list) and isinstance(part, int) and 0 <= part < len(doc):
            doc = doc[part]
        else:
            return None
    return doc


class SchemaRun:
    """The schema stage on renders as they arrive (`add`, which `validate`
    calls while kustomize makes the next render); `finish` returns the
    findings in render order, checking any render not added yet."""

    def __init__(self, repo: Path, kubernetes_version: str, store: SchemaStore | None = None):
        self.store = store or SchemaStore(repo, kubernetes_version)
        self.skips = SkipList.load(repo / "schemas" / "skip.yaml", "schemas/skip.yaml")
        self.upcoming = next_minor(kubernetes_version)
        self.api = ApiServerChecks(repo, kubernetes_version)
        self._results: dict[str, list[Finding]] = {}  # by render path
        self.seconds = 0.0

    def _check(self, render: Render) -> list[Finding]:
        findings: list[Finding] = []
        for obj in render.objects:
            findings.extend(validate_object(self.store, self.skips, render.target.path, obj, self.upcoming))
            findings.extend(self.api.findings(render, obj))
        return findings

    def add(self, render: Render) -> None:
        t0 = time.perf_counter()
        self._results[render.target.path] = self._check(render)
        self.seconds += time.perf_counter() - t0

    def finish(self, renders: list[Render]) -> list[Finding]:
        t0 = time.perf_counter()
        findings: list[Finding] = []
        for render in renders:
            known = self._results.get(render.target.path)
            findings += known if known is not None else self._check(render)
        self.seconds += time.perf_counter() - t0
        return findings


def run(repo: Path, renders: list[Render], kubernetes_version: str,
        store: SchemaStore | None = None) -> list[Finding]:
    return SchemaRun(repo, kubernetes_version, store).finish(renders)
