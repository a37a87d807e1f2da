"""Run one cell of a sweep and turn the outcome, success or failure, into its result row.

This is the function every executor calls (in-process, in a worker process or
as a Ray task). It never raises for a failing cell: the error becomes a row
with ``status = "failed"`` so the other cells go on.
"""

from __future__ import annotations

import platform
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from episodes.omniglot import OmniglotStore
from mann.provenance import utc_timestamp, versions
from mann.sweep.grid import Cell
from mann.training.data import prepare_splits
from mann.training.loop import train
from mann.training.summary_fields import BEST_PREFIX

# The summary fields a row keeps (besides the config): results, cost and provenance.
SUMMARY_FIELDS = (
    "parameters", "train_fingerprint", "val_fingerprint", "test_fingerprint", "test_accuracy", "test_ci95", "test_loss",
    "val_accuracy", "final_train_loss", "train_time_s", "resumed_from_step", "steps_per_s", "device", "threads",
    "data_source",
)
# Kept when the run has them: early stopping and the refit, the best validation of a run without them (and the
# test of its weights, best_val_test_accuracy ...), and the tests at more N (test_accuracy_N20 ...).
PROTOCOL_FIELDS = ("trainval_fingerprint", "best_step", "stopped_step", "best_val_loss", "best_val_step",
                   "refit_steps", "first_phase_time_s")
EXTRA_TEST_PREFIXES = ("test_accuracy_N", "test_ci95_N", "test_loss_N", f"{BEST_PREFIX}test_")


@dataclass(frozen=True)
class CellResult:
    """A finished cell: its row for results.jsonl and its learning curve (log.csv text, '' if none)."""

    row: dict
    log_csv: str


def run_cell(
    cell: Cell,
    store: OmniglotStore,
    run_dir: str | Path,
    on_step: Callable[[int, int], None] | None = None,
    on_write: Callable[[], None] | None = None,
) -> CellResult:
    """Train (or resume, or just re-read) the cell in ``run_dir``; return its row, never raise for its failure.

    ``on_step`` and ``on_write`` go to :func:`mann.training.loop.train`.
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    try:
        summary = train(cell.config, prepare_splits(store, cell.config), run_dir, resume=True, progress=False,
                        on_step=on_step, on_write=on_write)
    except Exception as err:  # noqa: BLE001 - any failure of one cell is recorded, the sweep goes on
        return failed_result(cell, run_dir, f"{type(err).__name__}: {err}",
                             "".join(traceback.format_exception(err)[-6:]), time.perf_counter() - start,
                             host=platform.node())
    row = {
        **_row_base(cell, run_dir),
        "host": platform.node(),
        **{k: summary.get(k) for k in SUMMARY_FIELDS},
        **{k: v for k, v in summary.items() if k in PROTOCOL_FIELDS or k.startswith(EXTRA_TEST_PREFIXES)},
        "status": "ok",
        "error": None,
        # A resumed cell's time includes the training its checkpoint carried over from earlier invocations.
        "wall_s": time.perf_counter() - start + float(summary.get("resumed_train_time_s") or 0.0),
        "finished_at": utc_timestamp(),
    }
    log = run_dir / "log.csv"
    return CellResult(row, log.read_text() if log.exists() else "")


def failed_result(
    cell: Cell, run_dir: Path, error: str, traceback_text: str = "", wall_s: float | None = None, **extra
) -> CellResult:
    """The row of a failed cell: raised in training, or its process died before it could report (no wall time)."""
    row = {**_row_base(cell, run_dir), **extra, "status": "failed", "error": error, "traceback": traceback_text,
           "wall_s": wall_s, "finished_at": utc_timestamp()}
    return CellResult(row, "")


def _row_base(cell: Cell, run_dir: Path) -> dict:
    return {"cell": cell.id, **cell.config.to_dict(), **versions(), "run_dir": str(run_dir)}
