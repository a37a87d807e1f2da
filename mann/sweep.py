"""``mann sweep``: train every cell of an N × K × hidden (× seed ...) grid, resumably.

Each cell trains in its own run folder ``runs/<name>/<cell id>/`` (checkpoints and
log, so an interrupted cell continues mid-way) and, once finished, adds one row
to the result store ``results/<name>/`` (see :mod:`mann.result_store`). Rerunning
the same command skips finished cells and retries failed ones. Every check on
the grid, the data and the results folder happens before the first cell runs.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from episodes.errors import UsageError
from episodes.omniglot import OmniglotStore
from episodes.sampler import check_episode_shape
from episodes.splits import PARTS, split_indices
from mann.cell_runner import CellResult
from mann.executors import EXECUTORS, SerialExecutor, make_executor
from mann.grid import (
    PRESETS, Cell, SweepSpec, apply_overrides, costliest_first, expand, load_config_file, preset_mapping,
    spec_from_mapping,
)
from mann.io import ensure_writable_dir
from mann.result_store import ResultStore
from mann.stats import format_ci


@dataclass(frozen=True)
class SweepOutcome:
    """What one invocation did: cells run now, skipped as already finished, failed now; its wall time."""

    folder: Path
    cells: int
    ran: int
    skipped: int
    failed: list[dict]
    wall_s: float


def check_cells_fit(cells: list[Cell], store: OmniglotStore) -> None:
    """UsageError listing every cell whose N or K no part of its split can serve."""
    sizes: dict[tuple, dict[str, int]] = {}
    problems = []
    for cell in cells:
        c = cell.config
        key = (c.split, c.split_seed, c.rotations)
        if key not in sizes:
            parts = split_indices(store, c.split, c.split_seed)
            sizes[key] = {p: len(parts[p]) * (4 if c.rotations else 1) for p in PARTS}
        for part in PARTS:
            try:
                check_episode_shape(c.ways, c.shots, c.batch_size, sizes[key][part])
            except UsageError as err:
                problems.append(f"cell {cell.id}: {err} (in {c.split}/{part})")
                break
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise UsageError("; ".join(problems[:3]) + more)


def run_sweep(
    spec: SweepSpec,
    data: OmniglotStore | Callable[[], OmniglotStore],
    results_root: str | Path = "results",
    runs_root: str | Path = "runs",
    executor=None,
    progress: bool = True,
    command: str | None = None,
) -> SweepOutcome:
    """Run the sweep's unfinished cells and store a row for each as it finishes.

    ``data`` is the loaded store, or a function loading it (called only once the
    grid and the results folder have passed their checks).
    """
    start = time.perf_counter()
    cells = expand(spec)
    results = ResultStore(Path(results_root) / spec.name)
    results.check_compatible(cells)
    store = data() if callable(data) else data
    check_cells_fit(cells, store)
    runs = ensure_writable_dir(Path(runs_root) / spec.name, "--runs")
    ensure_writable_dir(results_root, "--results")
    executor = executor or SerialExecutor()
    failed: list[dict] = []
    ran = 0
    with results.open_for(cells, spec.to_dict()):
        finished = results.finished()
        todo = costliest_first([c for c in cells if c.id not in finished])
        bars = SweepBars(spec.name, len(cells), len(cells) - len(todo), enabled=progress)
        session = {"session": uuid.uuid4().hex[:12], "command": command,
                   "started_at": _iso(time.time() - (time.perf_counter() - start)), "cells_todo": len(todo),
                   "executor": type(executor).__name__, "host": platform.node()}

        def record_session(status: str) -> None:
            # Rewritten after every cell, so a kill at any moment still leaves this invocation's time
            # up to its last finished cell in the store's total.
            results.add_session({**session, "status": status, "wall_s": time.perf_counter() - start,
                                 "cells_run": ran, "cells_failed": len(failed)})

        record_session("running")

        def emit(kind: str, cell_id: str, payload) -> None:
            nonlocal ran
            if kind == "done":
                result: CellResult = payload
                results.add(result.row, result.log_csv)
                ran += 1
                if result.row["status"] != "ok":
                    failed.append(result.row)
                record_session("running")
                bars.done(cell_id, describe_row(result.row))
            elif kind == "start":
                bars.start(cell_id)
            elif kind == "step":
                bars.step(cell_id, *payload)

        status = "interrupted"
        try:
            if todo:  # nothing to do must not start worker processes or a Ray cluster
                executor.run(store, todo, {c.id: runs / c.id for c in todo}, emit)
            status = "finished"
        finally:
            bars.close()
            record_session(status)
        wall = time.perf_counter() - start
    return SweepOutcome(results.folder, len(cells), len(todo), len(cells) - len(todo), failed, wall)


def describe_row(row: dict) -> str:
    if row["status"] == "ok":
        wall = f", {row['wall_s']:.0f} s" if row.get("wall_s") is not None else ""
        return f"{row['cell']}: test accuracy {format_ci(row['test_accuracy'], row['test_ci95'])}%{wall}"
    return f"{row['cell']}: FAILED: {row['error']}"


class SweepBars:
    """One bar for the cells (with ETA) and one per running cell for its steps."""

    def __init__(self, name: str, total: int, done: int, enabled: bool = True):
        self.enabled = enabled
        self.cells = tqdm(total=total, initial=done, desc=f"sweep {name}", unit="cell", position=0,
                          dynamic_ncols=True, disable=not enabled)
        self.running: dict[str, tqdm] = {}
        self.free = list(range(1, 64))

    def start(self, cell_id: str) -> None:
        if cell_id in self.running:
            return
        position = self.free.pop(0) if self.free else None
        self.running[cell_id] = tqdm(total=None, desc=cell_id, unit="step", position=position, leave=False,
                                     dynamic_ncols=True, disable=not self.enabled)

    def step(self, cell_id: str, step: int, steps: int) -> None:
        if cell_id not in self.running:
            self.start(cell_id)
        bar = self.running[cell_id]
        if bar.total != steps:
            bar.total = steps
        bar.update(step - bar.n)

    def done(self, cell_id: str, line: str) -> None:
        bar = self.running.pop(cell_id, None)
        if bar is not None:
            if bar.pos is not None:
                self.free.insert(0, abs(bar.pos))
            bar.close()
        self.cells.update(1)
        if self.enabled:
            tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        for bar in self.running.values():
            bar.close()
        self.running.clear()
        self.cells.close()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------- the command

# (flag, dest, nargs) of every flag that changes what the sweep computes or where: rebuilt into the
# command line stored with the results, so the tables say how to reproduce them.
_AXIS_FLAGS = [("--ways", "ways", int), ("--shots", "shots", int), ("--hidden", "hidden", int),
               ("--seeds", "seeds", int), ("--lr", "lr", float), ("--steps", "steps", int),
               ("--batch-size", "batch_size", int), ("--split", "split", str)]
_SETTING_FLAGS = [("--split-seed", "split_seed"), ("--eval-every", "eval_every"), ("--val-episodes", "val_episodes"),
                  ("--test-episodes", "test_episodes"), ("--eval-seed", "eval_seed"),
                  ("--checkpoint-every", "checkpoint_every")]
_OTHER_FLAGS = [("--preset", "preset"), ("--config", "config"), ("--name", "name"), ("--results", "results"),
                ("--runs", "runs"), ("--executor", "executor"), ("--workers", "workers"), ("--threads", "threads"),
                ("--address", "address"), ("--device", "device"), ("--data-root", "data_root")]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="train a grid of N x K x hidden (x seed) runs, resumably, and tabulate them",
        description="Train every cell of a grid and store one row per finished cell under results/<name>/. "
        "Rerun the same command to continue: finished cells are skipped, failed ones retried.",
    )
    src = p.add_argument_group("what to sweep (a preset, a TOML file, or axes; flags replace that axis everywhere)")
    src.add_argument("--preset", default=None, help=f"a ready grid: {', '.join(PRESETS)} "
                     "(cs330: the assignment's four runs at H=128 plus H=8/256 on K=1,N=3, three seeds, 25k steps; "
                     "quick: the same shape, short, ~2 minutes)")
    src.add_argument("--config", default=None, help="a TOML sweep file (axes, settings, [[grid]] blocks)")
    src.add_argument("--name", default=None, help="the sweep's folder name under --results and --runs "
                     "(default: the preset's or file's name, else sweep-<hash of the grid>)")
    for flag, dest, kind in _AXIS_FLAGS:
        src.add_argument(flag, dest=dest, type=kind, nargs="+", default=None, metavar="V",
                         help={"ways": "N values", "shots": "K values", "hidden": "hidden sizes",
                               "seeds": "seeds (weights and training episodes)", "lr": "Adam learning rates",
                               "steps": "training step counts", "batch_size": "episodes per step",
                               "split": "cs330 | lake"}[dest])
    settings = p.add_argument_group("settings shared by every cell (default: mann train's)")
    for flag, dest in _SETTING_FLAGS:
        settings.add_argument(flag, dest=dest, type=int, default=None)
    settings.add_argument("--rotations", action="store_true", default=None, help="add rotated copies as classes")
    settings.add_argument("--no-fast", dest="fast", action="store_false", default=None,
                          help="stock nn.LSTM on the CPU too")
    run = p.add_argument_group("where it runs")
    run.add_argument("--executor", default="local", help=f"{' | '.join(EXECUTORS)} (default %(default)s)")
    run.add_argument("--workers", type=int, default=None,
                     help="local: cells at once in worker processes (default 1: in this process); "
                     "ray: CPUs of the local Ray started when no --address is given (default all cores)")
    run.add_argument("--threads", type=int, default=None,
                     help="torch threads per cell (default: cores // workers; Ray: 1 CPU per task)")
    run.add_argument("--address", default=None, help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda for every cell (default %(default)s)")
    run.add_argument("--results", default="results", help="root of the result stores (default %(default)s)")
    run.add_argument("--runs", default="runs", help="root of the run folders (default %(default)s)")
    run.add_argument("--no-report", action="store_true", help="do not write tables and plots at the end")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    from mann.cli import add_data_args

    add_data_args(p)
    p.set_defaults(run=run_sweep_command)


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The sweep the flags describe; UsageError for contradictory or missing choices."""
    axes = {dest: getattr(args, dest) for _, dest, _ in _AXIS_FLAGS if getattr(args, dest) is not None}
    settings = {dest: getattr(args, dest) for _, dest in _SETTING_FLAGS if getattr(args, dest) is not None}
    for key in ("rotations", "fast"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.preset and args.config:
        raise UsageError("--preset and --config both given; choose one (flags can still change single axes)")
    if args.preset:
        base, where, fallback = preset_mapping(args.preset), f"preset {args.preset}", None
    elif args.config:
        base, where, fallback = load_config_file(args.config), f"--config {args.config}", Path(args.config).stem
    elif axes:
        base, where, fallback = {}, "flags", None
    else:
        raise UsageError(
            "nothing to sweep: give --preset (" + ", ".join(PRESETS) + "), --config FILE.toml, "
            "or axes such as --ways 2 3 --shots 1 --hidden 128 --seeds 0 1"
        )
    mapping = apply_overrides(base, {**axes, **settings})
    if "name" not in mapping and fallback is not None:
        mapping["name"] = fallback
    spec = spec_from_mapping(mapping, where, name=args.name)
    return replace(spec, base=replace(spec.base, device=args.device))


def command_line(args: argparse.Namespace) -> str:
    """`mann sweep ...` with the flags that were given, to store beside the results."""
    words = ["mann", "sweep"]
    for flag, dest in _OTHER_FLAGS:
        value = getattr(args, dest, None)
        if value is not None and not (dest == "executor" and value == "local") and not (
            dest in ("results", "runs") and value == dest) and not (dest == "device" and value == "auto"):
            words += [flag, str(value)]
    for flag, dest, _ in _AXIS_FLAGS:
        if getattr(args, dest) is not None:
            words += [flag, *map(str, getattr(args, dest))]
    for flag, dest in _SETTING_FLAGS:
        if getattr(args, dest) is not None:
            words += [flag, str(getattr(args, dest))]
    if args.rotations:
        words.append("--rotations")
    if args.fast is False:
        words.append("--no-fast")
    return shlex.join(words)


def run_sweep_command(args: argparse.Namespace) -> int:
    from mann.cli import load_store

    spec = spec_from_args(args)
    executor = make_executor(args.executor, args.workers, args.threads, args.address)
    from mann.train import resolve_device

    resolve_device(args.device)
    outcome = run_sweep(
        spec, lambda: load_store(args), args.results, args.runs, executor, progress=not args.quiet,
        command=command_line(args),
    )
    print(
        f"sweep {spec.name}: {outcome.cells} cells, {outcome.ran} run now, {outcome.skipped} already finished, "
        f"{len(outcome.failed)} failed; {outcome.wall_s:.0f} s; rows in {outcome.folder / 'results.jsonl'}",
        file=sys.stderr,
    )
    if not args.no_report:
        from mann.report import write_sweep_report

        path = write_sweep_report(outcome.folder)
        print(path.read_text())
    if outcome.failed:
        print(f"mann: {len(outcome.failed)} cell(s) failed (errors in {outcome.folder / 'results.jsonl'}); "
              "rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0

