"""kplug-distribute: data-parallel and model-parallel training on JAX, TensorFlow and PyTorch.

Registers these distribution components (``distribution: {name: ...}``):

- ``data-parallel`` (jax): ``keras.distribution.DataParallel`` over every device.
- ``model-parallel`` (jax): ``keras.distribution.ModelParallel`` with a mesh and
  layout rules from the config.
- ``mirrored`` (tensorflow): ``tf.distribute.MirroredStrategy``.
- ``multi-worker-mirrored`` (tensorflow): ``tf.distribute.MultiWorkerMirroredStrategy``,
  one process per worker (``kplug train --nproc N`` or ``TF_CONFIG`` on every host).
- ``ddp`` (torch): DistributedDataParallel, one process per device
  (``kplug train --nproc N`` or torchrun).

Each offers itself to ``distribution: auto`` when the devices or processes it
needs are present; each refuses to start when it would not run in parallel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import kplug

if TYPE_CHECKING:
    from kplug.plugin import Register


@kplug.hookimpl
def kplug_register_distributions(register: Register) -> None:
    """Register the data- and model-parallel strategies of every backend."""
    # Backend libraries are imported inside each strategy, never at plugin load.
    from kplug_distribute import jax_parallel, tf_strategies, torch_ddp

    register(
        "data-parallel",
        jax_parallel.DataParallel,
        backends=("jax",),
        auto=jax_parallel.offer_data_parallel,
        auto_priority=10,
    )
    register("model-parallel", jax_parallel.ModelParallel, backends=("jax",))
    register(
        "mirrored",
        tf_strategies.Mirrored,
        backends=("tensorflow",),
        auto=tf_strategies.offer_mirrored,
        auto_priority=10,
    )
    register(
        "multi-worker-mirrored",
        tf_strategies.MultiWorkerMirrored,
        backends=("tensorflow",),
        auto=tf_strategies.offer_multi_worker,
        auto_priority=20,  # a launched group of workers comes before one process's devices
    )
    register(
        "ddp",
        torch_ddp.DistributedDataParallel,
        backends=("torch",),
        auto=torch_ddp.offer_ddp,
        auto_priority=10,
    )
