"""Placement: where a run's model is built and trained (devices, processes, strategies).

The ``Distribution`` contract that components implement is ``kplug.plugin.distribution``.
Here: ``auto`` (the choice of a registered distribution), ``build`` (a component from its
options), ``processes`` (process groups and the ``--nproc`` launcher), ``devices`` and
``sharding`` (the variable layout ``report.json`` records).
"""
