"""Sweeps: grid expansion, bad input refused before any work, resume, failure isolation,
atomic rows, and executors (worker processes, a local Ray) that reproduce the serial rows."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from episodes import UsageError
from mann.commands import build_parser, main
from mann.signals import Stopped
from mann.sweep.executors import ProcessExecutor, make_executor
from mann.commands.sweep import spec_from_args
from mann.sweep.grid import expand, preset_mapping, preset_names, spec_from_mapping
from mann.sweep.store import ResultStore, append_jsonl, read_jsonl
from mann.sweep.run import run_sweep

REPO = Path(__file__).resolve().parents[1]
TINY = {"steps": 20, "batch_size": 4, "val_episodes": 10, "test_episodes": 30, "eval_every": 10, "checkpoint_every": 10}
# Fields that must be equal however and wherever a cell ran.
SAME = ("status", "test_accuracy", "test_ci95", "test_loss", "final_train_loss", "val_accuracy", "steps",
        "test_fingerprint")


def tiny_spec(name="tiny", **axes):
    mapping = {"ways": [2, 3], "shots": [1], "hidden": [8], "seeds": [0, 1], **TINY, **axes}
    return spec_from_mapping(mapping, "test", name=name)


def outcome_rows(folder: Path) -> dict[str, tuple]:
    return {cell: tuple(row.get(k) for k in SAME) for cell, row in ResultStore(folder).latest().items()}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def serial(store, tmp_path_factory) -> Path:
    """The tiny sweep run once, in this process: the reference every other way of running must match."""
    root = tmp_path_factory.mktemp("serial")
    run_sweep(tiny_spec(), store, root / "results", root / "runs", progress=False)
    return root / "results" / "tiny"


# ------------------------------------------------------------------------------------------------ the grid

def test_blocks_expand_to_distinct_cells_in_order():
    spec = spec_from_mapping(
        {"seeds": [0, 1], "grid": [{"ways": [2], "shots": [1, 2]}, {"ways": [2, 3], "shots": [1]}]}, "test", name="g"
    )
    ids = [c.id for c in expand(spec)]
    assert ids == ["N2_K1_H128_seed0", "N2_K1_H128_seed1", "N2_K2_H128_seed0", "N2_K2_H128_seed1",
                   "N3_K1_H128_seed0", "N3_K1_H128_seed1"]  # N2_K1 appears in both blocks, once here


def test_an_axis_that_varies_names_the_cells():
    spec = spec_from_mapping({"ways": [2], "lr": [1e-3, 3e-3], "batch_size": [16]}, "test", name="g")
    assert [c.id for c in expand(spec)] == ["N2_K1_H128_seed0_lr0.001", "N2_K1_H128_seed0_lr0.003"]
    assert {c.config.batch_size for c in expand(spec)} == {16}


def test_cs330_preset_is_the_assignments_runs_plus_two_hidden_sizes():
    cells = expand(spec_from_mapping(preset_mapping("cs330"), "preset cs330"))
    assert len(cells) == 18
    assert {(c.config.shots, c.config.ways, c.config.hidden) for c in cells} == {
        (1, 2, 128), (2, 2, 128), (1, 3, 128), (1, 4, 128), (1, 3, 8), (1, 3, 256)}
    assert {c.config.seed for c in cells} == {0, 1, 2}
    assert {(c.config.steps, c.config.batch_size, c.config.lr, c.config.split) for c in cells} == {
        (25_000, 128, 1e-3, "cs330")}


def test_the_longest_cells_start_first_so_parallel_workers_finish_together(store, tmp_path):
    started = []

    class Recorder:
        def run(self, store, cells, run_dirs, emit):
            started.extend(c.id for c in cells)

    spec = spec_from_mapping({"seeds": [0], "steps": 20, "grid": [{"ways": [2], "shots": [1, 2]},
                                                                   {"ways": [3], "hidden": [8, 256]}]}, "test", name="o")
    run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", executor=Recorder(), progress=False)
    # H=256 costs most, then the longer sequences at H=128; H=8 is cheapest whatever its N.
    assert started == ["N3_K1_H256_seed0", "N2_K2_H128_seed0", "N2_K1_H128_seed0", "N3_K1_H8_seed0"]

    # order = "grid": a sweep that spans sessions takes its cells in the file's order.
    started.clear()
    in_order = spec_from_mapping({"seeds": [0], "steps": 20, "order": "grid",
                                  "grid": [{"ways": [2], "shots": [1, 2]}, {"ways": [3], "hidden": [8, 256]}]},
                                 "test", name="g")
    run_sweep(in_order, store, tmp_path / "results", tmp_path / "runs", executor=Recorder(), progress=False)
    assert started == ["N2_K1_H128_seed0", "N2_K2_H128_seed0", "N3_K1_H8_seed0", "N3_K1_H256_seed0"]
    with pytest.raises(UsageError, match="order 'fifo' is not one of costliest, grid"):
        spec_from_mapping({"order": "fifo"}, "test")


def test_flags_replace_an_axis_of_a_preset_everywhere():
    args = build_parser().parse_args(["sweep", "--preset", "cs330", "--seeds", "0", "--hidden", "64", "--steps", "2000"])
    spec = spec_from_args(args)
    cells = expand(spec)
    assert spec.name == "cs330-sweep"
    assert {(c.config.shots, c.config.ways) for c in cells} == {(1, 2), (2, 2), (1, 3), (1, 4)}
    assert {(c.config.hidden, c.config.seed, c.config.steps) for c in cells} == {(64, 0, 2000)}


def test_toml_file_describes_a_sweep(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('seeds = [3]\ntest_episodes = 40\ncheckpoint_minutes = 2.5\n\n[[grid]]\nways = [2, 5]\nshots = 1\nhidden = [8, 16]\n')
    spec = spec_from_args(build_parser().parse_args(["sweep", "--config", str(path)]))
    cells = expand(spec)
    assert spec.name == "mine" and len(cells) == 4
    assert {(c.config.ways, c.config.hidden, c.config.seed, c.config.test_episodes) for c in cells} == {
        (2, 8, 3, 40), (2, 16, 3, 40), (5, 8, 3, 40), (5, 16, 3, 40)}
    assert {c.config.checkpoint_minutes for c in cells} == {2.5}
    # How often a cell checkpoints is not part of what it computes: the flag keeps the cells' ids.
    quicker = expand(spec_from_args(build_parser().parse_args(["sweep", "--config", str(path),
                                                               "--checkpoint-minutes", "0.5"])))
    assert [(c.id, c.config.checkpoint_minutes) for c in quicker] == [(c.id, 0.5) for c in cells]


def test_the_same_flags_find_the_same_folder_and_other_flags_another():
    name = lambda *a: spec_from_args(build_parser().parse_args(["sweep", *a])).name  # noqa: E731
    assert name("--ways", "2", "3") == name("--ways", "2", "3")
    assert name("--ways", "2", "3") != name("--ways", "2", "4")
    assert set(preset_names()) == {"baselines", "cs330", "maml-omniglot", "mann-omniglot", "protonets-omniglot", "quick"}


# ------------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize(
    "flags,match",
    [
        (["--preset", "cs331"], "unknown preset.*cs330, maml-omniglot, mann-omniglot, protonets-omniglot, quick"),
        (["--ways", "2", "--shots", "1", "20"], "K <= 19"),
        (["--config", "{missing}"], "cannot read it"),
        (["--config", "{bad_toml}"], "not valid TOML"),
        (["--config", "{unknown_key}"], "unknown key 'hiden'"),
        (["--config", "{empty}"], "ways = \\[\\] is empty"),
        ([], "nothing to sweep"),
        (["--preset", "quick", "--config", "{empty}"], "choose one"),
        (["--ways", "2", "--name", "../up"], "sweep name"),
    ],
)
def test_bad_input_is_one_clear_line_before_anything_runs(flags, match, tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("ways = [2\n")
    (tmp_path / "key.toml").write_text("ways = [2]\nhiden = [8]\n")
    (tmp_path / "empty.toml").write_text("ways = []\n")
    files = {"missing": tmp_path / "nope.toml", "bad_toml": tmp_path / "bad.toml", "unknown_key": tmp_path / "key.toml",
             "empty": tmp_path / "empty.toml"}
    flags = [f.format(**files) for f in flags]
    results = tmp_path / "results"
    # No data root: each mistake must be caught before the data would be loaded.
    code = main(["sweep", *flags, "--results", str(results), "--runs", str(tmp_path / "runs"),
                 "--data-root", str(tmp_path / "no-data"), "--no-download", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mann: error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert re.search(match, err), err
    assert not results.exists() and not (tmp_path / "runs").exists()


def test_a_cell_the_split_cannot_serve_is_refused_before_any_work(store, tmp_path):
    with pytest.raises(UsageError, match="cell N500_K1_H8_seed0: N \\(ways\\) = 500 is larger than the split's 100"):
        run_sweep(tiny_spec(ways=[2, 500]), store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()


def test_a_folder_of_another_sweep_is_refused_and_left_alone(store, serial, tmp_path):
    folder = tmp_path / "results" / "tiny"
    shutil.copytree(serial, folder)
    before = snapshot(folder)
    with pytest.raises(UsageError, match="holds another sweep.*steps=20 there vs 30 here.*--name"):
        run_sweep(tiny_spec(steps=30), store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert snapshot(folder) == before and not (tmp_path / "runs").exists()


def test_a_folder_that_is_not_a_sweep_store_is_refused(store, tmp_path):
    folder = tmp_path / "results" / "tiny"
    folder.mkdir(parents=True)
    (folder / "table.md").write_text("the foundation's report\n")
    with pytest.raises(UsageError, match="not a sweep's store"):
        run_sweep(tiny_spec(), store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert snapshot(folder) == {"table.md": b"the foundation's report\n"}


# ------------------------------------------------------------------------------------------------ the store

def test_every_cell_gets_one_row_and_a_rerun_skips_them(store, serial, tmp_path):
    assert len(serial.joinpath("results.jsonl").read_text().splitlines()) == 4
    latest = ResultStore(serial).latest()
    assert set(latest) == {"N2_K1_H8_seed0", "N2_K1_H8_seed1", "N3_K1_H8_seed0", "N3_K1_H8_seed1"}
    row = latest["N3_K1_H8_seed1"]
    assert row["status"] == "ok" and 0 <= row["test_accuracy"] <= 1 and row["test_ci95"] >= 0
    for key in ("train_fingerprint", "final_train_loss", "steps", "wall_s", "steps_per_s", "device", "torch", "numpy"):
        assert row[key] is not None, key
    assert (serial / "logs" / "N3_K1_H8_seed1.csv").read_text().startswith("step,")
    shutil.copytree(serial.parent.parent, tmp_path / "copy")
    rows_before = (tmp_path / "copy" / "results" / "tiny" / "results.jsonl").read_bytes()
    outcome = run_sweep(tiny_spec(), store, tmp_path / "copy" / "results", tmp_path / "copy" / "runs", progress=False)
    assert (outcome.ran, outcome.skipped) == (0, 4)
    assert (tmp_path / "copy" / "results" / "tiny" / "results.jsonl").read_bytes() == rows_before


def test_a_failing_cell_is_recorded_and_the_others_go_on(store, serial, tmp_path):
    bad = tmp_path / "runs" / "tiny" / "N3_K1_H8_seed0"
    bad.mkdir(parents=True)
    (bad / "checkpoint.pt").write_text("not a checkpoint")
    outcome = run_sweep(tiny_spec(), store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert [r["cell"] for r in outcome.failed] == ["N3_K1_H8_seed0"]
    latest = ResultStore(tmp_path / "results" / "tiny").latest()
    assert latest["N3_K1_H8_seed0"]["status"] == "failed" and latest["N3_K1_H8_seed0"]["error"]
    assert sum(r["status"] == "ok" for r in latest.values()) == 3
    # The cause removed, a rerun retries only the failed cell, and it matches the serial run.
    (bad / "checkpoint.pt").unlink()
    outcome = run_sweep(tiny_spec(), store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert (outcome.ran, outcome.failed) == (1, [])
    assert outcome_rows(tmp_path / "results" / "tiny") == outcome_rows(serial)


def test_a_torn_last_line_is_ignored_then_repaired(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, {"cell": "a", "x": 1})
    with path.open("ab") as f:
        f.write(b'{"cell": "b", "x"')  # what a kill in the middle of a write could leave
    assert read_jsonl(path) == [{"cell": "a", "x": 1}]
    append_jsonl(path, {"cell": "c", "x": 3})
    assert path.read_text() == '{"cell": "a", "x": 1}\n{"cell": "c", "x": 3}\n'


CRASH_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from conftest import identity_store
from mann.sweep.grid import spec_from_mapping
from mann.sweep.run import run_sweep
if __name__ == "__main__":
    spec = spec_from_mapping({mapping!r}, "test", name="tiny")
    run_sweep(spec, identity_store(), {results!r}, {runs!r}, progress=False)
"""


@pytest.mark.slow
def test_sigkill_mid_sweep_loses_no_row_and_the_rerun_completes_it(store, serial, tmp_path):
    mapping = {"ways": [2, 3], "shots": [1], "hidden": [8], "seeds": [0, 1], **TINY}
    script = CRASH_SCRIPT.format(tests=str(REPO / "tests"), mapping=mapping, results=str(tmp_path / "results"),
                                 runs=str(tmp_path / "runs"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = tmp_path / "results" / "tiny" / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (rows.exists() and rows.read_bytes().count(b"\n") >= 1):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no row landed in 120 s"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    landed = len(read_jsonl(rows))
    assert 1 <= landed < 4, "the kill came too late to test anything"
    [killed] = ResultStore(tmp_path / "results" / "tiny").sessions()
    assert killed["status"] == "running" and killed["cells_run"] <= landed  # its time so far is on record
    outcome = run_sweep(tiny_spec(), store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert outcome.ran == 4 - landed
    sessions = ResultStore(tmp_path / "results" / "tiny").sessions()
    assert [s["status"] for s in sessions] == ["running", "finished"] and sessions[1]["cells_run"] == 4 - landed
    lines = rows.read_text().splitlines()
    assert len(lines) == 4 and len({json.loads(line)["cell"] for line in lines}) == 4  # none torn, none twice
    assert outcome_rows(tmp_path / "results" / "tiny") == outcome_rows(serial)


# ------------------------------------------------------------------------------------------------ executors

@pytest.mark.slow
def test_worker_processes_give_the_serial_rows(store, serial, tmp_path):
    executor = make_executor("local", workers=2, threads=1)
    assert isinstance(executor, ProcessExecutor)
    run_sweep(tiny_spec(), store, tmp_path / "results", tmp_path / "runs", executor, progress=False)
    assert outcome_rows(tmp_path / "results" / "tiny") == outcome_rows(serial)


WORKERS_SCRIPT = CRASH_SCRIPT.replace(
    "from mann.sweep.run import run_sweep",
    "from mann.sweep.run import run_sweep\nfrom mann.sweep.executors import make_executor\nfrom mann.signals import Stopped",
).replace(
    "    run_sweep(spec, identity_store(), {results!r}, {runs!r}, progress=False)",
    "    try:\n"
    "        run_sweep(spec, identity_store(), {results!r}, {runs!r}, make_executor('local', 2, 1), progress=False)\n"
    "    except Stopped as stop:  # as `mann sweep` exits\n"
    "        sys.exit(stop.exit_status)",
)


def children(pid: int) -> list[int]:
    """The pids of pid's child processes that are sweep workers (spawned by multiprocessing)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


@contextmanager
def sweep_with_two_training_workers(tmp_path: Path, mapping: dict):
    """A 2-worker sweep of ``mapping`` in its own process group; yields (its process, its workers' pids)
    once both workers train, and kills whatever is left of the group on the way out."""
    script = WORKERS_SCRIPT.format(tests=str(REPO / "tests"), mapping=mapping, results=str(tmp_path / "results"),
                                   runs=str(tmp_path / "runs"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(list((tmp_path / "runs").glob("tiny/*/log.csv"))) < 2:  # both workers are training
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the workers did not start training in 120 s"
            time.sleep(0.02)
        workers = children(proc.pid)
        yield proc, workers
    finally:
        for pid in [proc.pid, *workers]:  # whatever is left, had the test failed (workers have their own group)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_until_gone(workers: list[int]) -> None:
    deadline = time.monotonic() + 30
    while any(is_worker(w) for w in workers):
        assert time.monotonic() < deadline, "a worker outlived its sweep by 30 s"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers end with their sweep through Linux's prctl")
def test_workers_end_when_their_sweep_is_killed(tmp_path):
    # A sweep killed outright cannot stop its pool: its workers must not train on as orphans
    # beside the rerun that resumes their cells, and each stops as a SIGTERM would, with a checkpoint.
    mapping = {"ways": [2, 3], "shots": [1], "hidden": [8], "seeds": [0], **TINY, "steps": 10**6,
               "eval_every": 50, "checkpoint_every": 10**6, "checkpoint_minutes": 0}
    with sweep_with_two_training_workers(tmp_path, mapping) as (proc, workers):
        assert len(workers) == 2
        proc.kill()
        proc.wait()
        wait_until_gone(workers)
    assert len(list((tmp_path / "runs").glob("tiny/*/checkpoint.pt"))) == 2


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_and_its_workers_with_every_cell_checkpointed(tmp_path):
    # A terminal's Ctrl-C goes to the sweep's process group: the sweep passes it on to its workers.
    mapping = {"ways": [2, 3], "shots": [1], "hidden": [8], "seeds": [0], **TINY, "steps": 1500,
               "eval_every": 50, "checkpoint_every": 1500, "checkpoint_minutes": 0}
    with sweep_with_two_training_workers(tmp_path, mapping) as (proc, workers):
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 128 + signal.SIGINT, proc.stderr.read().decode()
        wait_until_gone(workers)
    steps = [torch.load(c, weights_only=False)["step"] for c in sorted((tmp_path / "runs").glob("tiny/*/checkpoint.pt"))]
    assert len(steps) == 2 and all(50 <= s < 1500 for s in steps), steps


@pytest.mark.slow
def test_sigterm_to_the_sweep_alone_stops_its_workers_with_every_cell_checkpointed(tmp_path):
    # `kill <pid of mann sweep>` or a job scheduler's SIGTERM reaches the sweep process only: it must
    # pass the stop on, so that each worker checkpoints the step it is in, not only the last timed one,
    # and the third cell, already queued for the first worker to come free, must not start.
    mapping = {"ways": [2, 3, 4], "shots": [1], "hidden": [8], "seeds": [0], **TINY, "steps": 1500,
               "eval_every": 50, "checkpoint_every": 1500, "checkpoint_minutes": 0}
    with sweep_with_two_training_workers(tmp_path, mapping) as (proc, workers):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM, proc.stderr.read().decode()
        wait_until_gone(workers)
    checkpoints = sorted((tmp_path / "runs").glob("tiny/*/checkpoint.pt"))
    steps = [torch.load(c, weights_only=False)["step"] for c in checkpoints]
    assert len(steps) == 2 and all(50 <= s < 1500 for s in steps), steps
    assert [c.parent.name for c in checkpoints] == ["N3_K1_H8_seed0", "N4_K1_H8_seed0"]  # the costliest start first


def is_worker(pid: int) -> bool:
    """Whether pid is still a running (not zombie) multiprocessing worker."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z" and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.slow
def test_local_ray_gives_the_serial_rows_and_run_folders(store, serial, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'mann-bench[ray]'); the Ray executor is optional")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # never the user's cluster
    monkeypatch.setenv("MANN_SCRATCH", str(tmp_path / "scratch"))  # the local Ray's workers inherit it
    executor = make_executor("ray", workers=2, threads=1)  # a private local Ray with 2 CPUs, shut down after
    run_sweep(tiny_spec(), store, tmp_path / "results", tmp_path / "runs", executor, progress=False)
    assert outcome_rows(tmp_path / "results" / "tiny") == outcome_rows(serial)
    # The cells trained in scratch folders, removed after each; the driver wrote what they sent.
    assert (tmp_path / "scratch").is_dir() and not list((tmp_path / "scratch").iterdir())
    serial_runs = serial.parent.parent / "runs" / "tiny"
    for cell in ResultStore(serial).latest():
        mine = {p.name for p in (tmp_path / "runs" / "tiny" / cell).iterdir()}
        assert mine == {p.name for p in (serial_runs / cell).iterdir()}, cell
    import ray

    assert not ray.is_initialized()


def test_a_node_whose_scratch_folder_cannot_be_made_is_told_the_fix(tmp_path, monkeypatch):
    from mann.sweep.ray_executor import make_scratch

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MANN_SCRATCH", str(tmp_path / "a-file" / "scratch"))
    with pytest.raises(UsageError, match=r"MANN_SCRATCH=.*a-file/scratch on node .*: cannot make a scratch folder "
                                         r"there .*; set MANN_SCRATCH to a writable local folder"):
        make_scratch("N2_K1_H8_seed0")


def test_every_new_checkpoint_is_sent_even_one_of_the_same_size_within_a_tick(tmp_path):
    # Every checkpoint of a model has the same size, and two can land within the file system's
    # timestamp granularity: only their contents tell them apart.
    from mann.sweep.run_files import FolderWatch

    (tmp_path / "checkpoint.pt").write_bytes(b"step 10")
    watch = FolderWatch(tmp_path)
    assert watch.changed() == {}  # what the folder started with is not sent back
    (tmp_path / "checkpoint.pt").write_bytes(b"step 20")
    (tmp_path / ".checkpoint.pt.tmp").write_bytes(b"half")  # an atomic write under way: not a run file
    assert watch.changed() == {"checkpoint.pt": b"step 20"}
    assert watch.changed() == {}


def test_an_attempt_ray_gave_up_on_cannot_overwrite_its_successor(tmp_path):
    from mann.sweep.ray_relay import CellRelay

    relay = CellRelay()
    relay.seed("c", {"checkpoint.pt": b"step 10"})
    first, files = relay.start("c", "node-a")
    assert (first, files) == (1, {"checkpoint.pt": b"step 10"})
    assert relay.send("c", first, {"checkpoint.pt": b"step 20"})
    second, files = relay.start("c", "node-b")  # Ray gave node-a up and started the cell again
    assert (second, files) == (2, {"checkpoint.pt": b"step 20"})  # from the newest checkpoint
    assert not relay.send("c", first, {"checkpoint.pt": b"step 30 of the old attempt"})
    assert relay.start("c", "node-c")[1] == {"checkpoint.pt": b"step 20"}
    assert [kind for kind, _, _ in relay.take()] == ["start", "files", "start", "start"]


def test_executor_flags_are_checked():
    with pytest.raises(UsageError, match="--executor 'dask'"):
        make_executor("dask")
    with pytest.raises(UsageError, match="--workers 0"):
        make_executor("local", workers=0)
    with pytest.raises(UsageError, match="--address.*--executor ray"):
        make_executor("local", address="10.0.0.1:6379")


# ------------------------------------------------------------------------------------------------ the command

def test_mann_sweep_runs_reports_and_resumes(synthetic_root, tmp_path, capsys):
    flags = ["sweep", "--ways", "2", "3", "--shots", "1", "--hidden", "8", "--steps", "10", "--batch-size", "4",
             "--test-episodes", "20", "--val-episodes", "10", "--eval-every", "5", "--name", "cli",
             "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs"),
             "--data-root", str(synthetic_root), "--device", "cpu", "--quiet"]
    assert main(flags) == 0
    out, err = capsys.readouterr()
    assert "## hidden = 8" in out and "2 run now" in err
    folder = tmp_path / "results" / "cli"
    assert (folder / "table.md").exists() and (folder / "accuracy_vs_ways.png").exists()
    assert "mann sweep --name cli" in (folder / "table.md").read_text()
    assert main(flags) == 0
    assert "0 run now, 2 already finished" in capsys.readouterr().err
    # N beyond the split, found once the data are loaded: refused, the store untouched.
    bad = [{"3": "101", "cli": "cli2"}.get(f, f) for f in flags]
    assert main(bad) == 2
    assert "cell N101_K1_H8_seed0: N (ways) = 101 is larger than the split's 100" in capsys.readouterr().err
    assert not (tmp_path / "results" / "cli2").exists()


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_cells_and_a_rerun_completes_them(store, tmp_path):
    spec = tiny_spec(name="killed", steps=120, eval_every=5)
    runs = tmp_path / "runs" / "killed"

    def kill_a_worker_mid_cell():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if list(runs.glob("*/log.csv")):  # a cell is training in a worker
                os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_worker_mid_cell)
    killer.start()
    outcome = run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", make_executor("local", 2, 1),
                        progress=False)
    killer.join()
    assert outcome.failed and all(r["error"].startswith("WorkerDied") for r in outcome.failed)
    latest = ResultStore(tmp_path / "results" / "killed").latest()
    assert len(latest) == 4 and sum(r["status"] == "ok" for r in latest.values()) == 4 - len(outcome.failed)
    rerun = run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert rerun.ran == len(outcome.failed) and not rerun.failed
    assert ResultStore(tmp_path / "results" / "killed").finished() == set(latest)


@pytest.mark.slow
def test_a_worker_told_to_stop_stops_the_sweep_with_every_cell_checkpointed(store, tmp_path):
    # SIGTERM to one worker (a job scheduler's, a user's kill): its cell and the other worker's
    # stop at the end of their steps with checkpoints there, and the rerun resumes both to the
    # numbers of a sweep never stopped.
    spec = tiny_spec(name="stopped", seeds=[0], steps=1500, eval_every=50, checkpoint_every=1500,
                     checkpoint_minutes=0)
    runs = tmp_path / "runs" / "stopped"

    def stop_a_worker_once_both_train():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(list(runs.glob("*/log.csv"))) == 2:
                os.kill(multiprocessing.active_children()[0].pid, signal.SIGTERM)
                return
            time.sleep(0.01)

    stopper = threading.Thread(target=stop_a_worker_once_both_train)
    stopper.start()
    with pytest.raises(Stopped, match="checkpoint in"):
        run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", make_executor("local", 2, 1), progress=False)
    stopper.join()
    assert not ResultStore(tmp_path / "results" / "stopped").latest()  # no cell counted as done or failed
    steps = [torch.load(c, weights_only=False)["step"] for c in sorted(runs.glob("*/checkpoint.pt"))]
    assert len(steps) == 2 and all(50 <= s < 1500 for s in steps), steps
    rerun = run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", progress=False)
    assert rerun.ran == 2 and not rerun.failed
    never_stopped = tmp_path / "never"
    run_sweep(spec, store, never_stopped / "results", never_stopped / "runs", progress=False)
    assert outcome_rows(tmp_path / "results" / "stopped") == outcome_rows(never_stopped / "results" / "stopped")


@pytest.mark.slow
def test_a_sweep_that_fails_stops_its_workers_with_every_cell_checkpointed(store, tmp_path, monkeypatch):
    # The sweep itself fails (here its progress display; a full disk under the store alike): it must
    # not wait hours for cells whose rows it cannot store, nor leave them without a checkpoint.
    spec = tiny_spec(name="failed", seeds=[0], steps=1500, eval_every=50, checkpoint_every=1500,
                     checkpoint_minutes=0)
    runs = tmp_path / "runs" / "failed"

    def step(self, cell_id, step, steps):
        if len(list(runs.glob("*/log.csv"))) == 2:  # both workers are training
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("mann.sweep.run.SweepBars.step", step)
    with pytest.raises(OSError, match="No space left"):
        run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", make_executor("local", 2, 1), progress=False)
    steps = [torch.load(c, weights_only=False)["step"] for c in sorted(runs.glob("*/checkpoint.pt"))]
    assert len(steps) == 2 and all(50 <= s < 1500 for s in steps), steps
    assert not ResultStore(tmp_path / "results" / "failed").latest()


def test_carried_checkpoints_resume_a_sweep_on_a_fresh_clone(store, serial, tmp_path):
    # carry_checkpoints keeps each unfinished cell's checkpoint in the (committed) result store:
    # with the run folders gone, as on a fresh clone, the same sweep resumes mid-cell.
    from mann.sweep.cell_runner import run_cell

    spec = spec_from_mapping({"ways": [2, 3], "shots": [1], "hidden": [8], "seeds": [0, 1], **TINY,
                              "carry_checkpoints": True}, "test", name="tiny")

    class StopsMidCell:
        def run(self, store, cells, run_dirs, emit):
            def stop(step, steps):
                if step == 15:  # after the checkpoint of step 10
                    raise KeyboardInterrupt
            cell = cells[0]
            emit("start", cell.id, None)
            run_cell(cell, store, run_dirs[cell.id], on_step=stop)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", executor=StopsMidCell(), progress=False)
    carried = sorted((tmp_path / "results" / "tiny" / "checkpoints").iterdir())
    assert len(carried) == 1
    assert (carried[0] / "checkpoint.pt").exists() and (carried[0] / "log.csv").read_text().count("\n") == 2
    from mann.reporting.tables import write_sweep_report  # the report shows how far the unfinished cell got

    report = write_sweep_report(tmp_path / "results" / "tiny").read_text()
    assert "No cell has finished yet" in report and "Still training" in report
    progress = (tmp_path / "results" / "tiny" / "progress.csv").read_text().splitlines()
    assert progress[1].startswith(f"{carried[0].name},train,10,")
    shutil.rmtree(tmp_path / "runs")
    run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", progress=False)
    rows = ResultStore(tmp_path / "results" / "tiny").latest()
    assert rows[carried[0].name]["resumed_from_step"] == 10
    assert outcome_rows(tmp_path / "results" / "tiny") == outcome_rows(serial)
    assert not (tmp_path / "results" / "tiny" / "checkpoints").exists()  # deleted once the cells finished
    write_sweep_report(tmp_path / "results" / "tiny")
    assert not (tmp_path / "results" / "tiny" / "progress.csv").exists()  # not stale once every cell finished


@pytest.mark.parametrize("preset, folder", [("cs330", "cs330-sweep"), ("quick", "quick")])
def test_the_committed_stores_still_belong_to_their_presets(preset, folder):
    # Every field added to TrainConfig needs its old value in the store's legacy identity, or
    # rerunning the README's main job would refuse its own results folder.
    cells = expand(spec_from_mapping(preset_mapping(preset), f"preset {preset}"))
    store = ResultStore(REPO / "results" / folder)
    store.check_compatible(cells)
    assert {c.id for c in cells} <= store.finished()
