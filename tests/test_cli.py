"""The ``mann`` command: one clear line and exit status 2 for every user mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from episodes import UsageError

from mann.commands import main


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "flags,match",
    [
        (["--ways", "1"], "--ways 1"),
        (["--shots", "0"], "--shots 0"),
        (["--shots", "20"], "K <= 19"),
        (["--batch-size", "0"], "--batch-size 0"),
        (["--hidden", "0"], "--hidden 0"),
        (["--split", "imagenet"], "--split 'imagenet'"),
        (["--device", "tpu"], "--device 'tpu'"),
        (["--ways", "101", "--split", "cs330"], "larger than the split's 100 classes"),
        (["--split", "vinyals", "--rotations"], "lists already hold every character at 0/90/180/270 degrees"),
        (["--split", "vinyals"], "vinyals needs the full Omniglot"),
        (["--batch-size", "8", "--micro-batch", "9"], "--micro-batch 9: more than the 8 episodes"),
        (["--distinct-characters"], "add --rotations, or drop --distinct-characters"),
        (["--ways", "101", "--rotations", "--distinct-characters"],
         "N (ways) = 101 distinct characters, but split cs330/val has 100; use --ways 100 or fewer"),
    ],
)
def test_bad_training_flags(flags, match, synthetic_root, tmp_path, capsys):
    code, out, err = run_cli(["train", "--out", str(tmp_path / "run"), "--data-root", str(synthetic_root), *flags], capsys)
    assert code == 2
    assert err.startswith("mann: error:") and match in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_data_root(tmp_path, capsys):
    code, _, err = run_cli(["train", "--out", str(tmp_path / "r"), "--data-root", str(tmp_path / "none"), "--no-download"], capsys)
    assert code == 2 and "OMNIGLOT_ROOT" in err


def test_unwritable_output_folder(tmp_path, synthetic_root, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(["train", "--out", str(blocker / "run"), "--data-root", str(synthetic_root)], capsys)
    assert code == 2 and "--out" in err and "cannot write" in err


def test_train_writes_summary_with_test_accuracy(tmp_path, synthetic_root, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        ["train", "-N", "2", "-K", "1", "--hidden", "8", "--steps", "20", "-B", "4", "--test-episodes", "30",
         "--val-episodes", "10", "--eval-every", "10", "--seed", "3", "--out", str(out),
         "--data-root", str(synthetic_root), "--quiet", "--device", "cpu"],
        capsys,
    )
    assert code == 0 and "test accuracy" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["test_accuracy"] <= 1 and summary["resize"] == "lanczos"


def test_data_shows_the_resize_and_why_a_split_is_unavailable(synthetic_root, capsys):
    code, out, _ = run_cli(["data", "--data-root", str(synthetic_root), "--resize", "nearest"], capsys)
    assert code == 0 and "28x28 (nearest resize)" in out
    assert "split cs330/trainval (seed 1): 1200 classes" in out
    # The synthetic tree's names are not Omniglot's, so the vinyals lists cannot be matched.
    assert "split vinyals: not available:" in out and "full Omniglot" in out


def test_a_run_gets_a_store_decoded_the_way_its_config_says(easy_store):
    from dataclasses import replace

    from mann.training import make_config, prepare_splits

    nearest = replace(easy_store, resize="nearest")
    with pytest.raises(UsageError, match="asks for --resize lanczos but the store was decoded with nearest"):
        prepare_splits(nearest, make_config("mann", 2, shots=1))
    splits = prepare_splits(nearest, make_config("mann", 2, shots=1, resize="nearest"))
    assert splits.resize == "nearest"


def test_console_script_is_installed(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "mann.commands", "train", "--ways", "0", "--out", str(tmp_path)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "mann: error: --ways 0" in result.stderr


def test_sweep_reproduce_line_keeps_a_non_default_resize():
    import argparse

    from mann.commands import sweep

    parser = argparse.ArgumentParser()
    sweep.add_parser(parser.add_subparsers())
    line = sweep.command_line(parser.parse_args(["sweep", "--split", "vinyals", "--resize", "nearest"]))
    assert "--resize nearest" in line and "--split vinyals" in line
    assert "--resize" not in sweep.command_line(parser.parse_args(["sweep", "--split", "vinyals"]))
    line = sweep.command_line(parser.parse_args(["sweep", "--split", "vinyals", "--distinct-characters"]))
    assert line.endswith("--distinct-characters")
    assert sweep.spec_from_args(parser.parse_args(["sweep", "--split", "vinyals", "--distinct-characters"])
                                ).settings["distinct_characters"] is True
