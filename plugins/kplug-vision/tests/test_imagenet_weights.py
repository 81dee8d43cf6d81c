"""`weights: imagenet` for keras.applications families: Keras' download cache, offline errors, refusals.

No test reaches the network: KERAS_HOME is in tmp_path and the reachability probe answers
"offline" (or a proxy on a closed local port refuses the download at once).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import keras
import kplug
import numpy as np
import pytest
from keras.src.applications import mobilenet_v3
from keras.src.legacy.saving import legacy_h5_format

from kplug_vision import backbones, hub, imagenet

# the smallest network keras.applications publishes ImageNet weights for
SMALL = {"size": "small", "minimalistic": True, "alpha": 1.0, "image_size": 32}
FILE = "weights_mobilenet_v3_small_minimalistic_224_1.0_float_no_top_v2.h5"


def numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    for name in hub.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "reachable", lambda host: False)


@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick elsewhere
def test_imagenet_weights_load_from_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A keras.applications-format (Keras 2 .h5) file in Keras' cache is what `weights: imagenet` loads."""
    trained = backbones.mobilenetv3((32, 32, 3), **SMALL)
    network = trained.get_layer("mobilenetv3")
    network.set_weights([w + 0.01 * (i + 1) for i, w in enumerate(network.get_weights())])  # not an init
    path = imagenet.keras_cache() / FILE
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, network)
    # Keras checks the file's hash: make the published one this file's
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    model = "small_minimalistic_224_1.0_float"
    monkeypatch.setitem(mobilenet_v3.WEIGHTS_HASHES, model, (mobilenet_v3.WEIGHTS_HASHES[model][0], digest))
    loaded = backbones.mobilenetv3((32, 32, 3), **SMALL, weights="imagenet")
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(numpy(loaded(x)), numpy(trained(x)), atol=1e-5)


def test_offline_error_names_keras_cache_and_the_file(tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError) as caught:
        backbones.efficientnet((32, 32, 3), weights="imagenet")
    message = str(caught.value)
    assert "\n" not in message and "offline" in message and "KERAS_HOME" in message
    assert str(tmp_path / "keras" / "models" / "efficientnetb0_notop.h5") in message
    assert "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5" in message


def test_failed_download_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "reachable", lambda host: True)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # the discard port: refused at once
    with pytest.raises(kplug.ConfigError, match="cannot download it"):
        backbones.convnext((32, 32, 3), weights="imagenet")


def test_options_without_published_weights_are_refused() -> None:
    with pytest.raises(kplug.ConfigError, match=r"alpha = 0.5"):
        backbones.mobilenetv3((32, 32, 3), alpha=0.5, weights="imagenet")
    with pytest.raises(kplug.ConfigError, match=r"stages = 2"):
        backbones.efficientnet((32, 32, 3), stages=2, weights="imagenet")
    with pytest.raises(kplug.ConfigError, match=r"preset: resnet_50_imagenet"):
        backbones.resnet((32, 32, 3), weights="imagenet")
