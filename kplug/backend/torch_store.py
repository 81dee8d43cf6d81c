"""torchrun's store: how the processes of a multi-node group learn each other's addresses.

With torchrun's ``c10d`` rendezvous a process knows only ``MASTER_ADDR:MASTER_PORT`` (the
store torchrun's agent holds, ``TORCHELASTIC_USE_AGENT_STORE=True``) and its own rank, not the
hosts of the other processes. TensorFlow's ``TF_CONFIG`` needs every worker's ``host:port`` and
JAX's coordinator is rank 0's host, so each process publishes one ``host:port`` of its own (a
free port on the address it reaches the store from) in that store and reads everyone's.
"""

from __future__ import annotations

import socket
from datetime import timedelta

from kplug.errors import ConfigError

TIMEOUT_SECONDS = 300.0


def reachable_address(host: str, port: int) -> str:
    """This host's IP address on the network it reaches ``host:port`` through (no packet is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((host, port))  # a UDP "connect" only picks the route and the local address
        return probe.getsockname()[0]


def free_port(address: str) -> int:
    """A TCP port free on ``address`` right now."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def exchange_addresses(
    host: str, port: int, rank: int, world_size: int, key: str, timeout_seconds: float = TIMEOUT_SECONDS
) -> list[str]:
    """Publish a free ``address:port`` of this process in the store at ``host:port``; return every rank's.

    Every process of the group must call it with the same ``key`` (unique to the run and the
    restart); it returns once all ``world_size`` processes have published theirs.

    Returns:
        One ``address:port`` per rank, in rank order; this process's own is at ``rank``.

    Raises:
        ConfigError: torch is not installed, the store cannot be reached, or some processes did
            not publish theirs within ``timeout_seconds``.
    """
    try:
        from torch.distributed import TCPStore
    except ImportError:
        raise ConfigError(
            "A multi-node torchrun group exchanges its addresses through torchrun's store, and torch "
            "is not installed in this process's environment."
        ) from None
    timeout = timedelta(seconds=timeout_seconds)
    try:
        store = TCPStore(host, port, is_master=False, timeout=timeout)
    except (RuntimeError, OSError) as error:
        raise ConfigError(
            f"MASTER_ADDR={host}, MASTER_PORT={port}: cannot reach torchrun's store there ({error})."
        ) from None
    address = reachable_address(host, port)
    shown = f"[{address}]" if ":" in address else address
    store.set(f"{key}/{rank}", f"{shown}:{free_port(address)}")
    keys = [f"{key}/{other}" for other in range(world_size)]
    try:
        store.wait(keys, timeout)
    except (RuntimeError, OSError):
        missing = [other for other, name in enumerate(keys) if not store.check([name])]
        raise ConfigError(
            f"WORLD_SIZE={world_size}: ranks {missing} did not publish their address in torchrun's store "
            f"at {host}:{port} within {timeout_seconds:g} s; start every node's torchrun with the same "
            f"--nnodes, --rdzv-endpoint and --rdzv-id."
        ) from None
    return [store.get(name).decode() for name in keys]
