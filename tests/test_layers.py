"""Imports point one way: no module of access_audit imports, however late (inside a function, or
only for type checking), a module that imports it back.

The cycles this holds broken: ``case_cli`` ↔ ``cli`` (both now take their shared options from
``cli_base``), ``workspace`` ↔ ``review.casework`` and ``evidence`` (the desk names what it needs
of a home as a Protocol, and the guarded writes live in ``guarded_writes``), and ``serve.app`` ↔
its page modules (which take the ``Desk`` from ``serve.desk``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import access_audit

PACKAGE = Path(access_audit.__file__).parent
FORMER_CYCLES = [
    "access_audit.cli",
    "access_audit.case_cli",
    "access_audit.cli_base",
    "access_audit.workspace",
    "access_audit.review.casework",
    "access_audit.evidence",
    "access_audit.serve.app",
    "access_audit.serve.desk",
    "access_audit.serve.flags",
    "access_audit.serve.cases",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The access_audit modules ``path`` imports anywhere in its text (top level, inside a
    function, under ``if TYPE_CHECKING``); ``from package import module`` names the module."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    inside = name + "." if path.name == "__init__.py" else None
    return {
        module
        for module in found
        if module in known
        and module != name
        # a package's face may drive its own parts (generate/__init__ runs generate/force);
        # that is the package's inside, not an arrow between modules
        and not (inside and module.startswith(inside))
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = _modules()
    known = set(modules)
    graph = {name: _imported(path, name, known) for name, path in modules.items()}
    assert _cycles(graph) == []
    # the arrows that made the former cycles still exist, one way
    assert graph["access_audit.cli"] >= {"access_audit.case_cli", "access_audit.cli_base"}
    assert "access_audit.review.casework" in graph["access_audit.workspace"]


def test_the_cycle_finder_finds_a_late_import_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", FORMER_CYCLES)
def test_each_module_of_a_former_cycle_imports_alone(module: str) -> None:
    """Each in a fresh interpreter, so no other module has been imported first to hide an
    import-time cycle."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
