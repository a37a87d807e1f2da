"""Running a sweep: train every cell of an N × K × hidden (× seed ...) grid, resumably.

Each cell trains in its own run folder ``runs/<name>/<cell id>/`` (checkpoints and
log, so an interrupted cell continues mid-way) and, once finished, adds one row
to the result store ``results/<name>/`` (see :mod:`mann.sweep.store`). Rerunning
the same command skips finished cells and retries failed ones. Every check on
the grid, the data and the results folder happens before the first cell runs.
"""

from __future__ import annotations

import platform
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from episodes.errors import UsageError
from episodes.files import ensure_writable_dir
from episodes.layout import PARTS, check_episode_shape
from episodes.omniglot import OmniglotStore
from episodes.splits import split_indices
from mann.provenance import wall_clock_start
from mann.stats import format_ci
from mann.sweep.carry import CheckpointMirror, restore
from mann.sweep.cell_runner import CellResult
from mann.sweep.executors import SerialExecutor
from mann.sweep.grid import Cell, SweepSpec, expand, start_order
from mann.sweep.store import ResultStore


@dataclass(frozen=True)
class SweepOutcome:
    """What one invocation did: cells run now, skipped as already finished, failed now; its wall time."""

    folder: Path
    cells: int
    ran: int
    skipped: int
    failed: list[dict]
    wall_s: float


def check_cells_fit(cells: list[Cell], store: OmniglotStore) -> None:
    """UsageError listing every cell whose N or K no part of its split can serve."""
    sizes: dict[tuple, dict[str, int]] = {}
    problems = []
    for cell in cells:
        c = cell.config
        key = (c.split, c.split_seed, c.rotations)
        if key not in sizes:
            parts = split_indices(store, c.split, c.split_seed)
            sizes[key] = {p: len(parts[p]) * (4 if c.rotations else 1) for p in PARTS}
        for part in PARTS:
            ways, batch = (c.training_ways, c.batch_size) if part == "train" else (c.ways, 1)
            try:
                check_episode_shape(ways, c.shots, batch, sizes[key][part])
            except UsageError as err:
                problems.append(f"cell {cell.id}: {err} (in {c.split}/{part})")
                break
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise UsageError("; ".join(problems[:3]) + more)


def run_sweep(
    spec: SweepSpec,
    data: OmniglotStore | Callable[[], OmniglotStore],
    results_root: str | Path = "results",
    runs_root: str | Path = "runs",
    executor=None,
    progress: bool = True,
    command: str | None = None,
) -> SweepOutcome:
    """Run the sweep's unfinished cells and store a row for each as it finishes.

    ``data`` is the loaded store, or a function loading it (called only once the
    grid and the results folder have passed their checks).
    """
    start = time.perf_counter()
    cells = expand(spec)
    results = ResultStore(Path(results_root) / spec.name)
    results.check_compatible(cells)
    store = data() if callable(data) else data
    check_cells_fit(cells, store)
    runs = ensure_writable_dir(Path(runs_root) / spec.name, "--runs")
    ensure_writable_dir(results_root, "--results")
    executor = executor or SerialExecutor()
    failed: list[dict] = []
    ran = 0
    with results.open_for(cells, spec.to_dict()):
        finished = results.finished()
        todo = start_order([c for c in cells if c.id not in finished], spec.options.get("order"))
        bars = SweepBars(spec.name, len(cells), len(cells) - len(todo), enabled=progress)
        session = {"session": uuid.uuid4().hex[:12], "command": command,
                   "started_at": wall_clock_start(time.perf_counter() - start), "cells_todo": len(todo),
                   "executor": type(executor).__name__, "host": platform.node()}

        def record_session(status: str) -> None:
            # Rewritten after every cell, so a kill at any moment still leaves this invocation's time
            # up to its last finished cell in the store's total.
            results.add_session({**session, "status": status, "wall_s": time.perf_counter() - start,
                                 "cells_run": ran, "cells_failed": len(failed)})

        record_session("running")

        run_dirs = {c.id: runs / c.id for c in todo}
        mirror = None
        if spec.options.get("carry_checkpoints"):
            restore(results.folder, run_dirs)
            mirror = CheckpointMirror(results.folder, run_dirs).start()

        def emit(kind: str, cell_id: str, payload) -> None:
            nonlocal ran
            if kind == "done":
                result: CellResult = payload
                results.add(result.row, result.log_csv)
                if mirror is not None and result.row["status"] == "ok":
                    mirror.cell_finished(cell_id)
                ran += 1
                if result.row["status"] != "ok":
                    failed.append(result.row)
                record_session("running")
                bars.done(cell_id, describe_row(result.row))
            elif kind == "start":
                bars.start(cell_id)
            elif kind == "step":
                bars.step(cell_id, *payload)
            elif kind == "retry":
                bars.note(payload)

        status = "interrupted"
        try:
            if todo:  # nothing to do must not start worker processes or a Ray cluster
                executor.run(store, todo, run_dirs, emit)
            status = "finished"
        finally:
            if mirror is not None:
                mirror.stop()
            bars.close()
            record_session(status)
        wall = time.perf_counter() - start
    return SweepOutcome(results.folder, len(cells), len(todo), len(cells) - len(todo), failed, wall)


def describe_row(row: dict) -> str:
    if row["status"] == "ok":
        wall = f", {row['wall_s']:.0f} s" if row.get("wall_s") is not None else ""
        return f"{row['cell']}: test accuracy {format_ci(row['test_accuracy'], row['test_ci95'])}%{wall}"
    return f"{row['cell']}: FAILED: {row['error']}"


class SweepBars:
    """One bar for the cells (with ETA) and one per running cell for its steps."""

    def __init__(self, name: str, total: int, done: int, enabled: bool = True):
        self.enabled = enabled
        self.cells = tqdm(total=total, initial=done, desc=f"sweep {name}", unit="cell", position=0,
                          dynamic_ncols=True, disable=not enabled)
        self.running: dict[str, tqdm] = {}
        self.free = list(range(1, 64))

    def start(self, cell_id: str) -> None:
        if cell_id in self.running:
            return
        position = self.free.pop(0) if self.free else None
        self.running[cell_id] = tqdm(total=None, desc=cell_id, unit="step", position=position, leave=False,
                                     dynamic_ncols=True, disable=not self.enabled)

    def step(self, cell_id: str, step: int, steps: int) -> None:
        if cell_id not in self.running:
            self.start(cell_id)
        bar = self.running[cell_id]
        if bar.total != steps:
            bar.total = steps
        bar.update(step - bar.n)

    def done(self, cell_id: str, line: str) -> None:
        bar = self.running.pop(cell_id, None)
        if bar is not None:
            if bar.pos is not None:
                self.free.insert(0, abs(bar.pos))
            bar.close()
        self.cells.update(1)
        self.note(line)

    def note(self, line: str) -> None:
        """A line above the bars (on stderr; alone when the bars are off)."""
        if self.enabled:
            tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        for bar in self.running.values():
            bar.close()
        self.running.clear()
        self.cells.close()
