"""Tables from finished runs: pandas → CSV + Markdown.

``collect`` reads every ``summary.json`` below a folder into one DataFrame (one
row per run); ``accuracy_table`` makes the human table; ``write_report`` saves
both beside the command that produced them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from episodes.errors import UsageError
from mann.io import atomic_write_text
from mann.stats import format_ci

# The CS330 handout's expectations for the four graded runs (K, N) at 25k steps.
HANDOUT_TARGETS = {(1, 2): "> 90%", (2, 2): "> 90%", (1, 3): "≈ 80%", (1, 4): "> 60–70%"}


def collect(folder: str | Path) -> pd.DataFrame:
    """One row per ``summary.json`` found below ``folder`` (sorted by N, K, H, seed)."""
    folder = Path(folder)
    paths = sorted(folder.rglob("summary.json"))
    if not paths:
        raise UsageError(f"no finished runs (summary.json) below {folder}; train some first or check the path")
    rows = []
    for path in paths:
        row = json.loads(path.read_text())
        row["run"] = str(path.parent.relative_to(folder))
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["ways", "shots", "hidden", "seed"]).reset_index(drop=True)


def accuracy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The readable table: one row per run, accuracy as '% ± CI', times, the handout's target."""
    table = pd.DataFrame(
        {
            "K": runs["shots"],
            "N": runs["ways"],
            "hidden": runs["hidden"],
            "seed": runs["seed"],
            "steps": runs["steps"],
            "test accuracy % (95% CI)": [format_ci(m, c) for m, c in zip(runs["test_accuracy"], runs["test_ci95"])],
            "test episodes": runs["test_episodes"],
            "handout target": [HANDOUT_TARGETS.get((k, n), "") for k, n in zip(runs["shots"], runs["ways"])],
            "train time (min)": (runs["train_time_s"] / 60).round(1),
            "steps/s": runs["steps_per_s"].astype(float).round(1),
            "device": runs["device"],
        }
    )
    return table


def write_report(runs: pd.DataFrame, out: str | Path, command: str | None = None) -> Path:
    """Write runs.csv (every field), table.csv and table.md; return the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = accuracy_table(runs)
    atomic_write_text(out / "runs.csv", runs.to_csv(index=False))
    atomic_write_text(out / "table.csv", table.to_csv(index=False))
    lines = [table.to_markdown(index=False), ""]
    if command:
        lines += ["Reproduce with:", "", "```", command, "```", ""]
    atomic_write_text(out / "table.md", "\n".join(lines))
    return out / "table.md"
