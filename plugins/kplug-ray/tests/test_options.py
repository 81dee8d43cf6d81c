"""The ``ray`` distribution's options, and the errors a run gets before any cluster is joined."""

from __future__ import annotations

import sys

import kplug
import pytest
from conftest import run_config

import kplug_ray
from kplug_ray.launch import launch


@pytest.fixture
def plugins():
    return kplug.load_plugins([kplug_ray], entry_points=False)


def _config(tmp_path, **options):
    return run_config(tmp_path, "run", {"name": "ray", "options": {"address": "local", **options}})


def test_unknown_option_is_refused_with_the_valid_ones(tmp_path, plugins):
    with pytest.raises(kplug.ConfigError, match=r"(?s)nodes.*workers"):
        kplug.Trainer(_config(tmp_path, nodes=2), plugins=plugins)


@pytest.mark.parametrize("workers", [0, -1])
def test_fewer_than_one_worker_is_refused(tmp_path, plugins, workers):
    with pytest.raises(kplug.ConfigError, match=r"workers"):
        kplug.Trainer(_config(tmp_path, workers=workers), plugins=plugins)


def test_without_ray_installed_kplug_train_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    config = kplug.load_config(_config(tmp_path))
    with pytest.raises(kplug.ConfigError, match=r"distribution.name = 'ray' needs Ray.*pip install ray"):
        launch(config, {"config": "run.yaml", "output": None, "resume": None})


def test_kplug_train_sends_only_ray_runs_to_the_cluster(tmp_path):
    config = kplug.load_config(run_config(tmp_path, "run", {"name": "auto"}))
    assert kplug_ray.kplug_launch(config=config, train={"config": "run.yaml"}) is None


def test_training_in_this_process_is_refused_with_what_to_run(tmp_path, plugins):
    with pytest.raises(kplug.ConfigError, match=r"only `kplug train` sends a run to a Ray cluster"):
        kplug.fit(_config(tmp_path), plugins=plugins)


def test_a_group_larger_than_the_cluster_is_refused(tmp_path, monkeypatch):
    """Ray would wait forever for CPUs it does not have; kplug says what is missing."""

    class Cluster:  # a cluster of 2 CPUs, without starting Ray
        @staticmethod
        def cluster_resources():
            return {"CPU": 2.0}

    from kplug_ray.launch import check_resources
    from kplug_ray.options import RayOptions

    with pytest.raises(kplug.ConfigError, match=r"workers = 3 with 1 CPU\(s\) each need 3 CPU\(s\).* has 2"):
        check_resources(Cluster, RayOptions(workers=3))
    check_resources(Cluster, RayOptions(workers=2))
