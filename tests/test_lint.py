"""The lint stage's shortcuts change nothing yamllint reports: libyaml's
syntax check in front of yamllint's cosmetic rules, and the result cache."""

from __future__ import annotations

import json
import random

import pytest
from yamllint import linter

from scripts.stages import lint
from tests.conftest import REPO

BROKEN = {
    "trailing": "a: 1   \nb: 2\n",
    "syntax": "a: [1, 2\nb: 3\n",
    "syntax-after-cosmetic": "a:   1\nb: {c: d\ne: f   \n",
    "duplicate-key": "a: 1\na: 2\n",
    "tab": "a:\n\t- 1\n",
    "disable-file": "# yamllint disable-file\na:    1   \n",
    "disable-line": "a:    1   # yamllint disable-line\n",
    "indentation": "a:\n   - 1\n   - 2\n",
    "truthy": "a: yes\n",
    "no-newline": "a: 1",
    "empty": "",
    "multi-doc-error": "a: 1\n---\nb: [\n",
    # comments are found by position in the text: characters before them that
    # take several bytes in UTF-8 must not shift them
    "non-ascii": "a: \"héllo wörld\"  #ünïcode comment\nb: [x,y]\nc: 'ℤ'   \n  # comment after ℤ\nd:    1\n",
    "comments": "# top\na: 1 # inline\n#no space\nb:\n  - 1   # trailing\n    # over-indented\n",
    "block-scalars": "a: |\n  line one  \n  line two\nb: >-\n  folded\n\n\n",
    # libyaml puts the tokens closing a text without a final newline on a
    # line of their own; yamllint must see them where PyYAML puts them
    "nested-ends-no-newline": "a:\n  b:\n    - c\n    - d:\n        e: f   \n# end",
    "block-scalar-no-newline": "a: |\n  x\n  y\nb:    2",
    # line breaks that are not \n: lines and columns as PyYAML counts them
    "crlf": "a: 1\r\nb:   2\r\nc:\r\n  - d   \r\n",
    "line-separator": "a: x\u2028y   \nb:  1\nc: \x85d\n",
    # yamllint's `comments` rule reads past a `#` that ends the text
    "comment-sign-at-the-end": "a: 1\n#",
    # libyaml reads `#c` as a comment, PyYAML (so yamllint) as a syntax error
    "block-scalar-header-comment": "a: 1\nb: |#c\n  x\n",
    "folded-header-comment": "a: >-2#c\n    x\nb:   1\n",
}


def _reference(text: str, config, file: str):
    return [(p.line, p.column, p.rule or "syntax", p.level, p.desc) for p in linter.run(text, config, file)]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_same_problems_as_yamllint_on_broken_files(name):
    config = lint.load_config(REPO)
    text = BROKEN[name]
    assert lint.lint_text(text, config, f"{name}.yaml") == _reference(text, config, f"{name}.yaml")


def test_broken_files_are_really_broken():
    config = lint.load_config(REPO)
    clean = {"empty", "disable-file", "disable-line"}
    # (every one of them is broken in some way, so each comparison compares problems)
    for name, text in BROKEN.items():
        assert bool(_reference(text, config, "x.yaml")) == (name not in clean), name


def test_same_problems_as_yamllint_on_every_file_of_the_tree():
    config = lint.load_config(REPO)
    for file in lint.yaml_files(REPO):
        text = (REPO / file).read_text(encoding="utf-8")
        assert lint.lint_text(text, config, file) == _reference(text, config, file), file


# Edits a person makes by mistake, applied to lines of the tree's files.
_EDITS = (
    lambda line: "  " + line, lambda line: line[1:], lambda line: line + "   ", lambda line: line + " #c",
    lambda line: line + "#c", lambda line: line + " |#c", lambda line: line.replace(": ", ":   ", 1),
    lambda line: line.replace(": ", " : ", 1), lambda line: line + "x" * 130, lambda line: line + ": yes",
    lambda line: line.replace("- ", "-  ", 1), lambda line: "", lambda line: line + "\n\n\n",
    lambda line: line.replace("[", "[  "), lambda line: line.replace("{", "{   "), lambda line: line + ", ,",
    lambda line: line.replace(": ", ": &a ", 1), lambda line: line.replace(": ", ": *a ", 1),
    lambda line: "\t" + line, lambda line: line + " \r", lambda line: "#" + line, lambda line: "   # " + line,
    lambda line: line.replace(" ", ""), lambda line: line + " >-#", lambda line: line + "\n" + line,
)


def test_same_problems_as_yamllint_on_mistakes_made_to_the_tree():
    """lint_text takes shortcuts (libyaml's syntax check and tokens); on
    seeded random edits of every file of the tree, it must still report
    exactly what yamllint reports. The shortcuts' two past divergences were
    found this way (a `#` ending the text, a block header's `#`)."""
    config = lint.load_config(REPO)
    chooser = random.Random(11)
    compared = broken = 0
    for file in lint.yaml_files(REPO):
        original = (REPO / file).read_text(encoding="utf-8").split("\n")
        for _ in range(6):
            lines = list(original)
            for _ in range(chooser.randint(1, 3)):
                at = chooser.randrange(len(lines))
                lines[at] = chooser.choice(_EDITS)(lines[at])
            text = "\n".join(lines)
            if chooser.random() < 0.2:
                text = text.rstrip("\n")
            reference = _reference(text, config, file)
            assert lint.lint_text(text, config, file) == reference, (file, text)
            compared += 1
            broken += bool(reference)
    # The edits do break most files (not all: an edit inside a block scalar,
    # such as the model fetcher's script, is still valid YAML).
    assert broken > compared * 0.75


def test_libyaml_tokens_are_yamllints_tokens():
    """The token-and-comment stream yamllint's rules see is the same whether
    PyYAML's pure-Python scanner or libyaml scans, on every file of the tree
    and on the broken ones: type, position, pointer and value of each."""
    from yamllint import parser

    def stream(text):
        items = []
        for item in parser.token_or_comment_generator(text):
            if isinstance(item, parser.Token):
                token = item.curr
                items.append((type(token).__name__, token.start_mark.line, token.start_mark.column,
                              token.start_mark.pointer, token.end_mark.pointer, getattr(token, "value", None)))
            else:
                items.append(("comment", item.line_no, item.column_no, item.pointer, str(item)))
        return items

    texts = [(REPO / f).read_text(encoding="utf-8") for f in lint.yaml_files(REPO)] + list(BROKEN.values())
    for text in texts:
        if lint._SCANNERS_DIFFER.search(text):  # lint_text never scans these with libyaml
            continue
        plain = stream(text)
        with lint.libyaml_tokens():
            fast = stream(text)
        assert fast == plain
    assert parser.token_or_comment_generator.__module__ == "yamllint.parser"  # restored after the block


@pytest.fixture
def tmp_path(tmp_path):
    (tmp_path / ".yamllint.yaml").write_text((REPO / ".yamllint.yaml").read_text())
    return tmp_path


def test_cache_is_used_and_keyed_by_content(tmp_path):
    (tmp_path / "a.yaml").write_text("a: 1   \n")
    first = lint.yamllint(tmp_path, ["a.yaml"], {})
    assert [f.rule for f in first] == ["yamllint/trailing-spaces"]
    cache_file = tmp_path / lint.CACHE_DIR / "results.json"
    data = json.loads(cache_file.read_text())
    # A poisoned entry proves the second run reads the cache...
    key = next(iter(data["entries"]))
    data["entries"][key] = [[1, 1, "poisoned", "error", "from the cache"]]
    cache_file.write_text(json.dumps(data))
    assert [f.rule for f in lint.yamllint(tmp_path, ["a.yaml"], {})] == ["yamllint/poisoned"]
    # ...and a change of content is linted afresh.
    (tmp_path / "a.yaml").write_text("a: 1\n")
    assert lint.yamllint(tmp_path, ["a.yaml"], {}) == []


def test_the_same_content_is_linted_once_and_reported_for_every_file(tmp_path, monkeypatch):
    for name in ("a.yaml", "b.yaml", "c.yaml"):
        (tmp_path / name).write_text("a: 1   \n")
    calls = []
    real = lint.lint_text
    monkeypatch.setattr(lint, "lint_text", lambda text, config, file: calls.append(file) or real(text, config, file))
    for cache in (False, True):
        calls.clear()
        findings = lint.yamllint(tmp_path, ["a.yaml", "b.yaml", "c.yaml"], {}, cache=cache)
        assert [(f.file, f.rule) for f in findings] == [
            (name, "yamllint/trailing-spaces") for name in ("a.yaml", "b.yaml", "c.yaml")]
        assert calls == ["a.yaml"]


def test_a_rule_ignored_for_one_path_is_not_taken_from_another_with_the_same_content(tmp_path):
    # yamllint's problems depend on the path only through per-rule `ignore`:
    # the key holds the rules that apply, so c.yaml's result is not a.yaml's.
    (tmp_path / ".yamllint.yaml").write_text(
        "extends: default\nrules:\n  document-start: disable\n  trailing-spaces:\n    ignore: |\n      c.yaml\n")
    for name in ("a.yaml", "c.yaml", "last.yaml"):
        (tmp_path / name).write_text("a: 1   \n")
    for _ in range(2):  # cold, then from the cache
        findings = lint.yamllint(tmp_path, ["a.yaml", "c.yaml", "last.yaml"], {})
        assert [(f.file, f.rule) for f in findings] == [
            ("a.yaml", "yamllint/trailing-spaces"), ("last.yaml", "yamllint/trailing-spaces")]


def test_a_shortcut_that_fails_falls_back_to_yamllint_as_installed(monkeypatch):
    config = lint.load_config(REPO)
    text = BROKEN["comments"]

    def broken_stream(buffer):
        raise IndexError("string index out of range")
        yield

    monkeypatch.setattr(lint, "_libyaml_token_or_comment_generator", broken_stream)
    assert lint.lint_text(text, config, "x.yaml") == _reference(text, config, "x.yaml")


def test_yamllint_failing_on_a_file_is_that_files_finding(tmp_path, monkeypatch):
    for name in ("a.yaml", "b.yaml", "last.yaml"):
        (tmp_path / name).write_text("a: 1   \n" if name != "last.yaml" else "crash: here\n")
    real = lint.lint_text

    def failing(text, config, file):
        if "crash" in text:
            raise IndexError("string index out of range")
        return real(text, config, file)

    monkeypatch.setattr(lint, "lint_text", failing)
    findings = lint.yamllint(tmp_path, ["a.yaml", "b.yaml", "last.yaml"], {"last.yaml": "overlays/prod"})
    assert [(f.file, f.rule) for f in findings] == [
        ("a.yaml", "yamllint/trailing-spaces"), ("b.yaml", "yamllint/trailing-spaces"),
        ("last.yaml", "yamllint-failed")]
    assert findings[-1].severity == "error" and findings[-1].target == "overlays/prod"
    assert "IndexError: string index out of range" in findings[-1].message


def test_cache_follows_the_config(tmp_path):
    (tmp_path / "a.yaml").write_text("a: 1   \n")
    assert lint.yamllint(tmp_path, ["a.yaml"], {})
    (tmp_path / ".yamllint.yaml").write_text("extends: default\nrules:\n  trailing-spaces: disable\n"
                                             "  document-start: disable\n")
    assert lint.yamllint(tmp_path, ["a.yaml"], {}) == []


def test_a_broken_or_unwritable_cache_is_not_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("a: 1   \n")
    cache_dir = tmp_path / lint.CACHE_DIR
    cache_dir.mkdir(parents=True)
    (cache_dir / "results.json").write_text("{not json")
    assert [f.rule for f in lint.yamllint(tmp_path, ["a.yaml"], {})] == ["yamllint/trailing-spaces"]
    (cache_dir / "results.json").unlink()
    cache_dir.rmdir()
    cache_dir.write_text("a file where the cache directory would be")
    assert [f.rule for f in lint.yamllint(tmp_path, ["a.yaml"], {})] == ["yamllint/trailing-spaces"]


def test_a_repository_without_a_yamllint_config_gets_this_projects_rules(tmp_path):
    """Not yamllint's strict default: a manifest without `---` (document-start)
    is fine; a real problem still is one."""
    (tmp_path / ".yamllint.yaml").unlink()
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x   \n")
    assert lint.config_path(tmp_path) == lint.DEFAULT_CONFIG_FILE == REPO / ".yamllint.yaml"
    assert [f.rule for f in lint.yamllint(tmp_path, ["cm.yaml"], {}, cache=False)] == ["yamllint/trailing-spaces"]
    # the repository's own file, when it has one, wins
    (tmp_path / ".yamllint.yaml").write_text("extends: default\n")
    assert sorted(f.rule for f in lint.yamllint(tmp_path, ["cm.yaml"], {}, cache=False)) == [
        "yamllint/document-start", "yamllint/trailing-spaces"]
