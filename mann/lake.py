"""``mann lake``: score trained models on the 20 official one-shot runs of Lake et al. (2015).

Any finished run folder works: a MANN (``mann train``) or a baseline
(``mann baselines``), trained on the ``lake`` split, whose training
characters all come from the background set; the runs use evaluation-set
characters only. Each run is one 20-way 1-shot episode
(:mod:`episodes.lake_runs`); the error rate is the share of its 20 test items
put with the wrong class, reported per run and overall beside people (4.5%)
and Bayesian program learning (3.3%).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from episodes.errors import UsageError
from episodes.lake_runs import ARCHIVE, BPL_ERROR, HUMAN_ERROR, WAYS, LakeRun, lake_episodes, read_lake_runs
from mann.io import atomic_write_text, ensure_writable_dir
from mann.stats import mean_ci95_t

Scorer = Callable[[torch.Tensor, torch.Tensor], np.ndarray]


@dataclass(frozen=True)
class LakeModel:
    """A trained model ready to score episodes: per-episode query accuracy float64 [R]."""

    label: str
    score: Scorer


def load_lake_model(folder: str | Path, device: str = "cpu") -> LakeModel:
    """The model of a finished run folder, checked to suit the 20-way 1-shot runs.

    Raises UsageError for a folder without a finished run, a model trained
    on another split (its training set could hold the runs' characters), or
    a checkpoint whose output layer is for another N.
    """
    folder = Path(folder)
    path = folder / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"--run-folder {folder}: no finished run there ({path} unreadable: {err}); "
                         f"pass a folder written by mann train or mann baselines") from None
    model = summary.get("model", "mann")
    ways, shots, split = summary.get("ways"), summary.get("shots"), summary.get("split")
    if split != "lake":
        raise UsageError(
            f"--run-folder {folder}: trained on the {split!r} split, whose training characters may include "
            f"the runs' evaluation-set characters; train on the background set with --split lake"
        )
    retrain = (
        f"mann train --split lake -N {WAYS} -K 1 --out DIR" if model == "mann"
        else f"mann baselines {model} --split lake -N {WAYS} -K 1 --out DIR"
    )
    if model != "protonet" and ways != WAYS:
        raise UsageError(
            f"--run-folder {folder}: its {model} checkpoint is for N={ways}, but the Lake runs are {WAYS}-way "
            f"1-shot; train one for N={WAYS}: {retrain}"
        )
    if model == "mann" and shots != 1:
        raise UsageError(
            f"--run-folder {folder}: its MANN reads {shots}+1 rows per episode, but the Lake runs are 1-shot; "
            f"train one for K=1: {retrain}"
        )
    name = f"mann H={summary.get('hidden')}" if model == "mann" else model
    label = name if folder.name == model else f"{name} ({folder.name})"
    if model == "mann":
        return LakeModel(label, _mann_scorer(folder, summary, device))
    from mann.baselines.train import evaluate_baseline, load_baseline

    loaded = load_baseline(folder, device)
    if (ways, shots) != (WAYS, 1):
        print(f"note: {folder} is a {model} tested at N={ways}, K={shots}; it is scored on the "
              f"{WAYS}-way 1-shot runs all the same", file=sys.stderr)

    def score(images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        return evaluate_baseline(loaded.baseline, [(images, labels)])[0]

    return LakeModel(label, score)


def _mann_scorer(folder: Path, summary: dict, device: str) -> Scorer:
    from mann.fast_lstm import fast_forward
    from mann.model import MANN
    from mann.train import evaluate

    model = MANN(WAYS, 2, int(summary["hidden"]))
    try:
        model.load_state_dict(torch.load(folder / "model.pt", map_location=device, weights_only=True))
    except (OSError, RuntimeError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"{folder / 'model.pt'} does not load into a MANN(N={WAYS}, H={summary['hidden']}) "
                         f"({first}); is it damaged or from another run?") from None
    model.to(device)
    forward = fast_forward if torch.device(device).type == "cpu" else (lambda m, x, y: m(x, y))
    return lambda images, labels: evaluate(model, [(images, labels)], forward)[0]


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
    """Every model (all checked before any is scored) on every run: per-run accuracy."""
    models = [load_lake_model(f, device) for f in folders]
    runs = read_lake_runs(archive)
    images, labels = lake_episodes(runs, device)
    return runs, {m.label: np.asarray(m.score(images, labels)) for m in models}


def add_parser(sub) -> None:
    # Imported here: mann.cli imports this module to list its subcommands.
    from mann.cli import add_data_args

    p = sub.add_parser("lake", help="error rates on the 20 official 20-way one-shot runs (all_runs.zip)")
    p.add_argument("--run-folder", action="append", required=True,
                   help="a finished mann train / mann baselines run trained with --split lake (repeat for several)")
    p.add_argument("--archive", default=None, help=f"path of {ARCHIVE} (default: {ARCHIVE} in --data-root / $OMNIGLOT_ROOT)")
    p.add_argument("--out", default=None, help="also write lake.csv and lake.md there")
    p.add_argument("--command", default=None, help="the command that produced the runs, written under the table")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default %(default)s)")
    add_data_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from episodes.omniglot import resolve_root

    archive = Path(args.archive) if args.archive else resolve_root(args.data_root) / ARCHIVE
    out = ensure_writable_dir(args.out) if args.out else None
    runs, accuracies = score_lake_runs(args.run_folder, archive, args.device)
    table = lake_error_table(runs, accuracies)
    markdown = table.to_markdown(index=False)
    if out is not None:
        atomic_write_text(out / "lake.csv", table.to_csv(index=False))
        lines = [markdown, ""]
        if args.command:
            lines += ["Reproduce with:", "", "```", args.command, "```", ""]
        atomic_write_text(out / "lake.md", "\n".join(lines))
    print(markdown)
    return 0
