"""The Flux APIs this package reads, by group, and how to recognise them."""

from __future__ import annotations

from typing import Any

KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io/"
SOURCE_GROUP = "source.toolkit.fluxcd.io/"
HELM_GROUP = "helm.toolkit.fluxcd.io/"
GENERATOR_GROUP = "source.extensions.fluxcd.io/"  # source-watcher's ArtifactGenerator

# The sources a Flux Kustomization can build from (its CRD's sourceRef.kind).
KUSTOMIZATION_SOURCES = ("GitRepository", "OCIRepository", "Bucket", "ExternalArtifact")


def _api(doc: dict[str, Any]) -> str:
    value = doc.get("apiVersion")
    return value if isinstance(value, str) else ""


def is_flux_kustomization(doc: dict[str, Any]) -> bool:
    return doc.get("kind") == "Kustomization" and _api(doc).startswith(KUSTOMIZE_GROUP)


def is_source(doc: dict[str, Any]) -> bool:
    return _api(doc).startswith(SOURCE_GROUP)


def is_helm_release(doc: dict[str, Any]) -> bool:
    return doc.get("kind") == "HelmRelease" and _api(doc).startswith(HELM_GROUP)


def is_artifact_generator(doc: dict[str, Any]) -> bool:
    return doc.get("kind") == "ArtifactGenerator" and _api(doc).startswith(GENERATOR_GROUP)
