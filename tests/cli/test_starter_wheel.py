"""After a non-editable install (a built wheel), every starter inits in an empty directory and trains."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

from kplug.cli.starter import SAMPLE_DATA

# Runs in a fresh interpreter that imports kplug from the unpacked wheel only (the venv supplies
# keras and the other dependencies, and kplug-text, which then imports this kplug).
_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import yaml
    import kplug
    from kplug.cli.main import main

    site, task = Path(sys.argv[1]), sys.argv[2]
    assert Path(kplug.__file__).is_relative_to(site), kplug.__file__
    project = Path.cwd()
    assert main(["init", "--task", task, "--output", "starter.yaml"]) == 0
    config = yaml.safe_load(Path("starter.yaml").read_text())
    config["data"]["limit"] = 60
    config["train"]["stages"] = [{**config["train"]["stages"][0], "epochs": 1}]
    config["train"]["verbose"] = 0
    Path("starter.yaml").write_text(yaml.safe_dump(config))
    os.chdir(project.parent / "elsewhere")
    assert main(["train", str(project / "starter.yaml")]) == 0
    """
)


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """kplug built as a wheel from a copy of the source (no build/ left in the repo), unpacked."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "kplug", source / "kplug", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source)]
        + ["-w", str(root / "dist")],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr
    (wheel,) = (root / "dist").glob("kplug-*.whl")
    site = root / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


@pytest.mark.backends("torch")  # the wheel is the same on every backend: built in one pass only
def test_the_wheel_ships_every_starters_sample_data(wheel_site) -> None:
    shipped = REPO / "kplug" / "cli" / "starter_data"
    for folder in SAMPLE_DATA.values():
        files = sorted(p.name for p in (shipped / folder).iterdir())
        assert (
            files
            and sorted(p.name for p in (wheel_site / "kplug/cli/starter_data" / folder).iterdir()) == files
        )
    assert (wheel_site / "kplug/cli/starter_data/README.md").is_file()


@pytest.mark.slow  # a fresh interpreter per starter: about 20 s each, 50 s for the text one
@pytest.mark.parametrize("task", list(SAMPLE_DATA))
def test_each_starter_trains_after_a_wheel_install(task, wheel_site, tmp_path) -> None:
    if task == "text-classification":
        pytest.importorskip("kplug_text")
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPLUG_")}
    env["PYTHONPATH"] = str(wheel_site)  # kplug from the wheel, not from the repository
    env["KPLUG_LOAD_PLUGINS"] = "text" if task == "text-classification" else "none"
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(wheel_site), task],
        cwd=tmp_path / "project",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    data = tmp_path / "project" / "data" / SAMPLE_DATA[task]
    assert sorted(p.name for p in data.iterdir()) == sorted(
        p.name for p in (wheel_site / "kplug/cli/starter_data" / SAMPLE_DATA[task]).iterdir()
    )
    run_dir = tmp_path / "elsewhere" / "runs" / "starter"
    assert (run_dir / "model.keras").is_file() and (run_dir / "metrics.csv").is_file()
