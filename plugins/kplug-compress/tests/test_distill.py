"""Knowledge distillation as a kplug run: logits and feature terms, checkpoints and resume."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
import yaml
from compress_digits import digits_config
from kplug.testing import metrics_history, run_cli

import kplug_compress
from kplug_compress.distill import distill, tap_model


def distill_config(output: Path, teacher: Path, units: int = 8, **settings) -> dict:
    """An MLP student for the digits teacher (a small CNN whose backbone gives 16 features)."""
    config = digits_config(output)
    config["model"]["backbone"] = {"name": "mlp", "options": {"units": units}}
    config["train"]["epochs"] = 3
    config["train"]["batch_size"] = 60  # 180 training and 60 test digits: one batch shape, one jax compile
    config["distill"] = {"teacher": str(teacher), "temperature": 2.0, "alpha": 0.5, **settings}
    return config


def backbone_features(model: keras.Model, x: np.ndarray) -> np.ndarray:
    extractor = keras.Model(model.inputs, model.get_layer("backbone")(model.inputs[0]))
    return keras.ops.convert_to_numpy(extractor.predict(x, verbose=0))


@pytest.fixture(scope="module")
def logits_only(tmp_path_factory, plugins, digits_run) -> kplug.FitResult:
    """A 16-unit MLP student distilled on the teacher's logits alone (alpha 1: no labels)."""
    config = distill_config(tmp_path_factory.mktemp("logits") / "run", digits_run.run_dir, 16, alpha=1.0)
    return distill(config, plugins=plugins)


def test_student_learns_from_the_teacher_alone(plugins, digits_run, logits_only) -> None:
    result = logits_only
    facts = result.report["distillation"]
    assert facts["teacher_parameters"] == digits_run.model.count_params()
    assert facts["student_parameters"] == result.model.count_params()
    assert facts["student_weight_bytes"] == 4 * facts["student_parameters"]  # float32
    assert facts["teacher_bytes"] > facts["teacher_weight_bytes"]  # a .keras file: weights plus config
    assert facts["teacher_metrics"]["accuracy"] == pytest.approx(digits_run.metrics["accuracy"], abs=1e-6)
    assert result.metrics["accuracy"] > 0.4  # 5 classes: chance is 0.2
    assert result.history["student_loss"][-1] == 0.0  # alpha 1: Keras skips the label loss
    assert "feature_loss" not in result.history
    test = kplug.predict(result.run_dir, split="test", plugins=plugins)
    teacher = kplug.predict(digits_run.run_dir, split="test", plugins=plugins)
    agree = np.mean([s["label"] == t["label"] for s, t in zip(test, teacher, strict=True)])
    assert agree > 0.5
    # the student's run directory is a normal kplug run with the student alone in model.keras
    assert kplug.evaluate(result.run_dir, plugins=plugins)["accuracy"] == pytest.approx(
        result.metrics["accuracy"]
    )
    saved = kplug.plugin.load_model_file(result.run_dir / "model.keras")
    assert saved.count_params() == facts["student_parameters"]
    assert (result.run_dir / "metrics.csv").is_file() and (result.run_dir / "checkpoints").is_dir()


def test_feature_term_brings_the_students_features_to_the_teachers(
    tmp_path, plugins, digits_run, logits_only
) -> None:
    """The student, seed and data of ``logits_only`` plus a term on the backbones' features (16 wide)."""
    features = [{"teacher": "backbone", "student": "backbone", "weight": 5.0}]
    config = distill_config(tmp_path / "features", digits_run.run_dir, 16, alpha=1.0, features=features)
    distilled = distill(config, plugins=plugins)
    loss = distilled.history["feature_loss"]
    assert loss[-1] < 0.9 * loss[0], loss  # the feature term is trained down
    assert distilled.report["distillation"]["projections"] == [None]  # same width: compared as they are
    images, _ = kplug.plugin.load_finished_run(distilled.run_dir, plugins).split_data("test")
    teacher = kplug.plugin.load_model_file(digits_run.run_dir / "model.keras")
    target = backbone_features(teacher, images)
    gaps = {
        name: float(np.mean((backbone_features(run.model, images) - target) ** 2))
        for name, run in (("logits", logits_only), ("features", distilled))
    }
    # a student that ignored the feature term would be as far from the teacher as the logits-only one
    assert gaps["features"] < 0.5 * gaps["logits"], gaps


def test_tap_model_reaches_inside_the_nested_backbone(digits_run) -> None:
    teacher = kplug.plugin.load_model_file(digits_run.run_dir / "model.keras")
    tapped = tap_model(teacher, {"out": "backbone", "conv": "backbone/conv2", "head": "digits"})
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in tapped(x).items()}
    np.testing.assert_allclose(outputs["final_output"], keras.ops.convert_to_numpy(teacher(x)), atol=1e-5)
    np.testing.assert_allclose(outputs["head"], outputs["final_output"], atol=1e-6)
    assert outputs["conv"].shape == (3, 14, 14, 8) and outputs["out"].shape == (3, 16)
    assert len(tapped.weights) == len(teacher.weights)  # shares the layers: no new variables
    with pytest.raises(kplug.ConfigError, match="has no layer 'nothing'; its layers are"):
        tap_model(teacher, {"x": "backbone/nothing"})


class InterruptAt:
    """Presses Ctrl-C at the end of one epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    @kplug.hookimpl
    def kplug_on_epoch_end(self, run, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_cli_distillation_resumes_to_the_same_weights(tmp_path, plugins, digits_run, capsys) -> None:
    """Two stages, a projected feature term and one on inner layers; Ctrl-C in epoch 2, then
    ``kplug train --resume`` gives the uninterrupted run's weights (projections restored too)."""
    features = [
        {"teacher": "backbone", "student": "backbone", "weight": 5.0},  # 16 <- 8: projected
        {"teacher": "backbone/flatten", "student": "backbone/dense1", "weight": 1.0, "loss": "mae"},
    ]

    def config(name: str) -> dict:
        c = distill_config(tmp_path / name, digits_run.run_dir, features=features, alpha=0.9)
        c["model"]["backbone"]["options"]["dropout"] = 0.2  # random state must be restored too
        c["train"] = {
            **c["train"],
            "epochs": None,
            "stages": [{"epochs": 2}, {"epochs": 1, "learning_rate": 1e-3}],
        }
        c["output"]["checkpoint_every"] = 1
        return c

    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(config("whole")))
    assert run_cli(["distill", str(path)], plugins=plugins) == 0
    out = capsys.readouterr().out
    assert "teacher" in out and "student" in out and "Run directory" in out
    facts = json.loads((tmp_path / "whole" / "report.json").read_text())["distillation"]
    assert facts["projections"] == [16, 392]
    assert facts["student_parameters"] < facts["teacher_parameters"]  # 8 units: 6,325 < 6,709
    assert facts["student_bytes"] < facts["teacher_bytes"]
    history = metrics_history(tmp_path / "whole" / "metrics.csv")
    for name in ("feature_loss_0", "feature_loss_1"):
        assert history[name][1] < history[name][0], (name, history[name])  # stage 1 trains them down

    with pytest.raises(KeyboardInterrupt):
        distill(
            config("cut"), plugins=kplug.load_plugins([kplug_compress, InterruptAt(1)], entry_points=False)
        )
    assert not (tmp_path / "cut" / "model.keras").exists()
    assert run_cli(["train", "--resume", str(tmp_path / "cut")], plugins=plugins) == 0
    ours = kplug.plugin.load_model_file(tmp_path / "cut" / "model.keras")
    theirs = kplug.plugin.load_model_file(tmp_path / "whole" / "model.keras")
    for a, b in zip(ours.weights, theirs.weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=0, atol=1e-6
        )
    resumed = metrics_history(tmp_path / "cut" / "metrics.csv")
    for name in ("loss", "feature_loss_0", "feature_loss_1", "logits_loss"):
        np.testing.assert_allclose(resumed[name], history[name], rtol=1e-5)
    report = json.loads((tmp_path / "cut" / "report.json").read_text())["distillation"]
    assert report["student_metrics"] == pytest.approx(facts["student_metrics"])
    # the saved student holds no projection
    assert not any("distill_projection" in layer.name for layer in ours._flatten_layers())


def test_bad_sections(tmp_path, plugins, digits_run, capsys) -> None:
    path = tmp_path / "distill.yaml"
    config = distill_config(tmp_path / "cli", digits_run.run_dir, features=[{"weight": 0.5}])
    bad = {**config, "distill": {**config["distill"], "temperature": -1}}
    path.write_text(yaml.safe_dump(bad))
    assert run_cli(["distill", str(path)], plugins=plugins) == 2
    assert "distill.temperature = -1: Input should be greater than 0" in capsys.readouterr().err
    unknown = r"distill\.features\[0\]\.wieght: unknown field\. Did you mean 'weight'\? Allowed fields"
    with pytest.raises(kplug.ConfigError, match=unknown):
        distill({**config, "distill": {**config["distill"], "features": [{"wieght": 1}]}}, plugins=plugins)
    with pytest.raises(kplug.ConfigError, match="nothing to distil"):
        distill({**config, "distill": {"teacher": str(digits_run.run_dir), "logits": 0}}, plugins=plugins)
    with pytest.raises(kplug.ConfigError, match="needs a `distill:` section"):
        distill({k: v for k, v in config.items() if k != "distill"}, plugins=plugins)
    with pytest.raises(kplug.CheckpointError, match="no such run directory"):
        distill({**config, "distill": {"teacher": str(tmp_path / "nowhere")}}, plugins=plugins)
    wrong = {**config, "distill": {**config["distill"], "features": [{"student": "backbone/conv9"}]}}
    with pytest.raises(kplug.ConfigError, match="'conv9'; its layers are flatten, dense1"):
        distill({**wrong, "output": {"dir": str(tmp_path / "wrong")}}, plugins=plugins)
    # without a plugin that trains distillation runs, a distill section is refused
    with pytest.raises(kplug.PluginError, match="no installed plugin implements it"):
        kplug.fit(
            {**config, "output": {"dir": str(tmp_path / "bare")}},
            plugins=kplug.load_plugins(entry_points=False),
        )


def test_teacher_with_other_labels(tmp_path, plugins, digits_run) -> None:
    config = distill_config(tmp_path / "other", digits_run.run_dir)
    config["data"]["where"] = {"label": [5, 6, 7, 8, 9]}
    with pytest.raises(kplug.ConfigError, match="must share the examples' label mapping"):
        distill(config, plugins=plugins)
