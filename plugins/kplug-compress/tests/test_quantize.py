"""kplug-compress quantization: int8/int4 shrink a trained MNIST run with a small accuracy change,
the quantized run directory evaluates and predicts, fine-tuning after quantization works on
every backend (jax included), and bad requests fail clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import kplug
import numpy as np
import pytest
from compress_digits import MNIST_OPTIONS
from kplug.testing import run_cli

import kplug_compress


@pytest.fixture(scope="module")
def plugins() -> kplug.Plugins:
    """Built-ins and this package only: hermetic, whatever else is installed."""
    return kplug.load_plugins([kplug_compress], entry_points=False)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, plugins: kplug.Plugins) -> Path:
    """A small CNN trained on 800 MNIST digits (once per module)."""
    output = tmp_path_factory.mktemp("runs") / "digits"
    config: dict[str, Any] = {
        "name": "digits",
        "seed": 2,
        "data": {
            "source": "idx",
            "options": dict(MNIST_OPTIONS),
            "limit": 800,
            "split": {"validation": 0.25, "stratify": True},
        },
        "model": {
            "backbone": {"name": "small-cnn", "options": {"filters": [8, 16], "dense_units": 64}},
            "heads": [{"name": "classification", "id": "digits"}],
        },
        "train": {"epochs": 3, "batch_size": 32, "verbose": 0, "optimizer": {"learning_rate": 3e-3}},
        "output": {"dir": str(output)},
    }
    result = kplug.fit(config, plugins=plugins)
    assert result.metrics["accuracy"] > 0.7
    return output


@pytest.mark.parametrize(("mode", "max_drop"), [("int8", 0.02), ("int4", 0.05)])
def test_post_training_quantization(mode: str, max_drop: float, trained_run: Path, plugins) -> None:
    result = kplug_compress.quantize_run(trained_run, mode=mode, plugins=plugins)
    report = result.report
    print(f"{keras.backend.backend()} {mode}: {report['size']} {report['accuracy']}")
    assert result.output_dir == trained_run / f"quantized-{mode}"
    quantized = report["quantization"]["quantized_layers"]
    assert quantized == ["backbone/embedding", "heads/digits/logits"]  # Keras 3.15 leaves Conv2D float
    # float32 Dense kernels become 1 byte (int8) or half a byte (int4) per weight
    assert report["size"]["after"]["weights_bytes"] < 0.4 * report["size"]["before"]["weights_bytes"]
    assert report["size"]["after"]["file_bytes"] < report["size"]["before"]["file_bytes"]
    assert report["accuracy"]["before"] > 0.7
    assert report["accuracy"]["change"] >= -max_drop
    dense = result.model.get_layer("backbone").get_layer("embedding")
    assert keras.backend.standardize_dtype(dense._kernel.dtype) == "int8"
    # the written directory is a run kplug can evaluate and predict with
    metrics = kplug.evaluate(result.output_dir, split="validation", plugins=plugins)
    assert metrics["accuracy"] == pytest.approx(report["accuracy"]["after"], abs=1e-6)
    predictions = kplug.predict(result.output_dir, split="validation", plugins=plugins)
    assert len(predictions) > 190 and set(predictions[0]) >= {"label", "true_label", "probabilities"}


@pytest.mark.slow
def test_fine_tuning_after_quantization(trained_run: Path, plugins, tmp_path: Path) -> None:
    # Keras' own optimizer fails here on jax after quantize(); kplug recompiles with a new one
    result = kplug_compress.quantize_run(
        trained_run, mode="int8", epochs=2, keep=["heads/*"], output=tmp_path / "tuned", plugins=plugins
    )
    report = result.report
    tuned = report["fine_tune"]
    assert "backbone/embedding" in report["quantization"]["quantized_layers"]
    assert report["quantization"]["kept_float"] == ["heads/digits/logits"]
    trainable = tuned["trainable_variables"]
    assert any(path.endswith("logits/kernel") for path in trainable)  # kept float: trainable
    assert not any(path.endswith("embedding/kernel") for path in trainable)  # int8: frozen
    original = keras.saving.load_model(trained_run / "model.keras", compile=False)
    before = original.get_layer("backbone").get_layer("conv1").get_weights()[0]
    after = result.model.get_layer("backbone").get_layer("conv1").get_weights()[0]
    assert not np.allclose(before, after)  # fine-tuning changed the float layers
    assert np.isfinite(tuned["history"]["loss"]).all()
    assert (
        report["metrics"]["after"]["accuracy"] >= report["metrics"]["after_quantization"]["accuracy"] - 0.02
    )


def test_bad_requests_fail_clearly(trained_run: Path, plugins, tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError, match="'float8'.*int8, int4"):
        kplug_compress.quantize_run(trained_run, mode="float8", plugins=plugins)
    with pytest.raises(kplug.ConfigError, match="--keep: pattern 'nothing\\*' matches no layer"):
        kplug_compress.quantize_run(trained_run, keep=["nothing*"], output=tmp_path / "q", plugins=plugins)
    # one layer-path dialect: a bare layer name is not a path, and the error gives the path to write
    with pytest.raises(kplug.ConfigError, match="not bare layer names: write 'backbone/embedding'"):
        kplug_compress.quantize_run(trained_run, keep=["embedding"], output=tmp_path / "q", plugins=plugins)
    with pytest.raises(kplug.ConfigError, match=r"--keep: 're:\(' is not a valid regex"):
        kplug_compress.quantize_run(trained_run, keep=["re:("], output=tmp_path / "q", plugins=plugins)
    with pytest.raises(kplug.ConfigError, match="nothing to quantize"):
        kplug_compress.quantize_run(
            trained_run, keep=["backbone", "heads/*"], output=tmp_path / "q", plugins=plugins
        )
    assert not (tmp_path / "q").exists()


def test_quantize_command(trained_run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "compress")  # this package's entry point only
    out = tmp_path / "q4"
    assert run_cli(["quantize", str(trained_run), "--mode", "int4", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "int4: 2 layers quantized" in printed and f"Quantized run directory: {out}" in printed
    assert {p.name for p in out.iterdir()} >= {"model.keras", "report.json", "config.yaml", "labels.json"}
    assert run_cli(["quantize", str(trained_run), "--mode", "int2", "--output", str(tmp_path / "x")]) == 2
    assert "'int2'" in capsys.readouterr().err


def test_a_mixed_precision_run_is_quantized_as_float32(mixed_run, precision_plugins) -> None:
    # Keras alone refuses int8 for a layer computing in float16 (mixed_float16)
    result = kplug_compress.quantize_run(mixed_run.run_dir, mode="int8", plugins=precision_plugins)
    report = result.report
    policy = mixed_run.report["precision"]
    assert report["quantization"]["precision"] == {"model": policy, "written_as": "float32"}
    dense = result.model.get_layer("backbone").get_layer("embedding")
    assert keras.backend.standardize_dtype(dense._kernel.dtype) == "int8"
    assert dense.compute_dtype == "float32"
    assert report["accuracy"]["before"] == pytest.approx(mixed_run.metrics["accuracy"], abs=1e-6)
    assert report["accuracy"]["change"] >= -0.05
    metrics = kplug.evaluate(result.output_dir, split="test", plugins=precision_plugins)
    assert metrics["accuracy"] == pytest.approx(report["accuracy"]["after"], abs=1e-6)


def test_keras_errors_reach_the_user_as_config_errors(trained_run: Path, plugins, tmp_path: Path) -> None:
    once = kplug_compress.quantize_run(trained_run, mode="int8", output=tmp_path / "once", plugins=plugins)
    with pytest.raises(kplug.ConfigError, match=r"--mode int8: Keras .* cannot quantize .*already quantized"):
        kplug_compress.quantize_run(once.output_dir, mode="int8", output=tmp_path / "twice", plugins=plugins)
