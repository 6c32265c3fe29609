"""The lint stage: yamllint on the YAML sources, and the GitHub workflows
checked by check-jsonschema (GitHub's workflow schema) and zizmor (security).

Each source file is linted once per run, however many roots read it; its
findings go to the first root (in path order) that reads it, or to "." for
files no root reads (workflows, tool configs).

Two things keep it cheap. yamllint parses every file twice, once with
PyYAML's pure-Python parser only to find a syntax error; libyaml finds the
same in a fraction of the time, so a file libyaml parses goes straight to
yamllint's cosmetic rules, and only a file it rejects gets yamllint's full
run (for yamllint's own message and position). And results are cached in
.cache/yamllint/ by file path, content, configuration and yamllint version:
a file nobody touched is not linted again. The cache is safe to delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from yamllint import APP_VERSION as YAMLLINT_VERSION
from yamllint import linter
from yamllint import parser as yaml_parser
from yamllint.config import YamlLintConfig, YamlLintConfigError

from scripts.core import processes
from scripts.core.errors import InputError
from scripts.core.model import Finding, Target
from scripts.loading.discover import SKIP_DIRS

CONFIG_FILE = ".yamllint.yaml"
# Vendored or generated YAML that people do not edit by hand (tests/fixtures/
# holds other repositories' trees as test data; .yamllint.yaml ignores it too).
EXCLUDED_PREFIXES = ("schemas/crds/", "schemas/generated/", "tests/fixtures/")
ZIZMOR_SEVERITIES = {"Medium": "error", "High": "error", "Low": "warning", "Informational": "warning"}


KEPT_DOT_ENTRIES = {".github", ".yamllint.yaml", ".pre-commit-config.yaml"}
# The tools' own configuration, linted with the manifests.
CONFIG_FILES = (".yamllint.yaml", ".pre-commit-config.yaml", "config/", "schemas/skip.yaml", "schemas/sources.yaml")


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


def files_to_lint(repo: Path, targets: list[Target]) -> list[str]:
    """What the renders read, and the tools' own configuration (workflows
    are checked apart): a YAML file no build reads is not linted."""
    used = {f for t in targets for f in t.sources if f.endswith((".yaml", ".yml")) and not f.startswith("..")}
    config = {f for f in yaml_files(repo) if f.startswith(CONFIG_FILES)}
    return sorted(used | config)


def owner_map(targets: list[Target]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for target in sorted(targets, key=lambda t: t.path):
        for file in target.sources:
            owners.setdefault(file, target.path)
    return owners


def assign_owners(findings: list[Finding], targets: list[Target]) -> list[Finding]:
    """Give findings made before the roots were known (target ".") the first
    root, in path order, that reads their file."""
    owners = owner_map(targets)
    for finding in findings:
        if finding.target == "." and finding.file:
            finding.target = owners.get(finding.file, ".")
    return findings


# A repository without its own .yamllint.yaml is linted with this project's
# rules (multi-document manifests without `---`, 120 columns, GitHub's `on:`),
# not yamllint's strict default, which flags every Kubernetes manifest.
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parents[2] / CONFIG_FILE


def config_path(repo: Path) -> Path:
    """The yamllint configuration a repository is linted with: its own, or
    this project's."""
    own = repo / CONFIG_FILE
    return own if own.is_file() else DEFAULT_CONFIG_FILE


def load_config(repo: Path) -> YamlLintConfig:
    path = config_path(repo)
    try:
        return YamlLintConfig(file=str(path))
    except YamlLintConfigError as exc:
        raise InputError(f"invalid yamllint config: {exc}", CONFIG_FILE) from None


CACHE_DIR = ".cache/yamllint"
_DISABLE_FILE = re.compile(r"^#\s*yamllint disable-file\s*$")
Problem = tuple[int, int, str, str, str]  # line, column, rule, level, description


def _parses(text: str) -> bool:
    """Whether libyaml parses the text (raw_parse: no Python event objects made)."""
    loader = yaml.CBaseLoader(text)
    try:
        loader.raw_parse()
    except yaml.YAMLError:
        return False
    finally:
        loader.dispose()
    return True


def _libyaml_token_or_comment_generator(buffer: str) -> Iterator[Any]:
    """yamllint's token-and-comment stream (yamllint.parser), with the tokens
    scanned by libyaml instead of PyYAML's pure-Python scanner. libyaml finds
    the same tokens at the same character offsets, lines and columns; what
    differs is mended so yamllint's rules see exactly what they see from
    PyYAML: marks get the buffer (with PyYAML's closing "\0") and pointer
    yamllint reads comments with;
    at the end of a text without a final newline, libyaml places the closing
    tokens on a line of their own (PyYAML at the end of the last line); a
    plain scalar's style is None, not ''."""
    loader = yaml.CBaseLoader(buffer)
    end = len(buffer)
    last_line_start = buffer.rfind("\n", 0, end) + 1
    # PyYAML's reader ends its buffer with "\0", and yamllint's rules rely on
    # it: `comments` reads past a `#` that ends a text without a newline.
    marked = buffer + "\0"
    # Every token first, each mended once; then yamllint's stream, which
    # pairs each token with the one before and the two after.
    tokens = []
    scanned_to_the_end = False
    try:
        while (token := loader.get_token()) is not None:
            for attr in ("start_mark", "end_mark"):
                scanned = getattr(token, attr)
                line, column, index = scanned.line, scanned.column, scanned.index
                if index == end and column == 0 and end > last_line_start:
                    line, column = line - 1, end - last_line_start
                setattr(token, attr, yaml.Mark(scanned.name, index, line, column, marked, index))
            if token.__class__ is yaml.ScalarToken and token.style == "":
                token.style = None
            tokens.append(token)
        scanned_to_the_end = True
    except yaml.scanner.ScannerError:
        pass
    finally:
        loader.dispose()
    count = len(tokens)
    # A text the scanner stops in: yamllint's own stream ends where a token
    # has no two scanned tokens after it, so this one does too.
    last = count if scanned_to_the_end else count - 2
    previous = None
    for position, current in enumerate(tokens[:max(last, 0)]):
        following = tokens[position + 1] if position + 1 < count else None
        after = tokens[position + 2] if position + 2 < count else None
        yield yaml_parser.Token(current.start_mark.line + 1, current, previous, following, after)
        yield from yaml_parser.comments_between_tokens(current, following)
        previous = current


@contextlib.contextmanager
def libyaml_tokens() -> Iterator[None]:
    """Inside this block yamllint scans with libyaml (about a third less time
    per file, the same problems: tests compare both on every file of the
    tree); outside it, yamllint is as installed."""
    original = yaml_parser.token_or_comment_generator
    yaml_parser.token_or_comment_generator = _libyaml_token_or_comment_generator
    try:
        yield
    finally:
        yaml_parser.token_or_comment_generator = original


# Where libyaml and PyYAML's scanner disagree, yamllint (PyYAML) decides: a
# block scalar header followed by `#` with no space (`run: |#c`) is a syntax
# error to PyYAML, and libyaml reads it as a comment.
_SCANNERS_DIFFER = re.compile(r"[|>][-+0-9]*#")


def lint_text(text: str, config: YamlLintConfig, file: str) -> list[Problem]:
    """yamllint's problems for one file, as `yamllint` reports them."""
    problems = None
    if not _SCANNERS_DIFFER.search(text) and _parses(text):
        first_line = text.split("\n", 1)[0]
        if _DISABLE_FILE.match(first_line):
            problems = []
        else:
            try:
                with libyaml_tokens():
                    problems = list(linter.get_cosmetic_problems(text, config, file))
            except Exception:  # noqa: BLE001 - a text the shortcut gets wrong: yamllint as installed decides
                problems = None
    if problems is None:
        problems = linter.run(text, config, file)
    return [(p.line, p.column, p.rule or "syntax", p.level, p.desc) for p in problems]


class LintCache:
    """content + the rules that apply to the file + config + yamllint
    version -> problems, kept between runs in one JSON file; entries this
    run did not use are dropped.

    yamllint's problems depend on the path only through the rules a per-rule
    `ignore` turns off for it, so files of the same content under the same
    rules share one entry: a repository of many services repeats the same
    patch and component files (42 % of the files of bench's N=50 tree)."""

    def __init__(self, repo: Path, config_text: str):
        self.path = repo / CACHE_DIR / "results.json"
        self.salt = hashlib.sha256(f"{YAMLLINT_VERSION}\0{config_text}".encode()).hexdigest()
        self.used: dict[str, list[Problem]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.entries = data["entries"] if data.get("salt") == self.salt else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}

    @staticmethod
    def key(rules: tuple[str, ...], text: str) -> str:
        return hashlib.sha256(f"{','.join(rules)}\0{text}".encode()).hexdigest()

    def get(self, key: str) -> list[Problem] | None:
        found = self.entries.get(key)
        if isinstance(found, list):
            problems = [tuple(p) for p in found]
            self.used[key] = problems  # type: ignore[assignment]
            return problems  # type: ignore[return-value]
        return None

    def put(self, key: str, problems: list[Problem]) -> None:
        self.used[key] = problems

    def save(self) -> None:
        """Write atomically; a repository we cannot write to just has no cache."""
        if self.used == self.entries:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".results-")
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump({"salt": self.salt, "entries": self.used}, stream)
            os.replace(tmp, self.path)
        except OSError:
            pass


def _rule_ids(config: YamlLintConfig, file: str) -> tuple[str, ...]:
    """The rules yamllint runs on this file (a per-rule `ignore` can turn one off)."""
    return tuple(rule.ID for rule in config.enabled_rules(file))


def yamllint(repo: Path, files: list[str], owners: dict[str, str], cache: bool = True,
             max_kib: float | None = None) -> list[Finding]:
    from scripts.loading.render import Limits

    config = load_config(repo)
    max_kib = max_kib if max_kib is not None else Limits.load(repo).lint_max_file_kib
    store = LintCache(repo, config_path(repo).read_text(encoding="utf-8")) if cache else None
    findings = []
    linted: dict[str, list[Problem]] = {}
    for file in files:
        try:
            size = (repo / file).stat().st_size
            if size > max_kib * 1024:
                findings.append(Finding(
                    stage="lint", target=owners.get(file, "."), rule="not-linted", severity="warning", file=file,
                    message=f"not linted: {size / 1024:,.0f} KiB is above lint_max_file_kib ({max_kib:g}) "
                            "in config/limits.yaml"))
                continue
            text = (repo / file).read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            findings.append(Finding(stage="lint", target=owners.get(file, "."), rule="unreadable",
                                    severity="error", file=file,
                                    message=f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                                            f"{exc.start})"))
            continue
        except OSError as exc:
            findings.append(Finding(stage="lint", target=owners.get(file, "."), rule="unreadable",
                                    severity="error", message=f"cannot read: {exc.strerror}", file=file))
            continue
        if config.is_file_ignored(file):
            continue
        # The same content under the same rules is linted once per run, cache or none.
        key = LintCache.key(_rule_ids(config, file), text)
        problems = linted.get(key)
        if problems is None and store:
            problems = store.get(key)
        if problems is None:
            try:
                problems = lint_text(text, config, file)
            except Exception as exc:  # noqa: BLE001 - yamllint's own defect: this file's finding, not a crash
                findings.append(Finding(
                    stage="lint", target=owners.get(file, "."), rule="yamllint-failed", severity="error", file=file,
                    message=f"yamllint {YAMLLINT_VERSION} failed on this file ({type(exc).__name__}: {exc}); "
                            "run `yamllint` on it to see where"))
                continue
            if store:
                store.put(key, problems)
        linted[key] = problems
        for line, _column, rule, level, description in problems:
            findings.append(Finding(
                stage="lint", target=owners.get(file, "."), rule=f"yamllint/{rule}",
                severity="error" if level == "error" else "warning",
                message=description, file=file, line=line))
    if store:
        store.save()
    return findings


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def workflow_schema(repo: Path, workflows: list[str]) -> list[Finding]:
    proc = processes.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", "-o", "json",
         *workflows], cwd=repo, text=True)
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
    proc = processes.run(
        [_tool("zizmor"), "--offline", "--format", "json", "--no-progress", *workflows],
        cwd=repo, text=True)
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
    files = files if files is not None else files_to_lint(repo, targets)
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
