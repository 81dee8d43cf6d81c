"""Built-in distributions: one device, and ``auto``, which picks the best registered one."""

from __future__ import annotations

from kplug.distribute.auto import choose_auto
from kplug.plugin.distribution import Distribution
from kplug.plugin.manager import hookimpl


class SingleDevice(Distribution):
    """Train on the backend's default device, in one process."""

    name = "single-device"


def auto(plugins=None) -> Distribution:
    """Choose the placement for this backend and the devices found (one device unless a plugin offers more)."""
    if plugins is None:
        return SingleDevice()
    chosen = choose_auto(plugins)
    return SingleDevice() if type(chosen) is Distribution else chosen


@hookimpl
def kplug_register_distributions(register):
    """Register the built-in distributions."""
    register("single-device", SingleDevice)
    register("auto", auto)
