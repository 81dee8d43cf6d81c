"""LoRA: only adapters train in adapted layers, the merged model is a plain model that predicts the same."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from compress_digits import digits_config
from kplug.plugin import iter_layers, load_model_file
from kplug.testing import latest_checkpoint

import kplug_compress
from kplug_compress.export import artifact_outputs, export_run, keras_outputs, max_difference, probe_inputs
from kplug_compress.lora import LoraAdapters, enable_adapters


def lora_config(output: Path, source: Path, **options) -> dict:
    """Fine-tune the digits backbone (initialised from ``source``) with LoRA adapters and a new head."""
    config = digits_config(output, callbacks=[{"name": "lora", "options": {"rank": 2, **options}}])
    config["model"]["backbone"]["init"] = {"from": str(source), "map": {"backbone/(.*)": "backbone/\\1"}}
    config["train"]["optimizer"]["learning_rate"] = 1e-2
    return config


def layer_at(model: keras.Model, path: str) -> keras.layers.Layer:
    return dict(iter_layers(model))[path]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, plugins, digits_run) -> kplug.FitResult:
    return kplug.fit(
        lora_config(tmp_path_factory.mktemp("lora") / "run", digits_run.run_dir), plugins=plugins
    )


def test_only_adapters_train(lora_run: kplug.FitResult, digits_run: kplug.FitResult) -> None:
    source = load_model_file(digits_run.run_dir / "model.keras")
    dense = layer_at(lora_run.model, "backbone/embedding")
    assert dense.lora_enabled and dense.lora_rank == 2
    # the base kernel and bias are bit-identical to the initialising run's; the adapters moved
    before = layer_at(source, "backbone/embedding")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(dense._kernel), keras.ops.convert_to_numpy(before.kernel)
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(dense.bias), keras.ops.convert_to_numpy(before.bias)
    )
    assert np.abs(keras.ops.convert_to_numpy(dense.lora_kernel_b)).max() > 0  # initialised to zeros
    # layers without adapters outside `train` are frozen too
    conv = keras.ops.convert_to_numpy(layer_at(lora_run.model, "backbone/conv1").kernel)
    np.testing.assert_array_equal(conv, keras.ops.convert_to_numpy(layer_at(source, "backbone/conv1").kernel))
    trainable = {v.path for v in lora_run.model.trainable_variables}
    assert {p for p in trainable if not p.startswith("digits")} == {
        "embedding/lora_kernel_a",
        "embedding/lora_kernel_b",
    }, trainable
    assert lora_run.metrics["accuracy"] > 0.4  # 5 classes: chance is 0.2
    assert lora_run.report["lora"]["layers"] == ["backbone/embedding"]
    assert lora_run.report["lora"]["adapter_parameters"] == 2 * (
        dense.kernel.shape[0] + dense.kernel.shape[1]
    )


def test_merged_model_is_plain_and_predicts_the_same(
    lora_run: kplug.FitResult, plugins: kplug.Plugins
) -> None:
    path = lora_run.run_dir / "model.keras"
    with zipfile.ZipFile(path) as archive:
        assert "lora" not in archive.read("config.json").decode()
    merged = load_model_file(path)
    assert not any(getattr(layer, "lora_enabled", False) for _, layer in iter_layers(merged))
    images = np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(merged(images)),
        keras.ops.convert_to_numpy(lora_run.model(images)),
        atol=1e-5,
    )
    assert json.loads((lora_run.run_dir / "report.json").read_text())["lora"]["rank"] == 2
    # kplug's own evaluate reads the merged model
    assert kplug.evaluate(lora_run.run_dir, plugins=plugins)["accuracy"] == pytest.approx(
        lora_run.metrics["accuracy"], abs=1e-6
    )


def test_merged_model_exports(lora_run: kplug.FitResult) -> None:
    assert export_run(lora_run.run_dir, "keras").max_abs_diff < 1e-6


class StopAfterEpoch:
    """A throwaway plugin that presses Ctrl-C when one epoch ends (before its checkpoint is written)."""

    def __init__(self, epoch: int | None) -> None:
        self.epoch = epoch

    @kplug.hookimpl
    def kplug_on_epoch_end(self, run, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_resumed_lora_run_ends_with_the_uninterrupted_weights(tmp_path, plugins, digits_run) -> None:
    def config(name: str) -> dict:
        run = lora_config(tmp_path / name, digits_run.run_dir)
        run["train"]["epochs"] = 3
        run["output"]["checkpoint_every"] = 1
        return run

    whole = kplug.fit(config("whole"), plugins=plugins)
    stop = kplug.load_plugins([kplug_compress, StopAfterEpoch(1)], entry_points=False)
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(config("cut"), plugins=stop)
    assert latest_checkpoint(tmp_path / "cut").state.epoch == 1  # resumed from the end of epoch 1
    resumed = kplug.fit(config("cut"), resume=tmp_path / "cut", plugins=plugins)
    assert [v.path for v in resumed.model.weights] == [v.path for v in whole.model.weights]
    for ours, theirs in zip(resumed.model.weights, whole.model.weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-6
        )
    np.testing.assert_allclose(resumed.history["loss"], whole.history["loss"], rtol=1e-5)


def test_targets_that_match_nothing(tmp_path, plugins, digits_run) -> None:
    with pytest.raises(kplug.ConfigError, match=r"targets = \['heads/none'\].*backbone/embedding"):
        kplug.fit(lora_config(tmp_path / "run", digits_run.run_dir, targets=["heads/none"]), plugins=plugins)


def test_targets_are_layer_path_patterns(tmp_path, plugins, digits_run) -> None:
    """The same dialect as every kplug pattern: a ``re:`` regex selects too, a broken one is refused."""
    settings = LoraAdapters(targets=["re:backbone/emb.*"])
    source = load_model_file(digits_run.run_dir / "model.keras")
    assert enable_adapters(source, settings) == ["backbone/embedding"]
    with pytest.raises(kplug.ConfigError, match=r"lora option targets: 're:\[' is not a valid regex"):
        LoraAdapters(targets=["re:["])


def test_bad_rank(tmp_path, plugins, digits_run) -> None:
    with pytest.raises(kplug.ConfigError, match="rank = 0"):
        kplug.fit(lora_config(tmp_path / "run", digits_run.run_dir, rank=0), plugins=plugins)


@pytest.mark.parametrize("fmt", ["saved_model", "onnx"])
@pytest.mark.slow
def test_merged_model_exports_to_saved_model_and_onnx(lora_run: kplug.FitResult, fmt: str) -> None:
    if fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    result = export_run(lora_run.run_dir, fmt)
    assert result.max_abs_diff < 1e-4  # the export predicts what the merged model.keras predicts
    batch = probe_inputs(lora_run.model)
    served = artifact_outputs(fmt, result.path, lora_run.model, batch)
    # ... which is what the trained model with its unmerged adapters predicts
    assert max_difference(keras_outputs(lora_run.model, batch), served) < 1e-4


TEXT_DATA = Path(__file__).resolve().parents[2] / "kplug-text" / "tests" / "data" / "sst2_sample.tsv"
ATTENTION = "backbone/encoder/transformer_layer_0/self_attention_layer"


@pytest.mark.slow("jax")  # XLA compiles the encoder's train step for about 28 s: slow on jax, quick elsewhere
def test_lora_on_the_einsum_dense_attention_projections_of_a_text_encoder(tmp_path: Path) -> None:
    """MiniLM's architecture (a keras-hub BERT with its vocabulary), tiny and randomly initialised."""
    kplug_text = pytest.importorskip("kplug_text")
    from kplug_text.checkpoints import minilm_path

    architecture = {"num_layers": 1, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64}
    config = {
        "name": "text-lora",
        "seed": 5,
        "data": {
            "source": "tsv",
            "options": {"path": str(TEXT_DATA), "label": "label", "text": True},
            "split": {"validation": 0.25},
        },
        "model": {
            "backbone": {
                "name": "bert",
                "options": {
                    "vocabulary": str(minilm_path() / "vocab.txt"),
                    "pooling": "mean",
                    "sequence_length": 24,
                    **architecture,
                },
            },
            "heads": [{"name": "classification", "id": "sentiment"}],
        },
        "callbacks": [
            {"name": "lora", "options": {"rank": 2, "targets": ["backbone/*/query", "backbone/*/value"]}}
        ],
        "train": {"epochs": 2, "batch_size": 16, "verbose": 0, "optimizer": {"learning_rate": 3e-3}},
        "output": {"dir": str(tmp_path / "run")},
    }
    result = kplug.fit(config, plugins=kplug.load_plugins([kplug_compress, kplug_text], entry_points=False))
    assert result.report["lora"]["layers"] == [f"{ATTENTION}/query", f"{ATTENTION}/value"]
    query = layer_at(result.model, f"{ATTENTION}/query")
    assert isinstance(query, keras.layers.EinsumDense) and query.lora_rank == 2
    trainable = {id(v) for v in result.model.trainable_variables}
    assert id(query.lora_kernel_a) in trainable and id(query._kernel) not in trainable
    assert np.abs(keras.ops.convert_to_numpy(query.lora_kernel_b)).max() > 0  # initialised to zeros
    # the merged model.keras is a plain model predicting what the adapted one predicts
    merged = load_model_file(result.run_dir / "model.keras")
    assert not any(getattr(layer, "lora_enabled", False) for _, layer in iter_layers(merged))
    batch = probe_inputs(result.model)  # token ids, segment ids and padding mask, by input name
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(merged(batch, training=False)),
        keras.ops.convert_to_numpy(result.model(batch, training=False)),
        atol=1e-5,
    )
