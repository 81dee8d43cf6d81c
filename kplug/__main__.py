"""``python -m kplug ...`` runs the ``kplug`` command (e.g. under ``torchrun -m kplug train run.yaml``)."""

from kplug.cli.main import entry_point

if __name__ == "__main__":
    entry_point()
