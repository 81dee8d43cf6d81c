"""Who this process is in its group, from torchrun's or SLURM's variables (no process is started)."""

from __future__ import annotations

import json

import pytest

from kplug.distribute.process_group import (
    ProcessGroup,
    expand_nodelist,
    expand_tasks_per_node,
    join_process_group,
    process_group,
)
from kplug.errors import ConfigError

# what srun sets in task 3 of `srun --nodes 2 --ntasks 4` (2 tasks per node), job 1234
SLURM = {
    "SLURM_PROCID": "3",
    "SLURM_NTASKS": "4",
    "SLURM_LOCALID": "1",
    "SLURM_JOB_NODELIST": "gpu[07-08]",
    "SLURM_TASKS_PER_NODE": "2(x2)",
    "SLURM_JOB_ID": "1234",
}


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("node01", ["node01"]),
        ("node[01-03,07]", ["node01", "node02", "node03", "node07"]),
        ("a[8-10],b1,c[1-2]-ib", ["a8", "a9", "a10", "b1", "c1-ib", "c2-ib"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ],
)
def test_slurm_node_lists_expand_in_order(nodelist, hosts):
    assert expand_nodelist(nodelist) == hosts


def test_a_node_list_that_cannot_be_read_names_it():
    with pytest.raises(ConfigError, match=r"SLURM_JOB_NODELIST='node\[a-c\]': cannot read 'a-c'"):
        expand_nodelist("node[a-c]")


def test_tasks_per_node_expand():
    assert expand_tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    with pytest.raises(ConfigError, match="SLURM_TASKS_PER_NODE='2x3'"):
        expand_tasks_per_node("2x3")


def test_srun_variables_describe_the_group():
    group = process_group(SLURM)
    assert group.describe() == {
        "engine": "slurm",
        "rank": 3,
        "world_size": 4,
        "local_rank": 1,
        "coordinator": "gpu07:11234",  # the first host; the port from the job id, the same in every task
    }
    assert group.jax_coordinator == "gpu07:11235"
    assert group.tf_workers() == ["gpu07:11236", "gpu07:11237", "gpu08:11236", "gpu08:11237"]
    assert process_group({**SLURM, "MASTER_PORT": "29500"}).coordinator == "gpu07:29500"


def test_torchrun_variables_win_over_slurm_ones():
    torchrun = {
        "RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "10.0.0.5",
        "MASTER_PORT": "29500",
    }
    group = process_group({**SLURM, **torchrun})  # `srun torchrun ...`
    assert (group.engine, group.rank, group.world_size, group.coordinator) == (
        "torchrun",
        1,
        2,
        "10.0.0.5:29500",
    )
    assert process_group({}) == ProcessGroup()


def test_joining_a_slurm_group_sets_torchrun_variables_and_tf_config():
    environ = dict(SLURM)
    join_process_group("tensorflow", environ)
    assert {k: environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")} == {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "gpu07",
        "MASTER_PORT": "11234",
    }
    assert json.loads(environ["TF_CONFIG"])["task"] == {"type": "worker", "index": 3}
    assert process_group(environ).engine == "slurm"  # still named after what started it
    given = {**SLURM, "TF_CONFIG": "{}"}
    join_process_group("tensorflow", given)
    assert given["TF_CONFIG"] == "{}"  # what the user set is kept


def test_a_single_process_is_left_alone():
    environ = {**SLURM, "SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_TASKS_PER_NODE": "1"}
    join_process_group("torch", environ)
    assert "WORLD_SIZE" not in environ and "TF_CONFIG" not in environ


def test_a_bad_variable_names_itself():
    with pytest.raises(ConfigError, match="SLURM_NTASKS='two': expected a whole number"):
        process_group({**SLURM, "SLURM_NTASKS": "two"})
