"""kplug export: SavedModel, ONNX and .keras from a run trained on the active backend."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from kplug.testing import run_cli

from kplug_compress import export
from kplug_compress.export import export_run


def held_out_images(run_dir: Path, plugins: kplug.Plugins) -> np.ndarray:
    """The run's own test images (real data, not the random probe batch)."""
    images, _ = kplug.plugin.load_finished_run(run_dir, plugins=plugins).split_data("test")
    return images[:32]


def reference(run_dir: Path, images: np.ndarray) -> np.ndarray:
    """The in-memory Keras model's logits on the active backend."""
    model = kplug.plugin.load_model_file(run_dir / "model.keras")
    return keras.ops.convert_to_numpy(model(images, training=False))


# Export rebuilds the model in TensorFlow whatever backend trained it (10-14 s a format): the quick set
# exports each format from one backend, CI's slow pass from every backend.
@pytest.mark.slow("jax", "tensorflow")
def test_saved_model_predicts_like_the_keras_model(
    digits_run: kplug.FitResult, plugins: kplug.Plugins
) -> None:
    result = export_run(digits_run.run_dir, "saved_model")
    assert result.path == digits_run.run_dir / "export" / "saved_model"
    assert result.backend == "tensorflow"  # whatever backend trained the run
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    images = held_out_images(digits_run.run_dir, plugins)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(result.path))  # keep it alive while serving
    served = loaded.serve(images)
    np.testing.assert_allclose(np.asarray(served), reference(digits_run.run_dir, images), atol=1e-4)
    recorded = json.loads((result.path.parent / "export.json").read_text())
    assert recorded["saved_model"]["trained_backend"] == keras.backend.backend()


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
@pytest.mark.slow("jax", "torch")
def test_onnx_predicts_like_the_keras_model(digits_run: kplug.FitResult, plugins: kplug.Plugins) -> None:
    import onnxruntime

    result = export_run(digits_run.run_dir, "onnx")
    assert result.path.suffix == ".onnx" and result.max_abs_diff < 1e-4
    images = held_out_images(digits_run.run_dir, plugins)
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {session.get_inputs()[0].name: images})
    np.testing.assert_allclose(logits, reference(digits_run.run_dir, images), atol=1e-4)
    assert np.array_equal(logits.argmax(-1), reference(digits_run.run_dir, images).argmax(-1))


def test_keras_export_through_the_cli(
    digits_run: kplug.FitResult, plugins: kplug.Plugins, tmp_path: Path
) -> None:
    target = tmp_path / "plain.keras"
    code = run_cli(
        ["export", str(digits_run.run_dir), "--format", "keras", "--output", str(target)], plugins=plugins
    )
    assert code == 0 and target.is_file()
    images = held_out_images(digits_run.run_dir, plugins)
    exported = keras.ops.convert_to_numpy(kplug.plugin.load_model_file(target)(images))
    np.testing.assert_array_equal(exported, reference(digits_run.run_dir, images))


def test_missing_tensorflow_names_what_to_install(
    digits_run: kplug.FitResult, plugins: kplug.Plugins, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        export.importlib.util,
        "find_spec",
        lambda name: None if name in ("tensorflow", "tf2onnx") else real(name),
    )
    with pytest.raises(kplug.PluginError, match=r"needs tensorflow, tf2onnx.*pip install tensorflow tf2onnx"):
        export_run(digits_run.run_dir, "onnx")
    assert run_cli(["export", str(digits_run.run_dir), "--format", "saved_model"], plugins=plugins) == 2
    assert "needs tensorflow" in capsys.readouterr().err


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(kplug.CheckpointError, match="model.keras is missing"):
        export_run(tmp_path, "keras")


def test_unknown_format_and_bad_output(digits_run: kplug.FitResult, tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError, match="choose one of saved_model, onnx, keras"):
        export_run(digits_run.run_dir, "tflite")
    with pytest.raises(kplug.ConfigError, match="a keras export is a file ending in .keras"):
        export_run(digits_run.run_dir, "keras", output=tmp_path / "model")


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
@pytest.mark.slow
def test_a_mixed_precision_run_exports_as_float32(mixed_run: kplug.FitResult, precision_plugins) -> None:
    import onnxruntime

    result = export_run(mixed_run.run_dir, "onnx")  # bfloat16 alone: a graph onnxruntime refuses
    assert result.max_abs_diff < 1e-4
    policy = mixed_run.report["precision"]
    assert result.precision == {"model": policy, "written_as": "float32"}
    recorded = json.loads((result.path.parent / "export.json").read_text())
    assert recorded["onnx"]["precision"] == {"model": policy, "written_as": "float32"}
    images = held_out_images(mixed_run.run_dir, precision_plugins)
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {session.get_inputs()[0].name: images})
    assert logits.dtype == np.float32
    # the float32 export predicts what the half-precision model predicts, to half precision
    trained = reference(mixed_run.run_dir, images).astype("float32")
    np.testing.assert_allclose(logits, trained, atol=0.05)
    assert np.mean(logits.argmax(-1) == trained.argmax(-1)) >= 0.9
