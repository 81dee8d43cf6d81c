"""kplug's modules import each other without cycles, and only kplug/backend/ imports a backend library.

The import graph is read from the source (``ast``): every ``import kplug...`` and
``from kplug... import ...``, at module level and inside functions alike, except
under ``if TYPE_CHECKING:`` (annotations only, never run). Importing a submodule
also runs its parent packages' ``__init__``; those implicit edges are left out,
as Python's import system resolves them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKEND_LIBRARIES = ("torch", "tensorflow", "jax", "jaxlib")


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the ``kplug`` package under ``root``, by dotted name."""
    modules = {}
    for path in sorted((root / "kplug").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, module: str) -> list[tuple[str, ...]]:
    """What a module imports, TYPE_CHECKING left out: per imported name, the modules it may be.

    ``import a.b`` gives ``("a.b",)``; ``from a import b`` gives ``("a.b", "a")``: the
    submodule ``a.b`` when there is one, else the name ``b`` of module ``a``.
    """
    is_package = path.name == "__init__.py"
    names: list[tuple[str, ...]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for statement in child.orelse:
                    visit_one(statement)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            names.extend((alias.name,) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names.extend((f"{base}.{alias.name}", base) for alias in node.names)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each kplug module -> the kplug modules it imports."""
    modules = module_files(root)
    graph = {}
    for module, path in modules.items():
        targets = set()
        for candidates in imports(path, module):
            found = [name for name in candidates if name in modules]
            if found:
                targets.add(found[0])
        graph[module] = targets - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]`` when there is none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def walk(module: str) -> list[str]:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph[module]):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = walk(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return []

    for module in sorted(graph):
        if module not in done:
            cycle = walk(module)
            if cycle:
                return cycle
    return []


def test_no_import_cycle_among_kplug_modules():
    cycle = find_cycle(import_graph(ROOT))
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle(tmp_path):
    package = tmp_path / "kplug"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "top.py").write_text("from kplug.low import base\n")
    (package / "low" / "base.py").write_text("def f():\n    from kplug import top\n")
    (package / "low" / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kplug import top\n"
    )
    graph = import_graph(tmp_path)
    assert graph["kplug.low.typed"] == set()  # annotations only: no edge
    assert find_cycle(graph) == ["kplug.low.base", "kplug.top", "kplug.low.base"]


def test_only_kplug_backend_imports_a_backend_library():
    offenders = []
    for module, path in module_files(ROOT).items():
        if module.startswith("kplug.backend."):
            continue
        for candidates in imports(path, module):
            name = candidates[-1]
            if name.split(".")[0] in BACKEND_LIBRARIES:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "backend code outside kplug/backend/:\n" + "\n".join(sorted(offenders))


@pytest.mark.timeout(300)
@pytest.mark.slow("tensorflow", "torch")  # a fresh interpreter per module: quick on jax only
def test_every_kplug_module_imports_in_a_fresh_process():
    modules = sorted(module_files(ROOT))
    script = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc(limit=-1).strip())\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
