"""The ``kplug`` command line."""
