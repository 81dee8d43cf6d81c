"""The one layer-path pattern dialect: stable paths, globs, ``re:`` regexes, layers and variables."""

from __future__ import annotations

import keras
import pytest

from kplug.errors import ConfigError
from kplug.model.paths import (
    PathPattern,
    check_pattern,
    enclosing_layers,
    iter_layers,
    matches,
    matching_layers,
    variable_paths,
)
from kplug.model.rates import rate_multipliers


def kplug_like_model() -> keras.Model:
    """inputs -> backbone (dense1, block/dense2) -> head ``digits`` (logits)."""
    inputs = keras.Input((5,), name="inputs")
    hidden = keras.Input((5,))
    block = keras.Sequential([keras.layers.Dense(3, name="dense2")], name="block")
    backbone = keras.Model(hidden, block(keras.layers.Dense(4, name="dense1")(hidden)), name="backbone")
    head = keras.Sequential([keras.layers.Dense(2, name="logits")], name="digits")
    return keras.Model(inputs, head(backbone(inputs)))


def test_paths_come_from_layer_names_not_build_order():
    kplug_like_model()  # creating another model first shifts Keras' automatic names
    model = kplug_like_model()
    layers = [path for path, layer in iter_layers(model) if not isinstance(layer, keras.layers.InputLayer)]
    assert layers == [  # parents first; Keras' automatic names (input_layer_<n>) left out
        "backbone",
        "backbone/dense1",
        "backbone/block",
        "backbone/block/dense2",
        "heads/digits",
        "heads/digits/logits",
    ]
    assert list(variable_paths(model)) == [
        "backbone/dense1/kernel",
        "backbone/dense1/bias",
        "backbone/block/dense2/kernel",
        "backbone/block/dense2/bias",
        "heads/digits/logits/kernel",
        "heads/digits/logits/bias",
    ]


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("backbone/*", "backbone/block/dense2", True),  # * spans "/"
        ("backbone/*", "backbone", False),  # a whole path, not a prefix
        ("backbone", "backbone/dense1", False),
        ("dense1", "backbone/dense1", False),  # a layer name is not a path
        ("*/dense?", "backbone/dense1", True),
        ("backbone/dense[23]", "backbone/dense1", False),
        ("heads/*/logits", "heads/digits/logits", True),
        ("re:backbone/d", "backbone/dense1", False),  # regexes match the whole path too
        ("re:backbone/dense\\d", "backbone/dense1", True),
        ("re:heads/.*", "backbone/heads/x", False),
        ("re:.*dense.*", "backbone/block/dense2", True),
        ("backbone/dense1.*", "backbone/dense1", False),  # a glob's "." is a dot, not a regex
    ],
)
def test_globs_and_regexes_match_whole_paths(pattern, path, expected):
    assert matches(pattern, path) is expected
    assert PathPattern.compile(pattern, "field").matches(path) is expected


def test_a_pattern_selects_a_variable_by_its_path_or_a_layer_holding_it():
    assert enclosing_layers("backbone/block/dense2/kernel") == [
        "backbone/block/dense2",
        "backbone/block",
        "backbone",
    ]
    selected = {
        text: [
            path
            for path in variable_paths(kplug_like_model())
            if check_pattern(text, "f").matches_variable(path)
        ]
        for text in (
            "backbone/block",
            "*/kernel",
            "re:heads/digits/logits/bias",
            "backbone/dense",
            "backbone/d*",
        )
    }
    assert selected == {
        "backbone/block": ["backbone/block/dense2/kernel", "backbone/block/dense2/bias"],
        "*/kernel": ["backbone/dense1/kernel", "backbone/block/dense2/kernel", "heads/digits/logits/kernel"],
        "re:heads/digits/logits/bias": ["heads/digits/logits/bias"],
        "backbone/dense": [],  # the layer is dense1: no partial names
        "backbone/d*": ["backbone/dense1/kernel", "backbone/dense1/bias"],
    }


def test_bad_patterns_name_the_field_and_the_value():
    with pytest.raises(ConfigError) as bad_regex:
        check_pattern("re:backbone/(conv", "train.stages[1].trainable")
    assert str(bad_regex.value).startswith(
        "train.stages[1].trainable: 're:backbone/(conv' is not a valid regex (missing ), unterminated"
    )
    for empty in ("", "re:"):
        with pytest.raises(
            ConfigError, match=rf"^model\.x: {empty!r} is not a layer-path pattern; write globs"
        ):
            check_pattern(empty, "model.x")


def test_a_pattern_that_matches_no_layer_lists_the_paths():
    model = kplug_like_model()
    paths = [path for path, layer in iter_layers(model) if not isinstance(layer, keras.layers.InputLayer)]
    assert matching_layers(paths, ["backbone/dense*", "re:heads/[^/]+"], "where") == {
        "backbone/dense1",
        "heads/digits",
    }
    with pytest.raises(ConfigError) as refused:
        matching_layers(paths, ["heads/*", "backbone/conv*"], "train.stages[0].frozen")
    assert str(refused.value).startswith(
        "train.stages[0].frozen: pattern 'backbone/conv*' matches no layer. Layer paths: backbone, "
    )
    assert "backbone/block/dense2, heads/digits, heads/digits/logits. Patterns are globs" in str(
        refused.value
    )


def test_rates_select_variables_by_name_too():
    model = kplug_like_model()
    rates = rate_multipliers(model, 0.1, {"*/bias": 0.05, "backbone/block": 0.025}, None, "train")
    assert rates == pytest.approx(
        {
            "backbone/dense1/kernel": 1.0,
            "backbone/dense1/bias": 0.5,
            "backbone/block/dense2/kernel": 0.25,
            "backbone/block/dense2/bias": 0.5,  # first match wins
            "heads/digits/logits/kernel": 1.0,
            "heads/digits/logits/bias": 0.5,
        }
    )
    with pytest.raises(ConfigError, match=r"^train\.learning_rates: pattern\(s\) 'dense1' match no layer"):
        rate_multipliers(model, 0.1, {"dense1": 0.01}, None, "train")
