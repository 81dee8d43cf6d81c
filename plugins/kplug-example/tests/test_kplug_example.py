"""kplug-example installed for real: discovered by entry point, trains, validates its options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kplug
import numpy as np
import pytest

import kplug_example


@pytest.fixture
def plugins() -> kplug.Plugins:
    """Built-ins plus this plugin passed in Python: hermetic, whatever else is installed."""
    return kplug.load_plugins([kplug_example], entry_points=False)


def two_blobs(rows: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Two separable classes of 4 features, shuffled."""
    rng = np.random.default_rng(0)
    y = np.arange(rows) % 2
    x = rng.normal(0.0, 1.0, size=(rows, 4)) + np.where(y[:, None] == 1, 2.0, -2.0)
    order = rng.permutation(rows)
    return x[order].astype("float32"), y[order]


def run_config(output: Path, backbone_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A small run on in-memory arrays with the tiny-mlp backbone and print-epoch callback."""
    x, y = two_blobs()
    return {
        "name": "tiny",
        "seed": 3,
        "data": {"source": "arrays", "options": {"x": x, "y": y}, "split": {"validation": 0.2}},
        "model": {
            "backbone": {"name": "tiny-mlp", "options": backbone_options or {"units": 16}},
            "heads": [{"name": "classification"}],
        },
        "callbacks": [{"name": "print-epoch", "options": {"prefix": "tiny"}}],
        "train": {"epochs": 5, "batch_size": 16, "verbose": 0, "optimizer": {"learning_rate": 0.01}},
        "output": {"dir": str(output)},
    }


def test_entry_point_is_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "example")  # only this package's entry point
    loaded = kplug.load_plugins()
    assert loaded.failures == []
    assert "tiny-mlp" in loaded.registry.names("backbone")
    assert "print-epoch" in loaded.registry.names("callback")
    assert loaded.registry.get("backbone", "tiny-mlp").provider.startswith("kplug-example 0.1.0")
    assert loaded.providers["example"].startswith("kplug-example 0.1.0")


def test_disable_plugins_hides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPLUG_DISABLE_PLUGINS", "example")
    assert "tiny-mlp" not in kplug.load_plugins().registry.names("backbone")


def test_trains_to_high_accuracy(
    plugins: kplug.Plugins, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = kplug.fit(run_config(tmp_path / "run"), plugins=plugins)
    assert result.history["val_accuracy"][-1] > 0.8
    assert result.metrics["split"] == "validation"
    assert result.metrics["accuracy"] > 0.8
    assert result.model.get_layer("backbone").get_layer("hidden").units == 16
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny ")]
    assert len(lines) == 5 and lines[-1].startswith("tiny 5: accuracy=")
    assert (result.run_dir / "report.json").is_file()


def test_misspelled_option_is_a_config_error(plugins: kplug.Plugins, tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError) as error:
        kplug.fit(run_config(tmp_path / "run", {"unit": 3}), plugins=plugins)
    message = str(error.value)
    assert "tiny-mlp has no option 'unit'" in message
    assert "units" in message
    assert not (tmp_path / "run").exists()
