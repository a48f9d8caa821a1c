"""A one-unit sigmoid head fit with the suite: `binary/...` scalars and the ROC image each epoch,
the AUC equal to scikit-learn's on the final model's quantised scores; multi-class: nothing."""

import warnings

import keras
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from callbacks import close_suite, monitoring_callbacks
from tests.helpers import accumulator, read_tags, tiny_data, tiny_model
from tests.pr_reference import pr_bucket_indices

SCALARS = ("roc_auc", "pr_auc", "best_f1", "best_f1_threshold", "precision_at_threshold",
           "recall_at_threshold", "f1_at_threshold")


def sigmoid_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


def test_binary_head_writes_roc_auc_equal_to_sklearn(tmp_path):
    x, y = tiny_data(200, classes=2, seed=3)
    model = sigmoid_model()
    suite = monitoring_callbacks(["cat", "dog"], str(tmp_path), tensorboard=False, threshold=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=2, batch_size=32,
                  verbose=0, callbacks=suite)
    close_suite(suite)
    tags = read_tags(str(tmp_path))["monitor"]
    for name in SCALARS:
        assert tags[f"binary/{name}"] == [0, 1], name
    assert tags["binary/roc/epochs_001-010"] == [0, 1]
    acc = accumulator(str(tmp_path / "monitor"))
    written = float(tf.make_ndarray(acc.Tensors("binary/roc_auc")[-1].tensor_proto))
    p = model.predict(x[140:], verbose=0).reshape(-1)
    quantised = pr_bucket_indices(p, 101) / 100
    assert abs(written - roc_auc_score(y[140:], quantised)) < 1e-6
    assert abs(written - roc_auc_score(y[140:], p)) < 0.02


def test_multi_class_writes_no_binary_tags(tmp_path):
    x, y = tiny_data(90, classes=3)
    suite = monitoring_callbacks(["a", "b", "c"], str(tmp_path), tensorboard=False)
    tiny_model().fit(x[:60], y[:60], validation_data=(x[60:], y[60:]), epochs=1, verbose=0,
                     callbacks=suite)
    close_suite(suite)
    tags = read_tags(str(tmp_path))["monitor"]
    assert "pr_curves/a" in tags and not [t for t in tags if t.startswith("binary/")]
