"""Everyday edits stay green: what platform and ML engineers change in most
pull requests must not raise a single finding in render, schema or policy
(the security stage is covered by the whole-tree runs elsewhere)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

NEW_DIGEST = "sha256:" + "ab" * 32


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new, 1))


def _image_bump(tree: Path) -> None:
    # A new model image: tag and digest change together (the one image policy).
    kfile = tree / "overlays/prod/kustomization.yaml"
    text = kfile.read_text()
    v2 = text.index("name: ai-inference-service-v2")
    head, tail = text[:v2], text[v2:]
    tail = tail.replace('newTag: "1.5.0"', 'newTag: "1.6.0"', 1)
    start = tail.index("digest: ") + len("digest: ")
    tail = tail[:start] + NEW_DIGEST + tail[tail.index("\n", start):]
    kfile.write_text(head + tail)


EDITS = {
    "image bump": _image_bump,
    # A new model version comes with the digest of its manifest (VERSION@sha256:HEX).
    "model version": lambda t: _replace(t / "overlays/prod/kustomization.yaml", "- v2=2024.09.0@sha256:73e4adcf",
                                        "- v2=2024.11.0@sha256:0b5d9a1c"),
    "canary weights": lambda t: (_replace(t / "overlays/prod/canary-weights.yaml", "value: 90", "value: 75"),
                                 _replace(t / "overlays/prod/canary-weights.yaml", "value: 10", "value: 25")),
    "route timeout": lambda t: _replace(t / "istio/virtualservice.yaml", "timeout: 30s", "timeout: 45s"),
    "resources": lambda t: _replace(t / "overlays/staging/resources.yaml", "memory: 2Gi", "memory: 3Gi"),
    "autoscaling bounds": lambda t: _replace(t / "overlays/prod/scaling-hpa.yaml", "maxReplicas: 12",
                                             "maxReplicas: 16"),
    "a new alert threshold": lambda t: _replace(t / "monitoring/prometheusrule.yaml", "for: 10m", "for: 15m"),
    # Fields of the current releases (Prometheus Operator >= 0.8x, Flux >= 2.6,
    # Istio's newer timeouts): the schemas must know them.
    "new API fields": lambda t: (
        _replace(t / "monitoring/servicemonitor.yaml", "  podTargetLabels:", "  scrapeNativeHistograms: true\n"
                                                                              "  podTargetLabels:"),
        _replace(t / "clusters/prod/ai-inference-prod.yaml", "  prune: true\n",
                 "  prune: true\n  deletionPolicy: MirrorPrune\n  healthCheckExprs:\n"
                 "    - apiVersion: apps/v1\n      kind: Deployment\n"
                 "      current: status.readyReplicas == status.replicas\n")),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_everyday_edit_raises_no_finding(tree, edit):
    EDITS[edit](tree)
    report = tree / "r.json"
    proc = subprocess.run([sys.executable, "-m", "scripts", "validate", "--repo", str(tree), "--stage", "render",
                           "--stage", "schema", "--stage", "policy", "--stage", "lint", "--report-json", str(report),
                           "-q"], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(report.read_text())["findings"] == []
