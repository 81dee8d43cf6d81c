"""Run every case of the bad-input corpus (tests/bad_inputs/) through the real CLI.

Each case is a folder ``tests/bad_inputs/<category>/<case>/`` holding ``case.yaml`` and
the small input files it needs (see tests/bad_inputs/README.md for the format). A case
asserts what a user relies on when they get it wrong: exit code 2, one ``kplug: error:``
message naming the problem and what is allowed, no traceback, and nothing written
outside the run directory (a config that fails validation writes nothing at all).
With ``--debug`` the same input raises a typed ``KplugError`` instead.
"""

from __future__ import annotations

import copy
import gzip
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import MNIST, install_distribution, mnist_data

import kplug.errors
import kplug.plugin.manager
from kplug.cli.main import main

CORPUS = Path(__file__).parent / "bad_inputs"
CATEGORIES = ("config", "data", "checkpoint", "plugin")
CASES = sorted(path.parent for path in CORPUS.glob("*/*/case.yaml"))
MARKER = "CODE-WAS-RUN"  # a pickle in the corpus creates this file if anything unpickles it

# the errors do not depend on the backend: quick on tensorflow, slow (CI) on jax and torch
pytestmark = pytest.mark.slow("jax", "torch")


def base_config() -> dict[str, Any]:
    """The valid run every ``config:`` edit starts from: a small MLP on 120 MNIST digits."""
    return {
        "name": "bad",
        "data": mnist_data(limit=120),
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 1, "verbose": 0},
        "output": {"dir": "run"},
    }


# Placeholders a case may write for the MNIST slice shipped in examples/data.
PLACEHOLDERS = {
    "__MNIST_IMAGES__": str(MNIST / "images-idx3-ubyte.gz"),
    "__MNIST_LABELS__": str(MNIST / "labels-idx1-ubyte.gz"),
}


def _substitute(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _substitute(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item) for item in value]
    return PLACEHOLDERS.get(value, value) if isinstance(value, str) else value


def edited(config: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """Apply ``{"dotted.path": value}`` edits (``model.heads.0.id``: list index 0) to a copy."""
    config = copy.deepcopy(config)
    for dotted, value in _substitute(edits).items():
        target = config
        *parents, last = dotted.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target.setdefault(key, {})
        target[last] = value
    return config


class Evil:
    """Unpickling this creates the marker file: a pickle that would run code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def _array(spec: Any) -> np.ndarray:
    if isinstance(spec, dict):
        if "text" in spec:
            return np.full(spec["shape"], spec["text"])
        return np.full(spec["shape"], spec.get("fill", 0), dtype=spec.get("dtype", "float32"))
    return np.asarray(spec)


def _png(spec: dict[str, Any]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(spec.get("mode", "L"), tuple(spec["size"])).save(buffer, format="PNG")
    return buffer.getvalue()


def _lambda_model(path: Path) -> None:
    import keras

    inputs = keras.Input((28, 28, 1))
    scaled = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(scaled))).save(path)


def generate(work: Path, name: str, spec: dict[str, Any], marker: Path) -> None:
    """Write one generated input file (binary, corrupt or code-carrying) into the case directory."""
    path = work / name
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = spec["kind"]
    evil = np.array([Evil(str(marker))], dtype=object)
    if kind == "random":
        data = np.random.default_rng(spec.get("seed", 0)).bytes(spec.get("size", 512))
    elif kind == "bytes":  # hex, or text with escapes such as \xe9
        data = bytes.fromhex(spec["hex"]) if "hex" in spec else spec["text"].encode("latin-1")
    elif kind == "truncate":
        source = (work / spec["of"]).read_bytes()
        data = source[: int(len(source) * spec.get("keep", 0.5))]
    elif kind == "pickle":
        data = pickle.dumps(Evil(str(marker)))
    elif kind == "npy-pickle":
        buffer = io.BytesIO()
        np.save(buffer, evil, allow_pickle=True)
        data = buffer.getvalue()
    elif kind == "npz-pickle":
        buffer = io.BytesIO()
        np.savez(buffer, x=evil, y=np.array([0]))
        data = buffer.getvalue()
    elif kind == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, **{key: _array(value) for key, value in spec["arrays"].items()})
        data = buffer.getvalue()
    elif kind == "idx":
        array = _array(spec["array"]).astype(">u1")
        data = struct.pack(f">I{array.ndim}I", 0x0800 + array.ndim, *array.shape) + array.tobytes()
    elif kind == "gzip":
        data = gzip.compress(spec["text"].encode("latin-1"))
    elif kind == "png":
        data = _png(spec)[: spec.get("truncate")]
    elif kind == "lambda-model":
        _lambda_model(path)
        return
    elif kind == "long-quoted-field":  # an unclosed quote swallowing the rest of the file
        data = ('a,label\n"1,0\n' + "2,1\n" * 40000).encode()
    else:
        raise AssertionError(f"unknown generator kind {kind!r} in the corpus")
    path.write_bytes(data)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``root`` with its size and modification time."""
    return {
        str(path.relative_to(root)): (path.stat().st_size if path.is_file() else -1, path.stat().st_mtime_ns)
        for path in root.rglob("*")
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One finished two-split run on the MNIST slice; cases that damage a run get a copy."""
    root = tmp_path_factory.mktemp("finished")
    config = edited(base_config(), {"data.split": {"test": 0.2}, "output.dir": str(root / "run")})
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    previous = os.getcwd()
    os.chdir(root)
    try:
        assert main(["--no-plugins", "train", "run.yaml"]) == 0
    finally:
        os.chdir(previous)
    return root / "run"


def prepare(case: Path, spec: dict[str, Any], work: Path, finished: Path) -> None:
    """Lay out one case in ``work``: the finished run, the folder's files, run.yaml, generated files."""
    work.mkdir()
    if "run" in spec.get("uses", []):
        shutil.copytree(finished, work / "run")
        for name in spec.get("remove", []):
            target = work / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    for path in sorted(case.rglob("*")):
        relative = path.relative_to(case)
        if path.is_file() and path.name != "case.yaml" and relative.parts[0] != "plugins":
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, work / relative)
    if "config" in spec:
        (work / spec.get("config_file", "run.yaml")).write_text(
            yaml.safe_dump(edited(base_config(), spec["config"] or {}))
        )
    if "run_config" in spec:  # edits to the finished run's own config.yaml
        saved = yaml.safe_load((work / "run" / "config.yaml").read_text())
        (work / "run" / "config.yaml").write_text(yaml.safe_dump(edited(saved, spec["run_config"])))
    for name, generator in (spec.get("generate") or {}).items():
        generate(work, name, generator, work.parent / MARKER)


def install_case_plugins(case: Path, spec: dict[str, Any], site: Path, monkeypatch) -> None:
    """Install the case's plugin modules as distributions and load only those (plus the built-ins)."""
    plugins = spec.get("plugins") or {}
    if not plugins:
        return
    for name, file in plugins.items():
        install_distribution(site, name, (case / "plugins" / file).read_text(), monkeypatch)
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", ",".join(plugins))
    kplug.plugin.manager._default_plugins.cache_clear()  # what is installed changed


@pytest.fixture
def reload_plugins():
    """Plugin cases change what is installed: the next test loads the default plugins again."""
    yield
    kplug.plugin.manager._default_plugins.cache_clear()


def test_the_corpus_covers_every_category():
    counts = {category: sum(1 for case in CASES if case.parent.name == category) for category in CATEGORIES}
    assert set(case.parent.name for case in CASES) <= set(CATEGORIES)
    assert all(count >= 8 for count in counts.values()), counts
    assert len(CASES) >= 40, counts


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys, finished_run, reload_plugins):
    spec = yaml.safe_load((case / "case.yaml").read_text())
    for module in spec.get("needs", []):
        pytest.importorskip(module, reason=f"the case needs the {module} plugin package installed")
    for key, value in (spec.get("env") or {}).items():
        monkeypatch.setenv(key, str(value))
    install_case_plugins(case, spec, tmp_path / "site", monkeypatch)
    work = tmp_path / "work"
    prepare(case, spec, work, finished_run)
    monkeypatch.chdir(work)
    before = snapshot(work)

    code = main(spec["argv"])

    captured = capsys.readouterr()
    err = captured.err
    assert code == spec.get("exit", 2), err
    errors = [line for line in err.splitlines() if line.startswith("kplug: error: ")]
    assert len(errors) == 1, err
    message = err[err.index("kplug: error: ") :]
    for expected in spec["message"]:
        assert expected in message, f"{expected!r} not in:\n{message}"
    assert "Traceback" not in err and "Traceback" not in captured.out
    after = snapshot(work)
    allowed = tuple(spec.get("may_write", [])) or ("\0",)
    changed = sorted(
        name
        for name in set(before) | set(after)
        if before.get(name) != after.get(name) and not name.startswith(allowed)
    )
    assert changed == [], f"the failed command changed files outside the run directory: {changed}"
    assert not (tmp_path / MARKER).exists(), "a pickle in the input was unpickled: code ran"

    # the same input, fresh, with --debug (as from Python): a typed kplug exception is raised
    debug = tmp_path / "debug"
    prepare(case, spec, debug, finished_run)
    monkeypatch.chdir(debug)
    with pytest.raises(kplug.errors.KplugError) as raised:
        main(["--debug", *spec["argv"]])
    assert type(raised.value).__name__ == spec.get("error", type(raised.value).__name__)
    for expected in spec["message"]:
        assert expected in str(raised.value)
    assert not (tmp_path / MARKER).exists()


def test_debug_shows_the_traceback(tmp_path):
    """The console entry point in a subprocess with --debug: the typed exception's traceback.

    (Without --debug, every corpus case above checks that no traceback is printed.)
    """
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(edited(base_config(), {"train.epochs": "many"})))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(CORPUS.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [sys.executable, "-c", "from kplug.cli.main import entry_point; entry_point()"]
    done = subprocess.run(
        [*argv, "--debug", "--no-plugins", "train", "run.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "kplug.errors.ConfigError: Invalid run config" in done.stderr
    assert "train.epochs = 'many'" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]
