"""Bring your own model: a user's class trained through `mann train` and `mann sweep`, and every
mistake in naming or writing it refused in one line before training starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import train_cut_at, train_on
from episodes import UsageError
from mann.commands import main
from mann.sweep.store import ResultStore
from mann.training.config import make_config

PLUGIN = Path(__file__).resolve().parent / "plugins" / "gru_model.py"
SMALL = ["-N", "2", "-K", "1", "--hidden", "8", "--steps", "6", "-B", "4", "--eval-every", "3", "--val-episodes", "5",
         "--test-episodes", "10", "--device", "cpu", "--quiet"]


def test_mann_train_trains_a_class_from_a_file(synthetic_root, tmp_path, capsys):
    out = tmp_path / "gru"
    code = main(["train", "--model", f"{PLUGIN}:TinyGRU", *SMALL, "--out", str(out), "--data-root", str(synthetic_root)])
    stdout = capsys.readouterr().out
    assert code == 0 and "TinyGRU N=2 K=1 H=8: test accuracy" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == f"{PLUGIN}:TinyGRU" and summary["fast"] is None
    assert summary["parameters"] == 3 * 8 * (786 + 8) + 6 * 8 + 8 * 2 + 2
    assert [int(r.split(",")[0]) for r in (out / "log.csv").read_text().splitlines()[1:]] == [3, 6]


def test_same_seed_same_weights_and_resume_is_exact(store, tmp_path):
    config = make_config(f"{PLUGIN}:TinyGRU", 3, hidden=8, steps=8, batch_size=4, eval_every=4, checkpoint_every=3,
                         val_episodes=5, test_episodes=10, device="cpu")
    a = train_on(config, store, tmp_path / "a", progress=False)
    b = train_on(config, store, tmp_path / "b", progress=False)
    assert a["final_train_loss"] == b["final_train_loss"]
    train_cut_at(config, store, tmp_path / "c", 5)
    c = train_on(config, store, tmp_path / "c", resume=True, progress=False)
    assert (c["final_train_loss"], c["test_accuracy"]) == (a["final_train_loss"], a["test_accuracy"])


def test_a_sweep_over_the_mann_and_a_plugin(store, tmp_path):
    from mann.sweep.grid import spec_from_mapping
    from mann.sweep.run import run_sweep

    spec = spec_from_mapping({"models": ["mann", f"{PLUGIN}:TinyGRU"], "ways": [2], "shots": [1], "hidden": [8],
                              "seeds": [0], "steps": [4], "batch_size": [4], "val_episodes": 5, "test_episodes": 10,
                              "eval_every": 2}, "test", name="plug")
    outcome = run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert outcome.ran == 2 and not outcome.failed
    rows = ResultStore(tmp_path / "results" / "plug").latest()
    assert set(rows) == {"mann_N2_K1_H8_seed0", "TinyGRU_N2_K1_H8_seed0"}
    assert all(r["status"] == "ok" for r in rows.values())
    assert main(["report", str(tmp_path / "results" / "plug")]) == 0
    md = (tmp_path / "results" / "plug" / "table.md").read_text()
    assert "## TinyGRU, hidden = 8" in md and "## mann, hidden = 8" in md and "Side by side" in md


@pytest.mark.parametrize(
    "model,match",
    [
        ("nowhere.py:TinyGRU", "no file"),
        (f"{PLUGIN}:Missing", "has no class 'Missing'; its nn.Module classes: TinyGRU, WrongShape"),
        (f"{PLUGIN}:WrongShape", "forward returned (2, 2, 2) for 2 episodes of N=2, K=1; a black-box model returns"),
        (f"{PLUGIN}:NotAModule", "must be a torch.nn.Module with trainable parameters"),
        ("no_such_package.module:Model", "cannot import no_such_package.module"),
        (f"{PLUGIN}:", "name a class as path/to/file.py:ClassName"),
    ],
)
def test_a_broken_plugin_is_one_line_before_anything_is_written(model, match, synthetic_root, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--model", model, *SMALL, "--out", str(out), "--data-root", str(synthetic_root)])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_plugin_is_refused_hyperparameters_of_other_models():
    with pytest.raises(UsageError, match="--fast-lr 0.4: applies to gradient models only, not TinyGRU"):
        make_config(f"{PLUGIN}:TinyGRU", 2, fast_lr=0.4)
