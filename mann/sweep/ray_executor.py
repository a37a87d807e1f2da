"""Cells as Ray tasks, on a private local Ray or a cluster whose nodes each have their own disk.

A task trains its cell in a scratch folder on its node (``$MANN_SCRATCH`` in the node's
environment, default ``<tmp>/mann-scratch``) and sends the run folder's files to the
driver as they change: the log at every evaluation, the checkpoint every
``checkpoint_every`` steps, the model and summary at the end. They go through one actor
on the driver's node (:mod:`mann.sweep.ray_relay`), and the driver writes them into the
cell's run folder, so the driver ends with the folder a local run leaves whatever disk
the nodes have, and the run folder never depends on a node staying up.

A task starts from the newest copy of the run folder the relay holds: the driver's own
(a checkpoint left by an interrupted earlier invocation) or what an earlier attempt
sent. Ray runs a task again when its worker or node is lost (``retries`` times; a cell
that fails in training is a row, not a lost task), so the new attempt resumes from the
last checkpoint that reached the driver, on whichever node Ray picks, and ends with the
numbers of an uninterrupted run. A cell lost more often becomes a failed row naming the
reason, like any failed cell, and rerunning the command resumes it from that checkpoint.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from episodes.errors import UsageError
from episodes.omniglot import OmniglotStore
from mann.sweep.cell_runner import CellResult, failed_result, run_cell
from mann.sweep.grid import Cell
from mann.sweep.progress import Emit, Throttle
from mann.sweep.ray_relay import CellRelay
from mann.sweep.run_files import CHECKPOINT, FolderWatch, read_files, write_files
from mann.training.run_folder import checkpoint_position

SCRATCH_ENV = "MANN_SCRATCH"
RETRIES = 2
POLL_S = 0.2


def import_ray():
    """The ray module, or a UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--executor ray: Ray is not installed; pip install 'mann-bench[ray]' (or pip install ray), "
            "or drop --executor ray to run locally"
        ) from None
    return ray


def scratch_root() -> Path:
    """Where this node's tasks train: $MANN_SCRATCH, else mann-scratch in the temporary folder."""
    return Path(os.environ.get(SCRATCH_ENV) or Path(tempfile.gettempdir()) / "mann-scratch")


def make_scratch(cell_id: str) -> Path:
    """A fresh, private folder for one attempt of the cell on this node; UsageError naming the fix if none can be made."""
    root = scratch_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{cell_id}-", dir=root))
    except OSError as err:
        raise UsageError(
            f"{SCRATCH_ENV}={root} on node {platform.node()}: cannot make a scratch folder there ({err.strerror}); "
            f"set {SCRATCH_ENV} to a writable local folder in that node's environment before `ray start`"
        ) from None


def run_cell_task(store: OmniglotStore, cell: Cell, threads: int, relay) -> CellResult:
    """One attempt of a cell, on a Ray worker: train in scratch, send every change to the relay, return the row."""
    import ray
    import torch

    torch.set_num_threads(threads)
    attempt, files = ray.get(relay.start.remote(cell.id, platform.node()))
    try:
        scratch = make_scratch(cell.id)
    except UsageError as err:
        return failed_result(cell, scratch_root(), f"UsageError: {err}", host=platform.node(), attempt=attempt)
    try:
        write_files(scratch, files)
        watch = FolderWatch(scratch)  # what it started from need not go back

        def send() -> None:
            changed = watch.changed()
            if changed and not ray.get(relay.send.remote(cell.id, attempt, changed)):
                raise RuntimeError(f"attempt {attempt} of cell {cell.id} was superseded by a newer attempt; stopping")

        throttle = Throttle(cell.id, lambda kind, cid, payload: relay.step.remote(cid, attempt, *payload))
        result = run_cell(cell, store, scratch, on_step=throttle, on_write=send)
        send()  # the model, the summary and the last log rows
        return CellResult({**result.row, "attempt": attempt}, result.log_csv)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class RayExecutor:
    """Each cell a Ray task needing ``threads`` CPUs, on the cluster at ``address`` or a private local Ray.

    With no address (and no RAY_ADDRESS), a local Ray with ``workers`` CPUs is started
    for the run and shut down after it. The store goes once into Ray's object store and
    the run folders come back through the relay, so cluster nodes need mann-bench
    installed, but neither the data nor the driver's disk.
    """

    workers: int
    threads: int
    address: str | None = None
    retries: int = RETRIES

    def run(self, store: OmniglotStore, cells: list[Cell], run_dirs: dict[str, Path], emit: Emit) -> None:
        ray = import_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        address = self.address or os.environ.get("RAY_ADDRESS") or None
        started_here = not ray.is_initialized()
        if started_here:
            options = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
            # "local": never a cluster that `ray start` left running on this machine.
            ray.init(address=address or "local", **({} if address else {"num_cpus": max(self.workers, self.threads)}),
                     **options)
        relay, refs, finished = None, {}, set()
        attempts: dict[str, int] = {}

        def deliver() -> None:
            for kind, cell_id, payload in ray.get(relay.take.remote()):
                if cell_id in finished:
                    continue
                if kind == "files":
                    write_files(run_dirs[cell_id], payload)
                elif kind == "step":
                    emit("step", cell_id, payload)
                elif kind == "start":
                    attempts[cell_id] = payload["attempt"]
                    if payload["attempt"] == 1:
                        emit("start", cell_id, None)
                    else:
                        emit("retry", cell_id, self._retry_line(cell_id, payload, run_dirs[cell_id]))

        try:
            # On the driver's node, so that losing any other node loses none of what reached the driver.
            here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
            relay = ray.remote(CellRelay).options(num_cpus=0, scheduling_strategy=here).remote()
            ray.get([relay.seed.remote(c.id, files) for c in cells if (files := read_files(run_dirs[c.id]))])
            store_ref = ray.put(store)
            # Ray retries a task whose worker or node died, never one that raised: run_cell turns training's own
            # failures into rows, so what raises is a bug, and running it again would not help.
            task = ray.remote(run_cell_task).options(num_cpus=self.threads, max_retries=self.retries,
                                                     retry_exceptions=False)
            refs = {task.remote(store_ref, cell, self.threads, relay): cell for cell in cells}
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
                deliver()  # a finished task sent its last files before returning: they are written before its row
                for ref in ready:
                    cell = refs[ref]
                    try:
                        result = ray.get(ref)
                    except Exception as err:  # noqa: BLE001 - a cell lost too often fails this cell only
                        result = self._lost(cell, run_dirs[cell.id], err, attempts.get(cell.id, 0))
                    finished.add(cell.id)
                    relay.forget.remote(cell.id)
                    emit("done", cell.id, CellResult({**result.row, "run_dir": str(run_dirs[cell.id])},
                                                     result.log_csv))
        finally:
            unfinished = [ref for ref, cell in refs.items() if cell.id not in finished]
            if relay is not None:
                # Interrupted: keep the newest checkpoints that arrived and stop the tasks. The cluster may be
                # what failed, so none of this may hide the error that brought the sweep here.
                try:
                    if unfinished:
                        deliver()
                        for ref in unfinished:
                            ray.cancel(ref, force=True)
                    ray.kill(relay)
                except Exception:  # noqa: BLE001
                    pass
            if started_here:
                ray.shutdown()

    def _retry_line(self, cell_id: str, start: dict, run_dir: Path) -> str:
        position = checkpoint_position(Path(run_dir) / CHECKPOINT)
        where = ("from the start" if position is None else
                 f"from its checkpoint at {'refit ' if position[0] == 2 else ''}step {position[1]}")
        return (f"{cell_id}: its worker or node was lost; attempt {start['attempt']} of {self.retries + 1} "
                f"on {start['host']} resumes {where}")

    def _lost(self, cell: Cell, run_dir: Path, err: Exception, started: int) -> CellResult:
        """The failed row of a cell whose task Ray gave up on, naming the reason."""
        cause = getattr(err, "cause", None)
        if isinstance(cause, Exception):  # the task itself raised (a bug: run_cell returns training's failures)
            reason = f"{type(cause).__name__}: {cause}"
        else:
            first = (str(err).strip().splitlines() or [""])[0]
            runs = self.retries + 1
            reason = (f"{type(err).__name__}: {first} (Ray ran it {runs} time{'s' if runs > 1 else ''} and lost its "
                      f"worker or node each time; rerun the command to resume from its last checkpoint)")
        return failed_result(cell, run_dir, reason, str(err), attempt=started)
