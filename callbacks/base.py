"""Shared glue of the suite's per-epoch callbacks."""

from __future__ import annotations

import time

import keras

from callbacks.validation_capture import ValidationCaptureCallback
from monitor.capture import EvaluationState
from monitor.distribution import model_is_chief
from monitor.limits import ANNOTATE_MAX_CLASSES
from monitor.runfiles import SUITE_DIR
from monitor.settings import SuiteOptions, check_option
from monitor.writers import SummaryWriters

DEFAULTS = SuiteOptions()


class ValidationSummaryCallback(keras.callbacks.Callback):
    """Reads the validation state at epoch end and hands writing to `SummaryWriters`.

    Subclasses implement `write(epoch, state)`, called every `every_n_epochs`
    epochs (counting from the first) that had a validation pass; it runs on the
    training thread and should only snapshot numbers and `submit` work. Those whose
    pictures cost most to build the first time also give a `rehearsal(epoch, state)`: those pictures
    drawn on stand-in data while the first epoch trains.
    Only the chief worker writes. Whatever fails in here is warned about once
    and turns the suite's writing off; it never reaches `fit`.
    """

    def __init__(self, source: ValidationCaptureCallback, writers: SummaryWriters,
                 every_n_epochs: int = DEFAULTS.every_n_epochs,
                 epochs_per_tag: int = DEFAULTS.epochs_per_tag):
        super().__init__()
        check_option("every_n_epochs", every_n_epochs)
        check_option("epochs_per_tag", epochs_per_tag)
        self.source = source
        self.writers = writers
        self.every_n_epochs = every_n_epochs
        self.epochs_per_tag = epochs_per_tag
        self.seconds_on_training_thread = 0.0
        self._pictures = True  # whether the epoch being written gets its pictures (the picture budget)
        self._rehearsed = False  # this fit's first pictures drawn on stand-in data (`rehearsal`)

    def on_train_begin(self, logs=None):
        self._rehearsed = False
        try:
            if not model_is_chief(self.model):
                self.writers.writing = False
            self.writers.prepare()
        except Exception as err:  # noqa: BLE001
            self.writers.fail("cannot tell whether this worker is the chief", err)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch and (self.params or {}).get("epochs") == epoch + 1:  # a 1-epoch fit: at its end (`drain`)
            self.writers.expect_the_end()
        if self._rehearsed or epoch % self.every_n_epochs:
            return
        self._rehearsed = True
        if type(self).rehearsal is ValidationSummaryCallback.rehearsal:
            return  # nothing to rehearse: no stand-in made
        start = time.perf_counter()
        try:
            capture = self.source.capture
            # Above ANNOTATE_MAX_CLASSES nothing is rehearsed: the large heatmap's first picture gains
            # nothing (it draws its most-confused classes' names), and the drawing process's warm-up,
            # which a rehearsal replaces, warms what it draws (measured: 0.3 s of it moved to the
            # second epoch at 100 classes).
            state = capture.stand_in() if capture.num_classes <= ANNOTATE_MAX_CLASSES else None
            draw = None if state is None else self.rehearsal(epoch, state)
            if draw is not None:
                self.writers.rehearse(draw, lane=self)
        except Exception:  # noqa: BLE001 - a rehearsal only; the epoch's end says what fails
            pass
        self.seconds_on_training_thread += time.perf_counter() - start

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every_n_epochs or not self.writers.active:
            return
        start = time.perf_counter()
        try:
            state = self.source.state_for(epoch)
            if state is not None:
                total, due = (self.params or {}).get("epochs"), getattr(self.writers, "pictures_due", None)
                self._pictures = due is None or due(epoch, last=total is None or epoch + 1 >= total)
                self.write(epoch, state)
        except Exception as err:  # noqa: BLE001 - the suite must never stop training
            self.writers.fail(f"{type(self).__name__} at epoch {epoch + 1}", err)
        self.seconds_on_training_thread += time.perf_counter() - start

    def on_train_end(self, logs=None):
        self.writers.flush()

    def renderer(self, factory, *args, **kwargs):
        """`factory(*args, **kwargs)`, a renderer of `monitor.render`, drawing in the suite's drawing
        process (`monitor.drawing`): call its `render*` methods on the background thread."""
        drawing = getattr(self.writers, "drawing", None)
        return factory(*args, **kwargs) if drawing is None else drawing.renderer(factory, *args, **kwargs)

    def drawn(self, fn, picture: bool = True):
        """`fn`, a picture function of `monitor.render` (arrays in, PNG out), run in the drawing process
        (`picture=False`: data, such as the dashboard's thumbnails, drawn in every epoch)."""
        drawing = getattr(self.writers, "drawing", None)
        return fn if drawing is None else drawing.function(fn, picture=picture)

    def submit(self, work, what: str | None = None) -> None:
        """Queue `work` for the background thread, writing into the suite's directory; in an epoch
        whose pictures the budget skips, every picture it asks for is None (`summaries.png_image`
        writes nothing for it)."""
        drawing = getattr(self.writers, "drawing", None)
        if not self._pictures and drawing is not None:
            work = drawing.without_pictures(work)
        self.writers.submit(SUITE_DIR, work, what=what or f"{type(self).__name__} rendering/writing",
                            pictures=self._pictures, lane=self)

    def epoch_title(self, epoch: int) -> str:
        total = (self.params or {}).get("epochs")
        return f"epoch {epoch + 1}/{total}" if total else f"epoch {epoch + 1}"

    def write(self, epoch: int, state: EvaluationState) -> None:
        raise NotImplementedError

    def rehearsal(self, epoch: int, state: EvaluationState):
        """A function that draws some of `epoch`'s pictures from `state`, a stand-in of the capture's
        (`EvaluationCapture.stand_in`: shaped as a validation pass's, nothing counted), and returns
        them, writing nothing; None: nothing to rehearse. Called as the first epoch begins and run on
        the background thread (`SummaryWriters.rehearse`), so that the drawing process builds those
        figures while the epoch trains and the first real pictures only fill them in: worth it for a
        picture whose figure costs far more to build than to fill in (a heatmap, a diagram), not for
        one whose cost is its texts (a grid of titled images)."""
        return None
