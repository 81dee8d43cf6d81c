"""The Ray actor that runs one training process of the group."""

from __future__ import annotations

import os
import socket
import sys
from typing import Any


class Worker:
    """One process of the group: tells the driver where it runs, then trains with its rank's variables.

    The driver creates it as a Ray actor (``ray.remote(Worker)``); each actor is a fresh
    process, so the backend starts after ``train`` has set torchrun's variables.
    """

    def node(self) -> dict[str, Any]:
        """The node this actor runs on (its IP address) and its process id."""
        import ray

        return {"node": ray.util.get_node_ip_address(), "pid": os.getpid()}

    def free_ports(self, count: int, attempts: int = 20) -> int:
        """The first of ``count`` consecutive TCP ports free on this node right now."""
        for _ in range(attempts):
            probes = [socket.socket()]
            try:
                probes[0].bind(("", 0))
                first = probes[0].getsockname()[1]
                for port in range(first + 1, first + count):
                    probes.append(socket.socket())
                    probes[-1].bind(("", port))
                return first
            except OSError:
                continue  # a following port is taken: try another block
            finally:
                for probe in probes:
                    probe.close()
        raise RuntimeError(f"found no {count} consecutive free TCP ports on this node")

    def train(self, environment: dict[str, str], cwd: str, train: dict[str, Any]) -> str | None:
        """Train this process's part of the run: ``kplug.Trainer(**train).fit()``.

        Args:
            environment: torchrun's variables for this rank (and ``TF_CONFIG``).
            cwd: the driver's working directory (relative paths in the command and config).
            train: the ``kplug.Trainer`` keyword arguments of the ``kplug train`` command.

        Returns:
            ``None`` when it trained, else the error a user should read.
        """
        os.environ.update(environment)
        if os.path.isdir(cwd):
            os.chdir(cwd)
        import kplug

        try:
            kplug.Trainer(**train).fit()
        except kplug.KplugError as error:
            return f"{type(error).__name__}: {error}"
        finally:  # Ray forwards what the actor printed; the driver stops the actor when it returns
            sys.stdout.flush()
            sys.stderr.flush()
        return None
