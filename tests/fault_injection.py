"""train.py with a fault injected through the run's test seam, `runner.hooks.RunHooks`.

    python tests/fault_injection.py kill-before-commit:N  <train.py flags>

`kill-before-commit:N` SIGKILLs this process after epoch N's summaries are on disk and before
its backup is committed, the hardest moment for a resume. Meanwhile the training thread waits
at the end of epoch N, so nothing of epoch N+1 reaches the disk first, whatever the writer
thread still has queued. The product reads no environment variable for this: only this script
(a test's) passes the hooks.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train  # noqa: E402  (sets TensorFlow's log level before Keras loads)


def kill_before_commit(at: int):
    import keras

    from runner.hooks import RunHooks

    def kill(done: int) -> None:  # the backup's before_commit, on the writer thread
        if done == at:
            os.kill(os.getpid(), signal.SIGKILL)

    class Hold(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == at:
                threading.Event().wait(600)  # the writer thread kills the process meanwhile

    return RunHooks(before_commit=kill, callbacks=(Hold(),))


FAULTS = {"kill-before-commit": kill_before_commit}


def main(argv: list[str]) -> int:
    fault, *train_argv = argv
    name, _, epoch = fault.partition(":")
    return train.main(train_argv, hooks=FAULTS[name](int(epoch)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
