"""The suite at 100 and 1,000 classes: bounded tags, every class in the CSV, exact counts."""

import json
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from callbacks import close_suite, monitoring_callbacks
from monitor.runfiles.matrices import FILE as MATRICES_FILE
from monitor.runfiles.matrices import decode as matrix_from_record
from monitor.runfiles.per_class_csv import FILE as PER_CLASS_FILE
from tests.helpers import accumulator, read_tags

EPOCHS = 2


def fit_many_classes(run_dir, num_classes, n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 3), dtype=np.float32)
    y = rng.integers(0, num_classes, n)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(num_classes, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    names = [f"a_rather_long_class_name_{i:04d}" for i in range(num_classes)]
    # A dense-only model has no spatial layer to explain: Grad-CAM off (it would warn, rightly, once)
    suite = monitoring_callbacks(names, str(run_dir), explanations=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x[:300], y[:300], validation_data=(x[300:], y[300:]), epochs=EPOCHS, batch_size=64,
                  verbose=0, callbacks=suite)
        close_suite(suite)
    assert not [w for w in caught if "monitor:" in str(w.message)], [str(w.message) for w in caught]
    return model, x[300:], y[300:], names


@pytest.fixture(scope="module")
def thousand(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("c1000")
    return (run_dir, *fit_many_classes(run_dir, 1000))


def test_scalar_and_pr_tags_stay_bounded_at_1000_classes(thousand):
    run_dir = thousand[0]
    acc = accumulator(str(run_dir / "monitor"))
    by_plugin = {}
    for tag in acc.Tags()["tensors"]:
        by_plugin.setdefault(acc.SummaryMetadata(tag).plugin_data.plugin_name, []).append(tag)
    assert len(by_plugin["scalars"]) <= 100
    assert not [t for t in by_plugin["scalars"] if t.startswith("per_class/")]
    assert "pr_curves/micro_average" in by_plugin["pr_curves"]
    assert len(by_plugin["pr_curves"]) <= 31
    assert "per_class/recall/epochs_001-010" in by_plugin["images"]
    tags = read_tags(str(run_dir))["monitor"]
    for tag in ("confusion_matrix/normalized/epochs_001-010", "predictions/grid/epochs_001-010",
                "predictions/probabilities/epochs_001-010", "per_class/recall/epochs_001-010"):
        assert tags[tag] == list(range(EPOCHS)), tag


def test_every_class_of_every_epoch_is_in_the_csv_and_the_sparse_jsonl(thousand):
    run_dir, model, x_val, y_val, names = thousand
    table = pd.read_csv(run_dir / PER_CLASS_FILE)
    assert list(table.columns) == ["epoch", "class", "precision", "recall", "f1", "support"]
    assert len(table) == EPOCHS * 1000 and set(table["class"]) == set(names)
    last = table[table["epoch"] == EPOCHS - 1]
    assert last["support"].sum() == len(y_val)
    records = [json.loads(line) for line in (run_dir / MATRICES_FILE).read_text().splitlines()]
    assert "nonzero" in records[-1] and "counts" not in records[-1]  # sparse above 100 classes
    expected = confusion_matrix(y_val, model.predict(x_val, verbose=0).argmax(1), labels=range(1000))
    np.testing.assert_array_equal(matrix_from_record(records[-1]), expected)
    recall = expected.diagonal() / np.maximum(expected.sum(1), 1)
    np.testing.assert_allclose(last.sort_values("class")["recall"].to_numpy(),
                               recall[np.argsort(names)], atol=1e-6)


def test_the_per_class_table_lists_the_worst_classes_first(thousand):
    import tensorflow as tf

    run_dir = thousand[0]
    acc = accumulator(str(run_dir / "monitor"))
    text = tf.make_ndarray(acc.Tensors("text/per_class/epochs_001-010")[-1].tensor_proto).item().decode()
    assert "1000 classes, sorted by F1" in text
    rows = [line for line in text.splitlines() if line.startswith("| worst")]
    assert len(rows) == 10
    f1 = [float(row.split("|")[5]) for row in rows]
    assert f1 == sorted(f1)


def test_100_classes_keep_dense_counts_and_no_per_class_scalars(tmp_path):
    fit_many_classes(tmp_path, 100)
    record = json.loads((tmp_path / MATRICES_FILE).read_text().splitlines()[-1])
    assert np.asarray(record["counts"]).shape == (100, 100)
    scalars = [t for t in read_tags(str(tmp_path))["monitor"] if t.startswith("per_class/precision")]
    assert scalars == []
