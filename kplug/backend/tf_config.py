"""``TF_CONFIG``: how ``tf.distribute.MultiWorkerMirroredStrategy`` finds the other workers."""

from __future__ import annotations

import json
from collections.abc import Sequence


def tf_config(ports: Sequence[int], rank: int) -> str:
    """``TF_CONFIG`` of process ``rank`` in a cluster of workers on this host, one per port.

    The format ``tf.distribute.MultiWorkerMirroredStrategy`` reads; worker 0 is the chief.

    Example::

        tf_config([4001, 4002], 1)
        # '{"cluster": {"worker": ["127.0.0.1:4001", "127.0.0.1:4002"]}, "task": {"type": "worker", "index": 1}}'
    """
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})
