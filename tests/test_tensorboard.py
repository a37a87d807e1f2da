"""TensorBoard events beside log.csv: written when the tensorboard package is installed,
the same scalars as the log (resumed or not), and nothing at all without the package."""

from __future__ import annotations

import csv
import sys

import pytest

from conftest import train_cut_at, train_on
from mann.training.config import make_config
from mann.training.events import EVENTS_FILES, tensorboard_modules

TINY = dict(ways=3, shots=1, hidden=16, steps=40, batch_size=8, eval_every=10, val_episodes=20,
            test_episodes=50, checkpoint_every=20, device="cpu")
# best.pt: a run without early stopping keeps its best validation weights beside the last (model.pt).
RUN_FILES = {"log.csv", "checkpoint.pt", "model.pt", "best.pt", "summary.json", "summary.csv"}
COLUMNS = {"train/loss": "train_loss", "train/accuracy": "train_acc", "val/loss": "val_loss",
           "val/accuracy": "val_acc"}


@pytest.fixture
def tensorboard():
    if tensorboard_modules() is None:
        pytest.skip("the tensorboard package is not installed (pip install 'mann-bench[tensorboard]'); "
                    "its events are optional")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator


def scalars(accumulator_class, folder) -> dict[str, list[tuple[int, float]]]:
    accumulator = accumulator_class(str(folder))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_without_tensorboard_a_run_folder_holds_what_it_always_did(store, tmp_path, monkeypatch):
    for name in [n for n in sys.modules if n == "tensorboard" or n.startswith("tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what an absent package looks like to import
    assert tensorboard_modules() is None
    train_on(make_config(**TINY), store, tmp_path, progress=False)
    assert {p.name for p in tmp_path.iterdir()} == RUN_FILES


def test_every_log_row_is_a_tensorboard_event(store, tmp_path, tensorboard):
    train_on(make_config(**TINY), store, tmp_path, progress=False)
    assert {p.name for p in tmp_path.iterdir()} == RUN_FILES | {EVENTS_FILES[1]}
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    events = scalars(tensorboard, tmp_path)
    assert set(events) == set(COLUMNS)
    for tag, column in COLUMNS.items():
        assert [step for step, _ in events[tag]] == [int(r["step"]) for r in rows] == [10, 20, 30, 40]
        assert [value for _, value in events[tag]] == pytest.approx([float(r[column]) for r in rows], rel=1e-6)


def test_a_resumed_run_has_the_events_of_an_uninterrupted_one(store, tmp_path, tensorboard):
    train_on(make_config(**TINY), store, tmp_path / "straight", progress=False)
    # Cut after the log row of step 30, whose checkpoint (every 20 steps) was never made.
    train_cut_at(make_config(**TINY), store, tmp_path / "split", 35)
    assert [s for s, _ in scalars(tensorboard, tmp_path / "split")["val/loss"]] == [10, 20, 30]
    train_on(make_config(**TINY), store, tmp_path / "split", resume=True, progress=False)  # from step 20
    straight, resumed = scalars(tensorboard, tmp_path / "straight"), scalars(tensorboard, tmp_path / "split")
    assert resumed == straight and [s for s, _ in resumed["val/loss"]] == [10, 20, 30, 40]  # step 30 once


def test_the_events_file_grows_in_place_so_a_running_tensorboard_follows_it(tmp_path, tensorboard):
    # TensorBoard's reader keeps an events file open and reads on from where it stopped: a file
    # replaced by a new one (a new inode) would never show it the rows logged after it opened.
    from mann.sweep.run_files import read_files, write_files
    from mann.training.events import write_events

    def rows(n):
        return [{"step": 10 * i, "train_loss": 1 / i, "train_acc": 0.5, "val_loss": 1 / i, "val_acc": 0.5,
                 "wall_s": float(i)} for i in range(1, n + 1)]

    scratch, driver = tmp_path / "scratch", tmp_path / "driver"
    scratch.mkdir()
    inodes = []
    for n in (3, 6):
        path = write_events(scratch, rows(n), 1)
        write_files(driver, read_files(scratch))  # how a Ray cell's events reach the driver
        inodes.append((path.stat().st_ino, (driver / path.name).stat().st_ino))
    assert inodes[0] == inodes[1]
    assert [s for s, _ in scalars(tensorboard, driver)["val/loss"]] == [10, 20, 30, 40, 50, 60]
    write_events(scratch, rows(2), 1)  # a resume from an older checkpoint drops rows: the file is replaced
    write_files(driver, read_files(scratch))
    assert [s for s, _ in scalars(tensorboard, driver)["val/loss"]] == [10, 20]
