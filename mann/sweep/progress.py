"""How executors report back to the sweep: one callback, ``emit(kind, cell_id, payload)``.

  ("start", id, None)            the cell began
  ("step", id, (step, steps))    training progress (throttled to a few per second)
  ("retry", id, line)            the cell's worker or node was lost and it starts again (Ray);
                                 ``line`` says which attempt and from which step, for the user
  ("done", id, CellResult)       the cell finished or failed; its row is in the result

The caller (the sweep) draws the bars and stores the rows, always in the driver
process, so only one process ever writes the result store.
"""

from __future__ import annotations

import time
from typing import Callable

Emit = Callable[[str, str, object], None]
STEP_EVERY_S = 0.25


class Throttle:
    """Calls ``emit('step', ...)`` at most every STEP_EVERY_S seconds, and always for the first and last step."""

    def __init__(self, cell_id: str, emit: Emit):
        self.cell_id, self.emit, self.last = cell_id, emit, 0.0

    def __call__(self, step: int, steps: int) -> None:
        now = time.monotonic()
        if step in (0, steps) or now - self.last >= STEP_EVERY_S:
            self.last = now
            self.emit("step", self.cell_id, (step, steps))
