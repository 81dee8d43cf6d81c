"""Using a finished run: load it, predict, evaluate."""
