"""The validation step traced while the first epoch trains (`monitor.pretrace`): the first
validation pass uses that trace, counts what it would have counted, and a trace that meets
anything unusual is thrown away so the pass says what it says as ever."""

import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import confusion_matrix

from callbacks.validation_capture import ValidationCaptureCallback
from monitor.capture import EvaluationCapture
from monitor.gil import HANDOVER_S
from monitor.pretrace import _closure, _empty_dataset, trace_validation_ahead
from tests.helpers import tiny_data, tiny_model
from tests.test_heads import BlindModel, subclassed


def _tracings(model) -> int:
    """How many times the model's test function has been traced."""
    return _closure(model.test_function)["multi_step_on_iterator"].experimental_get_tracing_count()


def _trained(model, x, y):
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # the train function traced once
    return model


def test_a_pass_of_any_batch_count_uses_the_trace_made_ahead_and_counts_the_same():
    x, y = tiny_data(300)
    model = _trained(tiny_model(), x[:64], y[:64])  # 64 rows: batches of exactly 32
    capture = EvaluationCapture(3, sample_slots=6)
    capture.attach(model)
    assert trace_validation_ahead(model, capture.traced_quietly)
    assert _tracings(model) == 1
    for rows in (70, 96):  # a last batch of 6 rows, and whole batches
        capture.reset()
        model.evaluate(x[100:100 + rows], y[100:100 + rows], batch_size=32, verbose=0)
        pred = model.predict(x[100:100 + rows], verbose=0).argmax(1)
        np.testing.assert_array_equal(capture.read().confusion,
                                      confusion_matrix(y[100:100 + rows], pred, labels=range(3)))
    assert _tracings(model) == 1  # neither pass traced again


def test_nothing_is_traced_before_training_has_traced_its_own_step():
    model = tiny_model()
    assert not trace_validation_ahead(model)
    assert model.test_function is None


def test_the_empty_iterator_has_the_spec_and_no_element():
    spec = (tf.TensorSpec([None, 8, 8, 3], tf.float32), tf.TensorSpec([None], tf.int64))
    dataset = _empty_dataset(spec)
    assert dataset.element_spec == spec and list(dataset) == []
    assert _empty_dataset((tf.TensorSpec([None, None, 3], tf.float32),)) is None  # a size unknown
    assert _empty_dataset((tf.TensorSpec([None], tf.string),)) is None


def test_a_trace_that_meets_a_step_the_capture_cannot_read_is_thrown_away_quietly():
    x, y = tiny_data(120, seed=2)
    model = subclassed(BlindModel)
    model.compile("adam", "sparse_categorical_crossentropy")
    _trained(model, x[:64], y[:64])
    capture = EvaluationCapture(3)
    capture.attach(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not trace_validation_ahead(model, capture.traced_quietly)
    assert caught == [] and capture.unreadable is None and _tracings(model) == 0  # a fresh function
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.evaluate(x[80:], y[80:], verbose=0)
    ours = [str(w.message) for w in caught if "monitor:" in str(w.message)]
    assert len(ours) == 1 and "own test_step" in ours[0]  # said once, by the pass itself


class _WaitForTheTraceAhead(keras.callbacks.Callback):
    """Holds the second training step until the capture's trace ahead has finished, so that it
    finishes within the first epoch whatever this machine's speed."""

    def __init__(self, capture: ValidationCaptureCallback):
        super().__init__()
        self.capture = capture

    def on_train_batch_end(self, batch, logs=None):
        if batch == 1 and self.capture._ahead is not None:
            self.capture._ahead.join()


def test_a_fit_traces_its_validation_step_ahead_and_its_passes_use_that_trace():
    x, y = tiny_data(200)
    model = tiny_model()
    capture = ValidationCaptureCallback(3)
    passes = []

    class Count(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            passes.append(_tracings(self.model))

        def on_test_end(self, logs=None):
            passes.append((_tracings(self.model), capture.capture.read().count))

    intervals, trace_state_functions = [], capture.capture.trace_state_functions

    def traced_seeing_the_interval():
        intervals.append(sys.getswitchinterval())
        trace_state_functions()

    capture.capture.trace_state_functions = traced_seeing_the_interval
    found = sys.getswitchinterval()
    sys.setswitchinterval(0.003)
    try:
        model.fit(x[:128], y[:128], validation_data=(x[128:], y[128:]), batch_size=32, epochs=2, verbose=0,
                  callbacks=[capture, _WaitForTheTraceAhead(capture), Count()])
        after = sys.getswitchinterval()
    finally:
        sys.setswitchinterval(found)
    assert capture.traced_ahead is True
    # the trace ran with the GIL handed back sooner (monitor.gil); the interval is back after the fit
    assert intervals == [pytest.approx(HANDOVER_S)] and after == pytest.approx(0.003)
    # traced before the first pass began, never again; 72 rows counted each epoch
    assert passes == [1, (1, 72), 1, (1, 72)]
    pred = model.predict(x[128:], verbose=0).argmax(1)
    np.testing.assert_array_equal(capture.state_for(1).confusion, confusion_matrix(y[128:], pred,
                                                                                   labels=range(3)))
