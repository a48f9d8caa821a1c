"""ChiefTensorBoard: Keras' TensorBoard callback that writes on the chief worker only."""

from __future__ import annotations

import shutil
import tempfile

import keras

from monitor.distribution import model_is_chief


class ChiefTensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard`, except that under multi-worker training
    only the chief writes into `log_dir`.

    Keras' callback writes on every worker; here other workers write into a
    temporary directory removed when `fit` ends, as Keras' multi-worker
    checkpointing does. Under one process it is Keras' callback unchanged.

    ```python
    model.fit(x, y, callbacks=[ChiefTensorBoard("logs/run1", histogram_freq=1)])
    ```
    """

    def __init__(self, log_dir="logs", **kwargs):
        super().__init__(log_dir=log_dir, **kwargs)
        self._chief_log_dir = self.log_dir
        self._scratch_dir: str | None = None

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
