"""Tables from finished runs and sweeps: pandas → CSV + Markdown (plots beside them).

``collect`` reads every ``summary.json`` below a folder into one DataFrame (one
row per run); ``accuracy_table`` makes the human table; ``write_report`` saves
both beside the command that produced them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from episodes.errors import UsageError
from episodes.files import atomic_write_text
from mann.models.hyperparameters import model_label
from mann.models.mann import mann_parameter_count
from mann.reporting.gaps import gap_lines, store_gaps
from mann.reporting.papers import papers_table, sources_note, tests_of
from mann.reporting.progress import carried_logs, progress_rows
from mann.stats import format_ci, mean_ci95_t
from mann.sweep.store import ResultStore

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
    return (with_model_column(pd.DataFrame(rows)).sort_values(["model", "ways", "shots", "hidden", "seed"])
            .reset_index(drop=True))


def split_labels(runs: pd.DataFrame) -> list[str]:
    """Each run's split as a reader tells runs apart: "vinyals", "cs330 + rotations", "vinyals, distinct
    characters" (episodes of Finn et al.'s kind), ...

    Summaries written before ``--split`` existed hold none: those runs used cs330, then the only split.
    """
    splits = runs["split"].fillna("cs330") if "split" in runs else pd.Series("cs330", index=runs.index)
    def flag(name: str) -> pd.Series:
        return runs[name].fillna(False).astype(bool) if name in runs else pd.Series(False, index=runs.index)

    return [f"{split}{' + rotations' if rot else ''}{', distinct characters' if distinct else ''}"
            for split, rot, distinct in zip(splits, flag("rotations"), flag("distinct_characters"))]


def accuracy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The readable table: one row per run (its folder, model, split, N, K, ...), accuracy as '% ± CI',
    times, and the handout's target where the run is one of the assignment's (the cs330 split)."""
    splits = split_labels(runs)
    table = pd.DataFrame(
        {
            "run": runs["run"],
            "model": [model_label(m) for m in runs["model"]],
            "split": splits,
            "K": runs["shots"],
            "N": runs["ways"],
            "hidden": runs["hidden"].astype("Int64"),
            "seed": runs["seed"],
            "steps": runs["steps"],
            "test accuracy % (95% CI)": [format_ci(m, c) for m, c in zip(runs["test_accuracy"], runs["test_ci95"])],
            "test episodes": runs["test_episodes"],
            "handout target": [HANDOUT_TARGETS.get((k, n), "") if split == "cs330" else ""
                               for k, n, split in zip(runs["shots"], runs["ways"], splits)],
            "train time (min)": (runs["train_time_s"] / 60).round(1),
            "steps/s": runs["steps_per_s"].astype(float).round(1),
            "device": runs["device"],
        }
    )
    if set(runs["model"]) == {"mann"}:
        table = table.drop(columns="model")
    return table


def reproduce_lines(*commands: str | None) -> list[str]:
    """The Markdown block under a table that names the command(s) that made it (none given: no block)."""
    named = [c for c in commands if c]
    return ["Reproduce with:", "", "```", *named, "```", ""] if named else []


def write_table(out: Path, name: str, table: pd.DataFrame, markdown: str, command: str | None = None) -> None:
    """``name``.csv (every column of ``table``) and ``name``.md (``markdown``, then the command that made it)."""
    atomic_write_text(out / f"{name}.csv", table.to_csv(index=False))
    atomic_write_text(out / f"{name}.md", "\n".join([markdown, "", *reproduce_lines(command)]))


def write_report(runs: pd.DataFrame, out: str | Path, command: str | None = None) -> Path:
    """Write runs.csv (every field), table.csv and table.md; return the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = accuracy_table(runs)
    atomic_write_text(out / "runs.csv", runs.to_csv(index=False))
    write_table(out, "table", table, table.to_markdown(index=False), command)
    return out / "table.md"


# ------------------------------------------------------------------------------------ sweep result stores

# Everything that tells two cells apart except the seed: seeds of one group are aggregated.
GROUP_AXES = ["model", "ways", "shots", "hidden", "lr", "steps", "batch_size", "split"]
EXTRA_AXES = ["model", "lr", "steps", "batch_size", "split"]


def is_sweep_store(folder: str | Path) -> bool:
    """True for a ``mann sweep`` result store (it holds sweep.json), False for a folder of run folders."""
    return ResultStore(folder).is_sweep()


def collect_sweep(folder: str | Path) -> pd.DataFrame:
    """The latest row of every cell of a sweep store, in the sweep's cell order (failed cells included).

    hidden is 0 for models without a hidden size (ProtoNets, MAML, ...), so that groups and tables can sort it.
    """
    results = ResultStore(folder)
    latest = results.latest()
    if not latest:
        raise UsageError(f"sweep store {folder} has no finished cells yet; run its `mann sweep` command first")
    order = {cell: i for i, cell in enumerate(results.spec().get("cells", {}))}
    rows = sorted(latest.values(), key=lambda r: order.get(r["cell"], len(order)))
    frame = with_model_column(pd.DataFrame(rows).reset_index(drop=True))
    frame["hidden"] = frame["hidden"].fillna(0).astype(int)
    return frame


def aggregate_seeds(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell group (all axes but the seed) over its finished cells.

    accuracy / ci95: with two or more seeds, the mean of the seeds' test accuracies and
    t(0.975, seeds-1) · std / sqrt(seeds) across them (Student's t: 4.30 for 3 seeds);
    with one seed, its accuracy and its CI over the fixed test episodes (``ci_over`` says which).
    """
    ok = rows[rows["status"] == "ok"]
    groups = []
    for key, part in ok.groupby(GROUP_AXES, sort=True):
        accs = part["test_accuracy"].astype(float).to_numpy()
        if len(accs) >= 2:
            mean, ci = mean_ci95_t(accs)
            over = "seeds"
        else:
            mean, ci, over = float(accs[0]), float(part["test_ci95"].iloc[0]), "test episodes"
        groups.append({
            **dict(zip(GROUP_AXES, key)),
            "seeds": len(accs),
            "accuracy": mean,
            "ci95": ci,
            "ci_over": over,
            "seed_list": " ".join(str(s) for s in sorted(part["seed"])),
            "final_train_loss": float(part["final_train_loss"].astype(float).mean()),
            "train_time_s": float(part["train_time_s"].astype(float).mean()),
            "test_episodes": int(part["test_episodes"].iloc[0]),
        })
    return pd.DataFrame(groups, columns=[*GROUP_AXES, "seeds", "accuracy", "ci95", "ci_over", "seed_list",
                                         "final_train_loss", "train_time_s", "test_episodes"])


def rows_per_test(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per test of each finished row: a cell also tested at other N (``also_test_ways``, one
    ProtoNets model for the 5- and 20-way tests) gives a row for each, with that test's N, accuracy and CI."""
    tests = []
    for row in rows.to_dict("records"):
        tests += [{**row, "ways": ways, "test_accuracy": accuracy, "test_ci95": ci}
                  for ways, accuracy, ci in tests_of(row)]
    return pd.DataFrame(tests, columns=rows.columns)


def varying_extras(groups: pd.DataFrame) -> list[str]:
    return [a for a in EXTRA_AXES if groups[a].nunique() > 1]


def pivot_tables(groups: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{title: table}, one per model and hidden size, with rows N (plus any other varying axis),
    columns K, cells 'mean ± CI' in %. A MANN-only sweep's titles are 'hidden = H'."""
    extras = [a for a in varying_extras(groups) if a != "model"]
    most = int(groups["seeds"].max()) if len(groups) else 0
    only_mann = set(groups["model"]) <= {"mann"}
    tables = {}
    for (model, hidden), part in groups.groupby(["model", "hidden"], sort=True):
        text = [
            format_ci(m, c) + ("" if n == most else f" ({_count(n, 'seed')})")
            for m, c, n in zip(part["accuracy"], part["ci95"], part["seeds"])
        ]
        frame = part.assign(value=text, K=[f"K={k}" for k in part["shots"]], N=part["ways"])
        table = frame.pivot(index=["N", *extras], columns="K", values="value").fillna("")
        table = table.reindex(sorted(table.columns, key=lambda k: int(k[2:])), axis=1).sort_index()
        table.columns.name = None
        size = f"hidden = {int(hidden)}" if hidden else ""
        tables[size if only_mann else ", ".join(t for t in (model_label(model), size) if t)] = table
    return tables


def write_sweep_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Tables (rows.csv, cells.csv, table_<model>_H<h>.csv, table.md) and PNG plots of a sweep store; return table.md.

    When the sweep has several models, table.md also holds the side-by-side table
    (one column per model, :func:`model_table`) and by_model.csv.
    """
    folder = Path(folder)
    out = Path(out) if out is not None else folder
    gaps = store_gaps(folder)  # a bad gaps.toml is refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    running = progress_rows(folder)
    if not ResultStore(folder).latest() and not running.empty:
        return write_progress_only(folder, out, running)
    rows = collect_sweep(folder)
    groups = aggregate_seeds(rows)
    tables = pivot_tables(groups)
    store = ResultStore(folder)
    spec = store.spec()
    atomic_write_text(out / "rows.csv", rows.drop(columns=["traceback"], errors="ignore").to_csv(index=False))
    atomic_write_text(out / "cells.csv", groups.to_csv(index=False))
    lines = [f"# Sweep `{spec.get('name', folder.name)}`", ""]
    ok = rows[rows["status"] == "ok"]
    if len(ok):
        episodes = sorted(ok["test_episodes"].unique())
        seeds = sorted(groups["seeds"].unique())
        over = ("mean ± 95% CI across seeds (Student's t: t(0.975, seeds-1) · std / √seeds)" if max(seeds) > 1
                else "± 95% CI over the test episodes (one seed)")
        lines += [
            f"Test query accuracy (%) on {', '.join(map(str, episodes))} fixed test episodes per cell, {over}; "
            f"{_count(int(groups['seeds'].max()), 'seed')} per N/K/hidden; "
            f"{len(ok)} of {_count(len(spec.get('cells', rows)), 'cell')} finished. "
            f"Rows N, columns K, one table per model and hidden size.",
            "",
        ]
    for title, table in tables.items():
        atomic_write_text(out / f"table_{_file_part(title)}.csv", table.to_csv())
        lines += [f"## {title}", "", table.reset_index().to_markdown(index=False), ""]
    if ok["model"].nunique() > 1:
        side = model_table(ok)
        atomic_write_text(out / "by_model.csv", side.to_csv(index=False))
        lines += ["## Side by side (same test episodes per row)", "", side.to_markdown(index=False), ""]
    if len(ok) and (ok["split"] == "vinyals").any():
        beside = papers_table(ok[ok["split"] == "vinyals"])
        atomic_write_text(out / "papers.csv", beside.to_csv(index=False))
        lines += ["## Beside the papers (vinyals protocol; ours ± 95% CI over the fixed test episodes)", "",
                  beside.to_markdown(index=False, disable_numparse=True), ""]
        note = sources_note(beside["source"]) if len(beside) else ""
        lines += [note, ""] if note else []
        lines += gap_lines(gaps, beside, out)
    if not running.empty:
        lines += progress_lines(folder, out, running)
    else:  # every cell finished: an earlier report's progress files would be stale
        for stale in ("progress.csv", "progress_curves.png"):
            (out / stale).unlink(missing_ok=True)
    failed = rows[rows["status"] != "ok"]
    if len(failed):
        lines += ["## Failed cells", "", *[f"- `{c}`: {e}" for c, e in zip(failed["cell"], failed["error"])], ""]
    plots = []
    try:
        from mann.reporting.plots import write_plots  # matplotlib is optional (the plots extra)
    except ImportError:
        lines += ["(plots skipped: matplotlib is not installed; pip install 'mann-bench[plots]')", ""]
    else:
        logs = {c: folder / "logs" / f"{c}.csv" for c in ok["cell"]}
        # Accuracy against N shows every N a model was tested at, not only the N it is filed under.
        tested = aggregate_seeds(rows_per_test(ok))
        plots = write_plots(tested, varying_extras(tested), logs, rows, out)
    if plots:
        lines += ["Plots: " + ", ".join(f"[{p.name}]({p.name})" for p in plots), ""]
    lines += session_lines(store.sessions(), rows)
    atomic_write_text(out / "table.md", "\n".join(lines))
    return out / "table.md"


def progress_lines(folder: Path, out: Path, running: pd.DataFrame) -> list[str]:
    """The "still training" section (and progress.csv, progress_curves.png) from the carried checkpoints."""
    atomic_write_text(out / "progress.csv", running.to_csv(index=False))
    lines = ["## Still training (from the checkpoints carried in checkpoints/)", "",
             running.to_markdown(index=False, disable_numparse=True), ""]
    try:
        from mann.reporting.plots import plot_progress  # matplotlib is optional (the plots extra)
    except ImportError:
        return lines
    plot = plot_progress(carried_logs(folder), out / "progress_curves.png")
    return lines + [f"Validation curves so far: [{plot.name}]({plot.name})", ""]


def write_progress_only(folder: Path, out: Path, running: pd.DataFrame) -> Path:
    """table.md of a sweep none of whose cells has finished yet: its progress and how it was run."""
    store = ResultStore(folder)
    lines = [f"# Sweep `{store.spec().get('name', folder.name)}`", "", "No cell has finished yet.", ""]
    lines += progress_lines(folder, out, running)
    # A session's wall time is recorded as cells finish, so none is known yet: the hours are in the table.
    lines += [line for line in session_lines(store.sessions(), pd.DataFrame()) if not line.startswith("Total wall")]
    atomic_write_text(out / "table.md", "\n".join(lines))
    return out / "table.md"


def session_lines(sessions: list[dict], rows: pd.DataFrame) -> list[str]:
    """How the results were made: the command(s) and the total wall time."""
    commands = list(dict.fromkeys(s["command"] for s in sessions if s.get("command")))
    lines = []
    lines += reproduce_lines(*commands)
    if sessions:
        total = sum(float(s["wall_s"]) for s in sessions)
        # Rows written before wall_s counted a resumed cell's earlier training have only train_time_s for it.
        times = rows[[c for c in ("wall_s", "train_time_s") if c in rows]].astype(float)
        cell_time = float(times.max(axis=1).sum(skipna=True)) if len(times.columns) else 0.0
        # An invocation whose last record still says "running" was killed.
        cut = sum(s.get("status") in ("running", "interrupted") for s in sessions)
        cut_note = f", {cut} of them stopped before the end (a killed one counts up to its last finished cell)" if cut else ""
        lines += [
            f"Total wall time: {total / 60:.1f} min over {_count(len(sessions), 'invocation')}{cut_note}; "
            f"the cells' own wall times add up to {cell_time / 60:.1f} min; "
            f"host {sessions[-1].get('host', '?')}, executor {sessions[-1].get('executor', '?')}.",
            "",
        ]
    return lines


def _file_part(title: str) -> str:
    """'hidden = 128' → 'H128'; 'protonet' → 'protonet'; 'mann, hidden = 8' → 'mann_H8'."""
    return title.replace("hidden = ", "H").replace(", ", "_").replace(" ", "_")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --- Side by side: the MANN and the baselines on the same test episodes ---------------------------

MODEL_COLUMNS = {
    "mann": "MANN (H=128)",
    "maml-fc": "MAML-FC",
    "maml-cnn": "MAML-CNN",
    "metasgd-cnn": "Meta-SGD-CNN",
    "anil-cnn": "ANIL-CNN",
    "protonet": "ProtoNets",
}
# Snell et al. 2017 (ProtoNets, Table 1), Finn et al. 2017 (MAML, Table 1) and the learn2learn
# examples README. These papers train on Vinyals et al.'s split (1,200 characters of all 50
# alphabets, x4 by rotation) for 60,000 (MAML) or more episodes; see README "Baselines".
PUBLISHED = {
    (5, 1): "ProtoNets 98.8; MAML-CNN 98.7 (learn2learn 99.1); MAML-FC 89.7 (learn2learn 88.9)",
    (5, 5): "ProtoNets 99.7",
    (20, 1): "ProtoNets 96.0",
    (20, 5): "ProtoNets 98.9",
}


def with_model_column(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with ``model`` ("mann" where a MANN summary has none) and ``parameters`` filled in
    (rows written before summaries held the count get the MANN's, computed from N and H)."""
    runs = runs.copy()
    if "model" not in runs:
        runs["model"] = None
    runs["model"] = runs["model"].fillna("mann")
    if "parameters" not in runs:
        runs["parameters"] = None
    for i in runs.index[(runs["model"] == "mann") & runs["parameters"].isna()]:
        runs.at[i, "parameters"] = mann_parameter_count(int(runs.at[i, "ways"]), int(runs.at[i, "hidden"]))
    runs["parameters"] = runs["parameters"].astype("Int64")
    return runs


def model_table(runs: pd.DataFrame, mann_hidden: int = 128) -> pd.DataFrame:
    """Rows (split, N, K); one column per model: 'accuracy % ± CI (steps, minutes)'.

    The MANN column holds runs of hidden size ``mann_hidden`` only. Where a cell
    has several runs, the longest (then the latest) is shown; runs.csv keeps all.
    """
    runs = with_model_column(runs)
    keep = (runs["model"] != "mann") | (runs["hidden"] == mann_hidden)
    runs = runs[keep].copy()
    if "finished_at" not in runs:
        runs["finished_at"] = ""
    runs["finished_at"] = runs["finished_at"].fillna("")
    runs = runs.sort_values(["steps", "finished_at"]).groupby(["split", "ways", "shots", "model"], sort=False).tail(1)
    models = [m for m in MODEL_COLUMNS if m in set(runs["model"])] + sorted(set(runs["model"]) - set(MODEL_COLUMNS))
    rows = []
    for (split, ways, shots), cell in runs.groupby(["split", "ways", "shots"]):
        row = {"split": split, "N": int(ways), "K": int(shots)}
        by_model = {r["model"]: r for _, r in cell.iterrows()}
        for model in models:
            r = by_model.get(model)
            row[MODEL_COLUMNS.get(model, model_label(model))] = "" if r is None else (
                f"{format_ci(r['test_accuracy'], r['test_ci95'])} "
                f"({int(r['steps']):,} steps, {r['train_time_s'] / 60:.1f} min)"
            )
        row["published (Vinyals split)"] = PUBLISHED.get((int(ways), int(shots)), "")
        row["handout (MANN)"] = HANDOUT_TARGETS.get((int(shots), int(ways)), "") if split == "cs330" else ""
        rows.append(row)
    return pd.DataFrame(rows)


def write_model_report(runs: pd.DataFrame, out: str | Path, command: str | None = None) -> Path:
    """Write runs.csv (every field of every run), by_model.csv and by_model.md; return the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = model_table(runs)
    atomic_write_text(out / "runs.csv", with_model_column(runs).to_csv(index=False))
    intro = "Test accuracy % (95% CI) on the same fixed test episodes per row, with training steps and minutes."
    write_table(out, "by_model", table, f"{intro}\n\n{table.to_markdown(index=False)}", command)
    return out / "by_model.md"
