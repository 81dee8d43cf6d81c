"""docs/plugin-hooks.md documents every hook in kplug/plugin/spec.py, and the specs hold no logic.

Like datasette's ``test_plugin_hooks_are_documented``: adding a hook without documenting
it, or changing a hook's signature without updating the docs, fails here. The hook reference
is generated from the spec's docstrings (docs/hooks/hook_reference.py); the page must hold
the current output.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from kplug.plugin import spec as hookspecs
from kplug.plugin.registry import KINDS

REPO = Path(__file__).resolve().parents[1]
HOOKSPECS = REPO / "kplug" / "plugin" / "spec.py"
DOCS = REPO / "docs" / "plugin-hooks.md"
SOURCE = HOOKSPECS.read_text(encoding="utf-8")
GENERATOR = REPO / "docs" / "hooks" / "hook_reference.py"


def _generator():
    """docs/hooks/hook_reference.py as a module (it is a script, not part of a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hook_reference", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_hookspec(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "hookspec") or (
        isinstance(target, ast.Attribute) and target.attr == "hookspec"
    )


def hook_definitions() -> dict[str, ast.FunctionDef]:
    """Every ``@hookspec`` function of kplug/plugin/spec.py by name, in source order."""
    tree = ast.parse(SOURCE)
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any(_is_hookspec(d) for d in node.decorator_list)
    }


HOOKS = hook_definitions()


def normalise(text: str) -> str:
    """Collapse whitespace and drop bracket padding and trailing commas, so a signature
    wrapped over several lines compares equal to the same signature on one line."""
    text = " ".join(text.split())
    text = re.sub(r"([(\[])\s+", r"\1", text)
    return re.sub(r",?\s*([)\]])", r"\1", text)


def signature(node: ast.FunctionDef) -> str:
    """The hook's ``def name(...) -> ...:`` text from the source, up to its colon."""
    segment = ast.get_source_segment(SOURCE, node)
    assert segment is not None and segment.startswith("def ")
    depth = 0
    for token in tokenize.generate_tokens(io.StringIO(segment).readline):
        if token.type != tokenize.OP:
            continue
        if token.string in "([{":
            depth += 1
        elif token.string in ")]}":
            depth -= 1
        elif token.string == ":" and depth == 0:
            line, column = token.end
            lines = segment.splitlines()
            return normalise("\n".join([*lines[: line - 1], lines[line - 1][:column]]))
    raise AssertionError(f"no colon ends the signature of {node.name}")


def doc_sections() -> dict[str, str]:
    """The text under each ``## heading`` of docs/plugin-hooks.md, by heading."""
    parts = re.split(r"^## +(.+?)\s*$", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_ast_finds_every_registered_hookspec() -> None:
    marked = {name for name, value in vars(hookspecs).items() if hasattr(value, "kplug_spec")}
    assert set(HOOKS) == marked
    assert HOOKS, "no hooks found in kplug/plugin/spec.py"


@pytest.mark.parametrize("name", list(HOOKS))
def test_plugin_hooks_are_documented(name: str) -> None:
    sections = doc_sections()
    assert name in sections, f"docs/plugin-hooks.md has no '## {name}' heading"
    code = re.search(r"```python\n(.*?)```", sections[name], flags=re.DOTALL)
    assert code is not None, f"'## {name}' in docs/plugin-hooks.md has no python block"
    expected = signature(HOOKS[name])
    assert sections[name].lstrip().startswith("```python"), f"put the signature directly under '## {name}'"
    assert expected in normalise(code.group(1)), (
        f"the first python block under '## {name}' should show the signature from "
        f"kplug/plugin/spec.py:\n    {expected}"
    )


def test_docs_document_no_removed_hooks() -> None:
    documented = {heading for heading in doc_sections() if heading.startswith("kplug_")}
    assert documented <= set(HOOKS), f"documented hooks that do not exist: {sorted(documented - set(HOOKS))}"


@pytest.mark.parametrize("name", list(HOOKS))
def test_hookspec_body_is_only_a_docstring(name: str) -> None:
    body = HOOKS[name].body
    assert len(body) == 1, f"{name}: a hook spec holds no logic, only its docstring"
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    assert isinstance(body[0].value.value, str)


@pytest.mark.parametrize("name", list(HOOKS))
def test_hookspec_docstring_has_an_example(name: str) -> None:
    assert name.startswith("kplug_"), f"{name}: hook names start with 'kplug_'"
    docstring = ast.get_docstring(HOOKS[name]) or ""
    assert "Example" in docstring, f"{name}: the docstring needs an 'Example::' section"


def test_plugin_loading_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    plugins_source = (REPO / "kplug" / "plugin" / "manager.py").read_text(encoding="utf-8")
    variables = set(re.findall(r"\bKPLUG_[A-Z_]+\b", plugins_source))
    assert variables, "kplug/plugin/manager.py reads no KPLUG_* variables?"
    for needed in (*sorted(variables), "[project.entry-points.kplug]", "path_option"):
        assert needed in text, f"docs/plugin-hooks.md does not mention {needed}"


def test_hook_reference_is_generated_from_the_current_docstrings() -> None:
    generator = _generator()
    page = DOCS.read_text(encoding="utf-8")
    assert generator.with_reference(page) == page, (
        "docs/plugin-hooks.md's hook reference is out of date with kplug/plugin/spec.py: "
        "run `python docs/hooks/hook_reference.py`"
    )


def test_hook_reference_carries_each_docstring_and_its_example() -> None:
    reference = _generator().hook_reference()
    for name, node in HOOKS.items():
        first_line = (ast.get_docstring(node) or "").splitlines()[0].replace("``", "`")
        assert first_line in reference, (
            f"{name}: its docstring's first line is not in the generated reference"
        )
    assert reference.count("Example:\n\n```python") == len(HOOKS)


def test_every_declared_extra_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for kind in KINDS.values():
        for extra in kind.extras:
            assert f"| {kind.name} | `{extra.name}=" in text, (
                f"docs/plugin-hooks.md's extras table lacks {kind.name}'s {extra.name}"
            )
