"""The MkDocs site builds with warnings as errors, and its generated pages follow the code."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import REPO

from kplug.config.schema import RunConfig

pytest.importorskip("mkdocs")
pytest.importorskip("material")


def load_hooks():
    spec = importlib.util.spec_from_file_location("kplug_docs", REPO / "docs" / "hooks" / "kplug_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def field_paths(model, prefix=""):
    """Every field path of the config models, the way the reference titles its sections."""
    hooks = load_hooks()
    sections = []
    hooks._sections(model, prefix, sections)
    return [(path, list(section.model_fields)) for path, section in sections]


def test_config_reference_has_every_field_of_every_section() -> None:
    page = load_hooks().config_reference()
    for path, fields in field_paths(RunConfig):
        heading = f"## {path or 'Run config (top level)'} "
        assert heading in page, f"no section for {path!r}"
        section = page.split(heading, 1)[1].split("\n## ", 1)[0]
        for name in fields:
            shown = "from" if name == "from_" else name
            assert f"| `{shown}` |" in section, f"{path}.{name} is missing from the reference"
    for nested in ("train.stages[]", "model.backbone.init", "tune.pruner", "loggers[]", "data.split"):
        assert f"## {nested} " in page
    assert "| `tensorboard` | log_dir (str, default 'tensorboard')" in page


def test_plugin_links_point_at_generated_pages() -> None:
    hooks = load_hooks()
    pages = {"plugin-hooks.md", "plugins/kplug-example.md", "index.md"}
    text = "[example](../plugins/kplug-example/README.md) and [code](../kplug/plugin/spec.py) and [web](https://x.org)"
    rewritten = hooks.rewrite_links(text, "plugin-hooks.md", REPO / "docs" / "plugin-hooks.md", pages)
    assert rewritten == (
        "[example](plugins/kplug-example.md) and code (`kplug/plugin/spec.py`) and [web](https://x.org)"
    )
    readme = REPO / "plugins" / "kplug-mlflow" / "README.md"
    rewritten = hooks.rewrite_links("[kplug](../../README.md)", "plugins/kplug-mlflow.md", readme, pages)
    assert rewritten == "[kplug](../index.md)"


def test_images_of_a_plugin_readme_are_served_with_its_page(tmp_path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "curves.png").write_bytes(b"png")
    text = "![curves](docs/curves.png) ![web](https://x.org/a.png) ![gone](missing.png)"
    rewritten, images = load_hooks().collect_images(text, tmp_path, "kplug-x")
    assert rewritten == "![curves](kplug-x/docs/curves.png) ![web](https://x.org/a.png) ![gone](missing.png)"
    assert images == {"plugins/kplug-x/docs/curves.png": (tmp_path / "docs" / "curves.png").resolve()}


@pytest.mark.backends("torch")  # the site does not depend on the backend: built in one pass, the lightest
def test_the_site_builds_with_warnings_as_errors(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env["NO_MKDOCS_2_WARNING"] = "1"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    site = tmp_path / "site"
    for page in (
        "getting-started",
        "concepts",
        "tracking-and-tuning",
        "config-reference",
        "cli",
        "plugin-hooks",
    ):
        assert (site / page / "index.html").is_file(), page
    for readme in (REPO / "plugins").glob("*/README.md"):  # one page per plugin package
        assert (site / "plugins" / readme.parent.name / "index.html").is_file()
    tutorial = (site / "write-a-plugin" / "index.html").read_text()
    assert "read_jsonl" in tutorial and "kplug_register_datasets" in tutorial  # the tested code, included
    assert "kplug tune" in (site / "cli" / "index.html").read_text()


def test_the_documented_tune_and_logger_sections_are_valid() -> None:
    import re

    import yaml

    from kplug.tune.space import TuneConfig

    text = (REPO / "docs" / "tracking-and-tuning.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)]
    tune = next(block["tune"] for block in blocks if "tune" in block)
    assert len(TuneConfig.model_validate(tune).space) == 6
    loggers = next(block["loggers"] for block in blocks if "loggers" in block)
    assert loggers == ["tensorboard", "mlflow"]


def test_tutorial_snippets_are_intact() -> None:
    """A formatter must not have touched the include lines (ruff formats code blocks in Markdown)."""
    text = (REPO / "docs" / "write-a-plugin.md").read_text()
    assert text.count('--8<-- "docs/tutorial/kplug-jsonl/') == 5
