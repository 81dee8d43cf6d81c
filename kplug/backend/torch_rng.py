"""torch's global random generator, which Keras' torch backend draws unseeded dropout masks from.

A checkpoint saves its state and a resumed run restores it, so the resumed run draws
the masks the uninterrupted one would.
"""

from __future__ import annotations

import numpy as np


def torch_rng_state() -> np.ndarray:
    """The state of torch's global generator, as a uint8 array."""
    import torch

    return torch.get_rng_state().numpy()


def set_torch_rng_state(state: np.ndarray) -> None:
    """Restore torch's global generator from ``torch_rng_state()``'s array."""
    import torch

    torch.set_rng_state(torch.from_numpy(state))
