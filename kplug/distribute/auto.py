"""``distribution: auto``: the best registered distribution for this machine and backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from kplug.plugin.distribution import Distribution

if TYPE_CHECKING:
    from kplug.plugin.manager import Plugins


def choose_auto(plugins: Plugins) -> Distribution:
    """The distribution ``auto`` picks on this machine, for this backend.

    Every registered distribution may offer itself with the ``auto`` extra of
    ``register``: a callable returning a ``Distribution`` when it fits the devices
    and processes found, else ``None``. The offers are tried by ``auto_priority``
    (highest first); when none fits, one device.

    Example::

        register("data-parallel", DataParallel, backends=("jax",), auto=offer, auto_priority=10)
    """
    backend = keras.backend.backend()
    offers = [
        component
        for component in plugins.registry
        if component.kind == "distribution"
        and callable(component.extra("auto"))
        and (component.backends is None or backend in component.backends)
    ]
    offers.sort(key=lambda c: (-int(c.extra("auto_priority")), c.name))
    for component in offers:
        chosen = component.extra("auto")()
        if chosen is not None:
            return chosen
    return Distribution()
