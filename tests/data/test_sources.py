"""Data sources and selection: IDX, NPZ, CSV/TSV, arrays; where, limit and split."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from kplug.builtin.datasets import arrays, idx, npz, read_idx_file, table, tsv
from kplug.config.schema import DataConfig
from kplug.data.sources import read_examples, select_examples, split_examples
from kplug.errors import DataError


def test_mnist_slice_reads_as_scaled_images(mnist_options):
    examples = idx(**mnist_options)
    assert examples.features.shape == (2000, 28, 28, 1)
    assert (
        examples.features.dtype == np.float32
        and 0.0 <= examples.features.min() < examples.features.max() <= 1.0
    )
    assert examples.targets["label"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_truncated_idx_file_is_refused(tmp_path, mnist_options):
    data = gzip.open(mnist_options["images"]).read()
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(data[: len(data) // 2]))
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx_file(path)
    (tmp_path / "junk.idx").write_bytes(b"not an idx file at all")
    with pytest.raises(DataError, match="bad magic number"):
        read_idx_file(tmp_path / "junk.idx")


def test_npz_reads_features_and_label(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((3, 2)), y=np.array([0, 1, 0]))
    examples = npz(str(tmp_path / "d.npz"))
    assert examples.features.shape == (3, 2) and examples.targets["label"].tolist() == [0, 1, 0]
    with pytest.raises(DataError, match="no array 'images'; arrays: x, y"):
        npz(str(tmp_path / "d.npz"), features="images")


def test_csv_and_tsv(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,cat\n3,4,dog\n")
    examples = table(str(tmp_path / "d.csv"))
    assert examples.features.tolist() == [[1, 2], [3, 4]] and examples.targets["label"].tolist() == [
        "cat",
        "dog",
    ]
    (tmp_path / "d.tsv").write_text("sentence\tlabel\ngood film\t1\nbad film\t0\n")
    text = tsv(str(tmp_path / "d.tsv"), text=True)
    assert text.features.tolist() == ["good film", "bad film"] and text.targets["label"].tolist() == [1, 0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a,label\n1,0\n2\n", "line 3: 1 fields, expected 2 (ragged row)"),
        ("a,label\nx,0\n", "feature column 'a' holds text ('x' on data row 1)"),
        (
            "a,b,label\n1,2,0\n3, ,1\n",
            "d.csv: missing value at data row 2, column 'b'; feature columns must be numbers in every row. "
            "Fill the cell or drop the row.",
        ),
        (
            "a,label\n1,0\n2,\n",
            "d.csv: missing label at data row 2, column 'label'; every row needs a label. "
            "Fill the cell or drop the row.",
        ),
        ("", "the file is empty"),
    ],
)
def test_bad_csv_files(tmp_path, content, expected):
    (tmp_path / "d.csv").write_text(content)
    with pytest.raises(DataError, match=re.escape(expected)):
        table(str(tmp_path / "d.csv"))


def test_non_utf8_text_is_refused(tmp_path):
    (tmp_path / "d.csv").write_bytes("a,label\n1,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        table(str(tmp_path / "d.csv"))


def test_missing_file_is_a_data_error(plugins):
    component = plugins.registry.get("dataset", "idx")
    with pytest.raises(DataError, match=r"idx could not read 'missing.gz': No such file"):
        read_examples(component, {"images": "missing.gz", "labels": None, "scale": True})


def test_where_limit_and_split(mnist_options):
    examples = idx(**mnist_options)
    config = DataConfig(
        source="idx", where={"label": [5, 6]}, limit=100, split={"validation": 0.2, "test": 0.2}
    )
    selected = select_examples(examples, config, seed=0)
    assert len(selected) == 100 and set(selected.targets["label"].tolist()) == {5, 6}
    again = select_examples(examples, config, seed=0)
    np.testing.assert_array_equal(selected.features, again.features)
    splits = split_examples(selected, config, seed=0, strata=selected.targets["label"])
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (60, 20, 20)


def test_where_matching_nothing_and_unknown_target():
    examples = arrays(np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="no example matches"):
        select_examples(examples, DataConfig(source="arrays", where={"label": [7]}), 0)
    with pytest.raises(DataError, match="no target 'colour'; targets: label"):
        select_examples(examples, DataConfig(source="arrays", where={"colour": [1]}), 0)


def test_targets_must_match_features():
    with pytest.raises(DataError, match="Target 'label' has 3 rows but the features have 4"):
        arrays(np.zeros((4, 2)), np.array([0, 1, 0]))


def test_csv_labels_are_ints_then_reals_then_strings(tmp_path):
    (tmp_path / "r.csv").write_text("a,label\n1,2.5\n2,-0.25\n")
    assert table(str(tmp_path / "r.csv")).targets["label"].dtype == np.float64
    (tmp_path / "i.csv").write_text("a,label\n1,2\n2,0\n")
    assert table(str(tmp_path / "i.csv")).targets["label"].dtype == np.int64


def test_csv_without_label_column_reads_unlabeled(tmp_path):
    (tmp_path / "new.csv").write_text("a,b\n1,2\n")
    examples = table(str(tmp_path / "new.csv"))
    assert examples.targets == {} and examples.features.tolist() == [[1, 2]]


def test_merged_sources_keep_a_source_column(tmp_path):
    import kplug

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x=rng.normal(size=(30, 4)).astype("float32"), y=np.arange(30) % 2)
    np.savez(tmp_path / "b.npz", x=rng.normal(size=(20, 4)).astype("float32"), y=np.arange(20) % 2)
    config = {
        "data": {
            "sources": [
                {"name": "a", "source": "npz", "options": {"path": str(tmp_path / "a.npz")}},
                {"name": "b", "source": "npz", "options": {"path": str(tmp_path / "b.npz")}},
            ],
            "where": {"source": ["b"]},
            "split": {"test": 4},
        },
        "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
        "train": {"epochs": 1, "verbose": 0},
    }
    result = kplug.fit(config, plugins=kplug.load_plugins(entry_points=False))
    assert result.report["data"]["train"] == 16 and result.report["data"]["test"] == 4
    config["data"]["options"] = {"path": "x"}
    with pytest.raises(kplug.ConfigError, match="options belong to each entry of sources"):
        kplug.fit(config)
    config["data"]["options"] = {}
    config["data"]["source"] = "npz"
    with pytest.raises(kplug.ConfigError, match="either source .* or sources"):
        kplug.fit(config)


def test_merge_needs_matching_shapes_and_targets():
    from kplug.data.example_set import Examples
    from kplug.data.sources import merge_examples

    a = Examples(np.zeros((3, 2)), {"label": np.zeros(3)})
    with pytest.raises(DataError, match="'b' has features of shape \\(3,\\)"):
        merge_examples({"a": a, "b": Examples(np.zeros((2, 3)), {"label": np.zeros(2)})})
    merged = merge_examples({"a": a, "b": Examples(np.ones((2, 2)), {"label": np.ones(2)})})
    assert merged.targets["source"].tolist() == ["a", "a", "a", "b", "b"]
