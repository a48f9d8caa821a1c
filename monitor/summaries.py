"""Summary writers: each builds the `Summary` proto TensorBoard's plugin reads and writes it into
the current default writer: the suite's `EventFileWriter` (`monitor.runfiles.event_files`; no
TensorFlow op runs), else TensorFlow's default `tf.summary` writer, as `tf.summary.write` would.

Tag names (the block of epochs a tag holds) come from `monitor.tags`.

Images are written from PNG bytes as TensorBoard's image plugin stores them
(`[width, height, png]`), so a rendered figure is never decoded and re-encoded.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.pr_curve import summary as pr_summary
from tensorboard.plugins.scalar.summary_v2 import scalar_pb
from tensorboard.plugins.text.summary_v2 import text_pb
from tensorboard.util import tensor_util

from monitor import histograms
from monitor.render import png_size
from monitor.runfiles.event_files import default_writer


def write_summary(summary: summary_pb2.Summary, step: int) -> bool:
    """`summary` into the current default writer (ours, else TensorFlow's); False when there is
    none (as `tf.summary.write`)."""
    writer = default_writer()
    if writer is not None:
        if not isinstance(summary, summary_pb2.Summary):  # TensorFlow's class (pr_curve's raw_data_pb)
            summary = summary_pb2.Summary.FromString(summary.SerializeToString())
        writer.add_summary(summary, step)
        return True
    return bool(tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step))


def write(tag: str, data, step: int, metadata: summary_pb2.SummaryMetadata) -> bool:
    """`tf.summary.write(tag, data, step, metadata)`: `data` an array stored as its tensor, with the
    plugin's `metadata`; a str or bytes (a string scalar, str as UTF-8) or a list of bytes (a string
    vector) as `tf.constant` would make them."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, bytes | list | tuple):
        data = np.array(data, dtype=object)
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata, tensor=tensor_util.make_tensor_proto(data))
    return write_summary(summary, step)


def png_image(tag: str, png: bytes | None, step: int, description: str | None = None) -> None:
    """The image plugin's PNG summary; nothing for `png` None (a picture the budget skipped)."""
    if png is None:
        return
    width, height = png_size(png)
    metadata = image_metadata.create_summary_metadata(
        display_name=None, description=description, converted_to_tensor=True
    )
    write(tag, [str(width).encode(), str(height).encode(), png], step, metadata)


def text(tag: str, markdown: str, step: int) -> None:
    write_summary(text_pb(tag, markdown), step)


def scalars(values: dict[str, float], step: int) -> None:
    """One scalar summary (float32, as `tf.summary.scalar`) per tag, as one event."""
    if not values:
        return
    summary = summary_pb2.Summary()
    for tag, value in values.items():
        summary.value.extend(scalar_pb(tag, float(value)).value)
    write_summary(summary, step)


def pr_curve(tag: str, counts: dict[str, np.ndarray], step: int) -> None:
    """One PR curve for TensorBoard's PR-curve plugin from thresholded counts (T,)."""
    pb = pr_summary.raw_data_pb(
        tag,
        true_positive_counts=counts["tp"],
        false_positive_counts=counts["fp"],
        true_negative_counts=counts["tn"],
        false_negative_counts=counts["fn"],
        precision=counts["precision"],
        recall=counts["recall"],
        num_thresholds=len(counts["tp"]),
    )
    pb.value[0].tag = tag  # raw_data_pb appends "/pr_curves"; keep the tag we document
    write_summary(pb, step)


def histogram(name: str, values, step: int) -> None:
    """`tf.summary.histogram(name, values, step)`, the buckets computed in numpy
    (`monitor.histograms`): the same tag and data, without TensorBoard's per-call TF ops."""
    summary_scope = getattr(tf.summary.experimental, "summary_scope", None) or tf.summary.summary_scope
    with summary_scope(name, "histogram_summary") as (tag, _):
        metadata = histogram_metadata.create_summary_metadata(display_name=None, description=None)
        table = tf.constant(histograms.buckets(values), tf.float64)
        tf.summary.write(tag, table, step=step, metadata=metadata)
