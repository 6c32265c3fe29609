"""Fixtures for the tool's own tests: the real tree's renders, and throwaway
copies of the tree to break on purpose."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from scripts.bench import copy_entries
from scripts.core.model import Render, Resource, Target
from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux

REPO = Path(__file__).resolve().parent.parent
# What a copy of the tree needs to validate like the real one.
TREE_ENTRIES = ("base", "istio", "monitoring", "overlays", "clusters", "config", "schemas", ".yamllint.yaml")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: renders a tree of its own with kustomize (deselect with -m 'not slow')")


@pytest.fixture(scope="session")
def real_renders() -> dict[str, Render]:
    found = discover(REPO)
    renders, _ = render_with_flux(found.repo, found.targets, found.kustomizations)
    return {r.target.path: r for r in renders}


@pytest.fixture
def render_of(real_renders):
    """A deep copy of one real render, safe to break."""
    def make(path: str) -> Render:
        return copy.deepcopy(real_renders[path])
    return make


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the GitOps tree in a temp dir (no .github, no scripts)."""
    root = tmp_path / "repo"
    root.mkdir()
    copy_entries(REPO, root, TREE_ENTRIES)
    return root


def make_render(docs: list[dict], directory: str = "overlays/prod", path: str | None = None) -> Render:
    """A render built from plain documents, for rules tested on small manifests."""
    target = Target(path=path or directory, directory=directory)
    return Render(target=target, objects=[Resource(doc=copy.deepcopy(d)) for d in docs])


def find(render: Render, kind: str, name: str | None = None) -> Resource:
    for obj in render.objects:
        if obj.kind == kind and (name is None or obj.name == name):
            return obj
    raise LookupError(f"{kind}/{name} not in {render.target.path}")
