"""The papers' protocol in one table: every published Omniglot cell beside ours, across sweep stores.

``mann report --papers results/protonets-omniglot results/maml-omniglot results/mann-omniglot``
reads several sweep stores (one per paper's preset) and writes one row per test
a paper reports (:data:`mann.reporting.papers.PUBLISHED`) or a store's cells
make: ours ± 95% CI over the fixed test episodes where the cell finished, how far
it has come where it is still training (from the carried checkpoints), or that no
store has started it. Each row names its preset, so a reader finds the command.
Under the table go the measured reasons for the gaps each store records (:mod:`mann.reporting.gaps`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from episodes.errors import UsageError
from episodes.files import atomic_write_text
from mann.models.hyperparameters import model_label
from mann.reporting.gaps import gap_lines, store_gaps
from mann.reporting.papers import PUBLISHED, papers_table, protocol_tests, published_columns, sources_note
from mann.reporting.progress import progress_rows
from mann.reporting.tables import collect_sweep
from mann.sweep.carry import CARRY_FOLDER
from mann.sweep.store import ResultStore

COLUMNS = ["model", "N", "K", "status", "ours % (95% CI)", "published %", "ours − published", "at best val loss %",
           "source", "steps", "best step", "refit steps", "hours", "preset", "split"]
# Shown only where some row has one: finished runs from before mann tested these weights have none.
OPTIONAL_COLUMNS = ["at best val loss %"]

TABLE_ORDER = ["protonet", "maml-cnn", "mann", "maml-fc"]


def store_rows(folder: Path) -> list[dict]:
    """One row per test of every cell of the sweep store ``folder``: finished, training or not started."""
    store = ResultStore(folder)
    spec = store.spec()
    preset = spec.get("name", folder.name)
    finished = papers_table(collect_sweep(folder)) if store.latest() else pd.DataFrame()
    done = {(r["model"], int(r["N"]), int(r["K"])): r for r in finished.to_dict("records")}
    running = progress_rows(folder)
    progress = {r["cell"]: r for r in running.to_dict("records")}
    rows = []
    for cell, config in spec.get("cells", {}).items():
        for key in protocol_tests(config):
            label, ways, shots = key
            if key in done:
                rows.append({**done[key], "status": "finished", "preset": preset})
                continue
            published = PUBLISHED.get((config["model"], ways, shots))
            row = {"model": label, "N": ways, "K": shots, "preset": preset,
                   **published_columns(published)}
            if cell in progress:
                p = progress[cell]
                refit = f", refit step {p['refit step']:,} of {p['refit length']:,}" if p["refit step"] != "" else ""
                row["status"] = (f"{p['phase']}: step {p['step']:,}" + refit
                                 + f", best val loss at step {p['best step']:,} (val acc {p['val acc % at best']}%)")
                row["hours"] = p["hours so far"]
                row["split"] = config["split"]  # the fingerprint comes with the cell's test results
            elif (folder / CARRY_FOLDER / cell / "checkpoint.pt").exists():
                row["status"] = "started: no validation yet"
                row["split"] = config["split"]
            else:
                row["status"] = "not started"
            rows.append(row)
    return rows


def protocol_table(folders: list[str | Path]) -> pd.DataFrame:
    """The table of every store's tests, plus a 'not run' row for each published cell no store makes.

    Rows are ordered as the papers' table is read (ProtoNets, MAML-CNN, the MANN, MAML-FC), then N, then K.
    """
    rows = []
    for folder in folders:
        if not ResultStore(folder).is_sweep():
            raise UsageError(f"{folder} is not a sweep store (no sweep.json); pass results/<name> folders "
                             "that `mann sweep` wrote")
        rows += store_rows(Path(folder))
    seen = {(r["model"], r["N"], r["K"]) for r in rows}
    for (model, ways, shots), published in PUBLISHED.items():
        if (model_label(model), ways, shots) not in seen:
            rows.append({"model": model_label(model), "N": ways, "K": shots,
                         "status": "not run (no cell of the stores given)", **published_columns(published)})
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for column in ("steps", "best step", "refit steps"):  # NaN from the unfinished rows made them floats
        table[column] = [v if isinstance(v, str) or v != v else str(int(v)) for v in table[column]]
    order = {label: i for i, label in enumerate(TABLE_ORDER)}
    table = table.astype(object).fillna("")
    table = table.drop(columns=[c for c in OPTIONAL_COLUMNS if (table[c] == "").all()])
    table = table.assign(_order=[order.get(m, len(order)) for m in table["model"]])
    return table.sort_values(["_order", "N", "K"], kind="stable").drop(columns="_order").reset_index(drop=True)


def write_protocol_report(folders: list[str | Path], out: str | Path) -> Path:
    """papers.csv and table.md of :func:`protocol_table` in ``out``, the stores' gaps under the table;
    return table.md."""
    out = Path(out)
    table = protocol_table(folders)
    gaps = [gap for folder in folders for gap in store_gaps(Path(folder))]  # checked before anything is written
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "papers.csv", table.to_csv(index=False))
    presets = sorted({p for p in table["preset"] if p})
    has_mann = (table["model"] == model_label("mann")).any()
    lines = [
        "# The papers' protocol: our figures beside the published ones", "",
        "Test query accuracy (%) on the harness's 1,000 fixed test episodes per N and K (the same episodes for "
        "every model), ± 95% CI over the episodes; one seed per cell. " + sources_note(table["source"])
        + (" The MANN has no published N-way K-shot figure on this protocol." if has_mann else ""), "",
        table.to_markdown(index=False, disable_numparse=True), "",
        *gap_lines(gaps, table, out),
        "Each preset reproduces its rows (a fresh clone resumes unfinished cells from the carried checkpoints):", "",
        "```", *[f"mann sweep --preset {p}" for p in presets], "```", "",
        "This table:", "", "```",
        "mann report --papers " + " ".join(str(Path(f)) for f in folders) + f" --out {out}", "```", "",
    ]
    atomic_write_text(out / "table.md", "\n".join(lines))
    return out / "table.md"

