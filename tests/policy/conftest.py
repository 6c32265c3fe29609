"""Parametrise every policy test over every render (target).

Inside `validate`, the renders come from its render stage through the
RenderProvider plugin. Run on its own, the suite renders the repository
once per session with the same code, narrowed by --target.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.core.errors import UsageError
from scripts.loading.discover import discover, select
from scripts.loading.render import render_with_flux
from scripts.stages.policy import PROVIDER_KEY, PolicyContext
from scripts.stages.policy_support import PolicyConfig

_CONTEXT = pytest.StashKey[PolicyContext]()


def _context(config: pytest.Config) -> PolicyContext:
    if _CONTEXT in config.stash:
        return config.stash[_CONTEXT]
    provider = config.stash.get(PROVIDER_KEY, None)
    if provider is not None:
        context = provider.context
    else:
        repo = Path(config.rootpath)
        found = discover(repo)
        try:
            targets = select(found.targets, found.repo, config.getoption("--target"))
        except UsageError as exc:  # one line, once, not an error per test module
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
        settings = PolicyConfig.load(found.repo)
        version = config.getoption("--kubernetes-version") or settings.kubernetes_version
        renders, _ = render_with_flux(found.repo, targets, found.kustomizations)
        context = PolicyContext(found.repo, renders, version, settings)
    config.stash[_CONTEXT] = context
    return context


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "render" in metafunc.fixturenames:
        renders = _context(metafunc.config).renders
        failed = [f"{r.target.path}: {r.error}" for r in renders if not r.ok]
        if failed:
            raise pytest.UsageError("cannot render " + "; ".join(failed))
        metafunc.parametrize("render", renders, ids=[r.target.path for r in renders])


@pytest.fixture(scope="session")
def policy(request: pytest.FixtureRequest) -> PolicyContext:
    return _context(request.config)


@pytest.fixture(scope="session")
def config(policy: PolicyContext) -> PolicyConfig:
    return policy.config


@pytest.fixture(scope="session")
def schema_store(policy: PolicyContext):
    from scripts.stages.schema import SchemaStore

    return SchemaStore(policy.repo, policy.kubernetes_version)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Render (or take validate's renders) before collection, so a bad
    --target ends the run with one line instead of an error per module."""
    _context(session.config)
