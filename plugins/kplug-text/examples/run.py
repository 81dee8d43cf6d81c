"""Run one kplug-text example and score it: ``python plugins/kplug-text/examples/run.py sst2``.

Run from the repository root. Names: ``sst2`` (fine-tune everything), ``sst2-frozen`` (head
only), ``sst2-staged`` (staged unfreezing), ``agnews``. The SST-2 runs are scored on the
whole of ``data/sst2-dev.tsv``; AG News on its held-out test split. Prints the numbers and
writes them to ``<run dir>/example.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import kplug

HERE = Path(__file__).parent
DEV = HERE / "data" / "sst2-dev.tsv"


def main() -> None:
    """Train the named example, evaluate it and record the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["sst2", "sst2-frozen", "sst2-staged", "agnews"])
    args = parser.parse_args()
    started = time.perf_counter()
    result = kplug.fit(HERE / f"{args.name}.yaml")
    trained = time.perf_counter()
    if args.name.startswith("sst2"):
        metrics = kplug.evaluate(result.run_dir, data=str(DEV))
        scored_on = f"{DEV.name} (all rows)"
    else:
        metrics = result.metrics
        scored_on = f"held-out test split ({result.report['data']['test']} rows)"
    finished = time.perf_counter()
    numbers = {
        "example": args.name,
        "backend": keras.backend.backend(),
        "train_examples": result.report["data"]["train"],
        "accuracy": round(float(metrics["accuracy"]), 4),
        "scored_on": scored_on,
        "train_minutes": round((trained - started) / 60, 1),
        "total_minutes": round((finished - started) / 60, 1),
    }
    (Path(result.run_dir) / "example.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps(numbers, indent=2), flush=True)


if __name__ == "__main__":
    main()
