"""Plain data passed between the stages: targets, rendered objects, findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STAGES = ("render", "lint", "schema", "security", "policy")
# error: fails the run. warning: worth a look, does not fail it. notice: what
# was not checked and why (a Helm chart not rendered, a source whose artifact
# is not in the repository), so nothing is skipped in silence.
SEVERITIES = ("error", "warning", "notice")


@dataclass(frozen=True)
class SourceRef:
    """Where an object or a finding comes from in the repository."""

    file: str  # repository-relative path
    line: int | None = None


@dataclass
class Resource:
    """One rendered Kubernetes object and where it was written."""

    doc: dict[str, Any]
    source: SourceRef | None = None

    # kind and api_version are read about a million times a run (every rule
    # filters objects by kind): a string is returned as it is.
    @property
    def api_version(self) -> str:
        value = self.doc.get("apiVersion")
        return value if type(value) is str else str(value or "")

    @property
    def kind(self) -> str:
        value = self.doc.get("kind")
        return value if type(value) is str else str(value or "")

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.doc.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str | None:
        ns = self.metadata.get("namespace")
        return str(ns) if ns else None

    @property
    def labels(self) -> dict[str, str]:
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, dict) else {}

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Target:
    """A root: a kustomization nothing else pulls in, or a Flux build."""

    path: str  # repository-relative, e.g. "overlays/prod" or "clusters/prod#name"
    directory: str  # repository-relative directory kustomize builds
    sources: tuple[str, ...] = ()  # repository-relative files the build reads
    resource_files: tuple[str, ...] = ()  # of those, the ones holding objects
    flux: FluxSource | None = None  # set for a Flux Kustomization's build
    # No kustomization file in `directory`: built from the kustomization that
    # kustomize-controller generates (every manifest below it), as Flux does.
    generated: bool = False


@dataclass(frozen=True)
class FluxSource:
    """What a Flux build needs besides the tree: the Kustomization object and
    the ConfigMaps and Secrets of its cluster (for postBuild.substituteFrom)."""

    kustomization: dict[str, Any]
    inputs: tuple[dict[str, Any], ...] = ()
    file: str | None = None  # where the Flux object is written
    # Built from an ExternalArtifact: every file of the artifact as (its path
    # in the artifact, the repository files it is made of: one, or several
    # merged); spec.path is `artifact_path` in it. None: built from this
    # repository's tree, where `Target.directory` is spec.path.
    artifact: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    artifact_path: str = "."
    # What the source leaves out (gitignore patterns, repository-relative):
    # a generated kustomization does not list those files.
    ignore: tuple[str, ...] = ()


class Render:
    """A target's render: its objects, or the error that stopped it.

    Objects are parsed from kustomize's output on first use, not when the
    render is made: checkov reads the text, and parsing can then happen
    while checkov runs instead of while kustomize still needs the cores.
    """

    def __init__(self, target: Target, objects: list[Resource] | None = None, text: str | None = None,
                 error: str | None = None, error_source: SourceRef | None = None,
                 parse: Callable[[], list[Resource]] | None = None):
        self.target = target
        self.text = text  # kustomize's output, as it came
        self.error = error
        self.error_source = error_source
        self._objects = objects
        self._parse = parse
        # A Flux build made from a root's kustomize output (flux.builds_as_root):
        # that root's path. What kustomize did is the same for both.
        self.built_as: str | None = None

    @property
    def objects(self) -> list[Resource]:
        if self._objects is None:
            self._objects = self._parse() if self._parse else []
            self._parse = None
        return self._objects

    @objects.setter
    def objects(self, value: list[Resource]) -> None:
        self._objects = value

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        return f"Render({self.target.path!r}, ok={self.ok})"


@dataclass
class Finding:
    stage: str
    target: str
    rule: str
    severity: str
    message: str
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    file: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "target": self.target,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "file": self.file,
            "line": self.line,
        }


def finding_for(resource: Resource, *, stage: str, target: str, rule: str, message: str,
                severity: str = "error") -> Finding:
    """A finding about one rendered object, pointing at where it was written."""
    source = resource.source
    return Finding(
        stage=stage, target=target, rule=rule, severity=severity, message=message,
        kind=resource.kind or None, name=resource.name or None, namespace=resource.namespace,
        file=source.file if source else None, line=source.line if source else None,
    )


@dataclass
class Report:
    kubernetes_version: str
    renders: list[Render]
    findings: list[Finding]
    timings: dict[str, float]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)
