"""The GIL handed back sooner while the suite's own Python runs beside Keras' training loop.

A thread that holds CPython's GIL keeps it for up to `sys.getswitchinterval()` (5 ms by default)
after another thread has asked for it. Keras' training loop runs Python between its steps, so while
a thread of the suite runs Python (tracing ahead as the first epoch trains, preparing an epoch's
summaries), each time the training thread wants the GIL back it could wait up to 5 ms.
`quick_handover()` lowers the interval to `HANDOVER_S` while any such work runs, and puts back the
value it found when the last of them ends (unless someone changed it meanwhile: then it is theirs).
The interval is one setting of the whole interpreter, so the count of users is kept here, once.

Measured (`bench/short_epochs.py`, against the commit before, interleaved): the training thread's
GIL waits 24.8 -> 18.2 ms per epoch at 10 classes and 44.5 -> 36.1 at 1,000; no effect seen at 100.
The rest is spent in calls into TensorFlow's C++ that keep the GIL while they run (graph building):
no interval interrupts a thread there.

```python
with quick_handover():
    trace_validation_ahead(model)  # on a background thread, while the first epoch trains
```
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

HANDOVER_S = 0.0005  # the switch interval while the suite's Python runs beside training (default 0.005)


class _Handover:
    """The count of the suite's threads running Python beside training, and the interval found."""

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._found: float | None = None
        self._set: float | None = None

    @contextmanager
    def quick(self):
        with self._lock:
            if self._users == 0:
                self._found, self._set = sys.getswitchinterval(), None
                if self._found > HANDOVER_S:  # a smaller one (the user's) is left as it is
                    sys.setswitchinterval(HANDOVER_S)
                    self._set = sys.getswitchinterval()  # as CPython keeps it (whole microseconds)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._set is not None and sys.getswitchinterval() == self._set:
                    sys.setswitchinterval(self._found)


quick_handover = _Handover().quick
