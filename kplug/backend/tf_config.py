"""``TF_CONFIG``: how ``tf.distribute.MultiWorkerMirroredStrategy`` finds the other workers."""

from __future__ import annotations

import json
from collections.abc import Sequence


def cluster_tf_config(workers: Sequence[str], rank: int) -> str:
    """``TF_CONFIG`` of worker ``rank`` in a cluster of ``host:port`` workers (worker 0 is the chief).

    Example::

        cluster_tf_config(["node01:4001", "node02:4001"], 1)
        # '{"cluster": {"worker": ["node01:4001", "node02:4001"]}, "task": {"type": "worker", "index": 1}}'
    """
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": rank}})


def tf_config(ports: Sequence[int], rank: int) -> str:
    """``TF_CONFIG`` of process ``rank`` in a cluster of workers on this host, one per port.

    The format ``tf.distribute.MultiWorkerMirroredStrategy`` reads; worker 0 is the chief.

    Example::

        tf_config([4001, 4002], 1)
        # '{"cluster": {"worker": ["127.0.0.1:4001", "127.0.0.1:4002"]}, "task": {"type": "worker", "index": 1}}'
    """
    return cluster_tf_config([f"127.0.0.1:{port}" for port in ports], rank)
