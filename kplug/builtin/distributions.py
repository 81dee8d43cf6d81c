"""Built-in distributions: one device. ``auto`` picks it when nothing better is installed."""

from __future__ import annotations

from kplug.distribution import Distribution
from kplug.plugins import hookimpl


class SingleDevice(Distribution):
    """Train on the backend's default device."""

    name = "single-device"


def auto() -> Distribution:
    """Choose the placement for this machine: a single device (kplug-distribute adds more)."""
    return SingleDevice()


@hookimpl
def kplug_register_distributions(register):
    """Register the built-in distributions."""
    register("single-device", SingleDevice)
    register("auto", auto)
