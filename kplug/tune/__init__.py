"""Hyperparameter search: the config's ``tune`` section and ``kplug tune``."""
