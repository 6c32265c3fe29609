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


def _module_imports(path, modules: set[str]) -> set[str]:
    """The scripts modules a file imports, anywhere in it (inside functions
    and under TYPE_CHECKING too): `from scripts.loading import flux` names
    the module scripts.loading.flux."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scripts"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("scripts"))
    return {m for m in found if m in modules}


def import_cycles(root) -> list[list[str]]:
    """Every cycle of imports among the modules under root (a package dir)."""
    files = {p.relative_to(root.parent).with_suffix("").as_posix().replace("/", "."): p for p in root.rglob("*.py")}
    modules = {m.removesuffix(".__init__") for m in files}
    graph = {m.removesuffix(".__init__"): _module_imports(p, modules) - {m.removesuffix(".__init__")}
             for m, p in files.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            # a package's __init__ is imported by every submodule import: not an edge back
            if nxt in node.split(".")[:-1] or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif state.get(nxt) is None:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node, [node])
    return cycles


def test_no_import_cycles_inside_scripts():
    """Two modules importing each other (even inside a function, or for
    types only) is one module split in two: untie them instead."""
    assert import_cycles(REPO / "scripts") == []


def test_import_cycles_are_found(tmp_path):
    package = tmp_path / "scripts"
    (package / "loading").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "loading" / "__init__.py").write_text("")
    (package / "loading" / "a.py").write_text("def f():\n    from scripts.loading import b\n")
    (package / "loading" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                              "    from scripts.loading.a import f\n")
    (package / "loading" / "c.py").write_text("from scripts.loading import a\n")
    assert import_cycles(package) == [["scripts.loading.a", "scripts.loading.b", "scripts.loading.a"]]
