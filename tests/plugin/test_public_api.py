"""Plugin packages use only the public API: ``kplug.plugin``, the top-level ``kplug`` and, in tests, ``kplug.testing``.

Every Python file under plugins/ (each kplug_* package, its tests and examples) and
docs/tutorial/ is read with ``ast``: an ``import kplug.x`` / ``from kplug.x import ...`` of
another module, or an attribute chain such as ``kplug.model.transfer.load_model_file``,
fails the test naming the file and line. Internal modules may change between releases;
these packages are what third-party plugins copy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kplug
import kplug.plugin

REPO = Path(__file__).resolve().parents[2]
SCANNED = sorted([*(REPO / "plugins").rglob("*.py"), *(REPO / "docs" / "tutorial").rglob("*.py")])
PUBLIC = {"kplug", "kplug.plugin"}
TEST_ONLY = {"kplug.testing"}
# kplug's own subpackages and modules: an attribute chain kplug.<one of these> reaches inside
INTERNAL = {
    path.stem for path in (REPO / "kplug").iterdir() if path.stem not in {"__init__", "plugin", "testing"}
}


def _is_test_file(path: Path) -> bool:
    return "tests" in path.relative_to(REPO).parts


def private_uses(path: Path) -> list[str]:
    """``file:line: what`` for every use of a kplug module outside the public API."""
    allowed = PUBLIC | (TEST_ONLY if _is_test_file(path) else set())
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "kplug"
            and node.attr in INTERNAL
        ):
            modules = [f"kplug.{node.attr}"]
        for module in modules:
            if (module == "kplug" or module.startswith("kplug.")) and module not in allowed:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {module}")
    return found


def test_the_scan_covers_every_plugin_package_and_the_tutorial():
    packages = {
        path.relative_to(REPO).parts[1 if path.is_relative_to(REPO / "plugins") else 2] for path in SCANNED
    }
    assert {"kplug-compress", "kplug-distribute", "kplug-example", "kplug-mlflow"} <= packages
    assert {"kplug-precision", "kplug-text", "kplug-vision", "kplug-jsonl"} <= packages
    assert any(_is_test_file(path) for path in SCANNED)


def test_the_scan_finds_internal_imports(tmp_path, monkeypatch):
    """The check itself can fail: an internal import and attribute chain are reported with their lines."""
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    source = tmp_path / "plugins" / "kplug-bad" / "kplug_bad" / "__init__.py"
    source.parent.mkdir(parents=True)
    source.write_text("import kplug\nfrom kplug.train import rundir\nx = kplug.model.transfer\n")
    assert private_uses(source) == [
        "plugins/kplug-bad/kplug_bad/__init__.py:2: kplug.train",
        "plugins/kplug-bad/kplug_bad/__init__.py:3: kplug.model",
    ]


@pytest.mark.parametrize("path", SCANNED, ids=lambda path: str(path.relative_to(REPO)))
def test_plugin_code_imports_only_the_public_api(path: Path):
    found = private_uses(path)
    assert not found, "use kplug.plugin (or kplug, or kplug.testing in tests) instead:\n" + "\n".join(found)


def test_public_api_names_resolve():
    """Every name kplug.plugin declares imports, and kplug's top level still re-exports hookimpl."""
    for name in kplug.plugin.__all__:
        assert getattr(kplug.plugin, name) is not None, name
    assert kplug.hookimpl is kplug.plugin.hookimpl
    assert kplug.plugin.Options is kplug.config.schema.Strict
