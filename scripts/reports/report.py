"""Output formats for a validation report: JSON (the contract), JUnit XML,
SARIF 2.1.0 (GitHub code scanning), and the human table."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from scripts.core import outputs
from scripts.core.model import SEVERITIES, STAGES, Finding, Report

TOOL_NAME = "ai-inference-validate"
# SARIF 2.1.0's result levels: a notice is a "note" (shown, never a failure).
SARIF_LEVELS = {"error": "error", "warning": "warning", "notice": "note"}
COLOURS = {"error": "red", "warning": "yellow", "notice": "cyan"}


def to_json(report: Report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "kubernetes_version": report.kubernetes_version,
        "targets": [{"path": r.target.path, "objects": len(r.objects), "rendered": r.ok} for r in report.renders],
        "findings": [f.as_dict() for f in report.findings],
        "timings": {stage: _round(report.timings.get(stage, 0.0)) for stage in (*STAGES, "total")},
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def ran(timings: dict[str, Any], stage: str) -> bool:
    """Did the stage run? (A report's timing is null for one that did not.)"""
    return stage == "render" or timings.get(stage, 0.0) is not None


def _location(finding: Finding) -> str:
    if not finding.file:
        return ""
    return f"{finding.file}:{finding.line}" if finding.line else finding.file


def to_junit(report: Report) -> str:
    suites = ET.Element("testsuites", name=TOOL_NAME)
    by_target: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_target.setdefault(finding.target, []).append(finding)
    targets = [r.target.path for r in report.renders] + sorted(set(by_target) - {r.target.path for r in report.renders})
    for target in targets:
        findings = by_target.get(target, [])
        errors = [f for f in findings if f.severity == "error"]
        suite = ET.SubElement(suites, "testsuite", name=target, tests="0", failures=str(len(errors)), errors="0")
        count = 0
        for stage in STAGES:
            stage_findings = [f for f in findings if f.stage == stage]
            stage_errors = [f for f in stage_findings if f.severity == "error"]
            if not ran(report.timings, stage):
                case = ET.SubElement(suite, "testcase", classname=target, name=stage)
                ET.SubElement(case, "skipped", message="stage not run")
                count += 1
                continue
            if not stage_errors:
                case = ET.SubElement(suite, "testcase", classname=target, name=stage)
                count += 1
                # Warnings and notices do not fail the case; they are its output.
                others = [f for f in stage_findings if f.severity != "error"]
                if others:
                    ET.SubElement(case, "system-out").text = "\n".join(
                        f"{f.severity}: {_line(f)}" for f in others)
            for finding in stage_errors:
                subject = f" {finding.kind}/{finding.name}" if finding.kind else ""
                case = ET.SubElement(suite, "testcase", classname=target, name=f"{stage}/{finding.rule}{subject}")
                count += 1
                failure = ET.SubElement(case, "failure", message=finding.message, type=finding.rule)
                failure.text = _line(finding)
        suite.set("tests", str(count))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def to_sarif(report: Report, repo: Path) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    kustomization_of = {r.target.path: next((s for s in r.target.sources if s.startswith(r.target.directory + "/")
                                             and Path(s).name.startswith(("kustomization", "Kustomization"))), None)
                        for r in report.renders}
    for finding in report.findings:
        rule_id = f"{finding.stage}/{finding.rule}"
        rules.setdefault(rule_id, {"id": rule_id, "shortDescription": {"text": f"{finding.stage}: {finding.rule}"}})
        file = finding.file or kustomization_of.get(finding.target) or "kustomization.yaml"
        region = {"startLine": finding.line} if finding.line else {"startLine": 1}
        subject = f"{finding.kind}/{finding.name}: " if finding.kind else ""
        results.append({
            "ruleId": rule_id,
            "level": SARIF_LEVELS.get(finding.severity, "warning"),
            "message": {"text": f"[{finding.target}] {subject}{finding.message}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": file, "uriBaseId": "%SRCROOT%"},
                                                "region": region}}],
        })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "informationUri": "https://github.com/example-org/ai-inference-gitops",
                                "rules": sorted(rules.values(), key=lambda r: r["id"])}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": repo.resolve().as_uri() + "/"}},
            "results": results,
        }],
    }


def _line(finding: Finding) -> str:
    subject = f"{finding.kind}/{finding.name}" if finding.kind else "-"
    where = f"  ({_location(finding)})" if finding.file else ""
    return f"{finding.target}  {finding.stage}/{finding.rule}  {subject}  {finding.message}{where}"


def human(report: Report, stages: list[str], stream: Any = None) -> None:
    """The table of counts per target and stage, then one line per finding."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
    if not console.is_terminal:  # pipes and CI logs: do not cut target names to 80 columns
        console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True, width=200)
    counts = Counter((f.target, f.stage, f.severity) for f in report.findings)
    table = Table(title=None, box=None, pad_edge=False, show_edge=False)
    table.add_column("target")
    table.add_column("objects", justify="right")
    for stage in STAGES:
        table.add_column(stage, justify="right")
    targets = [r.target.path for r in report.renders]
    extra = sorted({f.target for f in report.findings} - set(targets))
    objects = {r.target.path: (len(r.objects) if r.ok else "-") for r in report.renders}
    for target in targets + extra:
        cells = []
        for stage in STAGES:
            if stage not in stages:
                cells.append("[dim]skip[/dim]")
                continue
            errors, warnings = counts[(target, stage, "error")], counts[(target, stage, "warning")]
            notices = counts[(target, stage, "notice")]
            if errors:
                cells.append(f"[red]{errors} error{'s' if errors > 1 else ''}[/red]")
            elif warnings:
                cells.append(f"[yellow]{warnings} warn[/yellow]")
            elif notices:
                cells.append(f"[cyan]ok, {notices} note{'s' if notices > 1 else ''}[/cyan]")
            else:
                cells.append("[green]ok[/green]")
        table.add_row(target, str(objects.get(target, "")), *cells)
    table.add_row("[dim]seconds[/dim]", "", *(f"[dim]{_seconds(report.timings, stage)}[/dim]" for stage in STAGES))
    console.print(table)
    if report.findings:
        console.print()
    for finding in report.findings:
        colour = COLOURS.get(finding.severity, "yellow")
        console.print(f"[{colour}]{_escape(_line(finding))}[/{colour}]")
    by_severity = Counter(f.severity for f in report.findings)
    errors, warnings, notices = by_severity["error"], by_severity["warning"], by_severity["notice"]
    verdict = "[green]OK[/green]" if report.ok else "[red]FAILED[/red]"
    noted = f", {notices} notice{'s' if notices != 1 else ''}" if notices else ""
    console.print(f"\n{verdict}: {len(report.renders)} targets, "
                  f"{sum(len(r.objects) for r in report.renders)} objects, {errors} errors, {warnings} warnings"
                  f"{noted} in {report.timings.get('total', 0):.1f}s")


def _seconds(timings: dict[str, Any], stage: str) -> str:
    """A stage's own time (stages overlap); schema names the part the
    API server's validation took."""
    value = timings.get(stage)
    if value is None:
        return "-"
    if stage == "schema" and timings.get("api") is not None:
        return f"{value:.1f} (api {timings['api']:.2f})"
    return f"{value:.1f}"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def write(path: str, content: str) -> None:
    """A report file, written whole or not at all (OutputError, exit 2, if
    the system refuses it)."""
    outputs.write_text(path, content)


def write_json(path: str, report: Report) -> None:
    write(path, json.dumps(to_json(report), indent=2) + "\n")


def load_json_report(path: str) -> dict[str, Any]:
    from scripts.core.errors import InputError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("report not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", path, exc.lineno) from None
    keys = set(data) if isinstance(data, dict) else set()
    missing = {"ok", "kubernetes_version", "targets", "findings", "timings"} - keys
    if missing:
        raise InputError(f"not a validate report (missing {', '.join(sorted(missing))})", path)
    shapes = {"targets": list, "findings": list, "timings": dict}
    for key, kind in shapes.items():
        if not isinstance(data[key], kind):
            raise InputError(f"not a validate report (`{key}` is not a {kind.__name__})", path)
    if not all(isinstance(f, dict) and {"target", "stage", "severity"} <= set(f) and f["severity"] in SEVERITIES
               for f in data["findings"]) or \
            not all(isinstance(t, dict) and "path" in t for t in data["targets"]):
        raise InputError("not a validate report (malformed targets or findings)", path)
    numbers = (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in data["timings"].values())
    if not all(numbers):
        raise InputError("not a validate report (`timings` must be numbers, or null for a stage not run)", path)
    return data


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from the shards' reports: targets and findings joined,
    stage timings added up (CPU spent, not wall time)."""
    versions = sorted({r["kubernetes_version"] for r in reports})
    # A stage any shard skipped is "not run" in the merge: some targets were
    # not checked by it, and the summary must not show them as passed.
    timings = {stage: None if any(not ran(r["timings"], stage) for r in reports)
               else round(sum(r["timings"].get(stage) or 0.0 for r in reports), 4) for stage in (*STAGES, "total")}
    findings = [f for r in reports for f in r["findings"]]
    return {
        "ok": all(r["ok"] for r in reports) and not any(f["severity"] == "error" for f in findings),
        "kubernetes_version": ", ".join(versions),
        "targets": sorted((t for r in reports for t in r["targets"]), key=lambda t: t["path"]),
        "findings": findings,
        "timings": timings,
    }


def markdown_summary(data: dict[str, Any]) -> str:
    """The table for $GITHUB_STEP_SUMMARY: per target, findings per stage."""
    counts = Counter((f["target"], f["stage"], f["severity"]) for f in data["findings"])
    lines = [f"### Validation {'passed' if data['ok'] else 'failed'} "
             f"(Kubernetes {data['kubernetes_version']})", "",
             "| target | objects | " + " | ".join(STAGES) + " |",
             "|---|---:|" + "---|" * len(STAGES)]
    targets = [t["path"] for t in data["targets"]]
    objects = {t["path"]: t["objects"] if t["rendered"] else "not rendered" for t in data["targets"]}
    for target in targets + sorted({f["target"] for f in data["findings"]} - set(targets)):
        cells = []
        for stage in STAGES:
            errors, warnings = counts[(target, stage, "error")], counts[(target, stage, "warning")]
            notices = counts[(target, stage, "notice")]
            cells.append(f"❌ {errors}" if errors else f"⚠️ {warnings}" if warnings else
                         (f"✅ ℹ️ {notices}" if notices else "✅") if ran(data["timings"], stage) else "not run")
        lines.append(f"| `{target}` | {objects.get(target, '')} | " + " | ".join(cells) + " |")
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    if errors:
        lines += ["", "<details><summary>" + f"{len(errors)} errors</summary>", ""]
        for f in errors[:200]:
            subject = f"{f['kind']}/{f['name']} " if f.get("kind") else ""
            where = f" (`{f['file']}:{f['line']}`)" if f.get("file") and f.get("line") else \
                f" (`{f['file']}`)" if f.get("file") else ""
            lines.append(f"- `{f['target']}` {f['stage']}/{f['rule']}: {subject}{f['message']}{where}")
        if len(errors) > 200:
            lines.append(f"- … and {len(errors) - 200} more (see the JSON report)")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
