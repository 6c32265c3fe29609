"""The security stage: one checkov run (kubernetes framework) over every
render, with results mapped back to target, kind and name.

checkov costs seconds just to start, so it never runs per target: each
render is written to its own file in one temporary directory, and the
file a result names tells which target it belongs to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


def run(repo: Path, renders: list[Render]) -> list[Finding]:
    renders = [r for r in renders if r.ok and r.objects]
    if not renders:
        return []
    skips = load_skips(repo)
    with tempfile.TemporaryDirectory(prefix="checkov-") as tmp:
        files: dict[str, Render] = {}
        for number, render in enumerate(renders):
            name = f"target-{number:05d}.yaml"
            text = render.text if render.text is not None else \
                yaml.safe_dump_all([o.doc for o in render.objects], sort_keys=False)
            Path(tmp, name).write_text(text, encoding="utf-8")
            files["/" + name] = render
        command = [checkov_binary(), "-d", tmp, "--framework", "kubernetes", "-o", "json",
                   "--quiet", "--compact", "--skip-download"]
        if skips:
            command += ["--skip-check", ",".join(sorted(skips))]
        env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
        proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    try:
        reports = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return [Finding(stage="security", target=".", rule="checkov-failed", severity="error",
                        message="checkov did not produce a report: "
                        + (tail[-1] if tail else f"exit {proc.returncode}"))]
    if isinstance(reports, dict):
        reports = [reports]
    findings: list[Finding] = []
    indexes = {path: _objects_by_key(render) for path, render in files.items()}
    for report in reports:
        for check in (report.get("results") or {}).get("failed_checks", []):
            render = files.get(check.get("file_path"))
            if render is None:
                continue
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
