"""kplug demo: pretrain a small CNN on MNIST digits 0-4, transfer it to digits 5-9.

Run from the repository root: ``python examples/digits/demo.py`` (``nox -s demo-digits`` installs
kplug first). Writes runs/digits-pretrain, runs/digits-transfer-seed{7,8} and runs/digits-scratch-seed{7,8}.
"""

from __future__ import annotations

from pathlib import Path

import keras

import kplug

HERE = Path(__file__).parent


def banner(text: str) -> None:
    """Print a section title."""
    print(f"\n=== {text} ===", flush=True)


class StageAccuracy:
    """A plugin that measures test accuracy at the end of every training stage."""

    def __init__(self) -> None:
        self.accuracy: list[float] = []

    @kplug.hookimpl
    def kplug_on_epoch_end(self, run, epoch, logs):
        ends, total = [], 0
        for stage in run.stages:
            total += stage.epochs
            ends.append(total)
        if epoch + 1 in ends:
            x, y = run.split_data("test")
            scores = run.model.evaluate(x, y, verbose=0, return_dict=True)
            self.accuracy.append(scores["accuracy"])


def main() -> None:
    """Pretrain, transfer, train from scratch for comparison, predict, and summarise."""
    banner(f"1/3 pretrain small-cnn on digits 0-4 (backend: {keras.backend.backend()})")
    pretrain = kplug.fit(HERE / "pretrain.yaml")

    seeds = (7, 8)  # which 30 labels are drawn moves accuracy by points: average two draws
    transfers, scratches, per_stage = [], [], []
    for seed in seeds:
        banner(f"2/3 transfer the backbone to digits 5-9, seed {seed} (head only, then everything)")
        config = kplug.load_config(HERE / "transfer.yaml").model_dump(by_alias=True)
        config["seed"] = seed
        config["output"]["dir"] = f"runs/digits-transfer-seed{seed}"
        stages = StageAccuracy()
        transfers.append(kplug.fit(config, plugins=[stages]))
        per_stage.append(stages.accuracy)

        banner(f"3/3 the same model and stages on digits 5-9 from random initialisation, seed {seed}")
        config["name"] = "digits-scratch"
        config["model"]["backbone"]["init"] = None
        config["train"]["stages"][0]["trainable"] = "all"
        config["output"]["dir"] = f"runs/digits-scratch-seed{seed}"
        scratches.append(kplug.fit(config))

    transfer = transfers[0]
    records = kplug.predict(transfer.run_dir, split="test")
    first = records[0]
    print(f"\nFirst test example: predicted digit {first['label']} with p={max(first['probabilities']):.3f}")

    data = transfer.report["data"]
    print("\nResults (accuracy on held-out test examples)")
    print(
        f"  pretrain  digits 0-4, {pretrain.report['data']['train']:4d} labels: {pretrain.metrics['accuracy']:.3f}"
    )
    for seed, ours, theirs, stages in zip(seeds, transfers, scratches, per_stage, strict=True):
        after = ", ".join(f"stage {n}: {a:.3f}" for n, a in enumerate(stages, 1))
        print(
            f"  seed {seed}: digits 5-9, {data['train']} labels ({data['test']} test): transfer "
            f"{ours.metrics['accuracy']:.3f} ({after}), scratch {theirs.metrics['accuracy']:.3f}"
        )
    mean = lambda runs: sum(r.metrics["accuracy"] for r in runs) / len(runs)  # noqa: E731
    print(f"  mean over seeds: transfer {mean(transfers):.3f}, scratch {mean(scratches):.3f}")
    print(f"\nRun directories: {pretrain.run_dir}, runs/digits-transfer-seed*, runs/digits-scratch-seed*")


if __name__ == "__main__":
    main()
