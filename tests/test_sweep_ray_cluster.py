"""Sweeps on a real multi-node Ray cluster on this machine (tests/ray_cluster.py): a head and
two worker nodes as separate Ray processes, each worker with its own scratch folder that
the driver is never told about, so whatever reaches the driver's run folders came back
through Ray. Loopback only; the module's fixture stops the cluster."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'mann-bench[ray]'); "
                                        "the Ray executor and its cluster tests are optional")

from mann.sweep.grid import spec_from_mapping  # noqa: E402
from mann.sweep.ray_executor import RayExecutor  # noqa: E402
from mann.sweep.run import run_sweep  # noqa: E402
from mann.sweep.store import ResultStore  # noqa: E402
from mann.training.events import EVENTS_FILES, tensorboard_modules  # noqa: E402
from mann.training.run_folder import checkpoint_position  # noqa: E402
from ray_cluster import LocalCluster, local_cluster  # noqa: E402
from test_sweep import SAME, outcome_rows  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# Long enough that a node removed once the driver holds a cell's first checkpoint (step 20)
# is removed mid-cell: each cell has 600 steps to go, a few seconds on a tiny MANN.
LONG = {"ways": [2, 3], "shots": [1], "hidden": [8], "seeds": [0, 1], "steps": 600, "batch_size": 4,
        "val_episodes": 10, "test_episodes": 30, "eval_every": 20, "checkpoint_every": 20}
RUN_FILES = {"log.csv", "checkpoint.pt", "model.pt", "summary.json", "summary.csv"}
BOUND_S = 240  # the longest any wait below may take before the test fails instead of hanging


def long_spec(name="cluster", **axes):
    return spec_from_mapping({**LONG, **axes}, "test", name=name)


@pytest.fixture(scope="module")
def ray_cluster():
    with local_cluster(workers=2) as cluster:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        yield cluster


@pytest.fixture(scope="module")
def serial_long(store, tmp_path_factory) -> Path:
    """The long sweep run in this process: the numbers the cluster must reproduce."""
    root = tmp_path_factory.mktemp("serial-long")
    run_sweep(long_spec(), store, root / "results", root / "runs", progress=False)
    return root


def log_numbers(path: Path) -> list[dict]:
    """log.csv without its wall times (the only column that differs between machines)."""
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(path.open())]


def remove_node_once_the_driver_holds_a_checkpoint(cluster: LocalCluster, runs: Path, seen: dict) -> threading.Thread:
    """In the background: the first cell whose checkpoint reaches the driver loses its node."""

    def watch() -> None:
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            for checkpoint in sorted(runs.glob("*/checkpoint.pt")):
                position = checkpoint_position(checkpoint)
                node = cluster.node_running(checkpoint.parent.name)
                if position is not None and node is not None:
                    seen.update(cell=checkpoint.parent.name, step=position[1], scratch=cluster.scratch[node])
                    cluster.remove(node)
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def assert_run_folders_complete(runs: Path, serial_runs: Path, results: Path) -> None:
    latest = ResultStore(results).latest()
    for cell, row in latest.items():
        folder = runs / cell
        names = {p.name for p in folder.iterdir()}
        assert RUN_FILES <= names, f"{folder} lacks {sorted(RUN_FILES - names)}"
        if tensorboard_modules() is not None:
            assert EVENTS_FILES[1] in names, f"{folder} has no TensorBoard events"
        assert row["run_dir"] == str(folder)
        assert log_numbers(folder / "log.csv") == log_numbers(serial_runs / cell / "log.csv")
        assert (folder / "log.csv").read_text() == (results / "logs" / f"{cell}.csv").read_text()
        mine, reference = (torch.load(f / cell / "model.pt") for f in (runs, serial_runs))
        assert mine.keys() == reference.keys() and all(torch.equal(mine[k], reference[k]) for k in mine)


def test_a_node_lost_mid_cell_costs_at_most_one_checkpoint_interval(ray_cluster, store, serial_long, tmp_path,
                                                                    capsys):
    ray_cluster.workers(2)
    spec = long_spec()
    runs = tmp_path / "runs" / spec.name
    seen: dict = {}
    watcher = remove_node_once_the_driver_holds_a_checkpoint(ray_cluster, runs, seen)
    outcome = run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", RayExecutor(workers=2, threads=1),
                        progress=False)
    watcher.join()
    err = capsys.readouterr().err
    assert seen, "no checkpoint of a running cell reached the driver"
    results = tmp_path / "results" / spec.name
    latest = ResultStore(results).latest()
    assert not outcome.failed and len(latest) == 4
    assert outcome_rows(results) == outcome_rows(serial_long / "results" / spec.name)
    lost = latest[seen["cell"]]
    assert lost["attempt"] == 2, f"the node was removed after {seen['cell']} had finished: nothing was tested"
    # The retry started from a checkpoint the driver held (that one or a later one), not from step 0.
    assert lost["resumed_from_step"] >= seen["step"] > 0
    assert lost["resumed_from_step"] % LONG["checkpoint_every"] == 0
    # A cell Ray had already queued on the lost node is retried too (seen once in a quiet run): it
    # was retried once, from a checkpoint boundary (0 when it had not started), like the lost one.
    for cell, row in latest.items():
        if cell != seen["cell"]:
            assert row["attempt"] in (1, 2) and row["resumed_from_step"] % LONG["checkpoint_every"] == 0, (cell, row)
    assert f"{seen['cell']}: its worker or node was lost; attempt 2 of 3" in err
    assert f"resumes from its checkpoint at step {lost['resumed_from_step']}" in err
    # The run folders are on the driver, complete, with the serial run's numbers; the nodes trained
    # elsewhere: the lost node's scratch still holds the attempt it was running.
    assert_run_folders_complete(runs, serial_long / "runs" / spec.name, results)
    if tensorboard_modules() is not None:  # `tensorboard --logdir runs/<sweep>` shows every cell
        from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

        board = EventMultiplexer().AddRunsFromDirectory(str(runs)).Reload()
        assert set(board.Runs()) == set(latest)
        steps = [e.step for e in board.Scalars(seen["cell"], "val/accuracy")]
        assert steps == list(range(20, 601, 20))  # once each: the retry's events replaced the lost attempt's
    [left] = list(seen["scratch"].glob(f"{seen['cell']}-*"))
    assert (left / "checkpoint.pt").exists() and not left.is_relative_to(tmp_path)
    for node in ray_cluster.workers(1):  # the surviving node cleaned up after every cell it ran
        assert not list(ray_cluster.scratch[node].glob("*"))


def test_a_cell_lost_more_often_than_its_retries_fails_and_the_rerun_resumes_it(ray_cluster, store, serial_long,
                                                                                tmp_path):
    ray_cluster.workers(2)
    spec = long_spec(ways=[3], seeds=[1])  # one cell: N3_K1_H8_seed1, the same config as in the serial sweep
    runs = tmp_path / "runs" / spec.name
    seen: dict = {}
    watcher = remove_node_once_the_driver_holds_a_checkpoint(ray_cluster, runs, seen)
    outcome = run_sweep(spec, store, tmp_path / "results", tmp_path / "runs",
                        RayExecutor(workers=2, threads=1, retries=0), progress=False)
    watcher.join()
    assert seen, "no checkpoint of a running cell reached the driver"
    [failed] = outcome.failed
    assert failed["cell"] == seen["cell"] and failed["attempt"] == 1
    assert "Ray ran it 1 time and lost its worker or node each time; rerun the command" in failed["error"]
    assert checkpoint_position(runs / seen["cell"] / "checkpoint.pt")[1] >= seen["step"]
    ray_cluster.workers(2)
    rerun = run_sweep(spec, store, tmp_path / "results", tmp_path / "runs", RayExecutor(workers=2, threads=1),
                      progress=False)
    assert rerun.ran == 1 and not rerun.failed
    row = ResultStore(tmp_path / "results" / spec.name).latest()[seen["cell"]]
    assert row["resumed_from_step"] >= seen["step"] > 0 and row["attempt"] == 1
    serial_row = ResultStore(serial_long / "results" / "cluster").latest()[seen["cell"]]
    assert tuple(row.get(k) for k in SAME) == tuple(serial_row.get(k) for k in SAME)


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
import ray
from conftest import identity_store
from mann.sweep.grid import spec_from_mapping
from mann.sweep.ray_executor import RayExecutor
from mann.sweep.run import run_sweep
ray.init(address={address!r}, log_to_driver=False, logging_level="WARNING")
spec = spec_from_mapping({mapping!r}, "test", name="cluster")
run_sweep(spec, identity_store(), {results!r}, {runs!r}, RayExecutor(workers=2, threads=1), progress=False)
"""


def test_a_killed_driver_run_again_resumes_from_the_checkpoints_it_received(ray_cluster, store, serial_long,
                                                                            tmp_path):
    ray_cluster.workers(2)
    runs, results = tmp_path / "runs", tmp_path / "results"
    script = DRIVER.format(tests=str(REPO / "tests"), address=ray_cluster.address, mapping=LONG,
                           results=str(results), runs=str(runs))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "driver.log"
    with log.open("wb") as output:
        driver = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True,
                                  stdout=output, stderr=subprocess.STDOUT)
    held: dict[str, int] = {}
    try:
        deadline = time.monotonic() + BOUND_S
        while not held:
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no checkpoint reached the driver in {BOUND_S} s"
            for checkpoint in (runs / "cluster").glob("*/checkpoint.pt"):
                position = checkpoint_position(checkpoint)
                if position is not None and not (checkpoint.parent / "summary.json").exists():
                    held[checkpoint.parent.name] = position[1]
            time.sleep(0.01)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finished_before = ResultStore(results / "cluster").finished()
    interrupted = {cell: step for cell, step in held.items() if cell not in finished_before}
    assert interrupted, "the cells whose checkpoints were seen finished before the kill: nothing was tested"
    rerun = run_sweep(long_spec(), store, results, runs, RayExecutor(workers=2, threads=1), progress=False)
    assert rerun.ran == 4 - len(finished_before) and not rerun.failed
    latest = ResultStore(results / "cluster").latest()
    assert outcome_rows(results / "cluster") == outcome_rows(serial_long / "results" / "cluster")
    resumed = {cell: latest[cell]["resumed_from_step"] for cell in interrupted}
    assert all(resumed[cell] >= step > 0 for cell, step in interrupted.items()), (interrupted, resumed)
    assert_run_folders_complete(runs / "cluster", serial_long / "runs" / "cluster", results / "cluster")
