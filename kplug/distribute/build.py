"""Build the run's distribution component from its validated options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

from kplug.distribute.process_group import join_process_group
from kplug.distribute.processes import check_process_group
from kplug.errors import ConfigError, KplugError, PluginError, first_line
from kplug.plugin.distribution import Distribution
from kplug.plugin.options import accepts_argument

if TYPE_CHECKING:
    from kplug.plugin.manager import Plugins


def build_distribution(chosen: Any, plugins: Plugins) -> Distribution:
    """Build the run's distribution component and check it fits the processes launched.

    Args:
        chosen: the resolved ``distribution`` component (``ResolvedRun.distribution``).
        plugins: the loaded plugins (``auto`` looks through their distributions).

    Under SLURM, torchrun's variables (and on TensorFlow ``TF_CONFIG``) are set first from
    SLURM's (``join_process_group``), so every distribution reads one set.
    """
    join_process_group(keras.backend.backend())
    component = chosen.component
    extra = {"plugins": plugins} if accepts_argument(component.factory, "plugins") else {}
    try:
        distribution = component.factory(**chosen.options, **extra)
    except KplugError:
        raise  # already names the option and what is allowed
    except (ValueError, TypeError) as error:
        shown = ", ".join(f"{k}={v!r}" for k, v in chosen.options.items()) or "no options"
        raise ConfigError(
            f"distribution: '{component.name}' could not be built from its options ({shown}): {first_line(error)}"
        ) from None
    if not isinstance(distribution, Distribution):
        raise PluginError(
            f"Distribution '{chosen.component.name}' ({chosen.component.provider}) returned "
            f"{type(distribution).__name__}; a distribution factory must return a kplug.Distribution."
        )
    check_process_group(distribution)
    return distribution
