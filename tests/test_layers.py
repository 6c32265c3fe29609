"""scripts/ is layered like kubeconform's pkg/: core, then loading, then the
stages and reports, then the pull-request commands, then the CLI on top.
A module may import its own layer or a lower one, never a higher one."""

from __future__ import annotations

import ast

from tests.conftest import REPO

RANK = {"core": 0, "loading": 1, "stages": 2, "reports": 2, "pullrequest": 3}
TOP = 4  # cli, validate, bench, __main__


def _rank(module: str) -> int:
    parts = module.split(".")
    return RANK.get(parts[1], TOP) if len(parts) > 1 else TOP


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scripts"):
            if node.module == "scripts":
                yield from (f"scripts.{alias.name}" for alias in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("scripts"))


def test_no_module_imports_a_higher_layer():
    scripts = REPO / "scripts"
    wrong = []
    for path in scripts.rglob("*.py"):
        relative = path.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
        own = _rank(relative)
        wrong += [f"{relative} imports {target}" for target in _imports(path) if _rank(target) > own]
    assert wrong == []


def test_every_module_sits_in_a_layer():
    loose = sorted(p.name for p in (REPO / "scripts").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "bench.py", "cli.py", "validate.py"]
