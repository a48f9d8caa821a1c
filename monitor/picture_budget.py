"""Which epochs get pictures: the suite's drawing stays within a share of the machine's CPU.

Every epoch's numbers (scalars, counts, texts, the dashboard's data) are always written; only the
pictures (TensorBoard images) are drawn, or not, per epoch. The first and the last epoch of a `fit`
always get theirs. Any other epoch gets them when the pictures of the epochs before are drawn and
the CPU seconds spent drawing them, plus what one more epoch of pictures costs on average, stay
within `share` of the CPU the machine had since training began (its cores times the seconds). On a
machine whose cores training leaves idle (a GPU does the work) that is every epoch; where training
keeps every core busy and epochs last seconds, it is every few epochs, so that drawing costs
training about `share` at most.

```python
budget = PictureBudget(0.05)
budget.start(time.monotonic())
budget.due(epoch, last=False, spent_cpu_s=drawing.picture_cpu_seconds, now=time.monotonic())
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
        self.decided: dict[int, bool] = {}
        self._first_pending = True

    def start(self, now: float) -> None:
        """Training begins (again): the first epoch decided from here on is drawn."""
        self.started = now
        self._first_pending = True

    @property
    def drawn(self) -> list[int]:
        return sorted(e for e, d in self.decided.items() if d)

    @property
    def skipped(self) -> list[int]:
        return sorted(e for e, d in self.decided.items() if not d)

    def due(self, epoch: int, *, last: bool, spent_cpu_s: float, now: float, behind: bool = False) -> bool:
        """Whether `epoch` gets its pictures (asked again for the same epoch: the same answer).
        `spent_cpu_s`: what the pictures drawn so far cost; `behind`: an earlier epoch's pictures
        are still being drawn (their cost is not known yet, and drawing cannot keep up)."""
        if epoch in self.decided:
            return self.decided[epoch]
        if self.started is None:
            self.start(now)
        first, self._first_pending = self._first_pending, False
        drawn = len(self.drawn)
        if self.share == 0 or first or last or drawn == 0:
            answer = True
        elif behind:
            answer = False
        else:
            per_epoch = spent_cpu_s / drawn  # what one epoch of pictures has cost, on average
            allowance = self.share * self.cores * max(0.0, now - self.started)
            answer = spent_cpu_s + per_epoch <= allowance
        self.decided[epoch] = answer
        return answer
