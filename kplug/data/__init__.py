"""Data: sources, filtering, splits, label maps, the resumable batch stream and model inputs."""
