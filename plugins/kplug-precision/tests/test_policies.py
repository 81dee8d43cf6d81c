"""kplug-precision: islands really compute in float32, the rest in half precision, loss scaling
adapts, and training under each policy matches float32 accuracy on an MNIST slice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import kplug
import numpy as np
import pytest
from kplug.testing import dtype_policy

import kplug_precision

REPO = Path(__file__).resolve().parents[3]
MNIST = REPO / "examples" / "data" / "mnist"
HALF = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def norm_cnn(input_shape: tuple[int, ...]) -> keras.Model:
    """A backbone with every kind of default island: first conv, normalisation, softmax."""
    inputs = keras.Input(input_shape, name="images")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(32, activation="relu", name="dense")(x)
    x = keras.layers.LayerNormalization(name="ln")(x)
    gates = keras.layers.Dense(32, activation="softmax", name="gates")(x)
    x = keras.layers.Concatenate(name="features")([x, gates])
    return keras.Model(inputs, x, name="norm_cnn")


def norm_mlp(input_shape: tuple[int, ...]) -> keras.Model:
    """A dense backbone with the same islands as ``norm_cnn`` (half-precision convolutions are
    slow on CPU under torch; dense layers keep the accuracy test quick on every backend)."""
    inputs = keras.Input(input_shape, name="images")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(64, activation="relu", name="dense1")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense2")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense3")(x)
    x = keras.layers.LayerNormalization(name="ln")(x)
    gates = keras.layers.Dense(32, activation="softmax", name="gates")(x)
    x = keras.layers.Concatenate(name="features")([x, gates])
    return keras.Model(inputs, x, name="norm_mlp")


def attention_net(input_shape: tuple[int, ...]) -> keras.Model:
    """Rows of an image as a sequence through one attention layer."""
    inputs = keras.Input(input_shape, name="images")
    x = keras.layers.Reshape((input_shape[0], -1), name="rows")(inputs)
    x = keras.layers.MultiHeadAttention(2, 8, name="attention")(x, x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, x, name="attention_net")


class ExtraBackbones:
    @kplug.hookimpl
    def kplug_register_backbones(self, register):
        register("norm-cnn", norm_cnn)
        register("norm-mlp", norm_mlp)
        register("attention-net", attention_net)


@pytest.fixture
def plugins() -> kplug.Plugins:
    """Built-ins, this package and the test backbones: hermetic, whatever else is installed."""
    return kplug.load_plugins([kplug_precision, ExtraBackbones()], entry_points=False)


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def mnist_run(
    output: Path, policy: str, backbone: str = "small-cnn", limit: int = 1600, epochs: int = 4, **options: Any
) -> dict[str, Any]:
    return {
        "name": "precision",
        "seed": 1,
        "data": {
            "source": "idx",
            "options": {
                "images": str(MNIST / "images-idx3-ubyte.gz"),
                "labels": str(MNIST / "labels-idx1-ubyte.gz"),
            },
            "limit": limit,
            "split": {"validation": 0.25, "stratify": True},
        },
        "model": {"backbone": {"name": backbone}, "heads": [{"name": "classification", "id": "digits"}]},
        "train": {"epochs": epochs, "batch_size": 64, "verbose": 0, "optimizer": {"learning_rate": 5e-3}},
        "precision": {"policy": policy, "options": options},
        "output": {"dir": str(output)},
    }


def kplug_shaped(backbone: keras.Model) -> keras.Model:
    """A model shaped like kplug's: ``backbone`` then a float32 logits head ``heads/digits``."""
    inputs = keras.Input(backbone.input_shape[1:], name="inputs")
    head = keras.Sequential([keras.layers.Dense(10, name="logits", dtype="float32")], name="digits")
    return keras.Model(inputs, head(backbone(inputs)))


def build(policy: str, factory: Any = norm_cnn) -> keras.Model:
    with dtype_policy(policy):
        backbone = factory((28, 28, 1))
        backbone.name = "backbone"
        return kplug_shaped(backbone)


def check_dtypes(report: dict[str, Any], policy: str) -> None:
    """Islands compute in float32, every other weighted layer in half; all variables are float32."""
    islands = report["precision_settings"]["islands"]
    weighted = {path: entry for path, entry in report["layer_dtypes"].items() if entry["variables"]}
    assert {"backbone/dense1", "backbone/dense2", "backbone/dense3", "heads/digits/logits"} <= set(weighted)
    for path, entry in weighted.items():
        assert entry["variables"] == ["float32"], path  # mixed policies keep float32 variables
        island = any(path == i or path.startswith(i + "/") for i in islands)
        assert entry["compute"] == ("float32" if island else HALF[policy]), path


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_float32_layers_option_chooses_islands(policy: str) -> None:
    model = build(policy)
    default = (
        kplug_precision.mixed_float16() if policy == "mixed_float16" else kplug_precision.mixed_bfloat16()
    )
    default.configure_model(model)
    assert default.islands == [
        "backbone/conv1",
        "backbone/bn",
        "backbone/ln",
        "backbone/gates",
        "heads/digits",
    ]
    model = build(policy)
    chosen = kplug_precision.MixedPrecision(policy, ["*/conv2", "backbone/l*"])
    chosen.configure_model(model)
    assert chosen.islands == ["backbone/conv2", "backbone/ln"]
    backbone = model.get_layer("backbone")
    assert backbone.get_layer("conv2").compute_dtype == "float32"
    assert backbone.get_layer("conv1").compute_dtype == HALF[policy]
    # the model really runs that way: a half layer outputs half, an island float32
    probe = keras.Model(backbone.inputs, [backbone.get_layer(n).output for n in ("conv1", "conv2", "ln")])
    dtypes = [keras.backend.standardize_dtype(o.dtype) for o in probe(np.zeros((1, 28, 28, 1), "float32"))]
    assert dtypes == [HALF[policy], "float32", "float32"]


def test_pattern_matching_no_layer_is_refused() -> None:
    with pytest.raises(
        kplug.ConfigError, match=r"float32_layers: pattern 'backbone/nope\*' matches no layer"
    ):
        kplug_precision.MixedPrecision("mixed_float16", ["backbone/nope*"]).configure_model(
            build("mixed_float16")
        )


def test_patterns_match_layer_paths_not_bare_names() -> None:
    """``conv2`` (a layer name, the plugin's old form) selects nothing; the error gives the path to write."""
    with pytest.raises(kplug.ConfigError) as refused:
        kplug_precision.MixedPrecision("mixed_float16", ["conv2"]).configure_model(build("mixed_float16"))
    message = str(refused.value)
    assert message.startswith("precision.options.float32_layers: pattern 'conv2' matches no layer.")
    assert "write 'backbone/conv2' or '*/conv2'" in message
    chosen = kplug_precision.MixedPrecision("mixed_float16", ["re:backbone/(bn|ln)"])
    chosen.configure_model(build("mixed_float16"))
    assert chosen.islands == ["backbone/bn", "backbone/ln"]


def test_float32_layers_is_validated_as_an_option(plugins: kplug.Plugins, tmp_path: Path) -> None:
    run = mnist_run(tmp_path / "run", "mixed_float16", limit=64, float32_layers="conv1")
    with pytest.raises(kplug.ConfigError, match="precision.options"):
        kplug.Trainer(run, plugins=plugins)


@pytest.mark.slow
def test_accuracy_and_islands_per_policy(plugins: kplug.Plugins, tmp_path: Path) -> None:
    """float32, mixed_float16 and mixed_bfloat16 train to the same accuracy on an MNIST slice."""
    reference = kplug.fit(mnist_run(tmp_path / "float32", "float32", "norm-mlp"), plugins=plugins)
    assert reference.report["layer_dtypes"]["backbone/dense2"]["compute"] == "float32"
    accuracy = reference.metrics["accuracy"]
    assert accuracy > 0.8
    for policy in ("mixed_float16", "mixed_bfloat16"):
        mixed = kplug.fit(mnist_run(tmp_path / policy, policy, "norm-mlp"), plugins=plugins)
        print(
            f"{keras.backend.backend()} {policy}: {mixed.metrics['accuracy']:.4f} vs float32 {accuracy:.4f}"
        )
        assert mixed.report["precision"] == policy
        check_dtypes(mixed.report, policy)
        assert abs(mixed.metrics["accuracy"] - accuracy) <= 0.05  # ~2 standard errors at 400 examples
        optimizer = mixed.model.optimizer
        if policy == "mixed_float16":
            assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        else:
            assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        loaded = keras.saving.load_model(mixed.run_dir / "model.keras")  # the saved model keeps its islands
        assert loaded.get_layer("backbone").get_layer("dense1").compute_dtype == "float32"
        assert loaded.get_layer("backbone").get_layer("dense2").compute_dtype == HALF[policy]
    assert keras.config.dtype_policy().name == "float32"  # restored after the runs


def test_dynamic_loss_scaling_recovers_from_overflow() -> None:
    """A loss scale of 2**30 overflows float16 gradients: steps are skipped and the scale halves."""
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    y = np.arange(64) % 10
    model = build("mixed_float16", norm_mlp)
    precision = kplug_precision.mixed_float16(initial_scale=2.0**30, growth_interval=4)
    precision.configure_model(model)
    optimizer = precision.wrap_optimizer(keras.optimizers.Adam(1e-3))
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=4, batch_size=8, verbose=0)
    scale = float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))
    assert scale < 2.0**30
    assert (
        np.isfinite(history.history["loss"][-1]) and history.history["loss"][-1] < history.history["loss"][0]
    )
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)


def test_float16_attention_runs_except_on_jax_cpu() -> None:
    """Keras cannot run attention in float16 on CPU under jax; tensorflow and torch can."""
    x = np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")
    y = np.arange(16) % 10
    model = build("mixed_float16", attention_net)
    precision = kplug_precision.mixed_float16()
    if keras.backend.backend() == "jax":
        with pytest.raises(kplug.ConfigError, match="tensorflow and torch"):
            precision.configure_model(model)
        model = build("mixed_float16", attention_net)  # keeping attention in float32 makes it run
        precision = kplug_precision.mixed_float16(["first", "heads", "backbone/attention"])
        precision.configure_model(model)
        assert model.get_layer("backbone").get_layer("attention").compute_dtype == "float32"
    else:
        precision.configure_model(model)
        assert model.get_layer("backbone").get_layer("attention").compute_dtype == "float16"
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(precision.wrap_optimizer(keras.optimizers.Adam()), loss)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_entry_point_is_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "precision")
    loaded = kplug.load_plugins()
    assert loaded.failures == []
    assert {"float32", "mixed_float16", "mixed_bfloat16"} <= set(loaded.registry.names("precision"))
