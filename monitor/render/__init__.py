"""Render metrics and predictions to PNG bytes (arrays in, PNG bytes out), one module per picture.

- ``heatmap``: the confusion heatmap, annotated up to ``ANNOTATE_MAX_CLASSES`` classes;
- ``large_heatmap``: above, the whole matrix beside the ``MOST_CONFUSED`` most-confused classes;
- ``grid``: the prediction grid, images titled "truth : prediction (87%)";
- ``bars``: class-probability bars per image (top ``TOP_K`` above ``ALL_BARS_MAX_CLASSES``), per-class recall;
- ``curves``: training curves of one or more runs;
- ``multilabel``: a multi-label head's per-label bars and counts, and its missed x added label heatmap;
- ``blit``: the engine the renderers share (cached background, redrawn parts, pasted texts);
- ``panels``: images pasted by pixel into a canvas, where an axis-less ``imshow`` would show them
  (no Axes per image);
- ``images``, ``names``, ``cells``, ``png``: input images for display, class names cut to fit,
  heatmap cell texts, PNG encoding.

Only matplotlib's object API is used (``Figure`` + Agg), never pyplot. A renderer class
(held by a callback for a run) redraws per epoch only what changed and gives the same
PNG bytes as a fresh one; each pure function builds a fresh renderer per call. Every
picture stays within 1600 x 1200 pixels whatever the class count.
"""

from monitor.limits import ALL_BARS_MAX_CLASSES, ANNOTATE_MAX_CLASSES, MOST_CONFUSED, TOP_K
from monitor.render.bars import ProbabilityBarsRenderer, per_class_recall_bars, probability_bars
from monitor.render.blit import TEXT_CACHE_BYTES
from monitor.render.curves import training_curves
from monitor.render.grid import PredictionGridRenderer, multilabel_titles, prediction_grid
from monitor.render.heatmap import ConfusionHeatmapRenderer, confusion_heatmap
from monitor.render.images import CAFFE_BGR_MEAN, DisplayTransform, display_images, thumbnail_pngs
from monitor.render.multilabel import cooccurrence_png, label_counts_png
from monitor.render.names import GRID_NAME_WIDTH, HEATMAP_NAME_WIDTH, LABEL_NAME_WIDTH, NAME_WIDTH, short_name
from monitor.render.png import DPI, PNG_SIGNATURE, png_size

__all__ = [
    "ALL_BARS_MAX_CLASSES", "ANNOTATE_MAX_CLASSES", "CAFFE_BGR_MEAN", "DPI", "GRID_NAME_WIDTH",
    "HEATMAP_NAME_WIDTH", "LABEL_NAME_WIDTH", "MOST_CONFUSED", "NAME_WIDTH", "PNG_SIGNATURE",
    "TEXT_CACHE_BYTES", "TOP_K", "ConfusionHeatmapRenderer", "DisplayTransform", "PredictionGridRenderer",
    "ProbabilityBarsRenderer", "confusion_heatmap", "cooccurrence_png", "display_images", "label_counts_png",
    "multilabel_titles", "per_class_recall_bars", "png_size",
    "prediction_grid", "probability_bars", "short_name", "thumbnail_pngs", "training_curves",
]
