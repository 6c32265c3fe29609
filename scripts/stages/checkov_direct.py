"""checkov's kubernetes checks called directly on one render's documents.

checkov's kubernetes Runner re-parses each render with a pure-Python YAML
loader (about 85% of its time on a render), builds a graph with a library
whose import pulls in checkov's other frameworks (about 3 s of CPU per
process), and then calls checks that each look at one object. Here the same
check objects, from checkov's own registry, are called on the objects the
Runner would hand them (checkov_entities), with checkov's own RunnerFilter
deciding skips; the six graph policies are evaluated by checkov_graph.
Importing the registry and its checks costs about 0.3 s of CPU.

This is proven equal to the Runner for one checkov version only
(PROVEN_VERSION; tests/test_checkov_equal.py). Any other version is refused
(VersionMismatch), so an upgrade cannot quietly change what is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scripts.core.errors import InputError
from scripts.core.yamlio import load_render
from scripts.stages import checkov_entities, checkov_graph

PROVEN_VERSION = "3.3.30"
# The file name the checks are told they scan (they only log it).
SCANNED_FILE = "render.yaml"
RESULTS = ("PASSED", "FAILED", "SKIPPED")  # a check's UNKNOWN is no result, as in the Runner's report


class VersionMismatch(Exception):
    """checkov is not the version (or its graph policies not the files) the
    direct checks were proven equal for."""


def installed_version() -> str:
    from checkov.version import version  # a constant: imports nothing else of checkov

    return str(version)


def _policy_dir() -> Path:
    import checkov  # the package itself imports nothing

    return Path(checkov.__file__).parent / "kubernetes" / "checks" / "graph_checks"


def version_problem() -> str | None:
    """Why the direct checks cannot run with the installed checkov, if they
    cannot: another version, or graph policies other than those evaluated."""
    try:
        version = installed_version()
    except ImportError:
        return "checkov is not installed: install requirements.txt"
    if version != PROVEN_VERSION:
        return (f"checkov {version} is installed, but the security stage is proven equal to checkov's own "
                f"scan for checkov {PROVEN_VERSION} only: install checkov=={PROVEN_VERSION} "
                f"(requirements.txt)")
    try:
        checkov_graph.load_policies(_policy_dir())
    except (checkov_graph.PolicyMismatch, OSError) as exc:
        return f"{exc}: reinstall checkov=={PROVEN_VERSION} (requirements.txt)"
    return None


@dataclass(frozen=True)
class Record:
    """One check's result on one object, as checkov names it."""

    check_id: str
    check_name: str
    resource: str  # checkov's "Kind.namespace.name"
    result: str  # PASSED, FAILED or SKIPPED
    guideline: str | None = None


class DirectChecks:
    """checkov's kubernetes checks, loaded once per process, for one skip list."""

    def __init__(self, skips: tuple[str, ...]):
        problem = version_problem()
        if problem:
            raise VersionMismatch(problem)
        from checkov.kubernetes.checks.resource.registry import registry  # registers every kubernetes check
        from checkov.runner_filter import RunnerFilter

        self.registry = registry
        self.filter = RunnerFilter(framework=["kubernetes"], skip_checks=list(skips),
                                   run_image_referencer=False, show_progress_bar=False)
        self.policies = checkov_graph.load_policies(_policy_dir())
        # The Runner drops a skipped graph policy before running it, as here.
        self.graph_run = frozenset(check_id for check_id in self.policies.names
                                   if self.filter.should_run_check(check_id=check_id, report_type="kubernetes"))

    def records(self, text: str) -> tuple[list[Record], int]:
        """Every result on one render (kustomize's output), and how many
        objects were read from it."""
        try:
            documents = load_render(text, SCANNED_FILE)
        except InputError:  # the render stage reports it; checkov reads nothing of such a file
            return [], 0
        return self.records_of(documents, text)

    def records_of(self, documents: list, text: str | None = None) -> tuple[list[Record], int]:
        read = checkov_entities.entities(documents, text)
        # The graph is evaluated first, as the Runner builds it from a copy
        # taken before any check runs (checkov_graph changes nothing).
        graph = checkov_graph.evaluate(self.policies, read.objects, read.skips_by_id, self.graph_run)
        out = []
        for entity in read.objects:
            if entity.get("kind") == "Kustomization":  # left to checkov's kustomize framework
                continue
            skips = checkov_entities.take_skip_annotations(entity)
            results = self.registry.scan(SCANNED_FILE, entity, skips, self.filter)
            name = checkov_entities.resource_id(entity)
            if not name:
                continue
            for check, result in results.items():
                outcome = str(result["result"].value)
                if outcome in RESULTS:
                    out.append(Record(str(check.id), str(check.name), name, outcome, check.guideline or None))
        out += [Record(r.check_id, r.check_name, r.resource, r.result) for r in graph]
        return out, len(read.objects)
