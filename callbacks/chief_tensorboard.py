"""ChiefTensorBoard: Keras' TensorBoard callback that writes on the chief worker only."""

from __future__ import annotations

import shutil
import tempfile

import keras

from monitor import summaries
from monitor.distribution import model_is_chief


class ChiefTensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard`, except that under multi-worker training
    only the chief writes into `log_dir`.

    Keras' callback writes on every worker; here other workers write into a
    temporary directory removed when `fit` ends, as Keras' multi-worker
    checkpointing does.

    One more difference: with `update_freq="epoch"`, no profiling and no steps per second,
    Keras' batch hooks write nothing, yet run after every step (a `tf.summary.scalar` call per
    metric, each a no-op without a default writer), and a callback without batch hooks of its own
    keeps Keras' asynchronous dispatch on backends that have it. Here they are left out, and the
    training graph is written at the end of the first epoch instead of after its first batch.
    And the weight histograms are bucketed with numpy (`monitor.histograms`: the same tags and
    data as `tf.summary.histogram`, several times cheaper on the training thread).

    ```python
    model.fit(x, y, callbacks=[ChiefTensorBoard("logs/run1", histogram_freq=1)])
    ```
    """

    def __init__(self, log_dir="logs", **kwargs):
        super().__init__(log_dir=log_dir, **kwargs)
        self._chief_log_dir = self.log_dir
        self._scratch_dir: str | None = None
        if self.update_freq == "epoch" and not self._should_trace and not self.write_steps_per_second:
            base = keras.callbacks.Callback
            for hook in ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin"):
                setattr(self, hook, getattr(base, hook).__get__(self))  # Keras' default no-op

    def on_epoch_end(self, epoch, logs=None):
        if getattr(self, "_should_write_train_graph", False):  # after the first epoch, not its first batch
            self._write_keras_model_train_graph()
            self._should_write_train_graph = False
        super().on_epoch_end(epoch, logs)

    def _log_weights(self, epoch):
        if self.write_images:  # Keras' own path draws the weight images too
            super()._log_weights(epoch)
            return
        with self._train_writer.as_default():
            for layer in self.model.layers:
                for weight in layer.weights:
                    name = f"{weight.path.replace(':', '_')}/histogram"
                    summaries.histogram(name, keras.ops.convert_to_numpy(weight), step=epoch)
            self._train_writer.flush()

    def set_model(self, model):
        self.log_dir = self._chief_log_dir
        if not model_is_chief(model):
            self._scratch_dir = self._scratch_dir or tempfile.mkdtemp(prefix="monitor-worker-")
            self.log_dir = self._scratch_dir
        super().set_model(model)

    def flush_writers(self) -> None:
        """Put what Keras' writers buffer (up to 2 minutes by default) on disk now."""
        for writer in list(getattr(self, "_writers", {}).values()):
            writer.flush()

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
            self._scratch_dir = None
