"""Keras' validation step, traced while the first epoch trains.

`fit` traces its test function when it first validates, on the training thread: with the
capture's ops in it, about 0.3 s at the end of the first epoch, and about 0.2 s more the first
time TensorFlow runs the traced graph (optimising it, making its kernels). Where the validation
data comes as the training data does (the same structure and dtypes, any batch size), the same
work can be done beside the first epoch: `trace_validation_ahead` traces Keras' own test function
for the training data's element spec, with the batch dimension left open, and runs it once on an
empty iterator of that spec, which makes TensorFlow prepare the graph while no step runs (no
metric, no variable is touched). The validation pass then finds its graph ready. Anything this
cannot read (another strategy than the default one, a Keras whose functions are built otherwise,
an element spec that is not plain tensors) means nothing is done: the validation pass traces as
before.

```python
wait_for_first_step(model)          # on a background thread, once fit has begun
trace_validation_ahead(model)       # True when the test function was traced ahead
```
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from monitor.distribution import is_default_strategy, model_strategy


def wait_for_first_step(model, poll_s: float = 0.02, most_s: float = 5.0) -> None:
    """Wait (at most `most_s`) until this `fit` has taken its first training step: until then the
    training thread traces its own step function, Python that shares the GIL with any tracing
    beside it (measured: the training thread's GIL waits in a 3-epoch fit, 107-135 ms tracing
    from the start, 16-21 ms from the first step on)."""
    iterations = getattr(getattr(model, "optimizer", None), "iterations", None)
    deadline = time.monotonic() + most_s
    try:
        start = int(iterations.numpy()) if iterations is not None else None
        while start is not None and int(iterations.numpy()) == start and time.monotonic() < deadline:
            time.sleep(poll_s)
    except Exception:  # noqa: BLE001 - a counter we cannot read: go on now
        return


def trace_validation_ahead(model, traced: Callable[[Callable[[], object]], bool] | None = None) -> bool:
    """Trace `model`'s test function for the training data's element spec (any batch size) and
    prepare its graph on an empty iterator. `traced(trace)` runs the tracing and says whether to
    keep it (the capture traces quietly and refuses a trace that met anything unusual: then the
    test function is replaced by a fresh one, which the pass traces as ever). True when a trace was kept."""
    if not is_default_strategy(model_strategy(model)):
        return False  # replica functions: traced where they run
    element = _training_element_spec(model)
    if element is None:
        return False
    model.make_test_function()
    function = model.test_function
    step = _closure(function).get("multi_step_on_iterator")
    if not hasattr(step, "get_concrete_function"):
        return False

    def trace():
        step.get_concrete_function(tf.data.IteratorSpec(element))

    if traced is None:
        trace()
    elif not traced(trace):
        if model.test_function is function:  # a fresh one (never None: Keras' loop may call it next)
            model.make_test_function(force=True)
        return False
    empty = _empty_dataset(element)
    if empty is not None:
        try:
            step(iter(empty))
        except tf.errors.OutOfRangeError:  # one step per execution: get_next on nothing
            pass
    return True


def _closure(function) -> dict:
    """The names and values a Python function closes over ({} for anything else)."""
    code, cells = getattr(function, "__code__", None), getattr(function, "__closure__", None) or ()
    return dict(zip(code.co_freevars, (c.cell_contents for c in cells), strict=False)) if code else {}


def _training_element_spec(model):
    """The element spec of the iterator this `fit` trains on, with the batch dimension open;
    None where it cannot be read (no train function traced once, or not from a `tf.data`
    iterator)."""
    step = _closure(getattr(model, "train_function", None)).get("multi_step_on_iterator")
    traces = getattr(step, "_list_all_concrete_functions", lambda: [])()
    if len(traces) != 1:
        return None
    args, _ = traces[0].structured_input_signature
    if len(args) != 1 or not isinstance(args[0], tf.data.IteratorSpec):
        return None
    element = getattr(args[0], "_element_spec", None)
    specs = tf.nest.flatten(element)
    if not specs or not all(isinstance(s, tf.TensorSpec) and s.shape.rank for s in specs):
        return None
    return tf.nest.map_structure(lambda s: tf.TensorSpec([None, *s.shape[1:]], s.dtype), element)


def _empty_dataset(element) -> tf.data.Dataset | None:
    """A dataset with no element whose element spec is `element` (batch dimension open), or
    None where one cannot be made (a dimension unknown, a type numpy cannot make)."""
    specs = tf.nest.flatten(element)
    if any(None in s.shape[1:] or not (s.dtype.is_numeric or s.dtype.is_bool) for s in specs):
        return None
    arrays = tf.nest.map_structure(lambda s: np.zeros((0, *s.shape[1:]), s.dtype.as_numpy_dtype), element)
    dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(1)
    return dataset if dataset.element_spec == element else None
