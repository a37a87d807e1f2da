"""The trainer: results, determinism, resume, and refusing to overwrite runs."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from episodes import UsageError
from conftest import train_cut_at, train_on
from mann.training.config import make_config
from mann.models.mann import MANN

TINY = dict(ways=3, shots=1, hidden=16, steps=40, batch_size=8, eval_every=10, val_episodes=20,
            test_episodes=50, checkpoint_every=20, device="cpu")


def test_summary_log_and_model_are_written(store, tmp_path):
    summary = train_on(make_config(**TINY), store, tmp_path, progress=False)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["test_accuracy"] == summary["test_accuracy"]
    assert 0.0 <= saved["test_accuracy"] <= 1.0 and saved["test_ci95"] > 0
    for key in ("train_fingerprint", "test_fingerprint", "steps_per_s", "train_time_s", "device", "torch"):
        assert key in saved
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40]
    model = MANN(3, 2, 16)
    model.load_state_dict(torch.load(tmp_path / "model.pt"))  # the reference model loads it


def test_same_seed_same_numbers(store, tmp_path):
    a = train_on(make_config(**TINY), store, tmp_path / "a", progress=False)
    b = train_on(make_config(**TINY), store, tmp_path / "b", progress=False)
    c = train_on(make_config(**{**TINY, "seed": 1}), store, tmp_path / "c", progress=False)
    assert a["test_accuracy"] == b["test_accuracy"] and a["final_train_loss"] == b["final_train_loss"]
    assert a["final_train_loss"] != c["final_train_loss"]


def test_resume_continues_exactly(store, tmp_path):
    straight = train_on(make_config(**TINY), store, tmp_path / "straight", progress=False)
    train_on(make_config(**{**TINY, "steps": 20}), store, tmp_path / "split", progress=False)
    (tmp_path / "split" / "summary.json").unlink()
    resumed = train_on(make_config(**TINY), store, tmp_path / "split", resume=True, progress=False)
    assert resumed["final_train_loss"] == straight["final_train_loss"]
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    # The time a resumed run reports includes the training its checkpoint carried over.
    assert (straight["resumed_from_step"], resumed["resumed_from_step"]) == (0, 20)
    assert 0 < resumed["resumed_train_time_s"] <= resumed["train_time_s"]
    a = torch.load(tmp_path / "straight" / "model.pt")
    b = torch.load(tmp_path / "split" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_cut_off_between_step_checkpoints_resumes_from_its_last_minutes(store, tmp_path):
    # A slow run checkpoints by the clock too: cut off at step 25 with checkpoints due every
    # 1,000 steps, it resumes from step 24 (not 0) and ends with the uninterrupted run's numbers.
    config = make_config(**{**TINY, "checkpoint_every": 1000, "checkpoint_minutes": 1e-9})
    straight = train_on(config, store, tmp_path / "straight", progress=False)
    train_cut_at(config, store, tmp_path / "cut", 25)
    resumed = train_on(config, store, tmp_path / "cut", resume=True, progress=False)
    assert resumed["resumed_from_step"] == 24
    assert (resumed["final_train_loss"], resumed["test_accuracy"]) == (straight["final_train_loss"],
                                                                       straight["test_accuracy"])
    with pytest.raises(UsageError, match="--checkpoint-minutes -1"):
        make_config(**{**TINY, "checkpoint_minutes": -1})


def test_finished_run_is_never_overwritten(store, tmp_path):
    train_on(make_config(**TINY), store, tmp_path, progress=False)
    before = (tmp_path / "summary.json").read_bytes()
    with pytest.raises(UsageError, match="already holds a finished run"):
        train_on(make_config(**TINY), store, tmp_path, progress=False)
    assert (tmp_path / "summary.json").read_bytes() == before


def test_resume_with_another_config_is_refused(store, tmp_path):
    train_on(make_config(**{**TINY, "steps": 20}), store, tmp_path, progress=False)
    with pytest.raises(UsageError, match="another config.*hidden"):
        train_on(make_config(**{**TINY, "hidden": 32}), store, tmp_path, resume=True, progress=False)


def test_stock_and_fast_paths_train_the_same(store, tmp_path):
    fast = train_on(make_config(**TINY), store, tmp_path / "fast", progress=False)
    stock = train_on(make_config(**{**TINY, "fast": False}), store, tmp_path / "stock", progress=False)
    assert abs(fast["final_train_loss"] - stock["final_train_loss"]) < 1e-4


def test_a_few_hundred_steps_learn_on_easy_synthetic_tasks(easy_store, tmp_path):
    config = make_config(**{**TINY, "ways": 2, "hidden": 64, "steps": 400, "batch_size": 64, "lr": 3e-3, "eval_every": 100,
                            "test_episodes": 200})
    summary = train_on(config, easy_store, tmp_path, progress=False)
    assert summary["test_accuracy"] > 0.65  # chance is 0.5
