"""PNG plots of a sweep (matplotlib, Agg backend): accuracy vs N, accuracy vs hidden, learning curves."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, work without a display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from episodes.files import atomic_write  # noqa: E402
from mann.models.hyperparameters import model_label  # noqa: E402


def write_plots(groups: pd.DataFrame, extras: list[str], logs: dict[str, Path], rows: pd.DataFrame,
                out: Path) -> list[Path]:
    """Write the plots that the data can support; return their paths.

    groups: one row per cell group (see ``tables.aggregate_seeds``); extras: the
    axes besides N, K and hidden that vary (each line is labelled with them);
    logs: cell id → its log.csv; rows: the cells' rows (to map a cell to its group).
    """
    if groups.empty:
        return []
    paths = [accuracy_vs_ways(groups, extras, out / "accuracy_vs_ways.png")]
    if groups["hidden"].nunique() > 1:
        paths.append(accuracy_vs_hidden(groups, extras, out / "accuracy_vs_hidden.png"))
    curves = learning_curves(logs, rows, extras)
    if not curves.empty:
        paths.append(plot_learning_curves(curves, extras, out / "learning_curves.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    plt.close(fig)
    return path


def _label_extras(row, extras: list[str]) -> str:
    return "".join(f", {a}={row[a]}" for a in extras)


def _step_tick(step: float, _position) -> str:
    return f"{step / 1000:g}k" if abs(step) >= 1000 else f"{step:g}"


def _step_axis(ax) -> None:
    """Training steps run to 60,000: a few ticks written 20k, 40k, so that their labels never run together."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(_step_tick))
    ax.set_xlabel("training step")


def accuracy_vs_ways(groups: pd.DataFrame, extras: list[str], path: Path) -> Path:
    """One panel per hidden size: accuracy (%) against N, one line per K, error bars = the tables' CI."""
    hiddens = sorted(groups["hidden"].unique())
    fig, axes = plt.subplots(1, len(hiddens), figsize=(4.2 * len(hiddens), 3.6), squeeze=False, sharey=True)
    for ax, hidden in zip(axes[0], hiddens):
        part = groups[groups["hidden"] == hidden]
        for key, line in part.groupby(["shots", *extras], sort=True):
            line = line.sort_values("ways")
            label = f"K={line['shots'].iloc[0]}" + _label_extras(line.iloc[0], extras)
            ax.errorbar(line["ways"], 100 * line["accuracy"], yerr=100 * line["ci95"], marker="o", capsize=3,
                        label=label)
        ways = sorted(part["ways"].unique())
        ax.plot(ways, [100 / n for n in ways], color="grey", linestyle=":", label="chance")
        ax.set_xticks(ways)
        ax.set_title(f"hidden = {hidden}" if hidden else ", ".join(sorted(map(model_label, part["model"].unique()))))
        ax.set_xlabel("N (classes per episode)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("test query accuracy (%)")
    return _save(fig, path)


def accuracy_vs_hidden(groups: pd.DataFrame, extras: list[str], path: Path) -> Path:
    """Accuracy (%) against the hidden size (log axis), one line per (N, K) that has several sizes."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for key, line in groups.groupby(["ways", "shots", *extras], sort=True):
        if line["hidden"].nunique() < 2:
            continue
        line = line.sort_values("hidden")
        first = line.iloc[0]
        label = f"N={first['ways']} K={first['shots']}" + _label_extras(first, extras)
        ax.errorbar(line["hidden"], 100 * line["accuracy"], yerr=100 * line["ci95"], marker="o", capsize=3,
                    label=label)
    ax.set_xscale("log", base=2)
    hiddens = sorted(groups["hidden"].unique())
    ax.set_xticks(hiddens, [str(h) for h in hiddens])
    ax.set_xlabel("hidden size (layer1 width)")
    ax.set_ylabel("test query accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def learning_curves(logs: dict[str, Path], rows: pd.DataFrame, extras: list[str] = ()) -> pd.DataFrame:
    """Long table (model, ways, shots, hidden, seed, the ``extras`` axes, cell, step, val_acc, ...) from the
    cells' logs."""
    frames = []
    by_cell = rows.set_index("cell")
    for cell, path in logs.items():
        if not Path(path).exists():
            continue
        log = pd.read_csv(path)
        if log.empty:
            continue
        row = by_cell.loc[cell]
        axes = dict.fromkeys(["model", "ways", "shots", "hidden", "seed", *extras])
        frames.append(log.assign(**{a: row[a] for a in axes}, cell=cell))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def curve_lines(curves: pd.DataFrame, extras: list[str] = ()) -> dict[tuple[int, int], dict[str, pd.Series]]:
    """The learning-curve panels: {(N, K): {line label: validation accuracy (%) by step, mean over seeds}}.

    One line per model, hidden size and other varying axis (``extras``): cells that differ in anything
    but the seed are never averaged together. A line is labelled by its hidden size (the MANN's
    H=128) or, for models without one, by the model's name.
    """
    others = [a for a in extras if a not in ("model", "hidden")]
    panels = {}
    for (ways, shots), part in curves.groupby(["ways", "shots"], sort=True):
        lines = {}
        # dropna=False: an axis one model has and another lacks (MAML's inner steps) is NaN for the other.
        for _, line in part.groupby(["model", "hidden", *others], sort=True, dropna=False):
            first = line.iloc[0]
            hidden = first["hidden"]  # 0 for models without one (collect_sweep)
            has_hidden = bool(hidden)
            names = [model_label(first["model"])] if "model" in extras or not has_hidden else []
            names += [f"H={int(hidden)}"] if has_hidden else []
            seeds = line["seed"].nunique()
            label = " ".join(names) + _label_extras(first, others) + (f" ({seeds} seeds)" if seeds > 1 else "")
            lines[label] = 100 * line.groupby("step")["val_acc"].mean()
        panels[(int(ways), int(shots))] = lines
    return panels


def plot_learning_curves(curves: pd.DataFrame, extras: list[str], path: Path) -> Path:
    """One panel per (N, K): validation accuracy against step, one line per model and hidden size (see
    :func:`curve_lines`)."""
    panels = curve_lines(curves, extras)
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, ((ways, shots), lines) in zip(axes.flat, panels.items()):
        for label, accuracy in lines.items():
            ax.plot(accuracy.index, accuracy.values, label=label)
        # Chance only where the curves come near it: at 20% it would squash ProtoNets' 98-99.6% flat.
        if 100 / ways >= min(accuracy.min() for accuracy in lines.values()) - 5:
            ax.axhline(100 / ways, color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_title(f"N={ways} K={shots}")
        _step_axis(ax)
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_progress(logs: dict[str, Path], path: Path) -> Path:
    """Validation loss and accuracy against step for each still-training cell (its carried log.csv)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for cell, log_path in logs.items():
        log = pd.read_csv(log_path)
        # Markers: a cell that has validated once is a point, which a line alone would not draw.
        style = dict(label=cell, marker="o", markersize=2.5)
        loss_ax.plot(log["step"], log["val_loss"], **style)
        acc_ax.plot(log["step"], 100 * log["val_acc"], **style)
    loss_ax.set_yscale("log")
    for ax, what in ((loss_ax, "validation loss"), (acc_ax, "validation accuracy (%)")):
        _step_axis(ax)
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)
