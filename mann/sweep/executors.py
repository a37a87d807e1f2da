"""Where a sweep's cells run: in this process, in local worker processes, or as Ray tasks.

Every executor runs :func:`mann.sweep.cell_runner.run_cell` for each cell and reports
back through one callback, ``emit(kind, cell_id, payload)``:

  ("start", id, None)            the cell began
  ("step", id, (step, steps))    training progress (throttled to a few per second)
  ("done", id, CellResult)       the cell finished or failed; its row is in the result

The caller (the sweep) draws the bars and stores the rows, always in this
process, so only one process ever writes the result store.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from episodes.errors import UsageError
from episodes.omniglot import OmniglotStore
from episodes.prefetch import available_cores
from mann.sweep.cell_runner import CellResult, failed_result, run_cell
from mann.sweep.grid import Cell

Emit = Callable[[str, str, object], None]
STEP_EVERY_S = 0.25
EXECUTORS = ("local", "ray")


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """A fair share of the cores for each of ``workers`` concurrent cells (``threads`` overrides)."""
    return threads if threads is not None else max(1, available_cores() // workers)


class Throttle:
    """Calls ``emit('step', ...)`` at most every STEP_EVERY_S seconds, and always for the first and last step."""

    def __init__(self, cell_id: str, emit: Emit):
        self.cell_id, self.emit, self.last = cell_id, emit, 0.0

    def __call__(self, step: int, steps: int) -> None:
        now = time.monotonic()
        if step in (0, steps) or now - self.last >= STEP_EVERY_S:
            self.last = now
            self.emit("step", self.cell_id, (step, steps))


@dataclass
class SerialExecutor:
    """One cell after another in this process, with ``threads`` torch threads (None: as already set)."""

    threads: int | None = None

    def run(self, store: OmniglotStore, cells: list[Cell], run_dirs: dict[str, Path], emit: Emit) -> None:
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        for cell in cells:
            emit("start", cell.id, None)
            result = run_cell(cell, store, run_dirs[cell.id], on_step=lambda s, n, c=cell.id: emit("step", c, (s, n)))
            emit("done", cell.id, result)


# State of a worker process, set once by its initializer.
_WORKER: dict = {}


def _init_worker(store_file: str, threads: int, queue) -> None:
    import torch

    torch.set_num_threads(threads)
    with open(store_file, "rb") as f:
        _WORKER.update(store=pickle.load(f), queue=queue)


def _work_in_process(cell: Cell, run_dir: Path) -> CellResult:
    queue = _WORKER["queue"]
    queue.put(("start", cell.id, None))
    throttle = Throttle(cell.id, lambda kind, cid, payload: queue.put((kind, cid, payload)))
    return run_cell(cell, _WORKER["store"], run_dir, on_step=throttle)


@dataclass
class ProcessExecutor:
    """``workers`` spawned processes, each with ``threads`` torch threads, one cell at a time each.

    A worker that dies (killed, out of memory) fails only the cell it was running:
    a fresh pool takes the cells that had not started.
    """

    workers: int
    threads: int

    def run(self, store: OmniglotStore, cells: list[Cell], run_dirs: dict[str, Path], emit: Emit) -> None:
        remaining = list(cells)
        while remaining:
            remaining = self._run_pool(store, remaining, run_dirs, emit)

    def _run_pool(self, store: OmniglotStore, cells: list[Cell], run_dirs: dict[str, Path], emit: Emit) -> list[Cell]:
        """Run cells until done or the pool breaks; return the cells still to run."""
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        started: set[str] = set()
        finished: set[str] = set()

        def drain() -> None:
            while True:
                try:
                    kind, cell_id, payload = queue.get_nowait()
                except Exception:  # noqa: BLE001 - queue.Empty, or a queue broken by a dead worker
                    return
                if cell_id in finished:
                    continue
                if kind == "start":
                    started.add(cell_id)
                emit(kind, cell_id, payload)

        broken: str | None = None
        # The store (25 MB) reaches the workers through a file: in the initializer's arguments
        # it would be written down each spawn pipe while the child is still importing torch.
        shipping = tempfile.TemporaryDirectory(prefix="mann-sweep-")
        store_file = Path(shipping.name) / "store.pkl"
        with store_file.open("wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)
        with shipping, ProcessPoolExecutor(
            max_workers=min(self.workers, len(cells)), mp_context=context,
            initializer=_init_worker, initargs=(str(store_file), self.threads, queue),
        ) as pool:
            futures = {pool.submit(_work_in_process, cell, run_dirs[cell.id]): cell for cell in cells}
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    drain()
                    for future in done:
                        cell = futures[future]
                        try:
                            result = future.result()
                        except BrokenProcessPool as err:
                            broken = str(err) or "a worker process died"
                            continue
                        finished.add(cell.id)
                        emit("done", cell.id, result)
            except BaseException:
                # Ctrl-C: the workers got the SIGINT too; start no further cell and wait for them to stop.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            if broken is not None:
                # CPython's pool terminates the surviving workers of a broken pool, but misses one
                # that was still starting, and then waits for it forever: stop them all here.
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.kill()
        drain()
        queue.close()
        if broken is None:
            return []
        lost = [c for c in cells if c.id in started and c.id not in finished]
        if not lost:  # nothing ever started: the pool itself cannot run; fail all rather than loop
            lost = [c for c in cells if c.id not in finished]
        for cell in lost:
            emit("done", cell.id, failed_result(cell, run_dirs[cell.id], f"WorkerDied: {broken}"))
        lost_ids = {c.id for c in lost}
        return [c for c in cells if c.id not in finished and c.id not in lost_ids]


def _work_on_ray(store: OmniglotStore, cell: Cell, run_dir: str, threads: int, queue) -> CellResult:
    import torch

    torch.set_num_threads(threads)
    queue.put(("start", cell.id, None))
    throttle = Throttle(cell.id, lambda kind, cid, payload: queue.put((kind, cid, payload)))
    return run_cell(cell, store, run_dir, on_step=throttle)


@dataclass
class RayExecutor:
    """Each cell a Ray task needing ``threads`` CPUs, on the cluster at ``address`` or a local Ray.

    With no address (and no RAY_ADDRESS), a private local Ray with ``workers`` CPUs is
    started for the run and shut down after it. The store goes once into Ray's object
    store, so cluster nodes need mann-bench installed but not the data.
    """

    workers: int
    threads: int
    address: str | None = None

    def run(self, store: OmniglotStore, cells: list[Cell], run_dirs: dict[str, Path], emit: Emit) -> None:
        ray = import_ray()
        from ray.util.queue import Queue

        address = self.address or os.environ.get("RAY_ADDRESS") or None
        started_here = not ray.is_initialized()
        if started_here:
            options = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=max(self.workers, self.threads), **options)
        try:
            queue = Queue(actor_options={"num_cpus": 0})
            store_ref = ray.put(store)
            task = ray.remote(num_cpus=self.threads, max_retries=0)(_work_on_ray)
            refs = {
                task.remote(store_ref, cell, str(Path(run_dirs[cell.id]).resolve()), self.threads, queue): cell
                for cell in cells
            }
            finished: set[str] = set()

            def drain() -> None:
                while not queue.empty():
                    kind, cell_id, payload = queue.get_nowait()
                    if cell_id not in finished:
                        emit(kind, cell_id, payload)

            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                drain()
                for ref in ready:
                    cell = refs[ref]
                    try:
                        result = ray.get(ref)
                    except Exception as err:  # noqa: BLE001 - a lost worker or node fails this cell only
                        result = failed_result(cell, run_dirs[cell.id], f"{type(err).__name__}: {err}")
                    finished.add(cell.id)
                    emit("done", cell.id, result)
        finally:
            if started_here:
                ray.shutdown()


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


def make_executor(
    name: str, workers: int | None = None, threads: int | None = None, address: str | None = None
):
    """The executor for ``--executor`` / ``--workers`` / ``--threads`` / ``--address``.

    Locally, no ``workers`` means one cell at a time in this process; a local Ray
    gets all cores unless ``workers`` says how many.
    """
    if name not in EXECUTORS:
        raise UsageError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: use 1 or more")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads {threads}: use 1 or more")
    if name == "ray":
        import_ray()
        return RayExecutor(workers or available_cores(), threads or 1, address)
    if address:
        raise UsageError(f"--address {address}: only used with --executor ray; add --executor ray or drop --address")
    if workers is None or workers == 1:
        return SerialExecutor(threads)
    return ProcessExecutor(workers, threads_per_worker(workers, threads))
