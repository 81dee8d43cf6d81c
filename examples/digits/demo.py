"""kplug demo: pretrain a small CNN on MNIST digits 0-4, transfer it to digits 5-9.

Run from the repository root: ``python examples/digits/demo.py`` (``nox -s demo`` installs
kplug first). Writes runs/digits-pretrain, runs/digits-transfer and runs/digits-scratch.
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
    def kplug_on_epoch_end(self, trainer, epoch, logs):
        ends, total = [], 0
        for stage in trainer.config.train.resolved_stages():
            total += stage.epochs
            ends.append(total)
        if epoch + 1 in ends:
            x, y = trainer.split_data("test")
            scores = trainer.model.evaluate(x, y, verbose=0, return_dict=True)
            self.accuracy.append(scores["accuracy"])


def main() -> None:
    """Pretrain, transfer, train from scratch for comparison, predict, and summarise."""
    banner(f"1/3 pretrain small-cnn on digits 0-4 (backend: {keras.backend.backend()})")
    pretrain = kplug.fit(HERE / "pretrain.yaml")

    banner("2/3 transfer the backbone to digits 5-9 with a new head (head only, then everything)")
    stages = StageAccuracy()
    transfer = kplug.fit(HERE / "transfer.yaml", plugins=[stages])

    banner("3/3 the same model and stages on digits 5-9 from random initialisation")
    scratch_config = kplug.load_config(HERE / "transfer.yaml").model_dump(by_alias=True)
    scratch_config["name"] = "digits-scratch"
    scratch_config["model"]["backbone"]["init"] = None
    scratch_config["train"]["stages"][0]["trainable"] = "all"
    scratch_config["output"]["dir"] = "runs/digits-scratch"
    scratch = kplug.fit(scratch_config)

    records = kplug.predict(transfer.run_dir, split="test")
    first = records[0]["digits59"]
    print(f"\nFirst test example: predicted digit {first['label']} with p={max(first['probabilities']):.3f}")

    data = transfer.report["data"]
    print("\nResults (accuracy on held-out test examples)")
    print(
        f"  pretrain  digits 0-4, {pretrain.report['data']['train']:4d} labels: {pretrain.metrics['accuracy']:.3f}"
    )
    print(
        f"  transfer  digits 5-9, {data['train']:4d} labels: {transfer.metrics['accuracy']:.3f}  ({data['test']} test)"
    )
    print(f"  scratch   digits 5-9, {data['train']:4d} labels: {scratch.metrics['accuracy']:.3f}")
    for number, (stage, accuracy) in enumerate(
        zip(transfer.report["stages"], stages.accuracy, strict=False), 1
    ):
        print(f"  transfer after stage {number} ({', '.join(stage['trainable'])} trained): {accuracy:.3f}")
    print(f"\nRun directories: {pretrain.run_dir}, {transfer.run_dir}, {scratch.run_dir}")


if __name__ == "__main__":
    main()
