"""Knowledge distillation: a smaller student learns from a trained teacher's logits."""

from __future__ import annotations

from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from conftest import digits_config
from kplug.cli import main

from kplug_compress.distill import distill


def distill_config(output: Path, teacher: Path, **settings) -> dict:
    """An MLP student with 8 hidden units for the digits teacher."""
    config = digits_config(output)
    config["model"]["backbone"] = {"name": "mlp", "options": {"units": 8}}
    config["train"]["epochs"] = 3
    config["distill"] = {"teacher": str(teacher), "temperature": 2.0, "alpha": 0.5, **settings}
    return config


def test_student_learns_from_the_teacher_alone(tmp_path, plugins, digits_run) -> None:
    # alpha 1: the labels are not used at all, only the teacher's logits
    result = distill(distill_config(tmp_path / "student", digits_run.run_dir, alpha=1.0), plugins=plugins)
    facts = result.report["distillation"]
    assert facts["student_parameters"] < facts["teacher_parameters"]
    assert facts["teacher_metrics"]["accuracy"] == pytest.approx(digits_run.metrics["accuracy"], abs=1e-6)
    assert result.metrics["accuracy"] > 0.4  # 5 classes: chance is 0.2
    test = kplug.predict(result.run_dir, split="test", plugins=plugins)
    teacher = kplug.predict(digits_run.run_dir, split="test", plugins=plugins)
    agree = np.mean(
        [s["digits"]["label"] == t["digits"]["label"] for s, t in zip(test, teacher, strict=True)]
    )
    assert agree > 0.5
    # the student's run directory is a normal kplug run
    assert kplug.evaluate(result.run_dir, plugins=plugins)["accuracy"] == pytest.approx(
        result.metrics["accuracy"]
    )
    assert isinstance(kplug.transfer.load_model_file(result.run_dir / "model.keras"), keras.Model)


def test_cli_and_bad_sections(tmp_path, plugins, digits_run, capsys) -> None:
    import yaml

    path = tmp_path / "distill.yaml"
    config = distill_config(tmp_path / "cli", digits_run.run_dir, temperature=-1)
    path.write_text(yaml.safe_dump(config))
    assert main(["distill", str(path)], plugins=plugins) == 2
    assert "temperature" in capsys.readouterr().err
    config.pop("distill")
    with pytest.raises(kplug.ConfigError, match="needs a `distill:` section"):
        distill(config, plugins=plugins)
    config["distill"] = {"teacher": str(tmp_path / "nowhere")}
    with pytest.raises(kplug.CheckpointError, match="no such run directory"):
        distill(config, plugins=plugins)


def test_teacher_with_other_labels(tmp_path, plugins, digits_run) -> None:
    config = distill_config(tmp_path / "other", digits_run.run_dir)
    config["data"]["where"] = {"label": [5, 6, 7, 8, 9]}
    with pytest.raises(kplug.ConfigError, match="must share the examples' label mapping"):
        distill(config, plugins=plugins)
