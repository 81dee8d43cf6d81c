"""The only place for code specific to one Keras backend (torch, tensorflow, jax)."""
