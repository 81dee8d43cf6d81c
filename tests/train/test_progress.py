"""What a run prints: a line per stage, epoch counters within the stage and over the run, plain text off a terminal."""

from __future__ import annotations

import io
import re

from conftest import blob_config

import kplug
from kplug.train.progress import progress_mode


def two_stage_config(x, y, verbose="auto"):
    config = blob_config(x, y)
    config["train"] = {
        "verbose": verbose,
        "batch_size": 48,
        "optimizer": {"name": "adamw", "learning_rate": 1e-2},
        "stages": [
            {"epochs": 2, "trainable": ["heads/*"]},
            {"epochs": 3, "trainable": "all", "optimizer": {"learning_rate": 1e-3}, "batch_size": 32},
        ],
    }
    return config


def test_stage_lines_and_epoch_counters_of_a_two_stage_run(blobs, plugins, capsys):
    x, y = blobs
    kplug.fit(two_stage_config(x, y), plugins=plugins)
    out = capsys.readouterr().out
    lines = out.splitlines()
    stages = [line for line in lines if line.startswith("stage ")]
    assert len(stages) == 2, out
    assert re.fullmatch(
        r"stage 1 of 2: trains heads/\* \(\d+ trainable params\), 2 epochs, batch size 48, "
        r"learning rate 0\.01 \(adamw\)",
        stages[0],
    ), stages[0]
    assert re.fullmatch(
        r"stage 2 of 2: trains all \([\d,]+ trainable params\), 3 epochs, batch size 32, "
        r"learning rate 0\.001 \(adamw\)",
        stages[1],
    ), stages[1]
    head_params = int(re.search(r"\((\d+) trainable", stages[0]).group(1))
    all_params = int(re.search(r"\(([\d,]+) trainable", stages[1]).group(1).replace(",", ""))
    assert 0 < head_params < all_params
    counters = [
        re.match(r"epoch \d+/\d+ \(run \d+/\d+\)", line).group(0)
        for line in lines
        if line.startswith("epoch ")
    ]
    assert counters == [
        "epoch 1/2 (run 1/5)",
        "epoch 2/2 (run 2/5)",
        "epoch 1/3 (run 3/5)",
        "epoch 2/3 (run 4/5)",
        "epoch 3/3 (run 5/5)",
    ]
    # each epoch line carries its metrics; the stage line comes before its epochs
    assert "loss " in lines[lines.index(stages[0]) + 1] and "val_accuracy " in lines[-1]
    assert lines.index(stages[1]) == lines.index(next(line for line in lines if "(run 3/5)" in line)) - 1


def test_no_carriage_returns_or_ansi_codes_when_not_a_terminal(blobs, plugins, capfd):
    x, y = blobs
    kplug.fit(two_stage_config(x, y, verbose=1), plugins=plugins)  # 1: a bar on a terminal only
    captured = capfd.readouterr()
    assert "epoch 3/3 (run 5/5)" in captured.out
    for stream in (captured.out, captured.err):
        assert "\r" not in stream and "\x1b" not in stream
        assert "Epoch " not in stream and "step" not in stream  # no Keras bar or its header


def test_verbose_zero_prints_nothing(blobs, plugins, capsys):
    x, y = blobs
    kplug.fit(two_stage_config(x, y, verbose=0), plugins=plugins)
    assert capsys.readouterr().out == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_mode_follows_the_terminal_and_verbose():
    assert progress_mode("auto", Terminal()) == "bar"
    assert progress_mode(1, Terminal()) == "bar"
    assert progress_mode(2, Terminal()) == "lines"
    assert progress_mode("auto", io.StringIO()) == "lines"
    assert progress_mode(0, Terminal()) == "quiet"
