"""Scores on the 20 official one-shot runs of Lake et al. (2015), for ``mann lake``.

Any finished run folder of any model works, trained on the ``lake`` split,
whose training characters all come from the background set; the runs use
evaluation-set characters only. Each run is one 20-way 1-shot episode
(:mod:`episodes.lake_runs`); the error rate is the share of its 20 test items
put with the wrong class, reported per run and overall beside people (4.5%)
and Bayesian program learning (3.3%).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from episodes.errors import UsageError
from episodes.lake_runs import BPL_ERROR, HUMAN_ERROR, WAYS, LakeRun, lake_episodes, read_lake_runs
from mann.models.protocol import Learner
from mann.stats import mean_ci95_t
from mann.training.scoring import evaluate
from mann.training.run_folder import load_run, read_summary


@dataclass(frozen=True)
class LakeModel:
    """A trained learner ready to score the runs, its label in the table, and the store
    resize it was trained on (the runs are decoded the same way)."""

    label: str
    learner: Learner
    resize: str = "lanczos"


def load_lake_model(folder: str | Path, device: str = "cpu") -> LakeModel:
    """The learner of a finished run folder, checked to suit the 20-way 1-shot runs.

    Raises UsageError for a folder without a finished run, a model trained
    on another split (its training set could hold the runs' characters), a
    model with an N-way output layer for another N (every model but ProtoNets),
    or a black-box model that reads another number of rows per episode.
    """
    folder = Path(folder)
    path = folder / "summary.json"
    try:
        summary = read_summary(folder)
    except (OSError, ValueError) as err:
        raise UsageError(f"--run-folder {folder}: no finished run there ({path} unreadable: {err}); "
                         f"pass a folder written by mann train") from None
    model = summary.get("model", "mann")
    ways, shots, split = summary.get("ways"), summary.get("shots"), summary.get("split")
    if split != "lake":
        raise UsageError(
            f"--run-folder {folder}: trained on the {split!r} split, whose training characters may include "
            f"the runs' evaluation-set characters; train on the background set with --split lake"
        )
    retrain = f"mann train --model {model} --split lake -N {WAYS} -K 1 --out DIR"
    if model != "protonet" and ways != WAYS:
        raise UsageError(
            f"--run-folder {folder}: its {model} checkpoint is for N={ways}, but the Lake runs are {WAYS}-way "
            f"1-shot; train one for N={WAYS}: {retrain}"
        )
    run = load_run(folder, device)
    if run.config.kind == "black-box" and shots != 1:
        raise UsageError(
            f"--run-folder {folder}: its {run.config.label} reads {shots}+1 rows per episode, but the Lake runs "
            f"are 1-shot; train one for K=1: {retrain}"
        )
    if (ways, shots) != (WAYS, 1):
        print(f"note: {folder} is a {model} tested at N={ways}, K={shots}; it is scored on the "
              f"{WAYS}-way 1-shot runs all the same", file=sys.stderr)
    name = f"{run.config.label} H={run.config.hidden}" if run.config.hidden is not None else run.config.label
    label = name if folder.name == run.config.label else f"{name} ({folder.name})"
    # Runs from before the resize field were trained on the lanczos store.
    return LakeModel(label, run.learner, summary.get("resize", "lanczos"))


def lake_error_table(runs: list[LakeRun], accuracies: dict[str, np.ndarray]) -> pd.DataFrame:
    """Error % per run (run01..run20), then the overall error % (mean ± 95% CI over the
    runs, Student's t for 20 values) and the published references. accuracies: {model label: per-run accuracy float [20]}.
    """
    rows = [{"run": r.name} for r in runs]
    overall = {"run": "overall (mean ± 95% CI over runs)"}
    for label, acc in accuracies.items():
        error = 1.0 - np.asarray(acc, dtype=np.float64)
        for row, e in zip(rows, error):
            row[f"{label}: error %"] = f"{100 * e:.0f}"  # a run has 20 items: multiples of 5
        mean, ci = mean_ci95_t(error)
        overall[f"{label}: error %"] = f"{100 * mean:.1f} ± {100 * ci:.1f}"
    references = [
        {"run": f"people (Lake et al. 2015): {100 * HUMAN_ERROR:.1f}"},
        {"run": f"Bayesian program learning (Lake et al. 2015): {100 * BPL_ERROR:.1f}"},
    ]
    return pd.DataFrame([*rows, overall, *references]).fillna("")


def score_lake_runs(folders: list[str | Path], archive: str | Path, device: str = "cpu") -> tuple[list[LakeRun], dict[str, np.ndarray]]:
    """Every model (all checked before any is scored) on every run, decoded with the resize
    the model was trained on: per-run accuracy."""
    models = [load_lake_model(f, device) for f in folders]
    decoded = {r: read_lake_runs(archive, resize=r) for r in dict.fromkeys(m.resize for m in models)}
    episodes = {r: lake_episodes(runs, device) for r, runs in decoded.items()}
    scores = {m.label: evaluate(m.learner, [episodes[m.resize]])[0] for m in models}
    return decoded[models[0].resize], scores
