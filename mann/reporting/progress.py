"""How far a sweep's unfinished cells have come, from the checkpoints and logs its store carries.

A sweep with ``carry_checkpoints`` keeps ``checkpoints/<cell>/log.csv`` (and
``log_refit.csv`` once a refit started) for every cell still training. This
reads them into one row per cell (steps done, the best validation loss and its
step, evaluations since then against the patience, the learning rate now) and
plots the validation curves, so a reader sees how far from convergence a run
stopped without its run folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mann.sweep.carry import CARRY_FOLDER
from mann.sweep.store import ResultStore
from mann.training.config import refit_length


def progress_rows(folder: str | Path) -> pd.DataFrame:
    """One row per carried cell of the sweep store ``folder`` (empty when none is carried)."""
    folder = Path(folder)
    cells = ResultStore(folder).spec().get("cells", {})
    rows = []
    for cell_dir in sorted((folder / CARRY_FOLDER).glob("*/")):
        log_path = cell_dir / "log.csv"
        if not log_path.exists() or cell_dir.name not in cells:
            continue
        log = pd.read_csv(log_path)
        if log.empty:
            continue
        config = cells[cell_dir.name]
        best = int(log["val_loss"].idxmin())
        step = int(log["step"].iloc[-1])
        halve = config.get("lr_halve_every") or 0
        refit = pd.read_csv(cell_dir / "log_refit.csv") if (cell_dir / "log_refit.csv").exists() else None
        refitting = refit is not None and not refit.empty
        # The refit's fresh optimiser starts the schedule again at its own step 0.
        schedule_step = int(refit["step"].iloc[-1]) if refitting else step
        rows.append({
            "cell": cell_dir.name,
            "phase": ("refit on trainval" if refitting
                      else "train (early stopping on val)" if config.get("patience") else "train"),
            "step": step,
            "refit step": schedule_step if refitting else "",
            "refit length": (refit_length(int(log["step"].iloc[best]), config["patience"], config["eval_every"])
                             if refitting else ""),
            "best val loss": round(float(log["val_loss"].iloc[best]), 4),
            "val acc % at best": round(100 * float(log["val_acc"].iloc[best]), 2),
            "best step": int(log["step"].iloc[best]),
            "evaluations since best": len(log) - 1 - best,
            "patience": config.get("patience") or "",
            "lr now": config["lr"] * 0.5 ** (schedule_step // halve) if halve else config["lr"],
            # The refit's log times only the refit: the cell's time adds phase 1's.
            "hours so far": round((float(log["wall_s"].iloc[-1]) + (float(refit["wall_s"].iloc[-1])
                                   if refitting else 0.0)) / 3600, 2),
        })
    return pd.DataFrame(rows)


def carried_logs(folder: str | Path) -> dict[str, Path]:
    """cell id → its carried log.csv."""
    carried = Path(folder) / CARRY_FOLDER
    return {p.parent.name: p for p in sorted(carried.glob("*/log.csv"))}
