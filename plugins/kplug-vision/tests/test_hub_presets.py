"""`preset:` by path, by registered name, by keras-hub name through the download cache; offline errors.

No test reaches the network: the caches point into tmp_path, a proxy on a closed local port
refuses every connection at once, and the reachability probe answers "offline".
"""

from __future__ import annotations

from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from conftest import TINY_BACKBONES

from kplug_vision import backbones, hub

HANDLE = "kaggle://keras/resnetv1/keras/resnet_18_imagenet/3"


def numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty download caches in tmp_path and no network (fails at once, never hangs)."""
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("KPLUG_PRESETS", raising=False)
    for name in hub.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "reachable", lambda host: False)


def tiny_resnet_preset(directory: Path) -> keras.Model:
    """A small ResNet saved with keras-hub's save_to_preset into ``directory``; returns the kplug backbone."""
    options = {**TINY_BACKBONES["resnet"], "stem_filters": 64}  # keras-hub's ResNet needs 64 in the stem
    trained = backbones.resnet((28, 28, 1), **options)
    trained.get_layer("resnet").save_to_preset(str(directory))
    return trained


def as_kaggle_download(preset: Path, handle: str) -> Path:
    """Put ``preset``'s files where kagglehub would have downloaded ``handle`` (with its markers)."""
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    model = parse_model_handle(handle.removeprefix("kaggle://"))
    folder = hub.kaggle_folder(handle) / str(model.version)
    folder.mkdir(parents=True)
    for file in preset.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
        Cache().mark_as_complete(model, file.name)
    return folder


def test_preset_loads_by_path_and_by_registered_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained = tiny_resnet_preset(tmp_path / "presets" / "my_resnet")
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    by_path = backbones.resnet((28, 28, 1), preset=str(tmp_path / "presets" / "my_resnet"), image_size=32)
    monkeypatch.setenv("KPLUG_PRESETS", str(tmp_path / "presets"))
    by_name = backbones.resnet((28, 28, 1), preset="my_resnet", image_size=32)
    np.testing.assert_allclose(numpy(by_name(x)), numpy(trained(x)), atol=1e-6)
    np.testing.assert_allclose(numpy(by_path(x)), numpy(trained(x)), atol=1e-6)


def test_keras_hub_name_loads_from_the_download_cache_without_network(tmp_path: Path) -> None:
    trained = tiny_resnet_preset(tmp_path / "saved")
    folder = as_kaggle_download(tmp_path / "saved", HANDLE)
    assert hub.resolve("resnet_18_imagenet").location == folder
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    for preset in ("resnet_18_imagenet", HANDLE, HANDLE.rsplit("/", 1)[0]):  # name, versioned, newest
        loaded = backbones.resnet((28, 28, 1), preset=preset, image_size=32)
        np.testing.assert_allclose(numpy(loaded(x)), numpy(trained(x)), atol=1e-6)


def test_offline_error_names_the_cache_and_how_to_copy_a_preset(tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError) as caught:
        backbones.resnet((28, 28, 1), preset="resnet_50_imagenet")
    message = str(caught.value)
    assert "\n" not in message  # one paragraph
    assert "offline" in message and "KAGGLEHUB_CACHE" in message
    cache = tmp_path / "kagglehub" / "models" / "keras" / "resnetv1" / "keras" / "resnet_50_imagenet"
    assert str(cache) in message
    assert "save_to_preset('resnet_50_imagenet')" in message and "KPLUG_PRESETS" in message
    with pytest.raises(kplug.ConfigError, match="HF_HUB_CACHE"):
        backbones.vit((32, 32, 3), preset="hf://keras/vit_base_patch16_224_imagenet")


def test_failed_download_is_reported_as_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a proxy the probe is skipped; the refused connection becomes the offline message."""
    monkeypatch.setattr(hub, "reachable", lambda host: True)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # the discard port: refused at once
    with pytest.raises(kplug.ConfigError, match=r"keras-hub cannot download it.*KAGGLEHUB_CACHE"):
        backbones.resnet((28, 28, 1), preset="resnet_50_imagenet")


def test_unknown_name_and_directory_without_config_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError, match="not a keras-hub preset name"):
        backbones.resnet((28, 28, 1), preset="resnet_5_imagenet")
    with pytest.raises(kplug.ConfigError, match="no config.json"):
        backbones.resnet((28, 28, 1), preset=str(tmp_path))


def test_known_presets_match_keras_hub() -> None:
    import keras_hub

    from kplug_vision.known_presets import KNOWN_PRESETS

    registry = keras_hub.models.Backbone.presets
    for known in (p for presets in KNOWN_PRESETS.values() for p in presets):
        assert registry[known.name]["kaggle_handle"] == known.handle, known.name
    names = {p.name for presets in KNOWN_PRESETS.values() for p in presets}
    assert {name for name in registry if name.startswith(("resnet_", "vit_"))} <= names


def test_kplug_presets_marks_cached_and_registered_presets(
    plugins: kplug.Plugins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def listed(backbone: str) -> dict[str, kplug.plugin.Preset]:
        return {p.usage(): p for p in plugins.registry.get("backbone", backbone).extra("presets")()}

    assert not listed("resnet")["preset: resnet_18_imagenet"].on_this_machine
    tiny_resnet_preset(tmp_path / "saved")
    folder = as_kaggle_download(tmp_path / "saved", HANDLE)
    monkeypatch.setenv("KPLUG_PRESETS", str(tmp_path / "saved"))
    resnet = listed("resnet")
    assert resnet["preset: resnet_18_imagenet"].location == str(folder)
    assert resnet["preset: saved"].location == str(tmp_path / "saved")
    assert "preset: saved" not in listed("keras-hub") and "preset: saved" not in listed("vit")
    assert "preset: vit_base_patch16_224_imagenet" in listed("vit")
    mobilenet = listed("mobilenetv3")["size: small, alpha: 1.0, weights: imagenet"]
    assert not mobilenet.on_this_machine
