"""Result tables from finished runs."""

from __future__ import annotations

import json

import pytest

from episodes import UsageError
from mann.cli import main
from mann.report import collect


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


def test_report_of_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(UsageError, match="no finished runs"):
        collect(tmp_path)
