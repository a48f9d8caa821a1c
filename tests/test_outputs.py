"""Models with several outputs: `output=` (a name or an index) chooses the head the suite reads."""

import warnings

import keras
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix

from callbacks import close_suite, monitoring_callbacks
from monitor.runfiles import multilabel_counts
from monitor.runfiles.matrices import last
from tests.helpers import NAMES, tiny_data

EPOCHS = 2


def two_heads(classes_first: bool, logits: bool = False, dict_loss: bool = False):
    """A 3-class head "classes" and a 2-class auxiliary head "aux", one loss per output."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    classes = keras.layers.Dense(3, activation=None if logits else "softmax", name="classes")(features)
    aux = keras.layers.Dense(2, activation="softmax", name="aux")(features)
    model = keras.Model(inputs, [classes, aux] if classes_first else [aux, classes])
    losses = {"classes": keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
              "aux": "sparse_categorical_crossentropy"}
    if not dict_loss:
        losses = [losses[n] for n in model.output_names]
    model.compile("adam", losses)
    return model


def fit_with(model, run_dir, output, as_dict=False):
    x, y = tiny_data(150, seed=4)
    aux = (x[:, 0, 0, 1] > 0.25).astype("int64")
    targets = {"classes": y, "aux": aux} if as_dict else [
        {"classes": y, "aux": aux}[n] for n in model.output_names]
    split = 100
    train = {k: v[:split] for k, v in targets.items()} if as_dict else [t[:split] for t in targets]
    val = {k: v[split:] for k, v in targets.items()} if as_dict else [t[split:] for t in targets]
    suite = monitoring_callbacks(NAMES, str(run_dir), tensorboard=False, output=output, epochs_per_tag=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x[:split], train, validation_data=(x[split:], val), epochs=EPOCHS,
                            batch_size=32, verbose=0, callbacks=suite)
    close_suite(suite)
    ours = [str(w.message) for w in caught if "monitor" in str(w.message)]
    return x[split:], y[split:], suite, history, ours


@pytest.mark.parametrize("classes_first, output, logits, as_dict", [
    (True, "classes", False, False),
    (True, 0, False, False),
    (False, 1, True, True),  # the classes head second: its index is 1; dict targets, dict losses
    (False, "classes", True, False),
], ids=["name", "index", "second-index-dict", "second-name-list"])
def test_the_chosen_head_is_streamed_exactly(tmp_path, classes_first, output, logits, as_dict):
    model = two_heads(classes_first, logits=logits, dict_loss=as_dict)
    x_val, y_val, suite, history, ours = fit_with(model, tmp_path, output, as_dict)
    assert ours == []
    assert len(history.history["loss"]) == EPOCHS
    epoch, names, counts = last(str(tmp_path))
    assert (epoch, names) == (EPOCHS - 1, NAMES)
    head = model.output_names.index("classes")
    predicted = model.predict(x_val, verbose=0)[head].argmax(1)
    np.testing.assert_array_equal(counts, confusion_matrix(y_val, predicted, labels=[0, 1, 2]))
    assert counts.sum() == 50
    assert suite[0].capture._resolved_logits is logits  # that head's loss says from_logits


@pytest.mark.parametrize("output, says", [
    ("nope", "output='nope' is not one of the model's outputs (classes, aux)"),
    (5, "output=5 is out of range: the model has 2 output(s) (classes, aux)"),
    ("aux", "outputs 2 classes but the monitor has 3 class names"),
])
def test_a_wrong_choice_turns_the_suite_off_with_one_warning(tmp_path, output, says):
    _, _, _, history, ours = fit_with(two_heads(True), tmp_path, output)
    assert len(ours) == 1, ours
    assert says in ours[0]
    assert len(history.history["loss"]) == EPOCHS


@pytest.mark.parametrize("output", [1.5, True, -1, "", ["classes"]])
def test_output_is_checked(tmp_path, output):
    with pytest.raises(ValueError, match="Invalid value for argument `output`"):
        monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False, output=output)


def test_a_chosen_sigmoid_head_is_monitored_as_multi_label(tmp_path):
    model = two_heads(True)
    inputs = model.inputs[0]
    sigmoid = keras.layers.Dense(3, activation="sigmoid", name="tags")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, [model.outputs[1], sigmoid])  # aux, tags
    model.compile("adam", ["sparse_categorical_crossentropy", "binary_crossentropy"])
    x, y = tiny_data(90, seed=4)
    tags = np.eye(3)[y]
    tags[::4, 0] = 1  # some rows with two labels
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False, output="tags")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x[:60], [y[:60] % 2, tags[:60]], epochs=EPOCHS, verbose=0, callbacks=suite,
                            validation_data=(x[60:], [y[60:] % 2, tags[60:]]))
    close_suite(suite)
    assert [str(w.message) for w in caught if "monitor" in str(w.message)] == []
    assert len(history.history["loss"]) == EPOCHS
    predicted = model.predict(x[60:], verbose=0)[1] >= 0.5
    written = multilabel_counts.last(str(tmp_path))
    assert written["epoch"] == EPOCHS - 1 and written["count"] == 30
    mcm = multilabel_confusion_matrix(tags[60:], predicted)
    expected = {"tn": mcm[:, 0, 0], "fp": mcm[:, 0, 1], "fn": mcm[:, 1, 0], "tp": mcm[:, 1, 1]}
    assert {k: written[k] for k in expected} == {k: v.tolist() for k, v in expected.items()}
    assert last(str(tmp_path)) is None  # no single-label confusion matrix


@pytest.mark.parametrize("output, says", [
    (None, "The model has 2 outputs (classes, aux); the monitor reads one classifier head: pass output= "
           "(one of: classes, aux, or an index 0 to 1)"),
    ("nope", "output='nope' is not one of the model's outputs (classes, aux)"),
    ("aux", "outputs 2 classes but the monitor has 3 class names"),
])
def test_given_the_model_the_suite_refuses_a_head_it_cannot_read_before_fit(tmp_path, output, says):
    with pytest.raises(ValueError) as err:
        monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False, output=output, model=two_heads(True))
    assert says in str(err.value)


@pytest.mark.parametrize("output", ["classes", 0])
def test_given_the_model_a_readable_choice_builds_the_suite(tmp_path, output):
    model = two_heads(True)
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False, output=output, model=model)
    assert suite[0].capture._output_name == "classes"
