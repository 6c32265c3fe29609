"""The security stage: one checkov run (kubernetes framework) over every
render, with results mapped back to target, kind and name.

checkov costs seconds just to start, so it never runs per target: one
process gets every render. Each render is written to a directory of its
own and passed with its own `-d`, because checkov builds one graph per
directory and connects every object of it to every other by labels: with
all renders in one directory that graph grows with the square of the
objects (minutes and gigabytes at a few hundred roots) and links objects
of different clusters that never meet. The file name a result carries
tells which target it belongs to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from scripts.errors import InputError
from scripts.model import Finding, Render, Resource, finding_for
from scripts.yamlio import load_file

CONFIG_FILE = "config/checkov.yaml"


def load_skips(repo: Path) -> dict[str, str]:
    """check id -> reason, from the committed config; a skip without a reason is refused."""
    path = repo / CONFIG_FILE
    if not path.is_file():
        return {}
    data = load_file(path, CONFIG_FILE) or {}
    skips = data.get("skip", []) if isinstance(data, dict) else None
    if not isinstance(skips, list):
        raise InputError("`skip` must be a list of {id, reason}", CONFIG_FILE)
    out = {}
    for item in skips:
        if not isinstance(item, dict) or not item.get("id") or not str(item.get("reason") or "").strip():
            raise InputError("every checkov skip needs an `id` and a non-empty `reason`", CONFIG_FILE)
        out[str(item["id"])] = str(item["reason"])
    return out


def checkov_binary() -> str:
    beside = Path(sys.executable).parent / "checkov"
    return str(beside) if beside.is_file() else "checkov"


def _objects_by_key(render: Render) -> dict[tuple[str, str], Resource]:
    return {(o.kind, o.name): o for o in render.objects}


def _parse_resource(resource: str) -> tuple[str, str | None, str]:
    kind, _, rest = resource.partition(".")
    namespace, _, name = rest.partition(".")
    return kind, namespace or None, name


class CheckovRun:
    """checkov started in the background over every render, so lint, schema
    and policy run on the other core while it works; `findings()` waits."""

    def __init__(self, repo: Path, renders: list[Render]):
        self.renders = [r for r in renders if r.ok and (r.text or r._objects)]
        self.files: dict[str, Render] = {}
        self.proc: subprocess.Popen | None = None
        self.started = time.perf_counter()
        self.seconds = 0.0
        if not self.renders:
            return
        skips = load_skips(repo)
        self.tmp = tempfile.TemporaryDirectory(prefix="checkov-")
        directories = []
        for number, render in enumerate(self.renders):
            name = f"target-{number:05d}"
            text = render.text if render.text is not None else \
                yaml.safe_dump_all([o.doc for o in render.objects], sort_keys=False)
            directory = Path(self.tmp.name, name)
            directory.mkdir()
            (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
            self.files[f"/{name}.yaml"] = render
            directories += ["-d", str(directory)]
        command = [checkov_binary(), *directories, "--framework", "kubernetes", "-o", "json",
                   "--quiet", "--compact", "--skip-download"]
        if skips:
            command += ["--skip-check", ",".join(sorted(skips))]
        env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
        # Files, not pipes: checkov's JSON for hundreds of renders would fill a
        # pipe while we are busy with the other stages. Closed in findings()/stop().
        self.stdout = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.proc = subprocess.Popen(command, stdout=self.stdout, stderr=self.stderr, text=True, env=env)

    def stop(self) -> None:
        """End checkov early (the run failed elsewhere)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.stdout.close()
            self.stderr.close()
            self.tmp.cleanup()
            self.proc = None

    def findings(self) -> list[Finding]:
        if self.proc is None:
            return []
        try:
            code = self.proc.wait()
            self.seconds = time.perf_counter() - self.started
            self.stdout.seek(0)
            self.stderr.seek(0)
            output, errors = self.stdout.read(), self.stderr.read()
        finally:
            self.stdout.close()
            self.stderr.close()
            self.tmp.cleanup()
        return _findings(output, errors, code, self.files)


def _json_documents(output: str) -> list:
    """checkov prints one JSON document per `-d` directory, one after another."""
    decoder = json.JSONDecoder()
    documents, position = [], 0
    while True:
        while position < len(output) and output[position].isspace():
            position += 1
        if position >= len(output):
            return documents
        document, position = decoder.raw_decode(output, position)
        documents.append(document)


def _findings(output: str, errors: str, code: int, files: dict[str, Render]) -> list[Finding]:
    try:
        documents = _json_documents(output)
    except json.JSONDecodeError:
        documents = []
    if not documents:
        tail = (errors or output).strip().splitlines()
        return [Finding(stage="security", target=".", rule="checkov-failed", severity="error",
                        message="checkov did not produce a report: "
                        + (tail[-1] if tail else f"exit {code}"))]
    reports = [r for d in documents for r in (d if isinstance(d, list) else [d]) if isinstance(r, dict)]
    findings: list[Finding] = []
    indexes: dict[str, dict] = {}
    for report in reports:
        for check in (report.get("results") or {}).get("failed_checks", []):
            render = files.get(check.get("file_path"))
            if render is None:
                continue
            if check["file_path"] not in indexes:
                indexes[check["file_path"]] = _objects_by_key(render)
            kind, namespace, name = _parse_resource(str(check.get("resource", "")))
            obj = indexes[check["file_path"]].get((kind, name))
            message = f"{check.get('check_name')} ({check.get('check_id')})"
            if check.get("guideline"):
                message += f"; see {check['guideline']}"
            rule = f"checkov/{check.get('check_id')}"
            if obj is not None:
                findings.append(finding_for(obj, stage="security", target=render.target.path,
                                            rule=rule, message=message))
            else:
                findings.append(Finding(stage="security", target=render.target.path, rule=rule,
                                        severity="error", message=message, kind=kind or None,
                                        name=name or None, namespace=namespace))
    return findings


def run(repo: Path, renders: list[Render]) -> list[Finding]:
    """checkov over every render, waiting for it."""
    return CheckovRun(repo, renders).findings()
