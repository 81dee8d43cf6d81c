"""Placement: where a run's model is built and trained (devices, processes, strategies)."""
