"""What `validate` keeps between runs: each root's render and the findings
of the checks that read that render alone, keyed by everything that can
change them.

The key of an entry is the run's fingerprint and the digest of the root's
build inputs (scripts/loading/buildinputs.py). The run's fingerprint is
everything every render's result depends on: this project's code
(scripts/, tests/policy/, its schemas/ and yamllint defaults, read byte by
byte), the validated repository's config/, schemas/ (skip list, CRDs),
.yamllint.yaml and .sourceignore, the version of every installed Python
distribution (checkov, yamllint, the CEL runtime, jsonschema-rs, rapidyaml,
PyYAML, kubernetes-validate, kubectl's), the kubectl binary itself (path,
size, mtime), kustomize's settings taken from the environment, Python's
version, the Kubernetes version, the stages chosen and the programs the
policy rules need that are missing.

Only per-render results are kept: schema, security, the policy rules that
take nothing but the render and the configuration, and the kustomize
entries that select nothing. Whatever depends on more than one render or
reads the repository beyond the build's inputs is computed afresh every
run: Flux's cluster checks and HelmReleases, the policy rules over every
render or that read the repository (a rule with a `repo` parameter), lint
(it has its own cache, by file content), `--changed`'s comparison.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.core.cache import digest, file_digest, tree_digest
from scripts.core.model import Finding, SourceRef

PROJECT = Path(__file__).resolve().parents[2]
# This project's code and data that decide a result.
PROJECT_TREES = ("scripts", "tests/policy", "schemas")
PROJECT_FILES = (".yamllint.yaml",)
# The validated repository's configuration.
REPOSITORY_TREES = ("config", "schemas")
REPOSITORY_FILES = (".yamllint.yaml", ".yamllint", ".yamllint.yml", ".sourceignore")
# Environment variables kustomize or kubectl read.
ENVIRONMENT_PREFIXES = ("KUSTOMIZE_", "KUBECTL_", "KUBECONFIG", "GODEBUG", "GOFLAGS", "CHECKOV_")
ENTRY_VERSION = 1
# Directories of the validated repository no policy rule reads: version
# control, caches and environments (the run-wide policy key hashes the rest).
REPOSITORY_SKIP = (".git", ".cache", "__pycache__", ".venv", "venv", "node_modules", ".pytest_cache",
                   ".ruff_cache")
FINDING_FIELDS = ("stage", "target", "rule", "severity", "message", "kind", "name", "namespace", "file", "line")


def tool_versions() -> list[str]:
    """Every installed distribution with its version, sorted: the names of
    the metadata directories on the import path (`checkov-3.3.30.dist-info`),
    which pip names by distribution and version. Listing them costs a
    millisecond; reading every METADATA file through importlib.metadata
    cost 50 ms a run."""
    found: set[str] = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        found.update(f"{entry}:{name}" for name in names if name.endswith((".dist-info", ".egg-info", ".egg-link")))
    return sorted(found)


def _binary_identity(path: str | None) -> str:
    if path is None:
        return "none"
    try:
        status = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{os.path.realpath(path)}:{status.st_size}:{status.st_mtime_ns}"


def run_fingerprint(repo: Path, kubernetes_version: str, stages: list[str], kubectl: str | None,
                    missing_tools: list[str], project: Path | None = None, programs: tuple[str, ...] = ()) -> str:
    """`programs`: the programs the policy rules run (promtool), by the
    binary found on PATH, as kubectl is."""
    project = project or PROJECT
    parts: list[str] = [f"entry {ENTRY_VERSION}", sys.version, str(repo), kubernetes_version,
                        ",".join(sorted(stages)), ",".join(sorted(set(missing_tools))), _binary_identity(kubectl)]
    parts += [f"{name}={_binary_identity(shutil.which(name))}" for name in sorted(set(programs))]
    parts += [f"{t}={tree_digest(project / t)}" for t in PROJECT_TREES]
    parts += [f"{f}={file_digest(project / f)}" for f in PROJECT_FILES]
    parts += [f"repo:{t}={tree_digest(repo / t)}" for t in REPOSITORY_TREES]
    parts += [f"repo:{f}={file_digest(repo / f)}" for f in REPOSITORY_FILES]
    parts += tool_versions()
    parts += sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(ENVIRONMENT_PREFIXES))
    return digest(*parts)


def finding_json(finding: Finding) -> list[Any]:
    return [getattr(finding, name) for name in FINDING_FIELDS]


def _finding(value: Any) -> Finding:
    if not isinstance(value, list) or len(value) != len(FINDING_FIELDS):
        raise ValueError("not a finding")
    for name, item in zip(FINDING_FIELDS, value, strict=True):
        if item is None and name not in FINDING_FIELDS[:5]:
            continue
        fits = isinstance(item, int) and not isinstance(item, bool) if name == "line" else isinstance(item, str)
        if not fits:
            raise ValueError(f"finding field {name}")
    return Finding(*value)


def _findings(value: Any) -> list[Finding]:
    if not isinstance(value, list):
        raise ValueError("not a list of findings")
    return [_finding(v) for v in value]


def _ref(value: Any) -> SourceRef | None:
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) \
            and (value[1] is None or (isinstance(value[1], int) and not isinstance(value[1], bool))):
        return SourceRef(value[0], value[1])
    raise ValueError("not a source")


@dataclass
class RenderEntry:
    """One root's cached render and per-render findings."""

    text: str | None
    error: str | None
    error_source: SourceRef | None
    object_sources: list[SourceRef | None] | None  # per object, when the render was parsed
    effects: list[Finding]
    schema: list[Finding] | None
    security: list[Finding] | None
    policy: dict[str, list[Finding]] | None

    def as_json(self) -> dict[str, Any]:
        def refs(r: SourceRef | None) -> list | None:
            return [r.file, r.line] if r is not None else None
        return {
            "version": ENTRY_VERSION, "text": self.text, "error": self.error, "error_source": refs(self.error_source),
            "object_sources": None if self.object_sources is None else [refs(r) for r in self.object_sources],
            "effects": [finding_json(f) for f in self.effects],
            "schema": None if self.schema is None else [finding_json(f) for f in self.schema],
            "security": None if self.security is None else [finding_json(f) for f in self.security],
            "policy": None if self.policy is None else
            {rule: [finding_json(f) for f in found] for rule, found in self.policy.items()},
        }

    @classmethod
    def from_json(cls, value: Any) -> RenderEntry:
        """The entry, or ValueError for any other shape (then it is a miss)."""
        if not isinstance(value, dict) or value.get("version") != ENTRY_VERSION:
            raise ValueError("another entry format")
        text, error = value.get("text"), value.get("error")
        if not (text is None or isinstance(text, str)) or not (error is None or isinstance(error, str)):
            raise ValueError("text")
        sources = value.get("object_sources")
        if sources is not None and not isinstance(sources, list):
            raise ValueError("object_sources")
        policy = value.get("policy")
        if policy is not None and not (isinstance(policy, dict) and all(isinstance(k, str) for k in policy)):
            raise ValueError("policy")
        return cls(
            text=text, error=error, error_source=_ref(value.get("error_source")),
            object_sources=None if sources is None else [_ref(s) for s in sources],
            effects=_findings(value.get("effects")),
            schema=None if value.get("schema") is None else _findings(value["schema"]),
            security=None if value.get("security") is None else _findings(value["security"]),
            policy=None if policy is None else {rule: _findings(found) for rule, found in policy.items()},
        )


def policy_results_json(results: dict[tuple[str, str], list[Finding]]) -> dict[str, Any]:
    """The run-wide policy results: per rule, per render path, its findings."""
    rules: dict[str, dict[str, list]] = {}
    for (rule, path), found in results.items():
        rules.setdefault(rule, {})[path] = [finding_json(f) for f in found]
    return {"version": ENTRY_VERSION, "rules": rules}


def policy_results_from_json(value: Any, rules: list[str], paths: list[str]) -> dict[tuple[str, str], list[Finding]]:
    """The results for exactly these rules on exactly these renders, or
    ValueError (then the entry is a miss)."""
    if not isinstance(value, dict) or value.get("version") != ENTRY_VERSION or not isinstance(value.get("rules"), dict):
        raise ValueError("another entry format")
    kept = value["rules"]
    if set(kept) != set(rules):
        raise ValueError("other rules")
    out: dict[tuple[str, str], list[Finding]] = {}
    for rule in rules:
        by_path = kept[rule]
        if not isinstance(by_path, dict) or set(by_path) != set(paths):
            raise ValueError("other renders")
        for path in paths:
            out[(rule, path)] = _findings(by_path[path])
    return out
