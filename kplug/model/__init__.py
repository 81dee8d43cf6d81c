"""The model: backbone + heads assembly, layer paths, freezing, per-layer rates, init from checkpoints."""
