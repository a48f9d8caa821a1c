"""Weight histograms bucketed with numpy match TensorBoard's own `tf.summary.histogram`."""

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.histogram.summary_v2 import _buckets

from monitor import summaries
from monitor.histograms import buckets

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("values", [
    RNG.normal(size=(3, 3, 8, 16)).astype(np.float32),  # a conv kernel
    RNG.normal(size=1000).astype(np.float32) * 1e-3,
    np.zeros(10, np.float32),  # one repeated value
    np.array([], np.float32),  # nothing
    np.arange(30, dtype=np.float32),  # values on the bucket edges
    np.array([-1e30, 0.0, 1e30]),
    np.array([1.0, np.nan, 2.0, 3.0], np.float32),  # a diverged run's weights
    np.array([1.0, np.inf, 2.0], np.float32),
    np.array([-np.inf, 0.0, np.inf], np.float32),
], ids=["kernel", "small", "constant", "empty", "edges", "extremes", "nan", "inf", "both-infinities"])
def test_buckets_equal_tensorboards(values):
    assert np.array_equal(buckets(values), _buckets(tf.constant(values), 30).numpy(), equal_nan=True)


def test_histogram_summary_reads_back_as_tensorboards(tmp_path):
    values = RNG.normal(size=(5, 7)).astype(np.float32)
    writer = tf.summary.create_file_writer(str(tmp_path / "ours"))
    with writer.as_default():
        summaries.histogram("dense/kernel/histogram", values, step=3)
    writer.close()
    theirs = tf.summary.create_file_writer(str(tmp_path / "theirs"))
    with theirs.as_default():
        tf.summary.histogram("dense/kernel/histogram", values, step=3)
    theirs.close()
    read = []
    for name in ("ours", "theirs"):
        acc = EventAccumulator(str(tmp_path / name), size_guidance={"tensors": 0})
        acc.Reload()
        (event,) = acc.Tensors("dense/kernel/histogram")
        plugin = acc.SummaryMetadata("dense/kernel/histogram").plugin_data.plugin_name
        read.append((event.step, tf.make_ndarray(event.tensor_proto).tolist(), plugin))
    assert read[0] == read[1]
    assert read[0][2] == "histograms"
