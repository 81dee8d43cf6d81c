"""``kplug train --nproc N``: torchrun's engine starts the processes (the runs: kplug-distribute's tests)."""

from __future__ import annotations

import socket
import sys

import pytest

from kplug.distribute.processes import free_port_block, launch
from kplug.errors import ConfigError


def test_without_torch_nproc_says_what_to_install_or_do_instead(monkeypatch):
    for name in ("torch", "torch.distributed", "torch.distributed.run"):
        monkeypatch.setitem(sys.modules, name, None)  # as if torch were not installed
    with pytest.raises(ConfigError) as error:
        launch(["train", "run.yaml"], 2)
    message = str(error.value)
    assert "torchrun's engine (torch.distributed.run), and torch is not installed here" in message
    assert "pip install torch" in message and "srun" in message


def test_a_port_block_is_free_on_loopback():
    first = free_port_block(4)
    probes = [socket.socket() for _ in range(4)]
    try:
        for offset, probe in enumerate(probes):
            probe.bind(("127.0.0.1", first + offset))  # raises if one is taken
    finally:
        for probe in probes:
            probe.close()
