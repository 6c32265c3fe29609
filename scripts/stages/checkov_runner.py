"""checkov's kubernetes Runner on one render: checkov's own scan, unchanged.

The security stage runs the direct checks (checkov_direct); this path stays
for `bench`, whose floor is defined as checkov's Runner on every render, and
for tests/test_checkov_equal.py, which holds the two to the same results.
"""

from __future__ import annotations

import os
import tempfile

from scripts.stages.checkov_direct import Record

# What checkov reads from the environment: no calls home for guideline
# mappings or package scans; the same settings in every worker.
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR",
               # Our workers are the parallelism: checkov forking processes of its
               # own per render costs time and leaves grandchildren on a stop.
               "CHECKOV_PARALLELIZATION_TYPE": "none"}
# Settings that would make checkov's graph differ from the one the direct
# checks evaluate (no pod templates as Pods, no edges, wildcard resource types).
CHECKOV_ENV_UNSET = ("CREATE_COMPLEX_VERTICES", "CREATE_EDGES", "CKV_SUPPORT_ALL_RESOURCE_TYPE")


def prepare_environment() -> None:
    os.environ.update(CHECKOV_ENV)
    for name in CHECKOV_ENV_UNSET:
        os.environ.pop(name, None)


class RunnerChecks:
    """checkov's kubernetes Runner (resource and graph checks), imported
    once per process, for one skip list; each render is written to a file
    in `scratch` (checkov reads files) and scanned on its own."""

    def __init__(self, skips: tuple[str, ...], scratch: str):
        prepare_environment()
        from checkov.kubernetes.runner import Runner
        from checkov.runner_filter import RunnerFilter

        self.runner_class = Runner
        self.make_filter = lambda: RunnerFilter(framework=["kubernetes"], skip_checks=list(skips),
                                                run_image_referencer=False, show_progress_bar=False)
        self.directory = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=scratch)

    def records(self, text: str) -> tuple[list[Record], int]:
        """Every result on one render, and how many objects checkov read from it."""
        path = os.path.join(self.directory, "render.yaml")
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(text)
        runner = self.runner_class()
        try:
            report = runner.run(root_folder=None, files=[path], runner_filter=self.make_filter())
        finally:
            os.unlink(path)
        reports = report if isinstance(report, list) else [report]
        read = sum(len(entities) for entities in (runner.definitions or {}).values())
        records = [Record(str(c.check_id), str(c.check_name), str(c.resource), outcome, c.guideline or None)
                   for r in reports
                   for outcome, checks in (("PASSED", r.passed_checks), ("FAILED", r.failed_checks),
                                           ("SKIPPED", r.skipped_checks))
                   for c in checks]
        return records, read
