"""The lint stage: yamllint on the YAML sources, and the GitHub workflows
checked by check-jsonschema (GitHub's workflow schema) and zizmor (security).

Each source file is linted once per run, however many roots read it; its
findings go to the first root (in path order) that reads it, or to "." for
files no root reads (workflows, tool configs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from yamllint import linter
from yamllint.config import YamlLintConfig, YamlLintConfigError

from scripts.discover import SKIP_DIRS
from scripts.errors import InputError
from scripts.model import Finding, Target

CONFIG_FILE = ".yamllint.yaml"
# Vendored or generated YAML that people do not edit by hand.
EXCLUDED_PREFIXES = ("schemas/crds/", "schemas/generated/")
ZIZMOR_SEVERITIES = {"Medium": "error", "High": "error", "Low": "warning", "Informational": "warning"}


KEPT_DOT_ENTRIES = {".github", ".yamllint.yaml", ".pre-commit-config.yaml"}


def yaml_files(repo: Path) -> list[str]:
    """Every YAML file a person edits: not in tool caches, not vendored."""
    files = []
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and (not d.startswith(".") or d in KEPT_DOT_ENTRIES)]
        rel_dir = os.path.relpath(dirpath, repo).replace(os.sep, "/")
        for name in filenames:
            if not name.endswith((".yaml", ".yml")) or (name.startswith(".") and name not in KEPT_DOT_ENTRIES):
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not rel.startswith(EXCLUDED_PREFIXES):
                files.append(rel)
    return sorted(files)


def owner_map(targets: list[Target]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for target in sorted(targets, key=lambda t: t.path):
        for file in target.sources:
            owners.setdefault(file, target.path)
    return owners


def load_config(repo: Path) -> YamlLintConfig:
    path = repo / CONFIG_FILE
    try:
        if path.is_file():
            return YamlLintConfig(file=str(path))
        return YamlLintConfig("extends: default")
    except YamlLintConfigError as exc:
        raise InputError(f"invalid yamllint config: {exc}", CONFIG_FILE) from None


def yamllint(repo: Path, files: list[str], owners: dict[str, str]) -> list[Finding]:
    config = load_config(repo)
    findings = []
    for file in files:
        try:
            text = (repo / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            findings.append(Finding(stage="lint", target=owners.get(file, "."), rule="unreadable",
                                    severity="error", message=str(exc), file=file))
            continue
        if config.is_file_ignored(file):
            continue
        for problem in linter.run(text, config, file):
            rule = problem.rule or "syntax"
            findings.append(Finding(
                stage="lint", target=owners.get(file, "."), rule=f"yamllint/{rule}",
                severity="error" if problem.level == "error" else "warning",
                message=problem.desc, file=file, line=problem.line))
    return findings


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def workflow_schema(repo: Path, workflows: list[str]) -> list[Finding]:
    proc = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", "-o", "json",
         *workflows], cwd=repo, capture_output=True, text=True, check=False)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        if proc.returncode == 0:
            return []
        output = (proc.stderr or proc.stdout).strip()
        return [Finding(stage="lint", target=".", rule="workflow-schema", severity="error",
                        message=output.splitlines()[-1] if output else "check-jsonschema failed",
                        file=workflows[0])]
    findings = []
    for error in result.get("errors", []):
        findings.append(Finding(stage="lint", target=".", rule="workflow-schema", severity="error",
                                message=f"{error.get('path', '$')}: {error.get('message')}",
                                file=error.get("filename")))
    for error in result.get("parse_errors", []):
        findings.append(Finding(stage="lint", target=".", rule="workflow-schema", severity="error",
                                message=str(error.get("message")), file=error.get("filename")))
    return findings


def workflow_security(repo: Path, workflows: list[str]) -> list[Finding]:
    proc = subprocess.run(
        [_tool("zizmor"), "--offline", "--format", "json", "--no-progress", *workflows],
        cwd=repo, capture_output=True, text=True, check=False)
    try:
        results = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return [Finding(stage="lint", target=".", rule="zizmor", severity="error",
                        message="zizmor failed: " + (proc.stderr.strip().splitlines() or ["no output"])[-1],
                        file=workflows[0])]
    findings = []
    for result in results:
        severity = ZIZMOR_SEVERITIES.get(result.get("determinations", {}).get("severity"), "warning")
        location = next(iter(result.get("locations") or []), {})
        symbolic = location.get("symbolic", {})
        concrete = location.get("concrete", {})
        local = symbolic.get("key", {}).get("Local", {})
        file = local.get("verbatim_path") or local.get("given_path")
        line = concrete.get("location", {}).get("start_point", {}).get("row")
        findings.append(Finding(
            stage="lint", target=".", rule=f"zizmor/{result.get('ident')}", severity=severity,
            message=str(result.get("desc")), file=file, line=line + 1 if isinstance(line, int) else None))
    return findings


def run(repo: Path, targets: list[Target], files: list[str] | None = None,
        workflows: bool = True) -> list[Finding]:
    """yamllint on `files` (default: every YAML source), plus the workflow
    checkers when the repository has GitHub workflows."""
    owners = owner_map(targets)
    files = files if files is not None else yaml_files(repo)
    workflow_dir = repo / ".github" / "workflows"
    workflow_files = sorted(f".github/workflows/{p.name}" for p in workflow_dir.glob("*.y*ml")
                            if p.is_file()) if workflows and workflow_dir.is_dir() else []
    with ThreadPoolExecutor(max_workers=2) as pool:
        external = [pool.submit(workflow_schema, repo, workflow_files),
                    pool.submit(workflow_security, repo, workflow_files)] if workflow_files else []
        findings = yamllint(repo, files, owners)
        for future in external:
            findings.extend(future.result())
    return findings
