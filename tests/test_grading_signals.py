"""`mann grade` stopped by SIGTERM (a supervisor, a job's time limit) or Ctrl-C
in the middle of a class: it exits 128 + the signal's number, leaves no temp
folder and no sandbox process behind, and writes the gradebook of everyone
graded so far. Run as a real process, since signals are what is tested."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from grading_variants import make_variant

RUBRIC = """
[grading]
seed = 3

[limits]
wall_s = 300
cpu_s = 30

[tests.data_shapes]
name = "shapes"
points = 2
episodes = 2
"""

# mann grade on the synthetic reference the tests use (pickled by the test), not Omniglot
DRIVER = """
import pickle, sys
import mann.commands.grade, mann.grading.reference
from mann.commands import main
with open(sys.argv[1], "rb") as f:
    reference = pickle.load(f)
mann.commands.grade.load_store = lambda args: reference.store
mann.grading.reference.build_reference = lambda *args, **kwargs: reference
sys.exit(main(sys.argv[2:]))
"""

# bob's loader says it has started, from inside the sandbox, then hangs there
HANG = """
import os as _os, time as _time
open(_os.path.join(_os.getcwd(), "STARTED"), "w").close()
_time.sleep(3600)
"""


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def started_marker(tmpdir: Path) -> Path | None:
    for folder, _, files in os.walk(tmpdir):  # links (the sandbox's site-packages view) not followed
        if "STARTED" in files:
            return Path(folder) / "STARTED"
    return None


def processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose command line holds ``text`` (the sandbox's server and tests name its root)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass  # gone meanwhile
    return pids


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_class_leaves_nothing_behind_but_its_gradebook(tmp_path, grading_reference, number):
    folder = tmp_path / "class"
    make_variant(folder / "alice", {})
    make_variant(folder / "bob", {}, {"load_data.py": HANG})
    (tmp_path / "rubric.toml").write_text(RUBRIC)
    with open(tmp_path / "reference.pickle", "wb") as f:
        pickle.dump(grading_reference, f)
    (tmp_path / "driver.py").write_text(DRIVER)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "reference.pickle"), "grade", str(folder),
         "--out", str(out), "--rubric", str(tmp_path / "rubric.toml"), "--quiet", "--jobs", "1"],  # alice, then bob
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # alice is graded, bob's test is running inside the sandbox
        wait_for(lambda: started_marker(tmpdir) or proc.poll() is not None, 300, "bob's test starting")
        assert proc.poll() is None, proc.communicate()
        assert processes_mentioning(str(tmpdir / "mann-grade-")), "the sandbox's server is not running"
        proc.send_signal(number)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + number, err
        assert f"stopped by {signal.Signals(number).name}: graded 1 of 2 submission(s)" in err
        assert sorted(p.name for p in tmpdir.iterdir() if p.name.startswith(("mann-grade-", "mann-staging-"))) == []
        assert processes_mentioning(str(tmpdir)) == []
        book = (out / "gradebook.csv").read_text().splitlines()
        assert [line.split(",")[0] for line in book[1:]] == ["alice"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in processes_mentioning(str(tmpdir)):  # what a failing run left: only this test's processes
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
