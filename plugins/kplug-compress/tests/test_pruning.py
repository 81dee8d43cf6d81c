"""Magnitude pruning: target sparsity per layer, masks kept through fine-tuning, report and accuracy."""

from __future__ import annotations

from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from conftest import digits_config

import kplug_compress
from kplug_compress.pruning import grow_mask, kernel_variable, polynomial_sparsity, prunable_layers


class ZerosAtStageStart:
    """A throwaway plugin recording which kernel weights are zero when each stage starts."""

    def __init__(self) -> None:
        self.zeros: dict[int, dict[str, np.ndarray]] = {}

    @kplug.hookimpl
    def kplug_on_stage_start(self, trainer, model, stage):
        self.zeros[stage] = {
            path: keras.ops.convert_to_numpy(kernel_variable(layer)) == 0
            for path, layer in prunable_layers(model, ["backbone/*"])
        }


def prune_config(output: Path, source: Path, **options) -> dict:
    config = digits_config(
        output, callbacks=[{"name": "prune", "options": {"target_sparsity": 0.6, **options}}]
    )
    config["model"]["backbone"]["init"] = {"from": str(source), "map": {"backbone/(.*)": "backbone/\\1"}}
    config["train"].pop("epochs")
    config["train"]["stages"] = [{"epochs": 2}, {"epochs": 1, "learning_rate": 1e-3}]
    return config


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, digits_run) -> tuple[kplug.FitResult, ZerosAtStageStart]:
    recorder = ZerosAtStageStart()
    plugins = kplug.load_plugins([kplug_compress, recorder], entry_points=False)
    config = prune_config(tmp_path_factory.mktemp("prune") / "run", digits_run.run_dir, frequency=2)
    return kplug.fit(config, plugins=plugins), recorder


def test_every_layer_reaches_the_target_and_stays_pruned(pruned, digits_run) -> None:
    result, recorder = pruned
    assert set(recorder.zeros) == {0, 1}
    assert all(mask.mean() < 0.05 for mask in recorder.zeros[0].values())  # a dense model to start
    for path, layer in prunable_layers(result.model, ["backbone/*"]):
        values = keras.ops.convert_to_numpy(kernel_variable(layer))
        assert (values == 0).sum() == np.floor(0.6 * values.size), path
        # zero after the pruning stage -> still zero after fine-tuning (the masks were kept)
        assert np.all(values[recorder.zeros[1][path]] == 0), path
        assert recorder.zeros[1][path].sum() == np.floor(0.6 * values.size), path
    (_, head), *_ = prunable_layers(result.model, ["heads/*"])
    assert (keras.ops.convert_to_numpy(head.kernel) == 0).mean() < 0.05  # only the targets are pruned
    assert result.metrics["accuracy"] >= digits_run.metrics["accuracy"] - 0.1


def test_report_gives_per_layer_sparsity_and_accuracy(pruned) -> None:
    result, _ = pruned
    report = result.report["pruning"]
    assert set(report["layers"]) == {"backbone/conv1", "backbone/conv2", "backbone/embedding"}
    assert all(value == pytest.approx(0.6, abs=0.03) for value in report["layers"].values())
    assert report["metrics"]["accuracy"] == result.metrics["accuracy"]
    assert report["weights_bytes_zlib"] < report["weights_bytes"]
    saved = kplug.transfer.load_model_file(result.run_dir / "model.keras")
    assert (
        keras.ops.convert_to_numpy(saved.get_layer("backbone").get_layer("embedding").kernel) == 0
    ).mean() > 0.59


def test_schedule_and_masks() -> None:
    assert polynomial_sparsity(0.0, 0.0, 0.8) == 0.0
    assert polynomial_sparsity(1.0, 0.0, 0.8) == pytest.approx(0.8)
    assert 0.0 < polynomial_sparsity(0.5, 0.0, 0.8) < 0.8
    values = np.array([0.0, -3.0, 0.5, 2.0, -0.1, 1.0])
    mask = grow_mask(values, values != 0, 0.5)
    assert mask.tolist() == [False, True, False, True, False, True]
    assert grow_mask(values * 10, mask, 0.3).tolist() == mask.tolist()  # masks never shrink


def test_bad_options(tmp_path, plugins, digits_run) -> None:
    with pytest.raises(kplug.ConfigError, match=r"target_sparsity = 1.5"):
        kplug.fit(prune_config(tmp_path / "a", digits_run.run_dir, target_sparsity=1.5), plugins=plugins)
    with pytest.raises(kplug.ConfigError, match=r"targets = \['heads/nothing'\]"):
        kplug.fit(
            prune_config(tmp_path / "b", digits_run.run_dir, targets=["heads/nothing"]), plugins=plugins
        )
