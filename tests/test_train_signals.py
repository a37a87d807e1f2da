"""`mann train` stopped by SIGTERM (a job's time limit, `kill`) or Ctrl-C: it finishes the
step it is in, writes a checkpoint at that step, says where it stopped and exits 128 + the
signal's number; `--resume` then gives the numbers of a run that was never stopped. Run as
real processes, since signals are what is tested."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, pattern_store
from mann.signals import Stopped, stop_at_safe_point

# mann train on a synthetic store pickled by the test, not Omniglot
DRIVER = """
import pickle, sys
import mann.commands.train
from mann.commands import main
with open(sys.argv[1], "rb") as f:
    store = pickle.load(f)
mann.commands.train.load_store = lambda args: store
sys.exit(main(sys.argv[2:]))
"""

# Long enough that the signal lands mid-run; no checkpoint by steps or clock but the last one,
# so the only checkpoint a stopped run can have is the one the signal made.
STEPS = 1500
FLAGS = ["-N", "2", "-K", "1", "-B", "2", "--hidden", "8", "--steps", str(STEPS), "--eval-every", "50",
         "--checkpoint-every", str(STEPS), "--checkpoint-minutes", "0", "--val-episodes", "4",
         "--test-episodes", "20", "--device", "cpu", "--threads", "1", "--quiet"]
SAME = ("test_accuracy", "test_ci95", "test_loss", "final_train_loss", "val_accuracy", "steps")


@pytest.fixture(scope="module")
def store_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "store.pkl"
    path.write_bytes(pickle.dumps(pattern_store()))
    return path


@pytest.fixture(scope="module")
def whole(store_file, tmp_path_factory) -> Path:
    """The run never stopped."""
    out = tmp_path_factory.mktemp("whole") / "run"
    proc = start(store_file, out)
    assert proc.wait(timeout=300) == 0, proc.communicate()[1]
    return out


def start(store_file: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(store_file), "train", "--out", str(out), *FLAGS,
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_once_training(proc: subprocess.Popen, out: Path, signum: int) -> tuple[int, str]:
    deadline = time.monotonic() + 120
    while not (out / "log.csv").exists():  # past its first evaluation: mid-run
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no log.csv in 120 s"
        time.sleep(0.01)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def outcome(out: Path) -> tuple:
    summary = json.loads((out / "summary.json").read_text())
    return tuple(summary.get(k) for k in SAME)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_keeps_its_last_step_and_resumes_to_the_same_numbers(signum, store_file, whole, tmp_path):
    code, err = stop_once_training(start(store_file, tmp_path / "cut"), tmp_path / "cut", signum)
    assert code == 128 + signum, err
    assert "stopping after this step, with a checkpoint" in err
    [stopped] = [line for line in err.splitlines() if line.startswith("mann: stopped by")]
    step = int(stopped.split("after step ")[1].split()[0])
    assert 50 <= step < STEPS, stopped
    assert "--resume" in stopped and str(tmp_path / "cut") in stopped
    state = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert state["step"] == step  # the stop's own checkpoint, not an older one
    assert not (tmp_path / "cut" / "summary.json").exists()

    resumed = start(store_file, tmp_path / "cut", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[1]
    assert outcome(tmp_path / "cut") == outcome(whole)


def test_the_first_signal_waits_for_the_safe_point_a_second_stops_at_once(capsys):
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(Stopped) as stop:
        with stop_at_safe_point("finishing the step") as received:
            assert received() is None
            os.kill(os.getpid(), signal.SIGINT)  # recorded: the block goes on
            assert received() == signal.SIGINT
            assert "SIGINT: finishing the step" in capsys.readouterr().err
            os.kill(os.getpid(), signal.SIGINT)  # an impatient second Ctrl-C
            pytest.fail("the second signal did not stop the block")
    assert stop.value.exit_status == 130
    assert signal.getsignal(signal.SIGINT) is previous  # Ctrl-C is KeyboardInterrupt again after
