"""The hook reference of docs/plugin-hooks.md, generated from the docstrings of kplug/plugin/spec.py.

Every ``@hookspec`` function becomes a ``## name`` section: its signature as written in the
source, then its docstring as Markdown (``Example::`` blocks become Python code, ``Config::``
blocks YAML, ````name```` becomes ```name```). The section sits between two markers in
docs/plugin-hooks.md; ``tests/test_docs.py`` fails when it is out of date, and the MkDocs hook
(``kplug_docs.py``) regenerates it at build time. Update the file after editing a hook with::

    python docs/hooks/hook_reference.py

The spec module is read with ``ast``, not imported, so this needs neither keras nor kplug.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "kplug" / "plugin" / "spec.py"
PAGE = REPO / "docs" / "plugin-hooks.md"
BEGIN = (
    "<!-- hook reference: generated from the docstrings of kplug/plugin/spec.py by "
    "docs/hooks/hook_reference.py; edit those, then run it -->"
)
END = "<!-- end of the generated hook reference -->"
BLOCKS = {"Example::": ("Example:", "python"), "Config::": ("In a run config:", "yaml")}


def _is_hookspec(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "hookspec") or (
        isinstance(target, ast.Attribute) and target.attr == "hookspec"
    )


def hookspecs(source: str) -> list[ast.FunctionDef]:
    """The ``@hookspec`` functions of the spec module, in source order."""
    return [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and any(_is_hookspec(d) for d in node.decorator_list)
    ]


def _signature(source: str, node: ast.FunctionDef) -> str:
    """``def name(...) -> ...:`` exactly as the source writes it (up to the docstring)."""
    lines = source.splitlines()[node.lineno - 1 : node.body[0].lineno - 1]
    return "\n".join(lines).rstrip()


def _inline(text: str) -> str:
    return re.sub(r"``(.+?)``", r"`\1`", text)


def docstring_markdown(docstring: str) -> str:
    """A hook docstring as Markdown: prose with inline code, ``Example::`` / ``Config::`` as fenced blocks."""
    lines = inspect.cleandoc(docstring).splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = line.strip()
        if marker in BLOCKS:
            title, language = BLOCKS[marker]
            index += 1
            block: list[str] = []
            while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
                block.append(lines[index])
                index += 1
            code = textwrap.dedent("\n".join(block)).strip("\n").replace("'''", '"""')
            out += [title, "", f"```{language}", code, "```", ""]
            continue
        out.append(_inline(line))
        index += 1
    return "\n".join(out).strip() + "\n"


def hook_reference(source: str | None = None) -> str:
    """The generated part of docs/plugin-hooks.md, markers included."""
    source = SPEC.read_text(encoding="utf-8") if source is None else source
    sections = [BEGIN, ""]
    for node in hookspecs(source):
        sections += [
            f"## {node.name}",
            "",
            "```python",
            _signature(source, node),
            "```",
            "",
            docstring_markdown(ast.get_docstring(node) or ""),
        ]
    return "\n".join(sections) + END + "\n"


def with_reference(page: str, reference: str | None = None) -> str:
    """``page`` with its generated part (from ``BEGIN`` to ``END``) replaced by a fresh one."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise ValueError(
            f"{PAGE.name} has no generated hook reference between the markers {BEGIN!r} and {END!r}"
        )
    return page[:start] + (reference or hook_reference()) + page[end + len(END) + 1 :]


def main() -> int:
    """Rewrite docs/plugin-hooks.md's hook reference from kplug/plugin/spec.py."""
    page = PAGE.read_text(encoding="utf-8")
    updated = with_reference(page)
    if updated != page:
        PAGE.write_text(updated, encoding="utf-8")
        print(f"updated {PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
