"""The policy stage: the rules of the tests/policy suite on renders that
`validate` already made, their violations turned into findings.

Each rule is a pair in a tests/policy module: `check_<rule>` returns the
violations, `test_<rule>` asserts there are none. `validate` calls the
check functions directly, every rule on every render (about 1 ms less per
rule and render than a pytest item costs); `pytest tests/policy` runs the
same rules as tests, rendering the repository itself in its conftest.
`run_suite` runs them through pytest in process, and a test proves both
paths report the same findings.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import pkgutil
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.core.model import Finding, Render, finding_for
from scripts.stages.policy_support import PolicyConfig, PolicyFailure, Violation

PROVIDER_KEY: pytest.StashKey[RenderProvider] = pytest.StashKey()
SUITE = Path(__file__).resolve().parents[2] / "tests" / "policy"


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


@dataclass(frozen=True)
class Rule:
    """One rule of the suite: its check function and the inputs it takes."""

    name: str
    check: Callable[..., list[Violation]]
    params: tuple[str, ...]
    requires: str | None = None  # a program the rule needs; skipped without it, as its test is
    # "build": the rule reads the repository only to locate a field in the
    # render's own build inputs (a patch, a generator's file), so its result
    # depends on nothing the render's cache key does not hold.
    reads: str | None = None


def load_rules(package: str = "tests.policy") -> list[Rule]:
    """Every `test_<rule>` of the suite that has a `check_<rule>`, in the
    order pytest runs them (modules by name, rules as written)."""
    rules = []
    module_package = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(module_package.__path__), key=lambda m: m.name):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for name, function in vars(module).items():
            if not (name.startswith("test_") and inspect.isfunction(function)):
                continue
            check = getattr(module, "check_" + name.removeprefix("test_"), None)
            if check is None:
                continue
            rules.append(Rule(name=name.removeprefix("test_"), check=check,
                              params=tuple(inspect.signature(check).parameters),
                              requires=getattr(check, "requires", None), reads=getattr(check, "reads", None)))
    return rules


def session_inputs(package: str = "tests.policy") -> dict[str, Callable[[list[Render]], Any]]:
    """Inputs computed once per run from all renders (e.g. one `promtool`
    call for every rule group), as the suite's modules declare them in
    SESSION_INPUTS."""
    module_package = importlib.import_module(package)
    inputs: dict[str, Callable[[list[Render]], Any]] = {}
    for info in pkgutil.iter_modules(module_package.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        inputs.update(getattr(module, "SESSION_INPUTS", {}))
    return inputs


def _findings(violations: list[Violation], target: str, rule: str) -> list[Finding]:
    out = []
    for violation in violations:
        detail = f"{violation.detail}: " if violation.detail else ""
        out.append(finding_for(violation.obj, stage="policy", target=target, rule=rule,
                               message=f"{detail}{violation.problem}; fix: {violation.fix}"))
    return out


def _rule_error(target: str, rule: str, error: BaseException) -> Finding:
    text = str(error).strip().splitlines()
    return Finding(stage="policy", target=target, rule=rule, severity="error",
                   message="rule failed: " + (text[0] if text else type(error).__name__))


# The inputs a rule may take that do not depend on the other renders: a
# rule that takes only these runs on each render as soon as it is made.
PER_RENDER_INPUTS = frozenset({"render", "config", "kubernetes_version", "repo", "store"})


class PolicyRun:
    """Every rule on every render that rendered, called directly. `add` runs
    the rules that need one render on it at once, so `validate` can check
    each render while kustomize makes the next; `finish` runs the rules that
    need every render (session inputs) and returns the findings in the
    order `run` gives them: by rule, then by render."""

    def __init__(self, repo: Path, kubernetes_version: str, config: PolicyConfig, store: Any = None):
        """`store`: the schema stage's SchemaStore when it runs too, so the
        user's CRDs are read once."""
        from scripts.stages.schema import SchemaStore

        self.rules = load_rules()
        self._lazy: dict[str, Callable[[], Any]] = {
            "config": lambda: config,
            "kubernetes_version": lambda: kubernetes_version,
            "repo": lambda: repo,
            "store": lambda: store if store is not None else SchemaStore(repo, kubernetes_version),
        }
        self._values: dict[str, Any] = {}
        self._missing_tools = [rule.requires for rule in self.rules
                               if rule.requires and not shutil.which(rule.requires)]
        self._per_render = [rule for rule in self.rules if set(rule.params) <= PER_RENDER_INPUTS
                            and rule.requires not in self._missing_tools]
        self._results: dict[tuple[str, str], list[Finding]] = {}  # (rule, render path): its findings
        self.seconds = 0.0

    def _value(self, name: str) -> Any:
        if name not in self._values:
            self._values[name] = self._lazy[name]()
        return self._values[name]

    def _check(self, rule: Rule, render: Render) -> list[Finding]:
        shared = {name: self._value(name) for name in rule.params if name != "render"}
        try:
            violations = rule.check(render=render, **shared)
        except Exception as error:  # noqa: BLE001 - a crashing rule is that rule's finding
            return [_rule_error(render.target.path, rule.name, error)]
        return _findings(violations, render.target.path, rule.name)

    def add(self, render: Render) -> None:
        t0 = time.perf_counter()
        render.objects  # noqa: B018 - parse first: output kustomize made but YAML cannot read is not ok
        if render.ok:
            for rule in self._per_render:
                self._results[(rule.name, render.target.path)] = self._check(rule, render)
        self.seconds += time.perf_counter() - t0

    def finish(self, all_renders: list[Render]) -> list[Finding]:
        t0 = time.perf_counter()
        try:
            return self._finish(all_renders)
        finally:
            self.seconds += time.perf_counter() - t0

    def _finish(self, all_renders: list[Render]) -> list[Finding]:
        renders = [r for r in all_renders if r.ok]
        if not renders:
            return []
        if not self.rules:  # a suite that lost its rules must not read as a pass
            return [Finding(stage="policy", target=".", rule="policy-suite-error", severity="error",
                            message=f"no rules found in {SUITE}")]
        for name, compute in session_inputs().items():
            self._lazy[name] = lambda compute=compute: compute(renders)
        findings: list[Finding] = []
        for rule in self.rules:
            if rule.requires in self._missing_tools:
                if os.environ.get("CI") == "true":  # a CI without the tool must not pass silently
                    findings.append(Finding(stage="policy", target=".", rule=rule.name, severity="error",
                                            message=f"{rule.requires} is not installed, and CI must run this "
                                                    "rule (Debian package prometheus)"))
                continue
            for render in renders:
                key = (rule.name, render.target.path)
                if key not in self._results:
                    self._results[key] = self._check(rule, render)
                findings += self._results[key]
        return findings


def run(context: PolicyContext) -> list[Finding]:
    """Every rule on every render that rendered, called directly."""
    return PolicyRun(context.repo, context.kubernetes_version, context.config).finish(context.renders)


def run_suite(context: PolicyContext, suite: Path = SUITE) -> list[Finding]:
    """The same rules run as pytest tests, in process."""
    renders = [r for r in context.renders if r.ok]
    if not renders:
        return []
    provider = RenderProvider(PolicyContext(context.repo, renders, context.kubernetes_version, context.config))
    # Plugins that cost per test and give nothing here (capture, logging,
    # warnings, terminal output) are off: the suite runs thousands of items.
    # Third-party plugins are not loaded at all: whatever else is installed
    # in the environment has no say in the verdict.
    args = [str(suite), "-o", "addopts=", "-s", "--rootdir", str(suite.parent.parent),
            *(arg for plugin in ("cacheprovider", "logging", "warnings", "faulthandler",
                                 "terminal", "junitxml", "pastebin", "doctest")
              for arg in ("-p", f"no:{plugin}"))]
    output = io.StringIO()
    autoload = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        with contextlib.redirect_stdout(output):
            code = pytest.main(args, plugins=[provider])
    finally:
        if autoload is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = autoload
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or provider.tests_run == 0:
        tail = [ln for ln in output.getvalue().splitlines() if ln.strip()]
        provider.findings.append(Finding(
            stage="policy", target=".", rule="policy-suite-error", severity="error",
            message=f"the policy suite did not run (pytest exit {int(code)}): " + (tail[-1] if tail else "")))
    return provider.findings
