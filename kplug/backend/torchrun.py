"""torchrun's engine (``torch.distributed.run``), which starts the processes of ``kplug train --nproc N``."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from kplug.errors import ConfigError

NO_TORCH = (
    "--nproc N starts its processes with torchrun's engine (torch.distributed.run), and torch is not "
    "installed here. Install it (`pip install torch`; the CPU wheel is enough, whatever the backend), "
    "or start one `kplug train` per process yourself: under srun, or with torchrun's variables "
    "RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set (docs/scale-out.md)."
)


def run_torchrun(arguments: Sequence[str]) -> int:
    """Run ``torchrun ARGUMENTS`` in this process and return the exit code of the group.

    Returns:
        0 when every process succeeded, else the exit code of the first that failed
        (1 when it was ended by a signal).

    Raises:
        ConfigError: torch is not installed.
        KeyboardInterrupt: the launcher was interrupted (Ctrl-C); torchrun stops the processes.
    """
    try:
        from torch.distributed import run
        from torch.distributed.elastic.multiprocessing.api import SignalException
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    except ImportError:
        raise ConfigError(NO_TORCH) from None
    try:
        run.main(list(arguments))
    except ChildFailedError as error:
        _rank, failure = error.get_first_failure()
        return failure.exitcode if failure.exitcode > 0 else 1
    except SignalException as error:
        if error.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise
    return 0
