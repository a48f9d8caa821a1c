"""The dashboard's plugin name, tags and summary metadata (the data format).

Seven kinds of summaries, each a tensor with one sample per validated epoch (step = epoch
index from 0, as Keras' own summaries), in tags of `--epochs-per-tag` epochs (10 by default):

- `training_monitor/confusion/<split>/epochs_001-010`: int64 (K, 3), the nonzero cells of
  the raw confusion matrix as (true, predicted, count) rows. The metadata content holds
  the class names.
- `training_monitor/mistakes/<split>/epochs_001-010`: string (1 + M,): element 0 is JSON,
  a list of `{"true", "predicted", "confidence", "position"}` (most confident first),
  elements 1.. the PNG thumbnails, in the same order.
- `training_monitor/scores/<split>/epochs_001-010` (one-unit binary heads only): int64 (2, T),
  the histograms of the score p(positive) in T buckets (bucket b = floor(p * (T - 1)) clipped
  to [0, T - 1]): row 0 over the true negatives, row 1 over the true positives. The metadata
  content holds `threshold` (the user's: predicted positive when p >= threshold; the confusion
  counts are exact at it) and `num_thresholds` (T). Predicting positive for buckets >= k gives
  the 2x2 at threshold k / (T - 1) without a second pass. Written before the epoch's
  confusion counts, so a reader that sees an epoch's counts sees its scores too. Logs written
  before this kind existed simply have none.
- `training_monitor/multilabel/<split>/epochs_001-010` (multi-label heads, in place of
  `confusion`): a string scalar, JSON `{"count": N images, "exact": images with every label
  right, "tp"/"fp"/"fn"/"tn": [C ints] per label, "cooccurrence": [[i, j, n], ...] (the nonzero
  cells of a C x C matrix: rows the label missed (a false negative), columns the label added (a
  false positive) in the same image) or null, "threshold": t}`. The metadata content holds the
  class names and `threshold`.
- `training_monitor/calibration/<split>/epochs_001-010` (when the suite's calibration is on; not
  multi-label heads): float64 (3, B), the top-label reliability statistics of the epoch's
  validation (or test) pass in B equal-width confidence bins (`monitor.calibration`: bin
  min(floor(c * B), B - 1) of the confidence c, the probability of the predicted class): row 0 the
  count of images, row 1 the sum of their confidences, row 2 the count predicted right. The
  metadata content holds `bins` (B). Per-bin accuracy and mean confidence, ECE, MCE and
  over-confidence follow from them (monitor/calibration.py's formulas; the page computes them too).
- `training_monitor/alerts/validation/epochs_001-010` (when the alarms are on): a string scalar, the
  JSON list of the alerts said at that epoch's end, each `{"epoch" (1-based), "rule", "event":
  "started"|"ended", "message", "numbers"}` as `metrics.json` lists them (non-finite numbers as
  null); written only at epochs with alerts.
- `training_monitor/explanations/<split>/epochs_001-010` (when the suite's explanations are on):
  the Grad-CAM heat maps of the first M of the epoch's `mistakes`, a string tensor (1 + 2M,),
  written by `monitor.explanation_summaries` (its docstring has the layout), after the mistakes.

The suite writes an epoch's calibration and alerts before its confusion (or multi-label) counts,
so a reader that sees an epoch's counts sees those too. Logs written before these kinds existed
simply have none.

Why blocks of 10 epochs: TensorBoard's Python loader keeps 10 samples per tag for the
tensors of third-party plugins (its Rust loader 100), chosen at random when a tag has
more. Ten epochs per tag reach the plugin whole under either loader, with no flag.
Every summary has `data_class` TENSOR, without which the Rust loader drops it.

`FORMAT_VERSION` stays 1 as kinds are added: a reader skips the kinds it does not know (an
older plugin shows a binary run's matrix without its threshold slider, no multi-label run, and no
calibration or alerts).
"""

from __future__ import annotations

import json

from tensorboard.compat.proto import summary_pb2

from monitor.tags import block_tag

PLUGIN_NAME = "training_monitor"
TAB_NAME = "Training monitor"
FORMAT_VERSION = 1
KINDS = ("confusion", "mistakes", "scores", "multilabel", "calibration", "alerts", "explanations")


def tag(kind: str, split: str, step: int, epochs_per_tag: int) -> str:
    """`training_monitor/<kind>/<split>/epochs_001-010` for the block `step` falls in."""
    return block_tag(f"{PLUGIN_NAME}/{kind}/{split}", step, epochs_per_tag)


def create_summary_metadata(kind: str, split: str, class_names=None, **extra) -> summary_pb2.SummaryMetadata:
    """The metadata of one `kind` of summary; `extra` (JSON values: `threshold`, `num_thresholds`,
    `bins`) goes into the content as is."""
    if kind not in KINDS:
        raise ValueError(f"Invalid value for argument `kind`. Received: kind={kind!r}")
    content = {"version": FORMAT_VERSION, "kind": kind, "split": split, **extra}
    if class_names is not None:
        content["class_names"] = [str(n) for n in class_names]
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME, content=json.dumps(content).encode("utf-8")),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def parse_plugin_content(content: bytes) -> dict | None:
    """The metadata content as a dict; None when it is not ours or of a newer format."""
    try:
        parsed = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(parsed, dict) or parsed.get("kind") not in KINDS:
        return None
    if not isinstance(parsed.get("version"), int) or parsed["version"] > FORMAT_VERSION:
        return None
    return parsed
