"""Result tables from finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from episodes import UsageError
from mann.commands import main
from mann.reporting.tables import collect


def fake_run(folder, ways, shots, acc, ci):
    folder.mkdir(parents=True)
    row = {"ways": ways, "shots": shots, "hidden": 128, "seed": 0, "steps": 100, "test_accuracy": acc,
           "test_ci95": ci, "test_episodes": 1000, "train_time_s": 120.0, "steps_per_s": 50.0, "device": "cpu"}
    (folder / "summary.json").write_text(json.dumps(row))


def test_report_tabulates_every_run_with_ci_and_target(tmp_path, capsys):
    fake_run(tmp_path / "runs" / "a", 2, 1, 0.934, 0.0123)
    fake_run(tmp_path / "runs" / "b", 4, 1, 0.61, 0.02)
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--command", "make it"]) == 0
    md = (tmp_path / "out" / "table.md").read_text()
    assert "93.4 ± 1.2" in md and "61.0 ± 2.0" in md and "> 90%" in md and "make it" in md
    assert len(collect(tmp_path / "runs")) == 2
    assert (tmp_path / "out" / "runs.csv").read_text().count("\n") == 3


def test_report_tells_runs_on_different_splits_apart(tmp_path):
    fake_run(tmp_path / "runs" / "finn", 2, 1, 0.95, 0.01)
    fake_run(tmp_path / "runs" / "standard", 2, 1, 0.91, 0.01)
    for name, extra in [("finn", {"split": "cs330", "rotations": True}), ("standard", {"split": "vinyals"})]:
        path = tmp_path / "runs" / name / "summary.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **extra}))
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    rows = {line.split("|")[1].strip(): line for line in (tmp_path / "out" / "table.md").read_text().splitlines()[2:]
            if line.startswith("|")}
    assert "cs330 + rotations" in rows["finn"] and "vinyals" in rows["standard"]
    # the handout's targets are for the assignment's runs only: plain cs330, no rotations
    assert "> 90%" not in rows["finn"] and "> 90%" not in rows["standard"]


def test_report_of_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(UsageError, match="no finished runs"):
        collect(tmp_path)


# ------------------------------------------------------------------------------------ sweep result stores

def fake_sweep(folder, accuracies, ci=0.02, failed=()):
    """A sweep store with made-up rows: accuracies[(ways, shots, hidden)] = one accuracy per seed."""
    from mann.sweep.grid import expand, spec_from_mapping
    from mann.sweep.store import ResultStore

    seeds = max(len(v) for v in accuracies.values())
    spec = spec_from_mapping({"ways": [2, 3], "shots": [1, 2], "hidden": [8, 128], "seeds": list(range(seeds)),
                              "steps": 100}, "test", name="fake")
    cells = expand(spec)
    store = ResultStore(folder)
    with store.open_for(cells, spec.to_dict()):
        for cell in cells:
            c = cell.config
            accs = accuracies.get((c.ways, c.shots, c.hidden), [])
            row = {"cell": cell.id, **c.to_dict(), "wall_s": 10.0, "error": None}
            if cell.id in failed or c.seed >= len(accs):
                store.add({**row, "status": "failed", "error": "RuntimeError: boom"}, None)
                continue
            log = "step,train_loss,train_acc,val_loss,val_acc,wall_s\n50,1.0,0.4,1.0,0.4,1\n100,0.8,0.6,0.8,0.6,2\n"
            store.add({**row, "status": "ok", "test_accuracy": accs[c.seed], "test_ci95": ci,
                       "final_train_loss": 0.5, "train_time_s": 9.0}, log)
        store.add_session({"command": "mann sweep --fake", "wall_s": 90.0, "host": "h", "executor": "SerialExecutor"})
    return store


def test_sweep_tables_pivot_n_by_k_per_hidden_with_seed_ci_computed_by_hand(tmp_path, capsys):
    from mann.reporting.tables import aggregate_seeds, collect_sweep, pivot_tables

    accuracies = {(n, k, h): [0.5, 0.6, 0.7] for n in (2, 3) for k in (1, 2) for h in (8, 128)}
    accuracies[(3, 2, 128)] = [0.9]  # seeds 1 and 2 of this cell failed: its CI is the test-episode one
    fake_sweep(tmp_path / "fake", accuracies, ci=0.0123)
    groups = aggregate_seeds(collect_sweep(tmp_path / "fake"))
    tables = pivot_tables(groups)
    assert list(tables) == ["hidden = 8", "hidden = 128"]  # a MANN-only sweep: one table per hidden size
    for table in tables.values():
        assert table.shape == (2, 2) and list(table.index) == [2, 3] and list(table.columns) == ["K=1", "K=2"]
    # mean 0.6, sample std 0.1, t(0.975, 2) = 4.303: 4.303 * 0.1 / sqrt(3) = 0.24844 -> "60.0 ± 24.8"
    # (the normal factor 1.96 would claim ± 11.3: far too sure for three seeds)
    assert tables["hidden = 8"].loc[2, "K=1"] == "60.0 ± 24.8"
    assert tables["hidden = 128"].loc[3, "K=2"] == "90.0 ± 1.2 (1 seed)"
    assert main(["report", str(tmp_path / "fake")]) == 0
    md = (tmp_path / "fake" / "table.md").read_text()
    assert "## hidden = 8" in md and "## hidden = 128" in md and "60.0 ± 24.8" in md
    assert "mann sweep --fake" in md and "Total wall time: 1.5 min" in md
    assert md.count("RuntimeError: boom") == 2  # the two failed cells are listed
    assert (tmp_path / "fake" / "table_H8.csv").read_text().splitlines()[0] == "N,K=1,K=2"
    for name in ("accuracy_vs_ways.png", "accuracy_vs_hidden.png", "learning_curves.png"):
        assert (tmp_path / "fake" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learning_curves_keep_models_apart_and_average_only_seeds(tmp_path):
    import pandas as pd

    from mann.reporting.plots import curve_lines, learning_curves

    cells = [("proto", "protonet", 0, 0, 0.9), ("maml", "maml-cnn", 0, 0, 0.5),
             ("mann0", "mann", 128, 0, 0.2), ("mann1", "mann", 128, 1, 0.4)]
    rows = pd.DataFrame([{"cell": c, "model": m, "ways": 5, "shots": 1, "hidden": h, "seed": s}
                         for c, m, h, s, _ in cells])
    logs = {}
    for cell, _, _, _, acc in cells:
        logs[cell] = tmp_path / f"{cell}.csv"
        logs[cell].write_text(f"step,val_acc\n100,{acc}\n200,{acc}\n")
    lines = curve_lines(learning_curves(logs, rows, ["model"]), ["model"])[(5, 1)]
    # Two models without a hidden size share N, K and hidden = 0: each keeps its own line, by name.
    assert {label: [round(a, 9) for a in acc] for label, acc in lines.items()} == {
        "maml-cnn": [50.0, 50.0], "mann H=128 (2 seeds)": [30.0, 30.0], "protonet": [90.0, 90.0]}
    mann_only = rows[rows["model"] == "mann"]
    mann_logs = {cell: logs[cell] for cell in mann_only["cell"]}
    assert list(curve_lines(learning_curves(mann_logs, mann_only))[(5, 1)]) == ["H=128 (2 seeds)"]


def test_accuracy_against_n_takes_every_n_a_model_was_tested_at():
    import pandas as pd

    from mann.reporting.tables import rows_per_test

    rows = pd.DataFrame([
        {"cell": "proto", "ways": 5, "also_test_ways": [20], "test_accuracy": 0.987, "test_ci95": 0.003,
         "test_accuracy_N20": 0.949, "test_ci95_N20": 0.004},
        {"cell": "mann", "ways": 5, "also_test_ways": float("nan"), "test_accuracy": 0.6, "test_ci95": 0.014,
         "test_accuracy_N20": float("nan"), "test_ci95_N20": float("nan")},
    ])
    tests = rows_per_test(rows)
    assert list(zip(tests["cell"], tests["ways"], tests["test_accuracy"], tests["test_ci95"])) == [
        ("proto", 5, 0.987, 0.003), ("proto", 20, 0.949, 0.004), ("mann", 5, 0.6, 0.014)]


def test_sweep_report_can_go_elsewhere_and_run_folders_still_need_out(tmp_path):
    fake_sweep(tmp_path / "fake", {(2, 1, 8): [0.7]})
    assert main(["report", str(tmp_path / "fake"), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "table.md").exists() and (tmp_path / "elsewhere" / "cells.csv").exists()
    fake_run(tmp_path / "runs" / "a", 2, 1, 0.9, 0.01)
    assert main(["report", str(tmp_path / "runs")]) == 2


def test_intervals_over_a_few_seeds_use_students_t_and_over_many_episodes_the_normal():
    from mann.stats import mean_ci95, mean_ci95_t

    # Hand computation: values 1, 2, 3 -> mean 2, sample std 1, t(0.975, 2) = 4.303.
    mean, ci = mean_ci95_t([1.0, 2.0, 3.0])
    assert mean == 2.0 and ci == pytest.approx(4.303 / 3 ** 0.5, rel=1e-6)
    # Beyond the table: t(0.975, 39) = 2.0227 (tables), t(0.975, 999) = 1.9623 ~ the normal's 1.96.
    values = np.array([0.0, 1.0] * 20)
    assert mean_ci95_t(values)[1] == pytest.approx(2.0227 * values.std(ddof=1) / 40 ** 0.5, rel=1e-4)
    many = np.arange(1000.0)
    assert mean_ci95_t(many)[1] == pytest.approx(mean_ci95(many)[1] * 1.9623 / 1.96, rel=1e-4)
    with pytest.raises(ValueError):
        mean_ci95_t([0.5])


def test_total_wall_time_counts_a_killed_invocation_up_to_its_last_cell(tmp_path):
    import pandas as pd

    from mann.reporting.tables import session_lines
    from mann.sweep.store import ResultStore

    store = ResultStore(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    # A first invocation killed after two cells (its last line says "running"), then one that finished.
    for wall, status in ((0.0, "running"), (600.0, "running"), (1200.0, "running")):
        store.add_session({"session": "a", "command": "mann sweep --preset cs330", "wall_s": wall, "status": status})
    store.add_session({"session": "b", "command": "mann sweep --preset cs330", "wall_s": 300.0, "status": "finished"})
    store.add_session({"command": "mann sweep --preset cs330", "wall_s": 60.0})  # a line from before session ids
    assert [s["wall_s"] for s in store.sessions()] == [1200.0, 300.0, 60.0]
    rows = pd.DataFrame({"wall_s": [100.0, 200.0]})
    text = "\n".join(session_lines(store.sessions(), rows))
    assert "Total wall time: 26.0 min over 3 invocations, 1 of them stopped before the end" in text
    assert "add up to 5.0 min" in text


def test_papers_table_puts_each_test_beside_its_published_figure():
    import pandas as pd

    from mann.reporting.papers import papers_table

    rows = pd.DataFrame([{
        "status": "ok", "model": "protonet", "ways": 5, "shots": 1, "seed": 0, "split": "vinyals", "test_fingerprint": "cc8b4f0307",
        "test_accuracy": 0.985, "test_ci95": 0.004, "also_test_ways": [20], "test_accuracy_N20": 0.95,
        "test_ci95_N20": 0.003, "steps": 1_000_000, "stopped_step": 41_000, "best_step": 21_000,
        "refit_steps": 41_000, "wall_s": 7200.0,
    }, {  # without early stopping: the recipe's last weights, and those of the best validation loss beside them
        "status": "ok", "model": "maml-cnn", "ways": 20, "shots": 1, "seed": 0, "split": "vinyals",
        "test_fingerprint": "cc8b4f0307", "test_accuracy": 0.902, "test_ci95": 0.005, "steps": 60_000,
        "best_val_step": 52_000, "best_val_test_accuracy": 0.931, "best_val_test_ci95": 0.004, "wall_s": 3600.0,
    }])
    table = papers_table(rows)
    assert list(zip(table["N"], table["ours % (95% CI)"], table["published %"], table["ours − published"])) == [
        (5, "98.5 ± 0.4", "98.8", "-0.3"), (20, "95.0 ± 0.3", "96.0", "-1.0"), (20, "90.2 ± 0.5", "95.8 ± 0.3", "-5.6")]
    assert table["at best val loss %"].tolist() == ["", "", "93.1 ± 0.4 (step 52,000)"]
    assert table["steps"].tolist() == [41_000, 41_000, 60_000] and table["hours"].tolist() == [2.0, 2.0, 1.0]


def test_a_table_footnotes_only_the_papers_it_cites():
    from mann.reporting.papers import sources_note

    maml_only = sources_note(["Finn et al. 2017", "Finn et al. 2017", ""])
    assert "Finn et al. (2017)" in maml_only and "Snell" not in maml_only
    assert "Snell et al. (2017)" in sources_note(["Snell et al. 2017", "Finn et al. 2017"])
    assert sources_note(["", ""]) == ""  # the MANN's rows: no paper to cite


def test_papers_protocol_table_joins_stores_finished_training_and_missing_cells(tmp_path, capsys):
    # One row per published cell across the presets' stores: a finished cell's figure beside the
    # paper's, a carried cell's progress, and "not run" for cells no store makes.
    from mann.reporting.protocol import protocol_table
    from mann.sweep.store import append_jsonl

    def store(name: str, cells: dict) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "sweep.json").write_text(json.dumps({"name": name, "cells": cells}))
        return folder

    proto = {"model": "protonet", "ways": 5, "shots": 1, "split": "vinyals", "also_test_ways": [20], "lr": 1e-3,
             "lr_halve_every": 2000, "patience": 200}
    protonets = store("protonets-omniglot", {"p1": proto, "p5": {**proto, "shots": 5}})
    append_jsonl(protonets / "results.jsonl", {
        "cell": "p1", "status": "ok", "model": "protonet", "ways": 5, "shots": 1, "seed": 0, "split": "vinyals",
        "hidden": None, "test_fingerprint": "cc8b4f0307", "test_accuracy": 0.987, "test_ci95": 0.004,
        "also_test_ways": [20], "test_accuracy_N20": 0.958, "test_ci95_N20": 0.003, "steps": 1_000_000,
        "stopped_step": 30_000, "best_step": 10_000, "refit_steps": 30_000, "wall_s": 36000.0})
    (protonets / "checkpoints" / "p5").mkdir(parents=True)
    (protonets / "checkpoints" / "p5" / "log.csv").write_text(
        "step,val_loss,val_acc,wall_s\n100,0.5,0.9,360\n200,0.2,0.97,720\n300,0.3,0.96,1080\n")
    mann_cell = {"model": "mann", "ways": 5, "shots": 1, "split": "vinyals", "lr": 1e-3}
    mann = store("mann-omniglot", {"m1": mann_cell, "m5": {**mann_cell, "shots": 5}})
    (mann / "checkpoints" / "m5").mkdir(parents=True)
    (mann / "checkpoints" / "m5" / "checkpoint.pt").write_bytes(b"")  # saved before its first evaluation
    maml = store("maml-omniglot", {"c1": {"model": "maml-cnn", "ways": 5, "shots": 1, "split": "vinyals",
                                          "lr": 1e-3, "lr_halve_every": 100, "patience": 2, "eval_every": 100,
                                          "refit": True}})
    (maml / "checkpoints" / "c1").mkdir(parents=True)
    (maml / "checkpoints" / "c1" / "log.csv").write_text(
        "step,val_loss,val_acc,wall_s\n100,0.5,0.9,3600\n200,0.6,0.9,7200\n300,0.7,0.9,10800\n")
    (maml / "checkpoints" / "c1" / "log_refit.csv").write_text("step,val_loss,val_acc,wall_s\n100,,,1800\n")

    table = protocol_table([protonets, mann, maml]).set_index(["model", "N", "K"])
    # A cell in its refit has trained for phase 1's hours and the refit's so far.
    assert table.loc[("maml-cnn", 5, 1), ["status", "hours", "split"]].tolist() == [
        "refit on trainval: step 300, refit step 100 of 300, best val loss at step 100 (val acc 90.0%)", 3.5, "vinyals"]
    from mann.reporting.progress import progress_rows
    assert progress_rows(maml)["lr now"].tolist() == [5e-4]  # the refit's own schedule, halved once at its step 100
    assert table.loc[("protonet", 5, 1), ["status", "ours % (95% CI)", "published %", "ours − published",
                                          "steps", "hours"]].tolist() == [
        "finished", "98.7 ± 0.4", "98.8", "-0.1", "30000", 10.0]
    assert table.loc[("protonet", 20, 1), "ours − published"] == "-0.2"
    assert table.loc[("protonet", 20, 5), "status"] == (
        "train (early stopping on val): step 300, best val loss at step 200 (val acc 97.0%)")
    assert table.loc[("mann", 5, 1), "status"] == "not started"
    assert table.loc[("mann", 5, 5), "status"] == "started: no validation yet"
    assert table.loc[("maml-cnn", 20, 5), ["status", "published %"]].tolist() == [
        "not run (no cell of the stores given)", "98.9 ± 0.2"]
    assert list(table.index.get_level_values("model").unique()) == ["protonet", "maml-cnn", "mann", "maml-fc"]
    assert "at best val loss %" not in table.columns  # no finished cell here tested best-validation weights

    assert main(["report", "--papers", str(protonets), str(mann), "--out", str(tmp_path / "out")]) == 0
    assert "mann sweep --preset protonets-omniglot" in (tmp_path / "out" / "table.md").read_text()
    assert (tmp_path / "out" / "papers.csv").read_text().count("\n") == len(table) + 1
    for argv, message in [
        ([str(protonets), str(mann)], "pass --papers to combine"),
        (["--papers", str(protonets)], "--papers needs --out"),
        (["--papers", str(tmp_path), "--out", str(tmp_path / "o2")], "is not a sweep store"),
    ]:
        assert main(["report", *argv]) == 2
        assert message in capsys.readouterr().err


def test_papers_report_prints_each_stores_measured_gap_reasons_and_refuses_bad_ones(tmp_path, capsys):
    # A reader of the papers' table finds, under it, why a cell is off its paper, linked to the run that shows it.
    from mann.sweep.store import append_jsonl

    store = tmp_path / "results" / "maml-omniglot"
    store.mkdir(parents=True)
    cell = {"model": "maml-fc", "ways": 5, "shots": 1, "split": "vinyals", "lr": 1e-3}
    (store / "sweep.json").write_text(json.dumps({"name": "maml-omniglot", "cells": {"f1": cell}}))
    append_jsonl(store / "results.jsonl", {
        "cell": "f1", "status": "ok", **cell, "seed": 0, "hidden": None, "test_fingerprint": "cc8b4f0307",
        "test_accuracy": 0.8746, "test_ci95": 0.0114, "steps": 60000, "wall_s": 5000.0, "batch_size": 32,
        "final_train_loss": 0.2, "train_time_s": 5000.0, "test_episodes": 1000})
    evidence = tmp_path / "results" / "maml-fc-split" / "README.md"
    evidence.parent.mkdir()
    evidence.write_text("the run")
    gap = 'model = "maml-fc"\nN = 5\nK = 1\nreason = "the split"\nevidence = "../maml-fc-split/README.md"\n'
    (store / "gaps.toml").write_text("[[gap]]\n" + gap)
    out = tmp_path / "results" / "papers-protocol"
    assert main(["report", "--papers", str(store), "--out", str(out)]) == 0
    md = (out / "table.md").read_text()
    assert "- maml-fc 5-way 1-shot (-2.2): the split ([../maml-fc-split/README.md](../maml-fc-split/README.md))" in md
    assert main(["report", str(store)]) == 0  # the store's own report, linked from the store
    assert "- maml-fc 5-way 1-shot (-2.2): the split ([../maml-fc-split/README.md]" in (store / "table.md").read_text()

    for text, message in [
        ("[[gap]]\n" + gap.replace("K = 1", "K = 5"), "maml-fc 5-way 5-shot is not a test of this store's cells"),
        ("[[gap]]\n" + gap.replace("reason", "why"), "unknown field(s) why; missing reason"),
        ("[[gap]]\n" + gap.replace("maml-fc-split", "nowhere"), "evidence '../nowhere/README.md' is not a file"),
        ("[[gap]]\n" + gap.replace("N = 5", 'N = "5"'), "N = '5' should be a whole number"),
        ("[[gaps]]\n" + gap, "unknown table or key(s) gaps; write each gap as a [[gap]] table"),
    ]:
        (store / "gaps.toml").write_text(text)
        (out / "table.md").write_text("kept")
        assert main(["report", "--papers", str(store), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert (out / "table.md").read_text() == "kept"  # refused before anything was rewritten


def test_tables_tell_runs_on_finn_et_als_tasks_apart():
    import pandas as pd

    from mann.reporting.tables import split_labels

    runs = pd.DataFrame({"split": ["vinyals", "cs330", "cs330", None],
                         "rotations": [False, True, True, None], "distinct_characters": [True, True, False, None]})
    assert split_labels(runs) == ["vinyals, distinct characters", "cs330 + rotations, distinct characters",
                                  "cs330 + rotations", "cs330"]
