"""The dashboard's data of the Grad-CAM heat maps of the most confident mistakes.

One summary per validated epoch, beside the dashboard's own kinds (`monitor.dashboard.metadata`:
same plugin name, same content layout, `data_class` TENSOR), for its mistakes panel to read:

- tag `training_monitor/explanations/<split>/epochs_001-010`, a string tensor (1 + 2M,):
  element 0 is JSON `{"records": [{"true", "predicted", "confidence", "position"}, ...],
  "layer": the explained layer's name, "score": "logit" or "probability" (what was
  differentiated), "map_size": [h, w], "maps": ["predicted", "true"]}`, the records being the
  first M of that epoch's `mistakes` records (same order, same `position`); then per mistake two
  8-bit grey PNGs of h x w pixels: the heat map of the predicted class, then of the true class
  (value / 255 = the map, 1 at its maximum). A reader lays them over the mistake's thumbnail,
  stretched (bilinear) to its size.
- metadata content `{"version": 1, "kind": "explanations", "split": ..., "layer": ..., "score": ...}`.

The plugin serves them (`explanations`, `explanation_image`) to the mistakes panel's heat-map toggle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tensorboard.compat.proto import summary_pb2

from monitor import summaries
from monitor.dashboard.metadata import FORMAT_VERSION, PLUGIN_NAME
from monitor.limits import EPOCHS_PER_TAG
from monitor.tags import block_tag

KIND = "explanations"
MAP_ORDER = ("predicted", "true")


def tag(split: str, step: int, epochs_per_tag: int) -> str:
    """`training_monitor/explanations/<split>/epochs_001-010` for the block `step` falls in."""
    return block_tag(f"{PLUGIN_NAME}/{KIND}/{split}", step, epochs_per_tag)


def summary_metadata(split: str, layer: str, score: str) -> summary_pb2.SummaryMetadata:
    content = {"version": FORMAT_VERSION, "kind": KIND, "split": split, "layer": layer, "score": score}
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME, content=json.dumps(content).encode("utf-8")),
        data_class=summary_pb2.DATA_CLASS_TENSOR)


def mistake_maps(records: Sequence[dict], pngs: Sequence[bytes], map_size: tuple[int, int], layer: str,
                 score: str, step: int, split: str = "validation",
                 epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """One epoch's heat maps of its mistakes: `records` with two PNGs each (`pngs`: predicted,
    true, predicted, true, ...), into the current default writer."""
    if len(pngs) != 2 * len(records):
        raise ValueError(f"{len(records)} records need {2 * len(records)} PNGs, got {len(pngs)}")
    header = {"records": list(records), "layer": layer, "score": score,
              "map_size": [int(map_size[0]), int(map_size[1])], "maps": list(MAP_ORDER)}
    payload = [json.dumps(header).encode("utf-8"), *pngs]
    return summaries.write(tag(split, step, epochs_per_tag), payload, step=step,
                           metadata=summary_metadata(split, layer, score))
