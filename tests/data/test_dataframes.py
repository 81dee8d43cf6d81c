"""pandas DataFrames as data: columns by name, text columns one-hot with categories kept in the run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import blob_config

import kplug


def frame_of(x, y):
    return pd.DataFrame({**{f"f{i}": x[:, i] for i in range(x.shape[1])}, "species": y})


def colored(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """A frame whose label depends on a text column and a number."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], rows)
    size = rng.normal(size=rows).astype("float32")
    label = np.where(color == "red", "a", np.where(size > 0, "b", "c"))
    return pd.DataFrame({"size": size, "color": color, "species": label})


def frame_config(frame, **overrides):
    config = blob_config(None, None, **overrides)
    config["data"] = {
        "source": "dataframe",
        "options": {"frame": frame, "label": "species"},
        "split": {"validation": 0.2},
    }
    return config


def test_a_frame_trains_like_the_same_arrays(blobs):
    x, y = blobs
    from_arrays = kplug.fit(blob_config(x, y, output={"dir": "runs/arrays"}))
    from_frame = kplug.fit(frame_config(frame_of(x, y)))
    for a, b in zip(from_arrays.model.get_weights(), from_frame.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_config_yaml_says_the_frame_came_from_python(blobs):
    x, y = blobs
    result = kplug.fit(frame_config(frame_of(x, y)))
    saved = (result.run_dir / "config.yaml").read_text()
    assert "frame: <DataFrame 240 rows x 9 columns from Python>" in saved


def test_text_columns_are_one_hot_and_predict_uses_the_saved_categories(tmp_path):
    result = kplug.fit(frame_config(colored()))
    categories = json.loads((result.run_dir / "categories.json").read_text())
    assert categories == {"color": ["blue", "green", "red"]}
    # one colour only: categories rebuilt from this frame would give the model one column, not three
    new = pd.DataFrame({"size": [0.5, -0.5, 1.0], "color": ["red", "red", "red"]})
    expected = result.model.predict(np.array([[0.5, 0, 0, 1], [-0.5, 0, 0, 1], [1.0, 0, 0, 1]]), verbose=0)
    for data in (new, str(tmp_path / "new.csv")):
        new.to_csv(tmp_path / "new.csv", index=False)
        records = kplug.predict(result.run_dir, data=data)
        np.testing.assert_allclose([r["logits"] for r in records], expected, rtol=1e-5, atol=1e-5)


def test_an_unseen_category_is_an_error_naming_column_and_value():
    result = kplug.fit(frame_config(colored()))
    with pytest.raises(kplug.DataError, match=r"column 'color' holds 'pink'.*known categories: 'blue'"):
        kplug.predict(result.run_dir, data=pd.DataFrame({"size": [0.1], "color": ["pink"]}))


def test_validation_frame_uses_the_training_categories():
    frame = colored(160)
    config = frame_config(frame[:120])
    config["data"]["split"] = {}
    validation = frame[120:][frame[120:].color != "green"]  # its own categories would be two
    result = kplug.fit(config, validation_data=validation)
    assert result.report["data"]["validation"] == len(validation)
    assert result.metrics["split"] == "validation"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"features": ["size", "weight"]}, r"data.options.features: the frame has no column 'weight'"),
        ({"features": ["size", "species"]}, r"column 'species' is also a target"),
        ({"frame": [[1, 2]]}, r"data.options.frame: expected a pandas DataFrame .* got list"),
    ],
)
def test_bad_options_name_the_field(options, expected):
    config = frame_config(colored())
    config["data"]["options"].update(options)
    with pytest.raises(kplug.DataError, match=expected):
        kplug.fit(config)


def test_a_missing_text_cell_is_an_error():
    frame = colored()
    frame.loc[3, "color"] = None
    with pytest.raises(kplug.DataError, match=r"text column 'color' holds a missing value on row 3"):
        kplug.fit(frame_config(frame))


def test_predict_options_keep_the_run_s_columns():
    frame = colored()
    result = kplug.fit(frame_config(frame))
    records = kplug.predict(result.run_dir, data={"frame": frame[:5]})
    assert [r["true_label"] for r in records] == frame.species[:5].tolist()


def test_target_columns_by_name():
    config = frame_config(colored())
    config["data"]["options"] = {
        "frame": colored(),
        "label": None,
        "targets": ["species"],
        "features": ["size", "color"],
    }
    config["model"]["heads"] = [{"name": "classification", "target": "species"}]
    result = kplug.fit(config)
    assert result.report["data"]["labels"] == {"species": ["a", "b", "c"]}
