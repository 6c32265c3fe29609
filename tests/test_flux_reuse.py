"""A Flux build that kustomize would make exactly as the root at its path
is taken from that root's output (then the controller's post-build steps),
not built a second time: proven equal to the real build on every such
build of this repository and of a two-service bench tree, and refused for
every Kustomization field that rewrites the kustomization."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scripts.bench import write_tree
from scripts.loading import flux
from scripts.loading import render as render_module
from scripts.loading.discover import discover
from scripts.loading.render import Limits, SourceIndex, kubectl_binary, render_flux_build, render_with_flux
from tests.conftest import REPO


def _reused_and_real(repo: Path) -> list[tuple[str, str | None, str | None]]:
    found = discover(repo)
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    roots = {r.target.directory: r.target for r in renders if r.target.flux is None and not r.target.generated}
    index, kubectl, limits = SourceIndex(found.repo), kubectl_binary(), Limits.load(found.repo)
    out = []
    for render in renders:
        root = roots.get(render.target.directory)
        if render.target.flux is not None and root is not None and flux.builds_as_root(render.target, root):
            real = render_flux_build(found.repo, render.target, index, kubectl, limits)
            out.append((render.target.path, render.text, real.text))
    return out


@pytest.mark.parametrize("services", [0, 2])
def test_a_reused_build_is_what_kustomize_builds(tmp_path, services):
    repo = REPO
    if services:
        repo = tmp_path / "bench"
        write_tree(repo, services)
    pairs = _reused_and_real(repo)
    assert len(pairs) >= (4 if not services else 8), [p for p, _, _ in pairs]
    for path, reused, real in pairs:
        assert real is not None and reused == real, path


def test_reuse_saves_the_second_kustomize_run(monkeypatch):
    found = discover(REPO)
    calls = []
    real = render_module.run_kustomize
    monkeypatch.setattr(render_module, "run_kustomize", lambda command, limits: calls.append(command) or
                        real(command, limits))
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    builds = [r for r in renders if r.target.flux is not None]
    assert builds and all(r.ok for r in renders)
    assert len(calls) < len(renders), "every Flux build ran kustomize again"


def _build_and_root():
    found = discover(REPO)
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    roots = {r.target.directory: r.target for r in renders if r.target.flux is None}
    build = next(r.target for r in renders if r.target.flux is not None and r.target.directory in roots
                 and flux.builds_as_root(r.target, roots[r.target.directory]))
    return build, roots[build.directory]


@pytest.mark.parametrize(("field", "value"), [
    ("targetNamespace", "elsewhere"), ("namePrefix", "x-"), ("nameSuffix", "-x"),
    ("patches", [{"patch": "- op: add\n  path: /metadata/labels/x\n  value: y\n", "target": {"kind": "Service"}}]),
    ("images", [{"name": "ghcr.io/example-org/ai-inference-service", "newTag": "9.9.9"}]),
    ("components", ["../../istio"]),
])
def test_a_field_that_rewrites_the_kustomization_is_built_for_real(field, value):
    build, root = _build_and_root()
    kustomization = dict(build.flux.kustomization, spec=dict(build.flux.kustomization["spec"], **{field: value}))
    edited = dataclasses.replace(build, flux=dataclasses.replace(build.flux, kustomization=kustomization))
    assert not flux.builds_as_root(edited, root)


def test_other_files_or_an_artifact_are_built_for_real():
    build, root = _build_and_root()
    assert flux.builds_as_root(build, root)
    fewer = tuple(f for f in build.sources if f != root.sources[-1])
    assert not flux.builds_as_root(dataclasses.replace(build, sources=fewer), root)
    assert not flux.builds_as_root(dataclasses.replace(build, sources=(*build.sources, "../outside.yaml")), root)
    assert not flux.builds_as_root(dataclasses.replace(build, directory="overlays/elsewhere"), root)
    assert not flux.builds_as_root(build, dataclasses.replace(root, generated=True))
    assert not flux.builds_as_root(dataclasses.replace(build, flux=dataclasses.replace(
        build.flux, artifact=(("a.yaml", ("overlays/prod/a.yaml",)),))), root)


def test_a_root_that_fails_leaves_its_build_to_kustomize(tree):
    """The build of a root that failed is made for real: its own error, as
    the controller would report it, not the root's."""
    (tree / "overlays/staging/kustomization.yaml").write_text(
        (tree / "overlays/staging/kustomization.yaml").read_text() + "\nbogusField: 1\n")
    found = discover(tree)
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    by_path = {r.target.path: r for r in renders}
    assert not by_path["overlays/staging"].ok
    assert not by_path["clusters/staging#ai-inference-staging"].ok
