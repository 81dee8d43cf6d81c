"""Plugin loading: built-ins through the same hooks, extra plugins, entry points, env controls, failures."""

from __future__ import annotations

import keras
import pytest
from conftest import install_distribution

import kplug
from kplug.errors import PluginError
from kplug.plugin.manager import DEFAULT_PLUGINS, load_plugins


def test_builtins_register_through_the_default_plugins(plugins):
    for module in DEFAULT_PLUGINS:
        assert plugins.manager.has_plugin(module)
    assert {"mlp", "small-cnn"} <= set(plugins.registry.names("backbone"))
    assert {"classification", "multi-label", "regression"} <= set(plugins.registry.names("head"))
    assert "float32" in plugins.registry.names("precision")
    assert {"auto", "single-device"} <= set(plugins.registry.names("distribution"))
    assert plugins.registry.get("backbone", "mlp").provider.startswith("kplug ")


class ExtraBackbone:
    """A plugin passed in Python."""

    @staticmethod
    @kplug.hookimpl
    def kplug_register_backbones(register):
        def two_layers(input_shape: tuple[int, ...], width: int = 4) -> keras.Model:
            """Two dense layers."""
            inputs = keras.Input(input_shape)
            return keras.Model(inputs, keras.layers.Dense(width)(keras.layers.Flatten()(inputs)))

        register("two-layers", two_layers)


def test_plugins_can_be_passed_in_python():
    plugins = load_plugins([ExtraBackbone()], entry_points=False)
    component = plugins.registry.get("backbone", "two-layers")
    assert component.provider == "ExtraBackbone (passed in Python)"
    assert component.description == "Two dense layers."


def test_duplicate_names_are_refused_naming_both_providers():
    class Clash:
        @staticmethod
        @kplug.hookimpl
        def kplug_register_backbones(register):
            register("mlp", lambda input_shape: None)

    with pytest.raises(PluginError) as error:
        load_plugins([Clash()], entry_points=False)
    message = str(error.value)
    assert "Duplicate backbone 'mlp'" in message
    assert "kplug 0.1.0 (built-in)" in message and "Clash (passed in Python)" in message


def test_misspelled_hook_is_an_error():
    class Typo:
        @staticmethod
        @kplug.hookimpl
        def kplug_register_backbone(register):  # missing the final s
            pass

    with pytest.raises(PluginError, match="kplug_register_backbone"):
        load_plugins([Typo()], entry_points=False)


def test_hook_with_wrong_arguments_is_an_error():
    class WrongArgs:
        @staticmethod
        @kplug.hookimpl
        def kplug_register_heads(registry):
            pass

    with pytest.raises(PluginError, match="WrongArgs|registry"):
        load_plugins([WrongArgs()], entry_points=False)


@pytest.mark.parametrize(
    ("name", "factory", "expected"),
    [("Bad Name", lambda: None, "invalid name"), ("ok-name", 42, "not callable")],
)
def test_register_validates_name_and_factory(name, factory, expected):
    class Bad:
        @staticmethod
        @kplug.hookimpl
        def kplug_register_heads(register):
            register(name, factory)

    with pytest.raises(PluginError, match=expected):
        load_plugins([Bad()], entry_points=False)


def test_a_hook_that_raises_in_a_plugin_passed_in_python_is_an_error():
    class Raises:
        @staticmethod
        @kplug.hookimpl
        def kplug_register_heads(register):
            raise RuntimeError("boom")

    with pytest.raises(
        PluginError, match=r"Raises \(passed in Python\): kplug_register_heads raised RuntimeError: boom"
    ):
        load_plugins([Raises()], entry_points=False)


GOOD_PLUGIN = """
    import kplug
    from kplug.builtin.heads import ClassificationHead

    @kplug.hookimpl
    def kplug_register_heads(register):
        register("good-head", ClassificationHead)
"""


def test_installed_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    install_distribution(tmp_path, "kplug_fake_good", GOOD_PLUGIN, monkeypatch)
    plugins = load_plugins()
    assert plugins.registry.get("head", "good-head").provider == "kplug-fake-good 1.2.3"
    assert plugins.failures == []


def test_broken_entry_point_is_reported_and_others_load(tmp_path, monkeypatch):
    install_distribution(tmp_path, "kplug_fake_good", GOOD_PLUGIN, monkeypatch)
    broken = tmp_path / "broken"
    broken.mkdir()
    install_distribution(broken, "kplug_fake_broken", "raise ImportError('needs libfoo')\n", monkeypatch)
    plugins = load_plugins()
    assert [(f.name, f.error) for f in plugins.failures] == [
        ("kplug_fake_broken", "ImportError: needs libfoo")
    ]
    assert "good-head" in plugins.registry.names("head")


def test_allow_list_and_block_list(tmp_path, monkeypatch):
    install_distribution(tmp_path, "kplug_fake_good", GOOD_PLUGIN, monkeypatch)
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "something_else")
    assert "good-head" not in load_plugins().registry.names("head")
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "kplug_fake_good")
    assert "good-head" in load_plugins().registry.names("head")
    monkeypatch.delenv("KPLUG_LOAD_PLUGINS")
    monkeypatch.setenv("KPLUG_DISABLE_PLUGINS", "kplug_fake_good,kplug.builtin.callbacks")
    plugins = load_plugins()
    assert "good-head" not in plugins.registry.names("head")
    assert "early-stopping" not in plugins.registry.names("callback")


def test_trace_logs_hook_calls(monkeypatch, capsys):
    monkeypatch.setenv("KPLUG_TRACE_PLUGINS", "1")
    plugins = load_plugins(entry_points=False)
    plugins.manager.hook.kplug_configure(config=None)
    err = capsys.readouterr().err
    assert "kplug_register_backbones from kplug 0.1.0 (built-in)" in err
    assert "kplug_configure" in err


HALF_PLUGIN = """
    import kplug

    @kplug.hookimpl
    def kplug_register_backbones(register):
        register("half-a", lambda input_shape: None)
        raise RuntimeError("second half broke")
"""

DUPLICATE_PLUGIN = """
    import kplug

    @kplug.hookimpl
    def kplug_register_backbones(register):
        register("mlp", lambda input_shape: None)
"""


def test_an_installed_plugin_whose_hook_raises_is_reported_and_registers_nothing(tmp_path, monkeypatch):
    install_distribution(tmp_path, "kplug_fake_half", HALF_PLUGIN, monkeypatch)
    plugins = load_plugins()
    assert [(f.name, f.error) for f in plugins.failures] == [
        ("kplug-fake-half 1.2.3", "kplug_register_backbones raised RuntimeError: second half broke")
    ]
    assert "half-a" not in plugins.registry.names("backbone")
    assert "mlp" in plugins.registry.names("backbone")


def test_an_installed_plugin_reusing_a_name_is_reported_naming_both(tmp_path, monkeypatch):
    install_distribution(tmp_path, "kplug_fake_dup", DUPLICATE_PLUGIN, monkeypatch)
    plugins = load_plugins()
    [failure] = plugins.failures
    assert failure.name == "kplug-fake-dup 1.2.3"
    assert (
        "Duplicate backbone 'mlp': registered by kplug 0.1.0 (built-in) and again by kplug-fake-dup 1.2.3"
        in failure.error
    )
    assert plugins.registry.get("backbone", "mlp").provider == "kplug 0.1.0 (built-in)"


def test_a_plugin_already_loaded_from_its_entry_point_can_also_be_passed(tmp_path, monkeypatch):
    install_distribution(tmp_path, "kplug_fake_good", GOOD_PLUGIN, monkeypatch)
    import kplug_fake_good

    plugins = load_plugins([kplug_fake_good])
    assert plugins.registry.get("head", "good-head").provider == "kplug-fake-good 1.2.3"


LATER_HOOK_RAISES = """
    import kplug
    from kplug.builtin.backbones import mlp

    @kplug.hookimpl
    def kplug_register_backbones(register):
        register("early-mlp", mlp)

    @kplug.hookimpl
    def kplug_register_heads(register):
        raise KeyError("heads")

    @kplug.hookimpl
    def kplug_on_fit_start(run, model):
        raise AssertionError("a disabled plugin's lifecycle hook ran")
"""


def test_a_failed_installed_plugin_is_disabled_entirely(tmp_path, monkeypatch):
    install_distribution(tmp_path, "kplug_fake_later", LATER_HOOK_RAISES, monkeypatch)
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "kplug_fake_later")
    plugins = load_plugins()
    [failure] = [f for f in plugins.failures if f.name == "kplug-fake-later 1.2.3"]
    assert failure.error == "kplug_register_heads raised KeyError: 'heads'"
    assert failure.provides == (("backbone", "early-mlp"),)
    assert "early-mlp" not in plugins.registry.names("backbone")  # registered by its earlier hook, removed
    assert not plugins.manager.has_plugin("kplug_fake_later")
    assert "kplug_fake_later" not in plugins.versions()
    plugins.call_hook("kplug_on_fit_start", run=None, model=None)  # its hook no longer runs
    with pytest.raises(kplug.ConfigError, match="comes from the plugin kplug-fake-later 1.2.3, which failed"):
        plugins.component("backbone", "early-mlp", "model.backbone.name")


def test_a_lifecycle_hook_of_a_plugin_passed_in_python_raises_unchanged():
    class Tracker:
        @staticmethod
        @kplug.hookimpl
        def kplug_on_fit_end(run, result):
            raise ConnectionError("server down")

    plugins = load_plugins([Tracker()], entry_points=False)
    with pytest.raises(ConnectionError, match="server down"):  # the caller's own plugin, e.g. control flow
        plugins.call_hook("kplug_on_fit_end", run=None, result=None)


def test_a_name_two_installed_plugins_claim_is_refused_but_a_builtin_is_not(tmp_path, monkeypatch):
    install_distribution(tmp_path, "kplug_fake_dup", DUPLICATE_PLUGIN, monkeypatch)  # claims 'mlp'
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    install_distribution(first, "kplug_fake_good", GOOD_PLUGIN, monkeypatch)
    install_distribution(second, "kplug_fake_again", GOOD_PLUGIN, monkeypatch)  # 'good-head' again
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "kplug_fake_dup,kplug_fake_good,kplug_fake_again")
    plugins = load_plugins()
    assert plugins.component("backbone", "mlp").provider == "kplug 0.1.0 (built-in)"
    with pytest.raises(
        kplug.ConfigError, match="head 'good-head' is registered by kplug-fake-.* and also by"
    ):
        plugins.component("head", "good-head", "model.heads[0].name")
