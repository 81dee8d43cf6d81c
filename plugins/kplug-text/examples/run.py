"""Run one kplug-text example and score it: ``python plugins/kplug-text/examples/run.py sst2``.

Run from the repository root. Names: ``sst2`` (fine-tune everything), ``sst2-frozen`` (head
only), ``sst2-staged`` (staged unfreezing), ``agnews``. The SST-2 runs are scored on the
whole of ``data/sst2-dev.tsv`` and on its unseen part (below); AG News on its held-out test
split. Prints the numbers and writes them to ``<run dir>/example.json``.

SST-2's phrases are parse-tree pieces of the same sentences, so half of ``sst2-dev.tsv`` occurs
inside a training phrase. The *unseen* part keeps only phrases that occur inside no training
phrase and contain no training phrase of four words or more: the closest this data comes to
sentences the model never trained on (GLUE's validation set is not shipped here).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import kplug

HERE = Path(__file__).parent
DEV = HERE / "data" / "sst2-dev.tsv"
TRAIN = HERE / "data" / "sst2-train-12k.tsv"


def read_phrases(path: Path) -> list[dict[str, str]]:
    """The rows of an SST-2 TSV file (``sentence``, ``label``)."""
    with open(path, newline="") as file:
        return list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))


def write_unseen_phrases(train: Path, dev: Path, out: Path) -> int:
    """Write the rows of ``dev`` that share no phrase with ``train`` to ``out``; return how many.

    A dev phrase is dropped when it occurs inside a training phrase, or when a training phrase
    of four words or more occurs inside it.
    """
    trained = [row["sentence"].strip() for row in read_phrases(train)]
    joined = "\n".join(trained)
    long_trained = [phrase for phrase in trained if len(phrase.split()) >= 4]
    kept = []
    for row in read_phrases(dev):
        phrase = row["sentence"].strip()
        if phrase in joined:
            continue
        if len(phrase.split()) >= 4 and any(t in phrase for t in long_trained if len(t) < len(phrase)):
            continue
        kept.append(row)
    with open(out, "w", newline="") as file:
        writer = csv.DictWriter(file, ["sentence", "label"], delimiter="\t", quoting=csv.QUOTE_NONE)
        writer.writeheader()
        writer.writerows({"sentence": row["sentence"], "label": row["label"]} for row in kept)
    return len(kept)


def main() -> None:
    """Train the named example, evaluate it and record the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["sst2", "sst2-frozen", "sst2-staged", "agnews"])
    args = parser.parse_args()
    kplug.quiet_tensorflow()  # TensorFlow's start-up lines stay off, as in the kplug CLI
    started = time.perf_counter()
    result = kplug.fit(HERE / f"{args.name}.yaml")
    trained = time.perf_counter()
    if args.name.startswith("sst2"):
        metrics = kplug.evaluate(result.run_dir, data=str(DEV))
        scored_on = f"{DEV.name} (all rows)"
        unseen_path = Path(result.run_dir) / "sst2-dev-unseen.tsv"
        unseen_rows = write_unseen_phrases(TRAIN, DEV, unseen_path)
        unseen = kplug.evaluate(result.run_dir, data=str(unseen_path))
    else:
        metrics = result.metrics
        scored_on = f"held-out test split ({result.report['data']['test']} rows)"
    finished = time.perf_counter()
    numbers = {
        "example": args.name,
        "backend": result.report["backend"],
        "train_examples": result.report["data"]["train"],
        "accuracy": round(float(metrics["accuracy"]), 4),
        "scored_on": scored_on,
        **(
            {"unseen_accuracy": round(float(unseen["accuracy"]), 4), "unseen_rows": unseen_rows}
            if args.name.startswith("sst2")
            else {}
        ),
        "train_minutes": round((trained - started) / 60, 1),
        "total_minutes": round((finished - started) / 60, 1),
    }
    (Path(result.run_dir) / "example.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps(numbers, indent=2), flush=True)


if __name__ == "__main__":
    main()
