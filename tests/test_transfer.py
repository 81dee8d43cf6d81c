"""Transfer utilities: stable paths, freezing by pattern, init from a checkpoint with a map."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kplug.errors import CheckpointError, ConfigError
from kplug.transfer import init_from_checkpoint, set_trainable, variable_paths


def kplug_like_model(width: int = 4, classes: int = 3) -> keras.Model:
    """A model shaped like kplug's: inputs -> backbone -> one head per id."""
    inputs = keras.Input((5,), name="inputs")
    hidden = keras.Input((5,))
    backbone = keras.Model(hidden, keras.layers.Dense(width, name="dense1")(hidden), name="backbone")
    head = keras.Sequential([keras.layers.Dense(classes, name="logits")], name="digits")
    return keras.Model(inputs, head(backbone(inputs)))


def test_paths_come_from_layer_names_not_build_order():
    kplug_like_model()  # creating another model first shifts Keras' automatic names
    paths = list(variable_paths(kplug_like_model()))
    assert paths == [
        "backbone/dense1/kernel",
        "backbone/dense1/bias",
        "heads/digits/logits/kernel",
        "heads/digits/logits/bias",
    ]


def test_set_trainable_by_glob():
    model = kplug_like_model()
    assert set_trainable(model, ["heads/*"]) == ["heads/digits"]
    assert [v.path.split("/")[-1] for v in model.trainable_weights] == ["kernel", "bias"]
    assert len(model.trainable_weights) == 2 and model.get_layer("backbone").trainable is False
    assert set_trainable(model, "all") == ["backbone", "heads/digits"]
    assert len(model.trainable_weights) == 4
    set_trainable(model, ["backbone/dense1"])
    assert len(model.trainable_weights) == 2 and model.get_layer("digits").trainable is False


def test_pattern_matching_nothing_lists_the_paths():
    with pytest.raises(
        ConfigError, match=r"trainable pattern 'head/\*' matches no layer. Layer paths: inputs, backbone"
    ):
        set_trainable(kplug_like_model(), ["head/*"])


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
    assert "heads/digits/logits/kernel" in same_paths.shape_mismatch  # (4, 10) vs (4, 5)


def test_init_errors(tmp_path):
    kplug_like_model().save(tmp_path / "m.keras")
    with pytest.raises(CheckpointError, match="no model file there"):
        init_from_checkpoint(kplug_like_model(), str(tmp_path / "missing"), {})
    with pytest.raises(CheckpointError, match="no backbone variable was initialised"):
        init_from_checkpoint(kplug_like_model(), str(tmp_path / "m.keras"), {"nothing/(.*)": "x/\\1"})
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
