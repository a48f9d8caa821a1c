"""The suite's own event-file writer (no TensorFlow op) writes what `tf.summary` would: TensorBoard
reads back the same tags, steps, values and plugin metadata from both."""

import os

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.pr_curve import summary as pr_summary

from monitor import summaries
from monitor.dashboard import summary as dashboard_summary
from monitor.render import confusion_heatmap
from monitor.runfiles import event_files
from monitor.runfiles.event_files import EventFileWriter

NAMES = ["cat", "dog", "bird"]
CM = np.array([[5, 1, 0], [2, 4, 0], [0, 0, 6]])


def _write_ours_kinds(step: int) -> None:
    """Every kind of summary the suite writes, through `monitor.summaries`."""
    summaries.scalars({"per_class/precision/cat": 0.5, "per_class/recall/dog": 0.25}, step=step)
    summaries.text("notes/epochs_001-010", "a **bold** note", step=step)
    summaries.png_image("confusion_matrix/epochs_001-010", confusion_heatmap(CM, NAMES, "e"), step=step)
    counts = {k: np.arange(1, 6, dtype=np.float64) for k in ("tp", "fp", "tn", "fn", "precision", "recall")}
    summaries.pr_curve("pr_curves/cat", counts, step=step)
    dashboard_summary.confusion_counts(CM, NAMES, step=step)
    dashboard_summary.alerts([{"epoch": step, "rule": "overfitting", "event": "started", "message": "m",
                               "numbers": {"gap": float("nan")}}], step=step)


def _read(folder) -> dict:
    """{tag: [(step, value as a list, plugin name, plugin content)]} as TensorBoard reads `folder`."""
    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        meta = acc.SummaryMetadata(tag).plugin_data
        out[tag] = [(e.step, tf.make_ndarray(e.tensor_proto).tolist(), meta.plugin_name, meta.content)
                    for e in acc.Tensors(tag)]
    return out


def test_our_event_files_read_back_as_tf_summarys(tmp_path):
    ours = EventFileWriter(str(tmp_path / "ours"))
    with ours.as_default():
        for step in (0, 1):
            _write_ours_kinds(step)
    ours.close()
    theirs = tf.summary.create_file_writer(str(tmp_path / "theirs"))
    with theirs.as_default():  # the same functions, into TensorFlow's writer
        for step in (0, 1):
            _write_ours_kinds(step)
    theirs.close()
    read_ours, read_theirs = _read(tmp_path / "ours"), _read(tmp_path / "theirs")
    assert read_ours == read_theirs
    assert {v[0][2] for v in read_ours.values()} == {"scalars", "text", "images", "pr_curves",
                                                      "training_monitor"}
    assert [step for step, *_ in read_ours["per_class/precision/cat"]] == [0, 1]


def test_scalars_text_and_images_match_tensorflows_own_functions(tmp_path):
    png = confusion_heatmap(CM, NAMES, "e")
    ours = EventFileWriter(str(tmp_path / "ours"))
    with ours.as_default():
        summaries.scalars({"loss": 0.125}, step=3)
        summaries.text("note", "hello", step=3)
        summaries.png_image("image", png, step=3)
    ours.close()
    theirs = tf.summary.create_file_writer(str(tmp_path / "theirs"))
    with theirs.as_default():
        tf.summary.scalar("loss", 0.125, step=3)
        tf.summary.text("note", "hello", step=3)
        tf.summary.write("image", tf.constant([b"0", b"0", png]), step=3,
                         metadata=image_metadata.create_summary_metadata(
                             display_name=None, description=None, converted_to_tensor=True))
    theirs.close()
    read_ours, read_theirs = _read(tmp_path / "ours"), _read(tmp_path / "theirs")
    assert read_ours["loss"] == read_theirs["loss"] and read_ours["note"] == read_theirs["note"]
    (step, value, plugin, _), = read_ours["image"]
    assert (step, value[2], plugin) == (3, png, "images")
    assert [int(v) for v in value[:2]] == list(reversed(np.shape(tf.io.decode_png(png))[:2]))


def test_an_event_file_is_named_and_framed_as_tensorflows(tmp_path):
    writer = EventFileWriter(str(tmp_path / "made" / "here"))  # folders made
    with writer.as_default():
        summaries.scalars({"a": 1.0}, step=0)
        ones = np.ones(3)
        pb = pr_summary.raw_data_pb("pr", true_positive_counts=ones, false_positive_counts=ones,
                                    true_negative_counts=ones, false_negative_counts=ones, precision=ones,
                                    recall=ones, num_thresholds=3)  # TensorFlow's Summary class
        summaries.write_summary(pb, step=0)
    writer.close()
    writer.close()  # twice: no error
    (path,) = event_files.paths(str(tmp_path / "made" / "here"))
    assert path == writer.path
    name = os.path.basename(path).split(".")
    assert name[:3] == ["events", "out", "tfevents"] and name[-1] == "v2" and name[5] == str(os.getpid())
    damage = event_files.Damage(path)
    events = list(event_files.events(path, damage))
    assert not damage.describe()
    assert events[0].file_version == "brain.Event:2"
    assert [v.tag for e in events[1:] for v in e.summary.value] == ["a", "pr/pr_curves"]
    assert [len(list(tf.compat.v1.train.summary_iterator(path)))] == [len(events)]  # TensorFlow's reader


def test_without_a_default_writer_nothing_is_written():
    meta = summary_pb2.SummaryMetadata()
    assert summaries.write("x", np.zeros(2), step=0, metadata=meta) is False
    assert event_files.default_writer() is None
