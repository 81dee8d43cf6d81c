"""Init from a checkpoint by stable path (with a map), and freezing by pattern on those paths."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kplug.config.schema import StageConfig
from kplug.errors import CheckpointError, ConfigError
from kplug.model.checkpoint_init import init_from_checkpoint
from kplug.model.freezing import apply_stage_trainable
from kplug.model.paths import variable_paths


def kplug_like_model(width: int = 4, classes: int = 3) -> keras.Model:
    """A model shaped like kplug's: inputs -> backbone -> one head per id."""
    inputs = keras.Input((5,), name="inputs")
    hidden = keras.Input((5,))
    backbone = keras.Model(hidden, keras.layers.Dense(width, name="dense1")(hidden), name="backbone")
    head = keras.Sequential([keras.layers.Dense(classes, name="logits")], name="digits")
    return keras.Model(inputs, head(backbone(inputs)))


def test_freezing_by_glob_on_stable_paths():
    model = kplug_like_model()
    assert apply_stage_trainable(model, StageConfig(epochs=1, trainable=["heads/*"])) == ["heads/digits"]
    assert [v.path.split("/")[-1] for v in model.trainable_weights] == ["kernel", "bias"]
    assert len(model.trainable_weights) == 2 and model.get_layer("backbone").trainable is False
    assert apply_stage_trainable(model, StageConfig(epochs=1)) == ["backbone", "heads/digits"]
    assert len(model.trainable_weights) == 4
    apply_stage_trainable(model, StageConfig(epochs=1, trainable=["backbone/dense1"]))
    assert len(model.trainable_weights) == 2 and model.get_layer("digits").trainable is False


def test_init_from_checkpoint_with_a_map(tmp_path):
    source = kplug_like_model(classes=10)
    source.save(tmp_path / "source.keras")
    target = kplug_like_model(classes=5)
    report = init_from_checkpoint(target, str(tmp_path / "source.keras"), {"backbone/(.*)": "backbone/\\1"})
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(target.get_layer("backbone").weights[0]),
        keras.ops.convert_to_numpy(source.get_layer("backbone").weights[0]),
    )
    assert sorted(report.initialised) == ["backbone/dense1/bias", "backbone/dense1/kernel"]
    assert report.left_new == ["heads/digits/logits/kernel", "heads/digits/logits/bias"]
    same_paths = init_from_checkpoint(kplug_like_model(classes=5), str(tmp_path / "source.keras"), {})
    assert "heads/digits/logits/kernel" in same_paths.skipped  # (4, 10) vs (4, 5)


def test_init_errors(tmp_path):
    kplug_like_model().save(tmp_path / "m.keras")
    with pytest.raises(CheckpointError, match="nothing to load there"):
        init_from_checkpoint(kplug_like_model(), str(tmp_path / "missing"), {})
    with pytest.raises(ConfigError, match=r"rule\(s\) 'nothing/\(\.\*\)' match no variable"):
        init_from_checkpoint(kplug_like_model(), str(tmp_path / "m.keras"), {"nothing/(.*)": "x/\\1"})
    with pytest.raises(CheckpointError, match="no backbone variable was initialised"):
        init_from_checkpoint(kplug_like_model(), str(tmp_path / "m.keras"), {"backbone/(.*)": "x/\\1"})
    with pytest.raises(ConfigError, match="is not a valid regex"):
        init_from_checkpoint(kplug_like_model(), str(tmp_path / "m.keras"), {"(": "x"})


def test_auto_named_layers_that_do_not_match_are_an_error_not_a_silent_skip(tmp_path):
    def auto_named() -> keras.Model:
        inputs = keras.Input((5,))
        backbone = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)], name="backbone")
        head = keras.Sequential([keras.layers.Dense(3, name="logits")], name="digits")
        return keras.Model(inputs, head(backbone(inputs)))

    auto_named().save(tmp_path / "m.keras")  # its Dense is "dense_<n>"; the next model's is "dense_<n+1>"
    with pytest.raises(CheckpointError, match="give the backbone's layers explicit names"):
        init_from_checkpoint(auto_named(), str(tmp_path / "m.keras"), {"backbone/(.*)": "backbone/\\1"})


def test_init_from_named_arrays_weights_h5_and_strict(tmp_path):
    source = kplug_like_model(classes=10)
    arrays = {path: keras.ops.convert_to_numpy(v) for path, v in variable_paths(source).items()}
    np.savez(tmp_path / "arrays.npz", **arrays)
    for path, value in arrays.items():
        (tmp_path / "npy" / path).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "npy" / f"{path}.npy", value)
    for where in ("arrays.npz", "npy"):
        target = kplug_like_model(classes=5)
        report = init_from_checkpoint(target, str(tmp_path / where), {})
        assert sorted(report.initialised) == ["backbone/dense1/bias", "backbone/dense1/kernel"]
        assert list(report.skipped) == ["heads/digits/logits/kernel", "heads/digits/logits/bias"]
        assert report.unused == ["heads/digits/logits/bias", "heads/digits/logits/kernel"]
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(target.get_layer("backbone").weights[0]),
            arrays["backbone/dense1/kernel"],
        )
    with pytest.raises(CheckpointError) as skipped:
        init_from_checkpoint(kplug_like_model(classes=5), str(tmp_path / "arrays.npz"), {}, strict=True)
    assert str(skipped.value) == (
        f"model.backbone.init (strict): 2 variable(s) not initialised from {tmp_path / 'arrays.npz'}: "
        "heads/digits/logits/kernel (heads/digits/logits/kernel: source shape (4, 10), target (4, 5)); "
        "heads/digits/logits/bias (heads/digits/logits/bias: source shape (10,), target (5,))."
    )
    np.savez(tmp_path / "no_bias.npz", **{k: v for k, v in arrays.items() if k != "backbone/dense1/bias"})
    with pytest.raises(CheckpointError) as left_new:
        init_from_checkpoint(kplug_like_model(classes=10), str(tmp_path / "no_bias.npz"), {}, strict=True)
    assert str(left_new.value) == (
        f"model.backbone.init (strict): 1 variable(s) not initialised from {tmp_path / 'no_bias.npz'}: "
        "backbone/dense1/bias (no source)."
    )
    strict = init_from_checkpoint(kplug_like_model(classes=10), str(tmp_path / "arrays.npz"), {}, strict=True)
    assert len(strict.initialised) == 4 and not strict.skipped and not strict.left_new
    # Keras .weights.h5 files keep Keras' own layer paths and variable indices: map them
    source.save_weights(tmp_path / "source.weights.h5")
    target = kplug_like_model(classes=10)
    report = init_from_checkpoint(
        target, str(tmp_path / "source.weights.h5"), {"backbone/dense1/kernel": "functional/dense/0"}
    )
    assert report.initialised == {"backbone/dense1/kernel": "functional/dense/0"}
    np.save(tmp_path / "evil.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="pickled arrays are refused"):
        init_from_checkpoint(kplug_like_model(), str(tmp_path), {})
