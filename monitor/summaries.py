"""Thin writers over `tf.summary`: each writes into the current default writer.

Tag names (the block of epochs a tag holds) come from `monitor.tags`.

Images are written from PNG bytes as TensorBoard's image plugin stores them
(`[width, height, png]`), so a rendered figure is never decoded and re-encoded.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.pr_curve import summary as pr_summary

from monitor import histograms
from monitor.render import png_size


def png_image(tag: str, png: bytes | None, step: int, description: str | None = None) -> None:
    """The image plugin's PNG summary; nothing for `png` None (a picture the budget skipped)."""
    if png is None:
        return
    width, height = png_size(png)
    tensor = tf.constant([str(width), str(height), png], dtype=tf.string)
    metadata = image_metadata.create_summary_metadata(
        display_name=None, description=description, converted_to_tensor=True
    )
    tf.summary.write(tag, tensor, step=step, metadata=metadata)


def text(tag: str, markdown: str, step: int) -> None:
    tf.summary.text(tag, markdown, step=step)


def scalars(values: dict[str, float], step: int) -> None:
    for tag, value in values.items():
        tf.summary.scalar(tag, float(value), step=step)


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
    tf.summary.experimental.write_raw_pb(pb.SerializeToString(), step=step)


def histogram(name: str, values, step: int) -> None:
    """`tf.summary.histogram(name, values, step)`, the buckets computed in numpy
    (`monitor.histograms`): the same tag and data, without TensorBoard's per-call TF ops."""
    summary_scope = getattr(tf.summary.experimental, "summary_scope", None) or tf.summary.summary_scope
    with summary_scope(name, "histogram_summary") as (tag, _):
        metadata = histogram_metadata.create_summary_metadata(display_name=None, description=None)
        table = tf.constant(histograms.buckets(values), tf.float64)
        tf.summary.write(tag, table, step=step, metadata=metadata)
