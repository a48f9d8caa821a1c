"""ExplanationsCallback: Grad-CAM heat maps of the most confident mistakes and the prediction grid."""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np

from callbacks.base import DEFAULTS, ValidationSummaryCallback
from callbacks.confident_mistakes import mistake_records
from callbacks.prediction_grid import pick_samples
from monitor import explanation_summaries, summaries
from monitor.capture import EvaluationState
from monitor.gil import quick_handover
from monitor.gradcam import GradCam, spatial_layer
from monitor.pretrace import wait_for_first_step
from monitor.render import GRID_NAME_WIDTH, display_images, short_name
from monitor.render.explanations import ExplanationGridRenderer, map_pngs, max_items, overlay, rgb, titles
from monitor.tags import block_tag

MAX_EXPLAINED_MISTAKES = 64  # mistakes explained per epoch (for the dashboard); more are not


@dataclass(frozen=True)
class Explanations:
    """One epoch's heat maps (each (h, w) in [0, 1], 1 at its maximum), as the callback keeps them."""

    epoch: int
    layer: str  # the explained layer's name
    score: str  # "logit" (pre-softmax / pre-sigmoid) or "probability"
    mistakes: list  # the explained mistakes' records (`mistake_records`), most confident first
    mistake_maps: np.ndarray  # (M, 2, h, w): the predicted class's map, then the true class's
    grid_slots: np.ndarray  # (S,) sample slots of the grid's images, in the grid's order
    grid_positions: np.ndarray  # (S,) their positions in validation order
    grid_predicted: np.ndarray  # (S,) their predicted classes
    grid_maps: np.ndarray  # (S, h, w): the predicted class's map


class ExplanationsCallback(ValidationSummaryCallback):
    """Grad-CAM (Selvaraju et al. 2017) of the images the suite keeps, every validated epoch.

    On the chief, at epoch end: the training thread takes a snapshot of the weights (a read, under
    a millisecond: the maps must be the epoch's), and the background thread makes one
    forward and backward pass over them (under tf.distribute the training thread makes it, as a
    replica function) over the captured mistakes (up to MAX_EXPLAINED_MISTAKES, each for
    its predicted and its true class: "why cat, and where was the dog?") and the prediction grid's
    images (their predicted class; at most `max_items(2)`, 42, the picture's most);
    `monitor.gradcam` has the math. Drawing and writing go to the
    background thread: `explanations/mistakes/<block>` (the first `mistakes_shown` mistakes, each
    beside its two overlays) and `explanations/grid/<block>` (the first `grid_size` grid images
    beside theirs), titled "truth : prediction (87%)", and the maps of every explained mistake for
    the dashboard (`monitor.explanation_summaries`). `last` keeps the last epoch's `Explanations`.

    The layer: `explain_layer` (a top-level layer or its name), else found (`spatial_layer`). A
    model without one, or any failure here, is one warning: no heat maps, and training and the
    rest of the suite go on. A multi-label head is skipped (no single predicted class).

    ```python
    explain = ExplanationsCallback(capture, writers, class_names, explain_layer="block3_conv2")
    ```
    """

    def __init__(self, source, writers, class_names, mistakes_shown: int = DEFAULTS.mistakes_grid,
                 grid_size: int = DEFAULTS.grid_size, explain_layer=None, output: str | int | None = None,
                 display_transform=None, **kwargs):
        super().__init__(source, writers, **kwargs)
        for arg, value in (("mistakes_shown", mistakes_shown), ("grid_size", grid_size)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Invalid value for argument `{arg}`. Received: {arg}={value}")
        self.class_names = [str(c) for c in class_names]
        self.mistakes_shown, self.grid_size = mistakes_shown, grid_size
        self.explain_layer, self.output = explain_layer, output
        self.display_transform = display_transform
        self.mistakes_renderer = self.renderer(ExplanationGridRenderer, panels=3, per_row=2)
        self.grid_renderer = self.renderer(ExplanationGridRenderer, panels=2, per_row=3)
        self.cam: GradCam | None = None
        self._cam_model = None
        self.off: str | None = None  # why no heat maps are made, once turned off
        self.last: Explanations | None = None
        self.seconds_explaining = 0.0  # Grad-CAM passes (on the background thread, but under tf.distribute)
        self.seconds_rendering = 0.0  # drawing and writing, on the background thread
        self._building = threading.Lock()  # the first epoch's tracing thread, or the epoch-end pass
        self._tracing: threading.Thread | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.writers.active and self.off is None and self.cam is None:
            self._tracing = threading.Thread(target=self._trace_while_training, name="gradcam-trace",
                                             daemon=True)
            self._tracing.start()

    def on_train_end(self, logs=None):
        if self._tracing is not None:  # a fit shorter than the tracing: it ends before fit returns
            self._tracing.join()
            self._tracing = None
        super().on_train_end(logs)

    def _trace_while_training(self) -> None:
        """Build the model's Grad-CAM and trace its pass on one blank image while the first epoch
        trains (0.2-0.4 s that the first epoch's end would otherwise spend on the training
        thread), once training has taken its first step. Quiet: whatever fails here is tried again,
        and said, at the epoch's end."""
        wait_for_first_step(self.model)
        with self._building, quick_handover():
            try:
                cam = self._build_cam()
                cam.maps(np.zeros((1, *cam.input_shape), np.float32), np.array([[0, -1]]),
                         cam.snapshot() if cam.can_snapshot else None)  # the pass the epochs' ends use
            except Exception:  # noqa: BLE001
                return
            if self.cam is None and self.off is None:
                self.cam, self._cam_model = cam, self.model

    def write(self, epoch: int, state: EvaluationState) -> None:
        if state.multi_label is not None:  # no single predicted class to explain
            return
        batch = explained_batch(state, min(self.grid_size, max_items(2)), MAX_EXPLAINED_MISTAKES)
        if batch is None:
            return
        with self._building:  # a first epoch shorter than the tracing waits for it here
            cam = self._explainer()
        if cam is None:
            return

        def explain(weights=None):
            return self._explaining(lambda: cam.maps(batch["images"], batch["classes"], weights))

        maps = weights = None
        if cam.can_snapshot:  # the pass runs on the background thread, over this moment's weights
            weights = self._explaining(cam.snapshot)
            if weights is None:
                return
        else:  # under tf.distribute the pass is a replica function: here, on the training thread
            maps = explain()
            if maps is None:
                return
        binary, title = state.binary_threshold is not None, self.epoch_title(epoch)

        def work() -> None:
            explained = maps if maps is not None else explain(weights)
            if explained is None:
                return
            begin = time.perf_counter()
            k = len(batch["records"])
            last = Explanations(epoch, cam.layer.name, cam.score, batch["records"], explained[:k],
                                batch["grid_slots"], state.sample_positions[batch["grid_slots"]],
                                batch["classes"][k:, 0], explained[k:, 0])
            self.last = last
            images, probs = batch["images"], batch["grid_probs"]
            self._write_mistakes(last, images[:k], binary, title)
            self._write_grid(last, images[k:], probs, state.sample_labels[last.grid_slots], binary, title)
            self.seconds_rendering += time.perf_counter() - begin

        self.submit(work)

    def _explaining(self, step):
        """`step()` (a snapshot, or a Grad-CAM pass), timed; None, with Grad-CAM turned off for the
        run and one warning, when it fails."""
        start = time.perf_counter()
        try:
            return step()
        except Exception as err:  # noqa: BLE001 - explanations are never worth stopping training for
            self._turn_off(f"cannot compute Grad-CAM ({type(err).__name__}: {err})")
            return None
        finally:
            self.seconds_explaining += time.perf_counter() - start

    def _explainer(self) -> GradCam | None:
        """The model's Grad-CAM, built at its first validated epoch; None when turned off."""
        if self.off is None and (self.cam is None or self._cam_model is not self.model):
            try:
                self.cam, self._cam_model = self._build_cam(), self.model
            except Exception as err:  # noqa: BLE001 - a model we cannot explain still trains
                self._turn_off(str(err))
        return None if self.off is not None else self.cam

    def _build_cam(self) -> GradCam:
        return GradCam(self.model, spatial_layer(self.model, self.explain_layer, self.output), self.output)

    def _turn_off(self, why: str) -> None:
        self.off, self.cam = why, None
        warnings.warn(f"monitor: no Grad-CAM heat maps in this run: {why}. Training and the rest of "
                      "the suite go on.", RuntimeWarning, stacklevel=3)

    def _write_mistakes(self, last: Explanations, images: np.ndarray, binary: bool, title: str) -> None:
        records, maps = last.mistakes, last.mistake_maps
        if not records:
            return
        explanation_summaries.mistake_maps(records, map_pngs(maps.reshape(-1, *maps.shape[2:])),
                                           maps.shape[2:], last.layer, last.score, last.epoch,
                                           epochs_per_tag=self.epochs_per_tag)
        n = min(self.mistakes_shown, len(records), max_items(3))
        if n == 0:
            return
        true = [r["true"] for r in records[:n]]
        pred = [r["predicted"] for r in records[:n]]
        confidence = [r["confidence"] if not binary or p == 1 else 1.0 - r["confidence"]
                      for r, p in zip(records[:n], pred, strict=True)]
        base = rgb(display_images(images[:n], self.display_transform))
        pictures = np.stack([base, overlay(base, maps[:n, 0]), overlay(base, maps[:n, 1])], axis=1)
        texts = titles(true, pred, confidence, self.class_names, positive=1 if binary else None)
        captions = [["", f"why {self._name(p)}?", f"where is {self._name(t)}?"] for t, p in zip(true, pred,
                                                                                               strict=True)]
        png = self.mistakes_renderer.render(pictures, texts, [False] * n, captions,
                                            f"Grad-CAM at {last.layer}: most confident mistakes, {title}")
        tag = block_tag("explanations/mistakes", last.epoch, self.epochs_per_tag)
        summaries.png_image(tag, png, last.epoch)

    def _write_grid(self, last: Explanations, images, probs, truth, binary: bool, title: str) -> None:
        n = min(len(images), max_items(2))
        if n == 0:
            return
        pred = last.grid_predicted[:n]
        shown = probs[:n, 1] if binary else probs[np.arange(n), pred]
        base = rgb(display_images(images[:n], self.display_transform))
        pictures = np.stack([base, overlay(base, last.grid_maps[:n])], axis=1)
        texts = titles(truth[:n], pred, shown, self.class_names, positive=1 if binary else None)
        captions = [["", f"why {self._name(p)}?"] for p in pred]
        png = self.grid_renderer.render(pictures, texts, list(truth[:n] == pred), captions,
                                        f"Grad-CAM at {last.layer}: validation predictions, {title}")
        tag = block_tag("explanations/grid", last.epoch, self.epochs_per_tag)
        summaries.png_image(tag, png, last.epoch)

    def _name(self, index) -> str:
        return short_name(self.class_names[int(index)], GRID_NAME_WIDTH)


def explained_batch(state: EvaluationState, grid_size: int, max_mistakes: int) -> dict | None:
    """The images to explain and their classes (N, 2): the captured mistakes first (predicted,
    true), then the grid's images (predicted, -1); None when there are none."""
    records = mistake_records(state)[:max_mistakes] if state.mistake_images is not None else []
    k = len(records)
    images = [state.mistake_images[:k]] if k else []
    classes = [np.array([[r["predicted"], r["true"]] for r in records], np.int64).reshape(k, 2)]
    slots = np.zeros(0, np.int64)
    if grid_size and state.sample_images is not None:
        slots = pick_samples(state, grid_size)
        images.append(state.sample_images[slots])
        predicted = state.predicted(state.sample_probs[slots]).astype(np.int64)
        classes.append(np.stack([predicted, -np.ones_like(predicted)], axis=1))
    if not images or sum(len(i) for i in images) == 0:
        return None
    return {"images": np.concatenate(images), "classes": np.concatenate(classes), "records": records,
            "grid_slots": slots, "grid_probs": state.sample_probs[slots]}
