"""``mann test``: saved weights, finished or mid-training, score what their run reports on the same episodes."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import train_cut_at, train_on
from episodes import UsageError
from mann.commands import main
from mann.reporting.saved_tests import score_saved_weights
from mann.training.config import make_config

TINY = dict(ways=3, shots=1, hidden=16, steps=40, batch_size=8, eval_every=10, val_episodes=20,
            test_episodes=50, checkpoint_every=20, device="cpu")


def scored(paths, store, **kwargs) -> pd.DataFrame:
    return score_saved_weights([str(p) for p in paths], lambda resize: store, progress=False, **kwargs)


def test_a_finished_run_scores_its_summary_again(store, tmp_path):
    summary = train_on(make_config(**TINY), store, tmp_path, progress=False)
    [row] = scored([tmp_path], store).to_dict("records")
    assert row["test_accuracy"] == summary["test_accuracy"] and row["test_ci95"] == summary["test_ci95"]
    assert row["summary's %"] == row["test accuracy % (95% CI)"]
    assert (row["step"], row["N"], row["test episodes"], row["test fingerprint"]) == (40, 3, 50, summary["test_fingerprint"])


def test_a_checkpoint_mid_training_scores_what_a_run_of_its_length_reports(store, tmp_path):
    # Cut at step 25 of 40, the run's last checkpoint is step 20's: the weights a 20-step run ends with.
    train_cut_at(make_config(**TINY), store, tmp_path / "cut", 25)
    short = train_on(make_config(**{**TINY, "steps": 20}), store, tmp_path / "short", progress=False)
    for path in (tmp_path / "cut", tmp_path / "cut" / "checkpoint.pt"):
        [row] = scored([path], store).to_dict("records")
        assert (row["step"], row["of steps"], row["summary's %"]) == (20, 40, "")
        assert row["test_accuracy"] == short["test_accuracy"]


def test_other_episodes_and_n_where_the_model_allows(store, tmp_path):
    train_on(make_config("protonet", 3, shots=1, steps=3, batch_size=2, train_ways=5, val_episodes=10,
                         test_episodes=40, device="cpu"), store, tmp_path / "protonet", progress=False)
    table = scored([tmp_path / "protonet"], store, ways=(3, 7), episodes=30)
    assert list(table["N"]) == [3, 7] and set(table["test episodes"]) == {30}
    assert set(table["summary's %"]) == {""}  # not the episodes its run was tested on
    train_on(make_config(**{**TINY, "steps": 2}), store, tmp_path / "mann", progress=False)
    with pytest.raises(UsageError, match="--ways 7 .*output layer for N=3; test it at --ways 3"):
        scored([tmp_path / "mann"], store, ways=(7,))


def test_command_prints_and_writes_the_table_and_refuses_what_holds_no_weights(synthetic_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "-N", "2", "-K", "1", "--hidden", "8", "--steps", "10", "-B", "4", "--test-episodes", "20",
                 "--val-episodes", "10", "--eval-every", "5", "--out", str(run), "--data-root", str(synthetic_root),
                 "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["test", str(run), "--out", str(tmp_path / "table"), "--data-root", str(synthetic_root),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    written = pd.read_csv(tmp_path / "table" / "test.csv")
    assert list(written["step"]) == [10] and "test accuracy % (95% CI)" in out
    assert written["test accuracy % (95% CI)"][0] == written["summary's %"][0]
    assert main(["test", str(run), "--best", "--data-root", str(synthetic_root), "--quiet"]) == 0
    assert "best val loss" in capsys.readouterr().out
    assert main(["test", str(run), "--distinct-characters", "--data-root", str(synthetic_root), "--quiet"]) == 2
    assert "drop --distinct-characters, or add --rotations" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["test", str(empty), "--data-root", str(synthetic_root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mann: error:") and str(empty) in err and "checkpoint.pt" in err
    with pytest.raises(SystemExit) as usage:
        main(["test", str(run), "--episodes", "0", "--data-root", str(synthetic_root)])
    assert usage.value.code == 2 and "--episodes: 0 is less than 1" in capsys.readouterr().err


def test_best_scores_the_weights_of_the_best_validation_loss(store, tmp_path):
    # Without early stopping the run tests its last weights and keeps the best validation's beside them;
    # they are the weights a run stopped at that step ends with, finished or cut mid-training.
    summary = train_on(make_config(**TINY), store, tmp_path / "run", progress=False)
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    best_step = int(log["step"][log["val_loss"].idxmin()])
    assert summary["best_val_step"] == best_step < TINY["steps"]
    short = train_on(make_config(**{**TINY, "steps": best_step}), store, tmp_path / "short", progress=False)
    train_cut_at(make_config(**TINY), store, tmp_path / "cut", 25)
    # The run tests them itself too, so its summary reports both figures.
    assert (summary["best_val_test_accuracy"], summary["best_val_test_ci95"]) == (short["test_accuracy"],
                                                                                 short["test_ci95"])
    for path in (tmp_path / "run", tmp_path / "run" / "checkpoint.pt", tmp_path / "cut"):
        [row] = scored([path], store, best=True).to_dict("records")
        assert (row["step"], row["weights of"]) == (best_step, "best val loss")
        assert row["test_accuracy"] == short["test_accuracy"] and row["test_ci95"] == short["test_ci95"]
        # Only the finished run's summary holds a figure of these weights to repeat.
        assert (row["summary's %"] == row["test accuracy % (95% CI)"]) == (path == tmp_path / "run")
        assert row["summary's %"] in ("", row["test accuracy % (95% CI)"])
    [last] = scored([tmp_path / "run"], store).to_dict("records")
    assert (last["step"], last["weights of"], last["test_accuracy"]) == (40, "last step", summary["test_accuracy"])


def test_a_run_whose_last_validation_is_its_best_reports_one_figure_twice(store, tmp_path):
    summary = train_on(make_config(**{**TINY, "eval_every": 40}), store, tmp_path, progress=False)
    assert summary["best_val_step"] == 40
    assert (summary["best_val_test_accuracy"], summary["best_val_test_ci95"]) == (summary["test_accuracy"],
                                                                                 summary["test_ci95"])


def test_best_refuses_runs_that_kept_no_best_weights(store, tmp_path):
    import torch

    train_on(make_config(**TINY), store, tmp_path / "run", progress=False)
    (tmp_path / "run" / "best.pt").unlink()  # as a run finished before mann kept them
    with pytest.raises(UsageError, match=r"no best\.pt .*without --best"):
        scored([tmp_path / "run"], store, best=True)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    torch.save({**state, "best": {**state["best"], "model": None}}, checkpoint)
    with pytest.raises(UsageError, match="holds no best validation weights.*without --best"):
        scored([checkpoint], store, best=True)
    train_on(make_config("protonet", 3, shots=1, steps=4, batch_size=2, eval_every=2, patience=1, refit=True,
                         val_episodes=10, test_episodes=20, device="cpu"), store, tmp_path / "refit", progress=False)
    with pytest.raises(UsageError, match="refit run .*Test it without --best"):
        scored([tmp_path / "refit"], store, best=True)


def test_distinct_characters_scores_other_episodes_and_refuses_splits_without_rotations(store, tmp_path):
    summary = train_on(make_config(**{**TINY, "rotations": True}), store, tmp_path / "rotated", progress=False)
    [own] = scored([tmp_path / "rotated"], store).to_dict("records")
    [finn] = scored([tmp_path / "rotated"], store, distinct_characters=True).to_dict("records")
    assert own["classes of an episode"] == "distinct classes" and own["test_accuracy"] == summary["test_accuracy"]
    assert finn["classes of an episode"] == "distinct characters" and finn["summary's %"] == ""
    assert finn["test_accuracy"] != own["test_accuracy"] and finn["test fingerprint"] == own["test fingerprint"]
    # A run trained on such tasks is validated and tested on them too: that is its own test.
    trained = train_on(make_config(**{**TINY, "rotations": True, "distinct_characters": True}), store,
                       tmp_path / "finn", progress=False)
    for flag in (False, True):
        [row] = scored([tmp_path / "finn"], store, distinct_characters=flag).to_dict("records")
        assert row["classes of an episode"] == "distinct characters"
        assert row["test_accuracy"] == trained["test_accuracy"] and row["summary's %"] != ""
    train_on(make_config(**{**TINY, "steps": 2}), store, tmp_path / "plain", progress=False)
    with pytest.raises(UsageError, match=r"plain.*one class per character.*drop --distinct-characters"):
        scored([tmp_path / "rotated", tmp_path / "plain"], store, distinct_characters=True)
