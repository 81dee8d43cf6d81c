"""Where a Keras training step's time goes on one backend: kplug, plain ``Model.fit`` (nested and flat), torch loop.

``--sides`` picks among ``kplug``, ``kplug_flat`` (kplug training its nested model through the flat
graph of ``flat_forward.py``, a prototype), ``plain`` and ``plain_flat``.

    KERAS_BACKEND=torch python benchmarks/profile_step.py --model mlp --epochs 3 --threads 1

Each side trains the benchmark model (``bench_models.py``) under ``cProfile`` with a CPU-time clock
(``time.process_time``), so load from other processes does not inflate the figures; one intra-op
thread by default so that CPU time is not spin-waiting. Prints, per side, the CPU seconds per step
inside ``Model.fit`` and how they split over Keras' train step (forward, loss, backward, optimizer,
metrics), the callbacks and the batch stream. The torch loop is timed without the profiler.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (label, file fragment, function, caller or None): cumulative CPU time of that function
PARTS = [
    ("train step (Keras)", "keras/src/backend/", "train_step", None),
    ("  forward (model call)", "traceback_utils.py", "error_handler", "train_step"),
    ("  loss", "trainers/trainer.py", "_compute_loss", "train_step"),
    ("  loss tracker", "reduction_metrics.py", "update_state", "train_step"),
    ("  backward", "torch/_tensor.py", "backward", "train_step"),
    ("  optimizer apply", "optimizers/base_optimizer.py", "apply", "train_step"),
    ("  metrics", "trainers/trainer.py", "compute_metrics", "train_step"),
    ("callbacks per batch", "callback_list.py", "on_train_batch_end", None),
    ("callbacks per batch (begin)", "callback_list.py", "on_train_batch_begin", None),
    ("kplug batch stream", "kplug/data/batches.py", "__getitem__", None),
]


def cumulative(stats: dict, fragment: str, function: str, caller: str | None) -> float:
    total = 0.0
    for (path, _line, name), (_cc, _nc, _tt, cum, callers) in stats.items():
        if fragment in path and name == function:
            if caller is None:
                total += cum
            else:
                total += sum(value[3] for key, value in callers.items() if key[2] == caller)
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=0, help="examples (default: 8192 mlp, 2048 cnn)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--sides", default="kplug,plain,plain_flat")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import worker
    from bench_models import SPECS, mnist

    spec = SPECS[args.model]
    x, y = mnist(args.size or (8192 if args.model == "mlp" else 2048))
    steps = -(-len(x) // args.batch) * args.epochs
    out = Path(tempfile.mkdtemp())
    sides = {
        "kplug": lambda epochs: worker.run_kplug(spec, x, y, args.batch, epochs, out, checkpoint_every=0),
        "kplug_flat": lambda epochs: worker.run_kplug(
            spec, x, y, args.batch, epochs, out, checkpoint_every=0, flat=True
        ),
        "plain": lambda epochs: worker.run_plain(spec, x, y, args.batch, epochs, {}),
        "plain_flat": lambda epochs: worker.run_plain(spec, x, y, args.batch, epochs, {}, nested=False),
    }
    worker.run_torch_loop(spec, x, y, args.batch, 1)
    loop = worker.run_torch_loop(spec, x, y, args.batch, args.epochs)
    print(
        f"{worker.BACKEND} {args.model}, {len(x)} x {args.epochs} epochs, batch {args.batch}: CPU ms per step"
    )
    print(f"torch loop: {1000 * loop['cpu_seconds'] / steps:.2f} ms per step (whole step, no profiler)")
    for side in args.sides.split(","):
        sides[side](1)  # warm-up: imports, first-call costs
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        sides[side](args.epochs)
        profile.disable()
        stats = pstats.Stats(profile).stats
        fit = cumulative(stats, "keras/src/backend/", "fit", None)
        print(f"\n{side}: Model.fit {1000 * fit / steps:.2f} ms per step (profiled)")
        for label, fragment, function, caller in PARTS:
            part = cumulative(stats, fragment, function, caller)
            if part:
                print(f"  {label:30s} {1000 * part / steps:6.2f} ms  {100 * part / fit:5.1f}%")


if __name__ == "__main__":
    main()
