"""Training: the trainer and its stages, optimizers, callbacks, checkpoints/resume, the run directory."""
