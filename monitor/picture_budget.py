"""Which epochs get pictures: the suite's drawing stays within a share of the machine's CPU.

Every epoch's numbers (scalars, counts, texts, the dashboard's data) are always written; only the
pictures (TensorBoard images) are drawn, or not, per epoch. The first and the last epoch of a `fit`
always get theirs. Any other epoch gets them when the pictures of the epochs before are drawn and
the CPU seconds spent drawing them, plus what one more epoch of pictures costs on average, stay
within `share` of the CPU that training left idle since it began: the machine's cores times the
seconds, less the CPU the training process used meanwhile (`process_time`; without it, all of the
cores times the seconds). On a machine whose cores training leaves idle (a GPU does the work) that
is every epoch; where training keeps the cores busy and epochs last seconds, it is every few epochs.

Why the idle CPU and not all of it: on the 2-core machine this was built on, a plain `fit` of the
short-epoch benchmark used about 1.1 of its 2 cores, and pictures drawn within 5% of both cores
(0.39 CPU s per 3-4 s epoch) lengthened the training phases by 1.13x
(`bench/results/short_epochs_10_stop29.md`): a CPU second drawn there cost training more than a
second, not the share the budget promised.

```python
budget = PictureBudget(0.05)
budget.start(time.monotonic(), time.process_time())
budget.due(epoch, last=False, spent_cpu_s=drawing.picture_cpu_seconds, now=time.monotonic(),
           cpu_now=time.process_time())
```
"""

from __future__ import annotations

import os

PICTURE_BUDGET = 0.05  # the default share of the machine's CPU the pictures may take


def available_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class PictureBudget:
    """Decides once per epoch whether its pictures are drawn; see the module docstring.

    `share` 0 draws every epoch. `drawn` and `skipped` list the epochs decided so far.
    """

    def __init__(self, share: float = PICTURE_BUDGET, cores: int | None = None):
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"Invalid value for argument `share`. Received: share={share!r}")
        self.share = float(share)
        self.cores = cores or available_cores()
        self.started: float | None = None
        self.started_cpu: float | None = None  # the training process's CPU seconds at the start
        self.decided: dict[int, bool] = {}
        self._first_pending = True

    def start(self, now: float, cpu_now: float | None = None) -> None:
        """Training begins (again) at `now` (and the training process's `cpu_now`): the first epoch
        decided from here on is drawn."""
        self.started, self.started_cpu = now, cpu_now
        self._first_pending = True

    @property
    def drawn(self) -> list[int]:
        return sorted(e for e, d in self.decided.items() if d)

    @property
    def skipped(self) -> list[int]:
        return sorted(e for e, d in self.decided.items() if not d)

    def due(self, epoch: int, *, last: bool, spent_cpu_s: float, now: float, behind: bool = False,
            cpu_now: float | None = None) -> bool:
        """Whether `epoch` gets its pictures (asked again for the same epoch: the same answer).
        `spent_cpu_s`: what the pictures drawn so far cost; `behind`: an earlier epoch's pictures
        are still being drawn (their cost is not known yet, and drawing cannot keep up);
        `cpu_now`: the training process's CPU seconds now (None: counted as idle)."""
        if epoch in self.decided:
            return self.decided[epoch]
        if self.started is None:
            self.start(now, cpu_now)
        first, self._first_pending = self._first_pending, False
        drawn = len(self.drawn)
        if self.share == 0 or first or last or drawn == 0:
            answer = True
        elif behind:
            answer = False
        else:
            per_epoch = spent_cpu_s / drawn  # what one epoch of pictures has cost, on average
            answer = spent_cpu_s + per_epoch <= self.share * self.idle_cpu_seconds(now, cpu_now)
        self.decided[epoch] = answer
        return answer

    def idle_cpu_seconds(self, now: float, cpu_now: float | None = None) -> float:
        """The CPU seconds training left idle since it began: the cores times the seconds, less the
        training process's CPU meanwhile (when both CPU readings are known)."""
        available = self.cores * max(0.0, now - self.started)
        if cpu_now is None or self.started_cpu is None:
            return available
        return max(0.0, available - (cpu_now - self.started_cpu))
