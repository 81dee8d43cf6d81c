"""``kplug presets``: the pretrained models the installed backbones can load, and which are here.

Each backbone registered with ``presets=`` (``kplug.plugin.Preset`` records) contributes its own
list: kplug-text its MiniLM package, kplug-vision keras-hub handles, keras.applications ImageNet
files and the directories registered in ``KPLUG_PRESETS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kplug.errors import first_line
from kplug.plugin.presets import PRESETS_VARIABLE, Preset


@dataclass(frozen=True)
class PresetRow:
    """One line of ``kplug presets``: a backbone and one pretrained model it loads."""

    backbone: str
    provider: str
    preset: Preset


def preset_rows(plugins: Any) -> tuple[list[PresetRow], list[str]]:
    """Every backbone's presets (in registry order), and a warning per backbone whose listing failed.

    Args:
        plugins: loaded ``kplug.plugin.Plugins``.
    """
    rows: list[PresetRow] = []
    warnings: list[str] = []
    for component in plugins.registry:
        if component.kind != "backbone" or component.extra("presets") is None:
            continue
        try:
            listed = list(component.extra("presets")())
            wrong = [item for item in listed if not isinstance(item, Preset)]
            if wrong:
                raise TypeError(f"it returned {type(wrong[0]).__name__}, not kplug.plugin.Preset")
        except Exception as error:  # one broken listing must not hide the others
            warnings.append(
                f"kplug: warning: the presets of backbone '{component.name}' ({component.provider}) "
                f"cannot be listed: {type(error).__name__}: {first_line(error)}"
            )
            continue
        rows += [PresetRow(component.name, component.provider, preset) for preset in listed]
    return rows, warnings


def format_rows(rows: Iterable[PresetRow]) -> str:
    """The table ``kplug presets`` prints: backbone, how a config selects it, whether it is here, its source."""
    header = ("BACKBONE", "CONFIG", "HERE", "SOURCE", "DESCRIPTION")
    lines = [
        (
            row.backbone,
            row.preset.usage(),
            "yes" if row.preset.on_this_machine else "no",
            row.preset.source,
            row.preset.description + (f" (at {row.preset.location})" if row.preset.location else ""),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(4)]
    return "\n".join(
        ("  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(line[:4])) + f"  {line[4]}").rstrip()
        for line in [header, *lines]
    )


def summary(rows: list[PresetRow]) -> str:
    """The closing line: how many presets, how many here, how to register local directories."""
    here = sum(row.preset.on_this_machine for row in rows)
    return (
        f"{len(rows)} presets, {here} on this machine. Presets that are not here download on first use "
        f"when the machine is online. Register your own preset directories with "
        f"{PRESETS_VARIABLE}=dir1:dir2 (see the README, 'Pretrained models')."
    )
