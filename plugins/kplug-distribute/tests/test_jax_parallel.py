"""JAX data parallel and model parallel over 4 forced host devices, against one device.

Everything runs in one fresh process with XLA_FLAGS=--xla_force_host_platform_device_count=4
(the flag must be set before JAX starts), then each test checks one part of the results.
"""

from __future__ import annotations

import json

import pytest
import yaml
from case import run_config
from conftest import (
    CHECKPOINTS,
    check_global_batchnorm,
    interrupted_copy,
    launch_cli,
    load_weights,
    max_difference,
    run_cases,
    weights,
)

pytestmark = pytest.mark.backends("jax")

MESH = {"batch": 2, "model": 2}
TOLERANCE = 1e-5  # float32 sums in another order; measured 6e-8 here

CASES = [
    {"label": "single", "distribution": {"name": "single-device"}},
    {"label": "dp", "distribution": {"name": "data-parallel"}},
    {"label": "auto", "distribution": {"name": "auto"}},
    {"label": "mp", "distribution": {"name": "model-parallel", "options": {"mesh": MESH}}},
    {
        "label": "mp_rules",
        "distribution": {
            "name": "model-parallel",
            "options": {
                "mesh": MESH,
                "layout": {"backbone/dense*/kernel": [None, "model"], "re:backbone/dense2/b.*": ["model"]},
            },
        },
    },
    {
        "label": "mp_from_single",
        "distribution": {"name": "model-parallel", "options": {"mesh": MESH}},
        "overrides": {"train": {"epochs": 1, "batch_size": 32, "verbose": 0}},
        "init_from": "single",
    },
    {"label": "load_dp", "run": "dp"},
    {"label": "single_npz", "npz": True},  # the 2-process run reads the same npz file
    {"label": "dp_bn", "distribution": {"name": "data-parallel"}, "batchnorm": True},
    {
        "label": "mp_bn",
        "distribution": {"name": "model-parallel", "options": {"mesh": MESH}},
        "batchnorm": True,
    },
    {"label": "single_bn", "batchnorm": True, "npz": True},  # and the 2-process BatchNorm run's data
    {"label": "load_mp", "run": "mp"},
    {
        "label": "bad_mesh",
        "distribution": {"name": "model-parallel", "options": {"mesh": {"batch": 3, "model": 1}}},
    },
    {
        "label": "bad_rule",
        "distribution": {
            "name": "model-parallel",
            "options": {"mesh": MESH, "layout": {"backbone/dense*/kernl": [None, "model"]}},
        },
    },
    {
        "label": "old_rule",  # a raw regex on Keras' variable paths, the form rules had before
        "distribution": {
            "name": "model-parallel",
            "options": {"mesh": MESH, "layout": {".*dense.*kernel": [None, "model"]}},
        },
    },
    {
        "label": "bad_rank",
        "distribution": {
            "name": "model-parallel",
            "options": {"mesh": MESH, "layout": {"backbone/dense1/kernel": ["model"]}},
        },
    },
    {
        "label": "bad_axis",
        "distribution": {
            "name": "model-parallel",
            "options": {"mesh": MESH, "layout": {"*/kernel": [None, "modle"]}},
        },
    },
    {
        "label": "bad_batch",
        "distribution": {"name": "data-parallel"},
        "overrides": {"train": {"batch_size": 30}},
    },
    # 181 training and 45 validation rows: both last batches (21, 13) are padded to split over 4
    {"label": "uneven_single", "overrides": {"limit": 226}},
    {"label": "uneven_dp", "distribution": {"name": "data-parallel"}, "overrides": {"limit": 226}},
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("jax-cases")
    return root, run_cases(root, CASES, "jax", {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})


def test_data_parallel_equals_one_device(results):
    root, found = results
    assert found["dp"]["distribution"]["replicas"] == 4
    assert found["dp"]["distribution"]["devices"] == ["cpu:0", "cpu:1", "cpu:2", "cpu:3"]
    assert max_difference(weights(root / "single/weights.npz"), weights(root / "dp/weights.npz")) < TOLERANCE


def test_auto_picks_data_parallel_on_several_devices(results):
    root, found = results
    assert found["auto"]["distribution"]["strategy"] == "data-parallel"
    assert (
        max_difference(weights(root / "single/weights.npz"), weights(root / "auto/weights.npz")) < TOLERANCE
    )


@pytest.mark.parametrize("label", ["dp_bn", "mp_bn"])
def test_batchnorm_statistics_are_those_of_the_global_batch(results, label):
    """One program over the sharded global batch: BatchNorm's batch mean is already a global one."""
    root, _ = results
    check_global_batchnorm(root / label, root / "single_bn", TOLERANCE)
    assert (
        max_difference(weights(root / "single_bn/weights.npz"), weights(root / label / "weights.npz"))
        < TOLERANCE
    )


def test_model_parallel_shards_by_default_and_matches_the_loss_curve(results):
    root, found = results
    placement = found["mp"]["distribution"]
    assert placement["mesh"] == MESH and placement["replicas"] == 2
    assert placement["variables"]["dense1/kernel"] == "P(None, 'model')"
    assert placement["variables"]["dense1/bias"] == "P(None,)"
    assert placement["variables"]["classification/logits/kernel"] == "P(None, 'model')"
    single, sharded = found["single"]["history"], found["mp"]["history"]
    for name in ("loss", "val_loss"):
        assert single[name] == pytest.approx(sharded[name], abs=TOLERANCE)
    assert max_difference(weights(root / "single/weights.npz"), weights(root / "mp/weights.npz")) < TOLERANCE


def test_model_parallel_layout_rules_from_config(results):
    root, found = results
    placement = found["mp_rules"]["distribution"]
    assert placement["variables"]["dense2/kernel"] == "P(None, 'model')"
    assert placement["variables"]["dense2/bias"] == "P('model',)"
    assert placement["variables"]["classification/logits/kernel"] == "P(None, None)"  # no rule: whole
    assert placement["variables"]["dense1/bias"] == "P(None,)"  # selected by no rule
    assert placement["rules_matched"] == {  # by stable path
        "backbone/dense1/kernel": "backbone/dense*/kernel",
        "backbone/dense2/kernel": "backbone/dense*/kernel",
        "backbone/dense2/bias": "re:backbone/dense2/b.*",
    }
    assert found["single"]["history"]["loss"] == pytest.approx(
        found["mp_rules"]["history"]["loss"], abs=TOLERANCE
    )


def test_distributed_checkpoints_load_on_one_device(results):
    root, _ = results
    assert max_difference(weights(root / "dp/weights.npz"), weights(root / "load_dp.npz")) == 0.0
    assert max_difference(weights(root / "mp/weights.npz"), weights(root / "load_mp.npz")) == 0.0


def test_single_device_checkpoint_initialises_a_sharded_run(results):
    _, found = results
    init = found["mp_from_single"]["init"]
    assert len(init["initialised"]) == 6 and not init["left_new"] and not init["skipped"]
    assert found["mp_from_single"]["history"]["loss"][0] < found["single"]["history"]["loss"][0]


def _error(found, label):
    outcome = found[label]
    assert outcome.get("error") == "ConfigError", outcome
    assert outcome["wrote"] is False  # refused before the run directory exists
    return outcome["message"]


def test_mesh_that_does_not_divide_the_devices(results):
    message = _error(results[1], "bad_mesh")
    assert "distribution.options.mesh = {'batch': 3, 'model': 1}" in message
    assert "does not divide the 4 device(s)" in message


def test_layout_rule_matching_nothing(results):
    message = _error(results[1], "bad_rule")
    assert (
        "distribution.options.layout['backbone/dense*/kernl']: pattern 'backbone/dense*/kernl' "
        "matches no variable" in message
    )
    assert "backbone/dense1/kernel" in message  # the paths it could have matched


def test_layout_rule_in_the_old_form_names_the_new_one(results):
    message = _error(results[1], "old_rule")
    assert "distribution.options.layout['.*dense.*kernel']: pattern '.*dense.*kernel' matches no" in message
    assert "this rule selects backbone/dense1/kernel, backbone/dense2/kernel;" in message
    assert "write 're:.*/.*dense.*kernel'" in message


def test_layout_rule_of_the_wrong_rank(results):
    message = _error(results[1], "bad_rank")
    assert "layout['backbone/dense1/kernel'] = ['model']" in message and "has 2 dimension(s)" in message


def test_layout_rule_naming_an_unknown_axis(results):
    message = _error(results[1], "bad_axis")
    assert "axis 'modle' is not in the mesh; axes: batch, model" in message


def test_batch_not_divisible_by_replicas(results):
    message = _error(results[1], "bad_batch")
    assert "train.batch_size = 30" in message and "multiple of 4" in message


def test_a_last_batch_that_does_not_split_is_padded_and_changes_nothing(results):
    """Zero-weight padding: the same weights and validation metrics as one device; the logged
    training loss weighs the padded batch by its padded row count (Keras' loss tracker)."""
    root, found = results
    single, padded = found["uneven_single"], found["uneven_dp"]
    assert padded["distribution"]["padded_last_batch"] == {
        "train": "last batch of 21 padded to 24 with 3 zero-weight rows (batch size 32)",
        "validation": "last batch of 13 padded to 16 with 3 zero-weight rows (batch size 32)",
    }
    assert (
        max_difference(weights(root / "uneven_single/weights.npz"), weights(root / "uneven_dp/weights.npz"))
        < TOLERANCE
    )
    for name in ("val_loss", "val_accuracy", "accuracy"):
        assert padded["history"][name] == pytest.approx(single["history"][name], abs=TOLERANCE)
    for name in ("loss", "accuracy"):  # the final evaluation, padded the same way
        assert padded["metrics"][name] == pytest.approx(single["metrics"][name], abs=TOLERANCE)


@pytest.fixture(scope="module")
def group(results, tmp_path_factory):
    """`kplug train --nproc 2` (2 processes x 2 host devices, `auto`), then its copy interrupted in the
    middle of epoch 2 and resumed with `kplug train --resume RUN_DIR --nproc 2`."""
    root, _ = results
    tmp_path = tmp_path_factory.mktemp("jax-group")
    config = run_config(str(tmp_path / "two"), {"name": "auto"})  # auto: data-parallel in a process group
    config["data"] = {**config["data"], "source": "npz", "options": {"path": str(root / "blobs.npz")}}
    config["output"].update(CHECKPOINTS)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    output = launch_cli(tmp_path, ["train", "run.yaml", "--nproc", "2"], "jax", **flags)
    resumed = interrupted_copy(tmp_path / "two", tmp_path / "resumed")
    resume_output = launch_cli(tmp_path, ["train", "--resume", str(resumed), "--nproc", "2"], "jax", **flags)
    return root, tmp_path, output, resume_output


@pytest.mark.slow
def test_two_processes_of_two_devices_equal_one_device(group):
    """jax.distributed over 2 processes x 2 host devices, gloo collectives, one 4-device mesh."""
    root, tmp_path, output, _ = group
    assert output.count("Run directory:") == 1  # rank 0 reports
    report = json.loads((tmp_path / "two" / "report.json").read_text())
    assert report["distribution"]["strategy"] == "data-parallel"
    assert report["distribution"]["processes"] == 2 and report["distribution"]["replicas"] == 4
    two = load_weights(tmp_path / "two" / "model.keras")
    difference = max_difference(weights(root / "single_npz/weights.npz"), two)
    print(f"2 processes x 2 devices vs one device: max weight difference {difference:.3g}")
    assert difference < TOLERANCE


@pytest.mark.slow
def test_resumed_two_processes_equal_the_uninterrupted_run(group):
    _, tmp_path, _, resume_output = group
    assert "Resuming" in resume_output and "epoch 2" in resume_output
    assert resume_output.count("Run directory:") == 1
    difference = max_difference(
        load_weights(tmp_path / "two" / "model.keras"), load_weights(tmp_path / "resumed" / "model.keras")
    )
    print(
        f"2 processes x 2 devices resumed mid-epoch vs uninterrupted: max weight difference {difference:.3g}"
    )
    assert difference < TOLERANCE


@pytest.mark.slow
def test_two_processes_train_batchnorm_on_global_batch_statistics(results, tmp_path_factory):
    """`kplug train --nproc 2` of the BatchNorm CNN over 2 processes x 2 host devices: one 4-device mesh."""
    root, _ = results
    tmp_path = tmp_path_factory.mktemp("jax-group-batchnorm")
    config = run_config(str(tmp_path / "two"), {"name": "data-parallel"}, batchnorm=True)
    config["data"] = {**config["data"], "source": "npz", "options": {"path": str(root / "images.npz")}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    launch_cli(tmp_path, ["train", "run.yaml", "--nproc", "2"], "jax", **flags)
    assert json.loads((tmp_path / "two" / "report.json").read_text())["distribution"]["processes"] == 2
    check_global_batchnorm(tmp_path / "two", root / "single_bn", TOLERANCE)
    two = load_weights(tmp_path / "two" / "model.keras")
    assert max_difference(weights(root / "single_bn/weights.npz"), two) < TOLERANCE
