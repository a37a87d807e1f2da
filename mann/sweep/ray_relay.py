"""The one actor between a sweep's Ray tasks and its driver, on the driver's node.

Tasks cannot call the driver, and on a cluster they cannot write its disk; they call
this actor instead, and the driver takes what arrived every fraction of a second. It
also holds, for each unfinished cell, the newest copy of each of its run folder's files
(seeded from the driver's run folder, then replaced by what the cell's task sends), so
that a task Ray starts again after losing its node resumes from the last checkpoint
that left the lost one.

Each start of a cell's task is numbered; only the newest attempt is heard. An older one
still running (a node Ray gave up on that was only slow) is told so and stops, instead
of overwriting its successor's files.

Plain Python: the executor makes it an actor (``ray.remote(CellRelay)``), so this module
needs neither Ray nor torch.
"""

from __future__ import annotations


class CellRelay:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []  # for the driver, in the order they arrived
        self.files: dict[str, dict[str, bytes]] = {}  # cell id → name → newest contents
        self.attempts: dict[str, int] = {}

    def seed(self, cell_id: str, files: dict[str, bytes]) -> None:
        """The run folder's files as the driver holds them before the cell's first task starts."""
        self.files[cell_id] = dict(files)

    def start(self, cell_id: str, host: str) -> tuple[int, dict[str, bytes]]:
        """A task of the cell begins: its attempt number and the files to start from."""
        attempt = self.attempts.get(cell_id, 0) + 1
        self.attempts[cell_id] = attempt
        self.events.append(("start", cell_id, {"attempt": attempt, "host": host}))
        return attempt, dict(self.files.get(cell_id, {}))

    def step(self, cell_id: str, attempt: int, step: int, steps: int) -> None:
        if attempt == self.attempts.get(cell_id):
            self.events.append(("step", cell_id, (step, steps)))

    def send(self, cell_id: str, attempt: int, files: dict[str, bytes]) -> bool:
        """Files the task wrote since its last send; False (and dropped) from an attempt that is not the newest."""
        if attempt != self.attempts.get(cell_id):
            return False
        self.files.setdefault(cell_id, {}).update(files)
        self.events.append(("files", cell_id, files))
        return True

    def take(self) -> list[tuple[str, str, object]]:
        """Everything that arrived since the last take, oldest first."""
        events, self.events = self.events, []
        return events

    def forget(self, cell_id: str) -> None:
        """The cell is finished: its files need not be kept for a retry."""
        self.files.pop(cell_id, None)
