"""A multi-node torchrun group's processes exchange their addresses through torchrun's store."""

from __future__ import annotations

import json
import threading

import pytest

from kplug.backend import torch_store
from kplug.distribute.process_group import join_process_group
from kplug.errors import ConfigError

distributed = pytest.importorskip("torch.distributed")


@pytest.fixture
def store():
    """The store torchrun's agent holds, on a free port of this host."""
    return distributed.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)


def node_environment(rank: int, port: int, **extra: str) -> dict[str, str]:
    """What `torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d` sets in worker ``rank``."""
    return {
        "RANK": str(rank),
        "GROUP_RANK": str(rank),
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "TORCHELASTIC_RUN_ID": "none",
        "TORCHELASTIC_RESTART_COUNT": "0",
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        **extra,
    }


def join_both(backend: str, environs: list[dict[str, str]]) -> None:
    """Both workers join at once (each waits for the other's address)."""
    errors = []

    def join(environ):
        try:
            join_process_group(backend, environ)
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=join, args=(environ,)) for environ in environs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(thread.is_alive() for thread in threads), errors


def test_tensorflow_workers_on_two_nodes_get_one_cluster(store):
    environs = [node_environment(rank, store.port) for rank in (0, 1)]
    join_both("tensorflow", environs)
    configs = [json.loads(environ["TF_CONFIG"]) for environ in environs]
    workers = configs[0]["cluster"]["worker"]
    assert configs[1]["cluster"]["worker"] == workers and len(set(workers)) == 2
    assert all(worker.startswith("127.0.0.1:") for worker in workers)
    assert [config["task"] for config in configs] == [
        {"type": "worker", "index": 0},
        {"type": "worker", "index": 1},
    ]


def test_jax_processes_on_two_nodes_take_rank_0s_address_as_coordinator(store):
    environs = [node_environment(rank, store.port) for rank in (0, 1)]
    join_both("jax", environs)
    coordinator = store.get("kplug/none/0/addresses/0").decode()  # what rank 0 published
    for rank, environ in enumerate(environs):
        assert environ["KERAS_DISTRIBUTION_JOB_ADDRESSES"] == coordinator
        assert (environ["KERAS_DISTRIBUTION_NUM_PROCESSES"], environ["KERAS_DISTRIBUTION_PROCESS_ID"]) == (
            "2",
            str(rank),
        )


def test_what_needs_no_exchange_is_left_alone(store, monkeypatch):
    def no_exchange(*args, **kwargs):
        raise AssertionError("exchanged addresses")

    monkeypatch.setattr(torch_store, "exchange_addresses", no_exchange)
    port = store.port
    on_torch = node_environment(1, port)
    join_process_group("torch", on_torch)  # torch.distributed reads torchrun's store itself
    given = node_environment(1, port, TF_CONFIG="{}")
    join_process_group("tensorflow", given)
    coordinator = node_environment(1, port, KERAS_DISTRIBUTION_JOB_ADDRESSES="10.0.0.5:1234")
    join_process_group("jax", coordinator)
    no_agent = node_environment(1, port)  # torchrun's variables set by another launcher: no store
    del no_agent["TORCHELASTIC_USE_AGENT_STORE"]
    join_process_group("tensorflow", no_agent)
    assert "KERAS_DISTRIBUTION_JOB_ADDRESSES" not in on_torch and given["TF_CONFIG"] == "{}"
    assert "TF_CONFIG" not in no_agent and "KERAS_DISTRIBUTION_PROCESS_ID" not in coordinator


def test_a_node_that_never_joins_is_named(store):
    with pytest.raises(ConfigError, match=r"WORLD_SIZE=2: ranks \[1\] did not publish their address"):
        torch_store.exchange_addresses("127.0.0.1", store.port, 0, 2, "kplug/test", timeout_seconds=1)
