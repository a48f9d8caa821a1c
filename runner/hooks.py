"""RunHooks: the seam through which tests reach into a run (fault injection); empty in use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunHooks:
    """Extra behaviour a caller (a test) injects into `runner.training.run`.

    - `before_commit(done)`: runs on the writer thread after epoch `done`'s summaries are on
      disk and just before its backup is committed (the hardest moment for a kill).
    - `callbacks`: extra Keras callbacks appended after the run's own.
    """

    before_commit: Callable[[int], None] | None = None
    callbacks: tuple = field(default_factory=tuple)


NONE = RunHooks()
