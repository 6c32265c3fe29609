"""The policy stage: the tests/policy suite, run in process by pytest on
renders that `validate` already made, its failures turned into findings.

The suite also runs on its own (`pytest tests/policy`); then its conftest
renders the repository itself, once per session, with the same code.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.model import Finding, Render, finding_for
from scripts.policy_support import PolicyConfig, PolicyFailure

PROVIDER_KEY: pytest.StashKey[RenderProvider] = pytest.StashKey()
SUITE = Path(__file__).resolve().parent.parent / "tests" / "policy"


@dataclass
class PolicyContext:
    """What every policy test sees: the repository, its renders, the config."""

    repo: Path
    renders: list[Render]
    kubernetes_version: str
    config: PolicyConfig


class RenderProvider:
    """pytest plugin: hands renders to the suite, collects its failures."""

    def __init__(self, context: PolicyContext):
        self.context = context
        self.findings: list[Finding] = []
        self.tests_run = 0

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[PROVIDER_KEY] = self

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):  # noqa: ANN001 - pytest hook
        outcome = yield
        report = outcome.get_result()
        if report.when != "call":
            return
        self.tests_run += 1
        if not report.failed:
            return
        rule = item.originalname.removeprefix("test_")
        callspec = getattr(item, "callspec", None)
        render = callspec.params.get("render") if callspec else None
        target = render.target.path if isinstance(render, Render) else "."
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, PolicyFailure):
            for violation in error.violations:
                detail = f"{violation.detail}: " if violation.detail else ""
                self.findings.append(finding_for(
                    violation.obj, stage="policy", target=target, rule=rule,
                    message=f"{detail}{violation.problem}; fix: {violation.fix}"))
        else:
            text = str(error).strip().splitlines() if error else []
            self.findings.append(Finding(
                stage="policy", target=target, rule=rule, severity="error",
                message="rule failed: " + (text[0] if text else report.longreprtext.splitlines()[-1])))


def run(context: PolicyContext, suite: Path = SUITE) -> list[Finding]:
    renders = [r for r in context.renders if r.ok]
    if not renders:
        return []
    provider = RenderProvider(PolicyContext(context.repo, renders, context.kubernetes_version, context.config))
    # Plugins that cost per test and give nothing here (capture, logging,
    # warnings, terminal output) are off: the suite runs thousands of items.
    args = [str(suite), "-o", "addopts=", "-s", "--rootdir", str(suite.parent.parent),
            *(arg for plugin in ("cacheprovider", "cloudcoil", "xdist", "logging", "warnings", "faulthandler",
                                 "terminal", "junitxml", "pastebin", "doctest")
              for arg in ("-p", f"no:{plugin}"))]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = pytest.main(args, plugins=[provider])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or provider.tests_run == 0:
        tail = [ln for ln in output.getvalue().splitlines() if ln.strip()]
        provider.findings.append(Finding(
            stage="policy", target=".", rule="policy-suite-error", severity="error",
            message=f"the policy suite did not run (pytest exit {int(code)}): " + (tail[-1] if tail else "")))
    return provider.findings
