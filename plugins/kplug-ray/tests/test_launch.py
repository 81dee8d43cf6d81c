"""Starting a lost group again: only from a complete checkpoint."""

from __future__ import annotations

from kplug_ray.launch import has_checkpoint


def test_only_a_complete_checkpoint_restarts_a_group(tmp_path):
    (tmp_path / "checkpoints" / ".partial-x1y2").mkdir(parents=True)  # a worker died while writing it
    assert not has_checkpoint(tmp_path)
    (tmp_path / "checkpoints" / "epoch00000-batch000002-stage01").mkdir()
    assert has_checkpoint(tmp_path)
