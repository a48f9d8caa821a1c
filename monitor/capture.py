"""Streaming state collected during Keras' own evaluation pass.

`EvaluationCapture.attach(model)` wraps the model's `test_step` and
`compute_metrics` on the instance (not in `compile()`), so every evaluation
batch also updates a few variables: confusion-matrix counts, per-class score
histograms for PR curves, a few sample images with their predicted
probabilities, and the most confident mistakes (the top `mistakes` wrong
predictions by confidence, with their images). Nothing is predicted twice and nothing of ours enters the
compiled model, its logs or its saved file; `detach()` restores the model.

Cost per batch of N images and C classes is O(N*C) whatever the number of PR
thresholds T: the confusion matrix and the positives' histogram get N
scatter-adds at (true, predicted) and (class, bucket); the all-scores histogram
is one bincount over flat indices class*T + bucket. Nothing (N, C, T)-sized, no
one-hot (N, C) x (N, C) product.

Under `tf.distribute` every variable is created in `attach`, under the model's
strategy scope, before any replica function runs. Counts are `ON_READ`
variables with `SUM` aggregation: each replica adds to its own copy and a read
sums them over replicas and workers, so the matrix counts every validation
image once. Sample images and mistakes come from the first replica (of each
worker) alone: the first images of each class that replica saw, in its own
evaluation order, and the most confident mistakes among the images it saw.

A multi-label head (C independent sigmoids, multi-hot targets; `monitor.heads`) gets
per-label TP/FP/FN counts at the threshold, the rows counted and the rows with every label
right, the positives' and all scores' histograms per label (PR curves), and the missed x added
label co-occurrence (one (C, N) x (N, C) product per batch, up to MULTILABEL_COOCCURRENCE_MAX
labels); its `confusion` stays zeros. Sample slots are grouped by each row's first label (rows
without a label are not shown) and keep the row's multi-hot truth. No confident mistakes are
kept for it (a multi-label row has no single "predicted class" to be confidently wrong about).

Sample weights are ignored: every validation row is counted once (Keras' own metrics honour them).
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from monitor.distribution import model_strategy
from monitor.heads import (
    binary_from_logits,
    binary_labels,
    binary_probabilities,
    head_kind,
    is_binary_loss,
    multi_hot_targets,
    output_activation,
    sigmoid_probabilities,
    single_labels,
)
from monitor.limits import CALIBRATION_BINS, DISTRIBUTION_TOLERANCE, MULTILABEL_COOCCURRENCE_MAX
from monitor.multilabel import MultiLabelCounts
from monitor.settings import HEADS, SuiteOptions

DEFAULTS = SuiteOptions()


@dataclass(frozen=True)
class EvaluationState:
    """A numpy snapshot of one evaluation pass.

    Sample slots come in blocks of `samples_per_class`: block b holds the first
    images of the b-th class seen (classes in order of first appearance).
    """

    confusion: np.ndarray  # (C, C) int64, rows = true class
    pos_hist: np.ndarray  # (C, T) positives whose score fell in bucket t
    neg_hist: np.ndarray  # (C, T) negatives whose score fell in bucket t
    sample_images: np.ndarray | None  # (S, H, W, Ch) float32, None if not captured
    sample_labels: np.ndarray  # (S,) true class of each slot, -1 = empty slot
    sample_probs: np.ndarray  # (S, C) probabilities
    sample_positions: np.ndarray  # (S,) position in evaluation order, -1 = empty slot
    samples_per_class: int
    # The most confident mistakes, most confident first (ties: earlier in evaluation order);
    # M entries, empty ones at the end with true class -1.
    mistake_confidence: np.ndarray | None = None  # (M,) probability of the predicted class
    mistake_labels: np.ndarray | None = None  # (M,) true class, -1 = empty
    mistake_predicted: np.ndarray | None = None  # (M,) predicted class
    mistake_positions: np.ndarray | None = None  # (M,) position in evaluation order
    mistake_images: np.ndarray | None = None  # (M, H, W, Ch) float32, None if not captured
    # A one-unit binary head: class 0 = negative, 1 = positive, scores [1 - p, p]; predicted
    # positive when p >= binary_threshold. None: single-label, predicted = argmax.
    binary_threshold: float | None = None
    multi_hot_rows: int = 0  # target rows with several (or no) 1s for a single-label head: not monitored
    # A multi-label head: per-label counts at its threshold (then `confusion` is all zeros and
    # sample_labels is each slot's first label); None for single-label and binary heads.
    multi_label: MultiLabelCounts | None = None
    sample_targets: np.ndarray | None = None  # (S, C) int64 multi-hot truth of each slot (multi-label)
    unreadable_target_rows: int = 0  # multi-label target rows holding other values than 0 and 1
    # Top-label reliability statistics in CALIBRATION_BINS equal-width confidence bins (the
    # predicted class's probability): {"count", "confidence_sum", "correct"}, each (B,); None for a
    # multi-label head (no single top label) or when not captured.
    calibration: dict | None = None

    def predicted(self, probs: np.ndarray) -> np.ndarray:
        """The predicted class of each row of `probs` (N, C), as the capture counted it; for a
        multi-label head the (N, C) bool predicted labels."""
        probs = np.asarray(probs)
        if self.multi_label is not None:
            return probs >= self.multi_label.threshold
        if self.binary_threshold is not None:
            return (probs[:, 1] >= self.binary_threshold).astype(np.int64)
        return probs.argmax(1)

    @property
    def mistake_count(self) -> int:
        return 0 if self.mistake_labels is None else int((self.mistake_labels >= 0).sum())

    @property
    def count(self) -> int:
        """Validation rows counted."""
        if self.multi_label is not None:
            return int(self.multi_label.count)
        return int(self.confusion.sum())


def sample_layout(num_classes: int, sample_slots: int) -> tuple[int, int]:
    """`(blocks, per_block)`: enough slots for `sample_slots` images, every class first.

    With C <= S every class gets ceil(S / C) slots; with more classes than slots,
    the first S classes seen get one each.
    """
    per_block = max(1, math.ceil(sample_slots / num_classes))
    return min(num_classes, math.ceil(sample_slots / per_block)), per_block


class EvaluationCapture:
    """Streams confusion counts, PR histograms and sample images out of `evaluate`.

    `head` ("auto", "single_label", "binary", "multi_label") says how to read the model's output;
    "auto" reads it from the model (`monitor.heads.head_kind`). Sample weights are ignored: every
    row counts once in the monitor's counts (Keras' own metrics honour them).

    Usage:
    ```python
    capture = EvaluationCapture(num_classes=10)
    capture.attach(model)
    model.evaluate(x_val, y_val)
    state = capture.read()   # EvaluationState
    capture.detach()
    ```
    """

    def __init__(
        self,
        num_classes: int,
        num_thresholds: int = 101,
        sample_slots: int = DEFAULTS.grid_size,
        from_logits: bool | None = None,
        mistakes: int = DEFAULTS.mistakes,
        threshold: float = DEFAULTS.threshold,
        output: str | int | None = None,
        head: str = DEFAULTS.head,
    ):
        if head not in HEADS:
            raise ValueError(f"Invalid value for argument `head`. Received: head={head!r}")
        if output is not None and (isinstance(output, bool) or not isinstance(output, str | int)
                                   or output == "" or (isinstance(output, int) and output < 0)):
            raise ValueError(f"Invalid value for argument `output`. Received: output={output!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Invalid value for argument `num_classes`. Received: {num_classes}")
        if not isinstance(num_thresholds, int) or num_thresholds < 2:
            raise ValueError(
                f"Invalid value for argument `num_thresholds`. Received: num_thresholds={num_thresholds}"
            )
        if not isinstance(sample_slots, int) or sample_slots < 0:
            raise ValueError(
                f"Invalid value for argument `sample_slots`. Received: sample_slots={sample_slots}"
            )
        if not isinstance(mistakes, int) or mistakes < 0:
            raise ValueError(f"Invalid value for argument `mistakes`. Received: mistakes={mistakes}")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
            raise ValueError(f"Invalid value for argument `threshold`. Received: threshold={threshold}")
        self.threshold = float(threshold)
        self.output = output  # the head to monitor: an output name or index; None = the only output
        self._output_index: int | None = None  # resolved in attach (None: the model's only output)
        self._output_name: str | None = None
        self.binary = False  # a one-unit head, read as two classes (decided in attach or per batch)
        self.head = head
        self.multi_label = head == "multi_label"  # C independent sigmoids (decided in attach)
        self.mistakes = mistakes
        self.num_classes = num_classes
        self.num_thresholds = num_thresholds
        self.blocks, self.samples_per_class = sample_layout(num_classes, max(sample_slots, 1))
        self.slots = self.blocks * self.samples_per_class
        self.from_logits = from_logits
        self._model = None
        # Per thread: `active` while Keras traces test_step there; `ahead`, a list while a trace
        # ahead of the validation pass runs there (what it could not read, said by nobody).
        self._tracing = threading.local()
        self._vars: dict[str, tf.Variable] = {}
        self._image_shape: tuple[int, ...] | None = None
        self._warned: set[str] = set()
        self.unreadable: str | None = None  # why nothing is captured (an output or target we cannot read)

    # -- attaching -------------------------------------------------------
    def attach(self, model) -> None:
        """Wrap `model`'s evaluation step; raises ValueError for a model the
        monitor cannot read (a mismatched output, or a multi-label head)."""
        if self._model is model:
            return
        if self._model is not None:
            self.detach()
        self._check_head(model)
        image_shape = _input_image_shape(model)
        if image_shape is None and not self._vars:
            self._warn_once("input", "monitor: the model input is not an image of fully known shape "
                            "(batch, H, W[, C]); sample images are not captured")
        with model_strategy(model).scope():
            self._create_variables(image_shape)
        self._model = model
        loss = _head_loss(model, self._output_name, self._output_index)
        loss_logits = _loss_from_logits(loss) if self.from_logits is None else self.from_logits
        self._resolved_logits = loss_logits
        self._binary_logits = binary_from_logits(loss_logits, output_activation(model, self._output_index))
        self._wrap(model)

    def check(self, model) -> None:
        """Raise ValueError now for a model the monitor cannot read (several outputs and no
        `output=`, a wrong `output=`, a head that does not match the class names)."""
        self._check_head(model)

    def _resolve_output(self, model) -> None:
        """Which of the model's outputs the monitor reads: `_output_index` / `_output_name`
        (both None for a model with one output and no `output=`)."""
        names = _output_names(model)
        self._output_index = self._output_name = None
        listed = ", ".join(names)
        if self.output is None:
            if len(names) > 1:
                raise ValueError(
                    f"The model has {len(names)} outputs ({listed}); the monitor reads one classifier "
                    f"head: pass output= (one of: {listed}, or an index 0 to {len(names) - 1})")
            return
        if not names:  # not built yet: trust the choice, check it per batch
            self._output_index = self.output if isinstance(self.output, int) else None
            self._output_name = self.output if isinstance(self.output, str) else None
            return
        if isinstance(self.output, str) and self.output not in names:
            raise ValueError(f"output={self.output!r} is not one of the model's outputs ({listed}); "
                             "pass one of these names, or an index")
        if isinstance(self.output, int) and self.output >= len(names):
            raise ValueError(f"output={self.output} is out of range: the model has {len(names)} "
                             f"output(s) ({listed}), indices 0 to {len(names) - 1}")
        index = names.index(self.output) if isinstance(self.output, str) else self.output
        self._output_index, self._output_name = index, names[index]

    def _check_head(self, model) -> None:
        self._resolve_output(model)
        index = self._output_index
        units = _output_units(model, index)
        if units == 1 and self.num_classes != 2:
            raise ValueError(
                f"The model has 1 output unit (a binary classifier) but the monitor has {self.num_classes} "
                "class names; a binary model needs 2 class names, negative first (or one output per "
                f"class, softmax or logits: Dense({self.num_classes}))."
            )
        if units is not None and units not in (1, self.num_classes):
            raise ValueError(
                f"The model outputs {units} classes but the monitor has {self.num_classes} class "
                "names. Pass one class name per output unit, in output order."
            )
        loss = _head_loss(model, self._output_name, index)
        kind = head_kind(self.head, units, output_activation(model, index), is_binary_loss(loss))
        if units is not None and (kind == "binary") != (units == 1):
            raise ValueError(f"head={self.head!r} does not fit the model's output of {units} unit(s): a "
                             "binary head has one unit, single- and multi-label heads one per class")
        self.binary = units == 1
        self.multi_label = kind == "multi_label"

    def _wrap(self, model) -> None:
        """Capture the predictions Keras hands to `compute_metrics` while evaluating or, for a
        model whose own `test_step` never calls it, those it hands to `compute_loss`."""
        original_test_step = model.test_step
        original_compute_metrics = model.compute_metrics
        original_compute_loss = model.compute_loss

        here = self._tracing

        def test_step(data):
            here.active, here.seen_metrics, here.loss_args = True, False, None
            try:
                result = original_test_step(data)
                if not here.seen_metrics:
                    self._custom_step(data)
                return result
            finally:
                here.active = False

        def compute_metrics(x, y, y_pred, sample_weight=None):
            if getattr(here, "active", False) and not here.seen_metrics:
                here.seen_metrics = True
                self._update_head(x, y, y_pred)
            return original_compute_metrics(x, y, y_pred, sample_weight=sample_weight)

        def compute_loss(*args, **kwargs):
            if getattr(here, "active", False) and here.loss_args is None:
                here.loss_args = _loss_arguments(args, kwargs)
            return original_compute_loss(*args, **kwargs)

        model.test_step = test_step
        model.compute_metrics = compute_metrics
        model.compute_loss = compute_loss
        model.test_function = None  # retrace with the wrapped step

    def _custom_step(self, data) -> None:
        """The model's own test_step did not call compute_metrics: read what it gave compute_loss."""
        loss_args = self._tracing.loss_args
        y, y_pred = loss_args if loss_args is not None else (None, None)
        if y is None or y_pred is None:
            self._cannot_read("custom_step", (
                "this model's own test_step passes its predictions neither to compute_metrics nor to "
                "compute_loss (with y and y_pred), so the suite cannot see them; Keras did run the "
                "validation pass"))
            return
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._update_head(x, y, y_pred)

    def _update_head(self, x, y, y_pred) -> None:
        y, y_pred = self._head(y, "targets"), self._head(y_pred, "outputs")
        if y is not None and y_pred is not None:
            self._update(x, y, y_pred)

    def _head(self, value, what: str):
        """The monitored head's part of `y` or `y_pred`: Keras hands several outputs as a dict
        keyed by output name or a list/tuple in output order; one output as it is."""
        if self._output_index is None and self._output_name is None:
            return value
        if isinstance(value, dict):
            if self._output_name in value:
                return value[self._output_name]
        elif isinstance(value, list | tuple):
            if self._output_index is not None and self._output_index < len(value):
                return value[self._output_index]
        elif self._output_index in (0, None) and tf.is_tensor(value):
            return value  # a model with one output, chosen by output=0 or its name
        self._cannot_read("head", f"the model's {what} do not hold the chosen output output={self.output!r} "
                          f"(got {type(value).__name__})")
        return None

    def detach(self) -> None:
        model, self._model = self._model, None
        if model is None:
            return
        for name in ("test_step", "compute_metrics", "compute_loss"):
            model.__dict__.pop(name, None)
        model.test_function = None

    def traced_quietly(self, trace) -> bool:
        """Run `trace()`, a trace of the wrapped step ahead of the validation pass (on this thread),
        saying nothing: False (the trace to be thrown away, the capture as it was) where it met
        anything the capture would say or refuse; the pass then traces, and says it, as ever."""
        binary = self.binary
        self._tracing.ahead = []
        try:
            trace()
        finally:
            unusual, self._tracing.ahead = self._tracing.ahead, None
        if unusual:
            self.binary = binary
        return not unusual

    def trace_state_functions(self) -> None:
        """Trace the functions that reset and read the state (what the first `reset` and `read`
        would otherwise trace on the training thread)."""
        if self._vars:
            self._reset_all.get_concrete_function()
            self._read_all.get_concrete_function()

    # -- state -----------------------------------------------------------
    def reset(self) -> None:
        if self._vars:
            self._reset_all()

    def read(self) -> EvaluationState:
        """The state summed over replicas (and workers); every worker must call it
        alike under MultiWorkerMirroredStrategy, since summing is a collective."""
        c, t, s = self.num_classes, self.num_thresholds, self.slots
        if not self._vars:
            empty = np.zeros((c, t), np.int64)
            m = self.mistakes
            return EvaluationState(np.zeros((c, c), np.int64), empty, empty.copy(), None,
                                   -np.ones(s, np.int64), np.zeros((s, c)), -np.ones(s, np.int64),
                                   self.samples_per_class, np.zeros(m), -np.ones(m, np.int64),
                                   -np.ones(m, np.int64), -np.ones(m, np.int64), None)
        # One call reads everything (fixed order: the same collectives on every worker), so
        # the training thread waits for the GIL once, not once per variable.
        v = {k: value.numpy() for k, value in self._read_all().items()}
        pos = np.rint(v["pos_hist"]).astype(np.int64)
        positions = v["positions"][:s].astype(np.int64)
        return EvaluationState(
            confusion=np.rint(v["confusion"]).astype(np.int64),
            pos_hist=pos,
            neg_hist=np.rint(v["score_hist"]).astype(np.int64) - pos,
            sample_images=v["images"][:s] if "images" in v else None,
            sample_labels=np.where(positions >= 0, v["slot_labels"][:s], -1).astype(np.int64),
            sample_probs=v["probs"][:s].astype(np.float64),
            sample_positions=positions,
            samples_per_class=self.samples_per_class,
            **self._mistakes_of(v),
            binary_threshold=self.threshold if self.binary else None,
            multi_hot_rows=int(round(float(v["multi_hot"]))),
            **self._multi_label_of(v, positions),
            calibration=_calibration_of(v),
        )

    def stand_in(self) -> EvaluationState | None:
        """A state shaped as a validation pass's will be (every sample slot and mistake filled, blank
        images, even probabilities, nothing counted): what the suite draws its figures on while the
        first epoch trains, so that the first epoch's pictures only fill them in. None before `attach`
        and for a multi-label head."""
        if not self._vars or self.multi_label:
            return None
        c, t, s, m, b = self.num_classes, self.num_thresholds, self.slots, self.mistakes, CALIBRATION_BINS
        shape = self._image_shape
        mistakes = {}
        if m:
            mistakes = dict(mistake_confidence=np.full(m, 0.5), mistake_labels=np.zeros(m, np.int64),
                            mistake_predicted=np.ones(m, np.int64), mistake_positions=np.arange(m),
                            mistake_images=None if shape is None else np.zeros((m, *shape), np.float32))
        return EvaluationState(
            confusion=np.zeros((c, c), np.int64), pos_hist=np.zeros((c, t), np.int64),
            neg_hist=np.zeros((c, t), np.int64),
            sample_images=None if shape is None else np.zeros((s, *shape), np.float32),
            sample_labels=np.arange(s) // self.samples_per_class % c, sample_probs=np.full((s, c), 1.0 / c),
            sample_positions=np.arange(s), samples_per_class=self.samples_per_class, **mistakes,
            binary_threshold=self.threshold if self.binary else None,
            calibration={"count": np.ones(b, np.int64), "confidence_sum": (np.arange(b) + 0.5) / b,
                         "correct": np.zeros(b, np.int64)})

    def _multi_label_of(self, v: dict, positions: np.ndarray) -> dict:
        """The multi-label fields of the state (none for other heads)."""
        if "ml_tp" not in v or self.binary:
            return {}
        tp, fp, fn = (np.rint(v[f"ml_{k}"]).astype(np.int64) for k in ("tp", "fp", "fn"))
        rows = int(round(float(v["ml_rows"])))
        cooc = v.get("ml_cooccurrence")
        counts = MultiLabelCounts(tp, fp, fn, rows - tp - fp - fn, count=rows,
                                  exact=int(round(float(v["ml_exact"]))), threshold=self.threshold,
                                  cooccurrence=None if cooc is None else np.rint(cooc).astype(np.int64))
        targets = np.rint(v["slot_targets"][: len(positions)]).astype(np.int64)
        return dict(multi_label=counts, sample_targets=np.where(positions[:, None] >= 0, targets, 0),
                    unreadable_target_rows=int(round(float(v["ml_unreadable"]))))

    def _mistakes_of(self, v: dict) -> dict:
        if self.mistakes == 0 or "mistake_labels" not in v:
            return {}
        m = self.mistakes
        labels = v["mistake_labels"][:m].astype(np.int64)
        return dict(
            mistake_confidence=np.where(labels >= 0, v["mistake_confidence"][:m], 0.0).astype(np.float64),
            mistake_labels=labels,
            mistake_predicted=np.where(labels >= 0, v["mistake_predicted"][:m], -1).astype(np.int64),
            mistake_positions=np.where(labels >= 0, v["mistake_positions"][:m], -1).astype(np.int64),
            mistake_images=v["mistake_images"][:m] if "mistake_images" in v else None,
        )

    # -- graph side ------------------------------------------------------
    def _create_variables(self, image_shape) -> None:
        if self._vars:
            return
        c, t, s = self.num_classes, self.num_thresholds, self.slots
        counts, local = _counts_variable, _local_variable
        # Slot / class index `s` / `c` is a dump that takes what is not kept.
        self._vars = {
            "confusion": counts("confusion", (c, c)),
            "pos_hist": counts("pos_hist", (c, t)),
            "score_hist": counts("score_hist", (c, t)),
            "multi_hot": counts("multi_hot", ()),
            "calibration": counts("calibration", (CALIBRATION_BINS, 3)),
            "class_seen": local("class_seen", tf.zeros((c + 1,), tf.int32)),
            "class_block": local("class_block", -tf.ones((c + 1,), tf.int32)),
            "blocks_used": local("blocks_used", tf.constant(0, tf.int32)),
            "seen": local("seen", tf.constant(0, tf.int32)),
            "positions": local("positions", -tf.ones((s + 1,), tf.int32)),
            "slot_labels": local("slot_labels", -tf.ones((s + 1,), tf.int32)),
            "probs": local("probs", tf.zeros((s + 1, c), tf.float32)),
        }
        if image_shape is not None:
            self._image_shape = tuple(image_shape)
            self._vars["images"] = local("images", tf.zeros((s + 1, *image_shape), tf.float32))
        if self.multi_label:
            self._vars.update(_multi_label_variables(c, s))
        if self.mistakes and not self.multi_label:  # no confident mistakes for a multi-label head
            m = self.mistakes
            self._vars.update({
                "mistake_confidence": local("mistake_confidence", -tf.ones((m,), tf.float32)),
                "mistake_labels": local("mistake_labels", -tf.ones((m,), tf.int32)),
                "mistake_predicted": local("mistake_predicted", -tf.ones((m,), tf.int32)),
                "mistake_positions": local("mistake_positions", -tf.ones((m,), tf.int32)),
            })
            if image_shape is not None:
                self._vars["mistake_images"] = local("mistake_images",
                                                     tf.zeros((m, *image_shape), tf.float32))
        variables = self._vars

        @tf.function(autograph=False)
        def read_all():
            return {k: tf.identity(var) for k, var in variables.items()}

        @tf.function(autograph=False)
        def reset_all():
            for name, var in variables.items():
                fill = -1 if name in _EMPTY_IS_MINUS_ONE else 0
                var.assign(tf.fill(var.shape, tf.cast(fill, var.dtype)))

        self._read_all, self._reset_all = read_all, reset_all

    def _cannot_read(self, key: str, why: str) -> None:
        """Nothing is captured from this model: say why, once (noted only, in a trace ahead)."""
        if getattr(self._tracing, "ahead", None) is None:
            self.unreadable = why
        self._warn_once(key, f"monitor: {why}; nothing captured")

    def _warn_once(self, key: str, message: str) -> None:
        ahead = getattr(self._tracing, "ahead", None)
        if ahead is not None:
            ahead.append(message)
            return
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    def _update(self, x, y, y_pred) -> None:
        c = self.num_classes
        matrix = tf.is_tensor(y_pred) and y_pred.shape.rank == 2
        binary = matrix and c == 2 and y_pred.shape[-1] == 1 and self.head in ("auto", "binary")
        if not binary and (not matrix or y_pred.shape[-1] != c or self.head == "binary"):
            width = 1 if self.head == "binary" else c
            self._cannot_read("output", f"model output {getattr(y_pred, 'shape', type(y_pred))} is not "
                              f"(batch, {width})")
            return
        self.binary = binary
        try:
            if binary:
                probs = binary_probabilities(y_pred, self._binary_logits)
                labels = binary_labels(y)
            elif self.multi_label:
                probs = sigmoid_probabilities(y_pred, self._binary_logits)
                targets, readable = multi_hot_targets(y, c)
            else:
                probs = _to_probabilities(tf.cast(y_pred, tf.float32), self._resolved_logits)
                labels, multi_hot = single_labels(y, c)
                self._vars["multi_hot"].assign_add(multi_hot)
        except (ValueError, TypeError) as err:  # targets of a form we cannot read
            self._cannot_read("labels", f"cannot read the targets ({err})")
            return
        if self.multi_label and not binary:
            self._update_multi_label(x, targets, readable, probs)
            return
        self._update_counts(labels, probs)
        images_ok = self._images_match(x)
        if self.mistakes and "mistake_labels" in self._vars:
            self._update_mistakes(x if images_ok else None, labels, probs)
        self._update_samples(x if images_ok else None, labels, probs)
        self._vars["seen"].assign_add(tf.shape(labels)[0])

    def _predicted(self, probs):
        """Class index per row: argmax, or for a binary head p(positive) >= threshold."""
        if self.binary:
            return tf.cast(probs[:, 1] >= self.threshold, tf.int32)
        return tf.argmax(probs, axis=-1, output_type=tf.int32)

    def _images_match(self, x) -> bool:
        if "images" in self._vars and (not tf.is_tensor(x) or tuple(x.shape[1:]) != self._image_shape):
            self._warn_once("input", f"monitor: model input {getattr(x, 'shape', type(x))} is not the "
                            f"(batch, {', '.join(map(str, self._image_shape))}) the model declares; "
                            "sample images are not captured")
            return False
        return "images" in self._vars

    def _update_mistakes(self, x, labels, probs) -> None:
        """Keep the `mistakes` most confident wrong predictions seen so far, with their images.

        The batch's own top M (padded to M, so shapes stay static under XLA) merge with
        the kept M by one top_k over 2M; top_k puts the lower index first on ties, so the
        kept (earlier) mistakes win ties, as in evaluation order.
        """
        v, m, c = self._vars, self.mistakes, self.num_classes
        valid = tf.logical_and(labels >= 0, labels < c)
        predicted = self._predicted(probs)
        confidence = tf.gather(probs, predicted, batch_dims=1)  # probability of the predicted class
        wrong = tf.logical_and(valid, tf.not_equal(predicted, labels))
        score = tf.where(wrong, confidence, -1.0)
        # Only a mistake more confident than the least kept one changes what is kept (on a tie the
        # kept one wins): most batches of a pass skip the merge and its images.
        beats_kept = tf.reduce_max(tf.concat([score, [-1.0]], 0)) > v["mistake_confidence"][m - 1]
        tf.cond(beats_kept, lambda: self._merge_mistakes(x, labels, predicted, score), lambda: None)

    def _merge_mistakes(self, x, labels, predicted, score) -> None:
        v, m = self._vars, self.mistakes
        n = tf.shape(labels)[0]
        score = tf.concat([score, -tf.ones([m], tf.float32)], axis=0)
        batch_score, batch_index = tf.math.top_k(score, k=m)  # indices >= n are padding (-1)
        batch_index = tf.minimum(batch_index, tf.maximum(n - 1, 0))
        is_mistake = batch_score >= 0.0
        merged_score, pick = tf.math.top_k(tf.concat([v["mistake_confidence"], batch_score], 0), k=m)

        def merge(kept, batch_values):
            return tf.gather(tf.concat([kept, batch_values], axis=0), pick)

        v["mistake_labels"].assign(merge(
            v["mistake_labels"], tf.where(is_mistake, tf.gather(labels, batch_index), -1)))
        v["mistake_predicted"].assign(merge(v["mistake_predicted"], tf.gather(predicted, batch_index)))
        v["mistake_positions"].assign(merge(v["mistake_positions"], v["seen"] + batch_index))
        if x is not None and "mistake_images" in v:
            images = tf.gather(tf.cast(x, tf.float32), batch_index)
            v["mistake_images"].assign(merge(v["mistake_images"], images))
        v["mistake_confidence"].assign(merged_score)

    def _update_counts(self, labels, probs) -> None:
        c = self.num_classes
        v = self._vars
        valid = tf.logical_and(labels >= 0, labels < c)
        safe = tf.where(valid, labels, 0)
        weight = tf.cast(valid, tf.float32)
        predicted = self._predicted(probs)
        _scatter_add(v["confusion"], tf.stack([safe, predicted], axis=1), weight)
        buckets = self._buckets(probs)
        true_bucket = tf.gather(buckets, safe, batch_dims=1)
        _scatter_add(v["pos_hist"], tf.stack([safe, true_bucket], axis=1), weight)
        self._add_scores(v["score_hist"], buckets, valid[:, None])
        _add_calibration(v["calibration"], probs, predicted, labels, valid)

    def _buckets(self, probs):
        """(N, C) int32 PR-histogram bucket of every score, floor(p * (T - 1))."""
        t = self.num_thresholds
        return tf.clip_by_value(tf.cast(tf.floor(probs * (t - 1)), tf.int32), 0, t - 1)

    def _add_scores(self, hist, buckets, counted) -> None:
        """Add every (sample, class) score where `counted` ((N, C) or (N, 1)) to `hist` (C, T): one flat-index
        bincount over class * T + bucket; cells not counted point past the end, which the
        bincount skips (a weighted bincount would be several times slower)."""
        c, t = self.num_classes, self.num_thresholds
        flat = buckets + tf.range(c, dtype=tf.int32)[None, :] * t
        flat = tf.reshape(tf.where(counted, flat, c * t), [-1])
        hist.assign_add(tf.reshape(_bincount(flat, c * t), [c, t]))

    def _update_multi_label(self, x, targets, readable, probs) -> None:
        """Per-label counts at the threshold, PR histograms, the missed x added co-occurrence and
        the sample slots (by each row's first label) of one multi-label batch: O(N*C), and
        O(N*C^2) for the co-occurrence."""
        v, c = self._vars, self.num_classes
        truth, predicted = targets > 0.5, probs >= self.threshold  # unreadable rows: all-zero truth
        row = tf.cast(readable, tf.float32)[:, None]

        def rows_where(mask):  # (N, C) float: 1 where mask holds on a readable row
            return tf.cast(mask, tf.float32) * row

        missed = rows_where(tf.logical_and(truth, tf.logical_not(predicted)))
        added = rows_where(tf.logical_and(tf.logical_not(truth), predicted))
        v["ml_tp"].assign_add(tf.reduce_sum(rows_where(tf.logical_and(truth, predicted)), axis=0))
        v["ml_fp"].assign_add(tf.reduce_sum(added, axis=0))
        v["ml_fn"].assign_add(tf.reduce_sum(missed, axis=0))
        v["ml_rows"].assign_add(tf.reduce_sum(row))
        v["ml_unreadable"].assign_add(tf.reduce_sum(1.0 - row))
        exact = tf.logical_and(readable, tf.reduce_all(tf.equal(truth, predicted), axis=1))
        v["ml_exact"].assign_add(tf.reduce_sum(tf.cast(exact, tf.float32)))
        if "ml_cooccurrence" in v:
            v["ml_cooccurrence"].assign_add(tf.matmul(missed, added, transpose_a=True))
        buckets = self._buckets(probs)
        self._add_scores(v["pos_hist"], buckets, tf.logical_and(truth, readable[:, None]))
        self._add_scores(v["score_hist"], buckets, readable[:, None])
        first = tf.reduce_min(tf.where(truth, tf.range(c, dtype=tf.int32)[None, :], c), axis=1)
        first = tf.where(tf.logical_and(readable, first < c), first, -1)  # no label: not shown
        images_ok = self._images_match(x)
        self._update_samples(x if images_ok else None, first, probs, targets)
        v["seen"].assign_add(tf.shape(first)[0])

    def _update_samples(self, x, labels, probs, targets=None) -> None:
        v = self._vars
        if "images" in v and x is None:
            return
        # Slots are filled once, in evaluation order: once none is empty no batch changes them,
        # so most batches of a pass skip this.
        empty_slots = tf.reduce_any(v["positions"][: self.slots] < 0)
        tf.cond(empty_slots, lambda: self._fill_samples(x, labels, probs, targets), lambda: None)

    def _fill_samples(self, x, labels, probs, targets=None) -> None:
        v = self._vars
        c, k, s = self.num_classes, self.samples_per_class, self.slots
        n = tf.shape(labels)[0]
        valid = tf.logical_and(labels >= 0, labels < c)
        cls = tf.where(valid, labels, c)  # invalid labels go to the dump class
        index = tf.range(n, dtype=tf.int32)
        # rank of each image among the images of its class earlier in this batch
        order = tf.argsort(cls, stable=True)
        sorted_cls = tf.gather(cls, order)
        first = tf.math.unsorted_segment_min(index, sorted_cls, c + 1)
        rank_sorted = index - tf.gather(first, sorted_cls)
        rank_in_batch = tf.scatter_nd(order[:, None], rank_sorted, [n])
        rank = tf.gather(v["class_seen"], cls) + rank_in_batch
        # classes never seen before get the next free blocks, in evaluation order
        old_block = tf.gather(v["class_block"], cls)
        is_new = tf.logical_and(valid, tf.logical_and(old_block < 0, rank == 0))
        new_id = v["blocks_used"] + tf.cumsum(tf.cast(is_new, tf.int32), exclusive=True)
        assigned = tf.logical_and(is_new, new_id < self.blocks)
        class_block = tf.tensor_scatter_nd_update(  # the dump class `c` keeps -1
            v["class_block"], tf.where(assigned, cls, c)[:, None], tf.where(assigned, new_id, -1))
        block = tf.gather(class_block, cls)
        keep = tf.logical_and(valid, tf.logical_and(block >= 0, rank < k))
        slot = tf.where(keep, block * k + rank, s)[:, None]

        v["class_block"].assign(class_block)
        v["blocks_used"].assign_add(tf.reduce_sum(tf.cast(assigned, tf.int32)))
        v["probs"].assign(tf.tensor_scatter_nd_update(v["probs"], slot, probs))
        if targets is not None:  # a multi-label row's multi-hot truth
            v["slot_targets"].assign(tf.tensor_scatter_nd_update(v["slot_targets"], slot, targets))
        v["positions"].assign(tf.tensor_scatter_nd_update(v["positions"], slot, v["seen"] + index))
        v["slot_labels"].assign(tf.tensor_scatter_nd_update(v["slot_labels"], slot, cls))
        if "images" in v:
            v["images"].assign(tf.tensor_scatter_nd_update(v["images"], slot, tf.cast(x, tf.float32)))
        v["class_seen"].assign_add(tf.math.unsorted_segment_sum(tf.ones_like(cls), cls, c + 1))


def _add_calibration(var, probs, predicted, labels, valid) -> None:
    """Per confidence bin: images, the sum of their confidences (the predicted class's
    probability) and how many were right: one (N, 3) segment sum, O(N)."""
    b = CALIBRATION_BINS
    confidence = tf.gather(probs, predicted, batch_dims=1)
    index = tf.clip_by_value(tf.cast(tf.floor(confidence * b), tf.int32), 0, b - 1)
    index = tf.where(valid, index, b)  # rows without a readable label go to a dump bin
    right = tf.cast(tf.equal(predicted, labels), tf.float32)
    rows = tf.stack([tf.ones_like(confidence), confidence, right], axis=1)
    var.assign_add(tf.math.unsorted_segment_sum(rows, index, b + 1)[:b])


def _calibration_of(v: dict) -> dict | None:
    if "calibration" not in v or "ml_tp" in v:
        return None
    table = v["calibration"].astype(np.float64)
    return {"count": np.rint(table[:, 0]).astype(np.int64), "confidence_sum": table[:, 1],
            "correct": np.rint(table[:, 2]).astype(np.int64)}


def _counts_variable(name, shape):
    """Counts summed over replicas and workers when read."""
    return tf.Variable(tf.zeros(shape, tf.float32), trainable=False, name=f"monitor_{name}",
                       synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.SUM)


def _local_variable(name, value):
    """One replica's own bookkeeping, read from the first replica."""
    return tf.Variable(value, trainable=False, name=f"monitor_{name}",
                       synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def _multi_label_variables(c: int, s: int) -> dict:
    """A multi-label head's per-label counts, rows, exact rows, unreadable target rows, the
    missed x added co-occurrence (up to MULTILABEL_COOCCURRENCE_MAX labels) and each slot's truth."""
    out = {f"ml_{k}": _counts_variable(f"ml_{k}", (c,)) for k in ("tp", "fp", "fn")}
    out |= {f"ml_{k}": _counts_variable(f"ml_{k}", ()) for k in ("rows", "exact", "unreadable")}
    if c <= MULTILABEL_COOCCURRENCE_MAX:
        out["ml_cooccurrence"] = _counts_variable("ml_cooccurrence", (c, c))
    out["slot_targets"] = _local_variable("slot_targets", tf.zeros((s + 1, c), tf.float32))
    return out


def _bincount(flat, size: int):
    """Counts of each value in [0, size) of an int32 vector; values >= size are skipped.

    A flat-index DenseBincount: O(N*C), ~7x cheaper than an N*C-entry scatter when XLA is off
    (Keras' default on CPU); its constant `size` also compiles under XLA, where
    `tf.math.bincount`'s data-dependent output size does not.
    """
    return tf.raw_ops.DenseBincount(input=flat, size=size, weights=tf.zeros([0], tf.float32),
                                    binary_output=False)


_EMPTY_IS_MINUS_ONE = {"class_block", "positions", "slot_labels", "mistake_confidence", "mistake_labels",
                       "mistake_predicted", "mistake_positions"}


def _scatter_add(var, indices, updates) -> None:
    """Add `updates` at `indices` of this replica's copy of `var`, in place: O(len(updates)).

    `var.handle` is the replica-local variable inside a `tf.distribute` replica
    function (ON_READ variables have no scatter methods of their own), and the
    variable itself elsewhere.
    """
    tf.raw_ops.ResourceScatterNdAdd(ref=var.handle, indices=indices, updates=updates)


def _output_units(model, index: int | None = None) -> int | None:
    """The last dimension of a built model's output `index` (None: its only output), else None
    (unknown yet)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or (index is None and len(outputs) != 1) or (index is not None and index >= len(outputs)):
        return None
    units = outputs[0 if index is None else index].shape[-1]
    return int(units) if units is not None else None


def _output_names(model) -> list[str]:
    """The names of a built model's outputs (one per output), else [] (unknown yet)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return []
    names = getattr(model, "output_names", None)
    if not isinstance(names, list | tuple) or len(names) != len(outputs or []):
        names = [str(i) for i in range(len(outputs or []))]
    return [str(n) for n in names]


def _input_image_shape(model) -> tuple[int, ...] | None:
    """(H, W, Ch) of a single fully known image input, else None (no sample images)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    shape = tuple(inputs[0].shape[1:])
    if len(shape) not in (2, 3) or any(d is None for d in shape):
        return None
    return tuple(int(d) for d in shape)


def _head_loss(model, name: str | None, index: int | None):
    """The compiled loss of the monitored head: the model's loss, or its entry for that head
    when the model has one loss per output (a dict keyed by output name, or a list)."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict):
        return loss.get(name)
    if isinstance(loss, list | tuple):
        return loss[index] if index is not None and index < len(loss) else None
    return loss


def _loss_from_logits(loss) -> bool | None:
    """`from_logits` of a compiled loss where Keras tells it, else None (detect per batch)."""
    value = getattr(loss, "from_logits", None)
    if value is None and loss is not None and hasattr(loss, "get_config"):
        value = loss.get_config().get("from_logits")
    return value if isinstance(value, bool) else None


def _to_probabilities(y_pred, from_logits: bool | None):
    if from_logits is True:
        return tf.nn.softmax(y_pred, axis=-1)
    if from_logits is False:
        return y_pred
    # Unknown: rows that already are distributions stay, anything else is logits.
    is_dist = tf.logical_and(
        tf.reduce_all(y_pred >= 0.0, axis=-1),
        tf.abs(tf.reduce_sum(y_pred, axis=-1) - 1.0) < DISTRIBUTION_TOLERANCE,
    )
    return tf.where(is_dist[:, None], y_pred, tf.nn.softmax(y_pred, axis=-1))


def _loss_arguments(args, kwargs) -> tuple:
    """(y, y_pred) of a `compute_loss(x, y, y_pred, sample_weight, training)` call."""
    named = dict(zip(("x", "y", "y_pred"), args, strict=False)) | kwargs
    return named.get("y"), named.get("y_pred")
