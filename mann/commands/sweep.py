"""``mann sweep``: train every cell of a models x N x K x hidden (x seed ...) grid, resumably.

Each cell trains in its own run folder ``runs/<name>/<cell id>/`` (checkpoints and
log, so an interrupted cell continues mid-way) and, once finished, adds one row
to the result store ``results/<name>/`` (:mod:`mann.sweep.store`). Rerunning
the same command skips finished cells and retries failed ones. Every check on
the grid, the data and the results folder happens before the first cell runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from episodes.errors import UsageError
from mann import reporting, sweep, training
from episodes.layout import RESIZES
from mann.commands.args import add_data_args, load_store
from mann.sweep.grid import SweepSpec, apply_overrides, load_config_file, preset_mapping, preset_names, spec_from_mapping


# (flag, dest, nargs) of every flag that changes what the sweep computes or where: rebuilt into the
# command line stored with the results, so the tables say how to reproduce them.
_AXIS_FLAGS = [("--models", "models", str), ("--ways", "ways", int), ("--shots", "shots", int), ("--hidden", "hidden", int),
               ("--seeds", "seeds", int), ("--lr", "lr", float), ("--steps", "steps", int),
               ("--batch-size", "batch_size", int), ("--split", "split", str)]
_SETTING_FLAGS = [("--split-seed", "split_seed"), ("--eval-every", "eval_every"), ("--val-episodes", "val_episodes"),
                  ("--test-episodes", "test_episodes"), ("--eval-seed", "eval_seed"),
                  ("--checkpoint-every", "checkpoint_every"), ("--checkpoint-minutes", "checkpoint_minutes")]
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
    src.add_argument("--preset", default=None, help=f"a ready grid: {', '.join(preset_names())} "
                     "(cs330: the assignment's four runs at H=128 plus H=8/256 on K=1,N=3, three seeds, 25k steps; "
                     "quick: the same shape, short, ~2 minutes; baselines: the MANN beside the baselines, short; "
                     "protonets-omniglot: Snell et al.'s recipe on the vinyals protocol (many hours); "
                     "maml-omniglot: Finn et al.'s MAML recipe on the same protocol (many hours); "
                     "mann-omniglot: the MANN on the same protocol and test episodes; "
                     "the files are in mann/sweep/presets/)")
    src.add_argument("--config", default=None, help="a TOML sweep file (axes, settings, [[grid]] blocks)")
    src.add_argument("--name", default=None, help="the sweep's folder name under --results and --runs "
                     "(default: the preset's or file's name, else sweep-<hash of the grid>)")
    for flag, dest, kind in _AXIS_FLAGS:
        src.add_argument(flag, dest=dest, type=kind, nargs="+", default=None, metavar="V",
                         help={"models": "models (mann, protonet, maml-cnn, ..., or file.py:Class)", "ways": "N values", "shots": "K values", "hidden": "hidden sizes",
                               "seeds": "seeds (weights and training episodes)", "lr": "Adam learning rates",
                               "steps": "training step counts", "batch_size": "episodes per step",
                               "split": "cs330 | lake | vinyals"}[dest])
    settings = p.add_argument_group("settings shared by every cell (default: each model's, as mann train; "
                                    "a model's own hyperparameters go in a TOML [params.<model>] table)")
    for flag, dest in _SETTING_FLAGS:
        settings.add_argument(flag, dest=dest, type=float if dest == "checkpoint_minutes" else int, default=None)
    settings.add_argument("--rotations", action="store_true", default=None, help="add rotated copies as classes")
    settings.add_argument("--distinct-characters", action="store_true", default=None,
                          help="episodes of N distinct characters, one rotation each (see mann train)")
    settings.add_argument("--resize", choices=RESIZES, default=None,
                          help="lanczos | nearest: how the 28x28 images are made (default lanczos; see mann train)")
    settings.add_argument("--no-fast", dest="fast", action="store_false", default=None,
                          help="stock nn.LSTM on the CPU too")
    where = p.add_argument_group("where it runs")
    where.add_argument("--executor", default="local", help="local | ray (default %(default)s)")
    where.add_argument("--workers", type=int, default=None,
                     help="local: cells at once in worker processes (default 1: in this process); "
                     "ray: CPUs of the local Ray started when no --address is given (default all cores)")
    where.add_argument("--threads", type=int, default=None,
                     help="torch threads per cell (default: cores // workers; Ray: 1 CPU per task)")
    where.add_argument("--address", default=None, help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
    where.add_argument("--device", default="auto", help="auto | cpu | cuda for every cell (default %(default)s)")
    where.add_argument("--results", default="results", help="root of the result stores (default %(default)s)")
    where.add_argument("--runs", default="runs", help="root of the run folders (default %(default)s)")
    where.add_argument("--no-report", action="store_true", help="do not write tables and plots at the end")
    where.add_argument("--quiet", action="store_true", help="no progress bars")
    add_data_args(p, resize=False)
    p.set_defaults(run=run)


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The sweep the flags describe; UsageError for contradictory or missing choices."""
    axes = {dest: getattr(args, dest) for _, dest, _ in _AXIS_FLAGS if getattr(args, dest) is not None}
    settings = {dest: getattr(args, dest) for _, dest in _SETTING_FLAGS if getattr(args, dest) is not None}
    for key in ("rotations", "distinct_characters", "fast", "resize"):
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
            "nothing to sweep: give --preset (" + ", ".join(preset_names()) + "), --config FILE.toml, "
            "or axes such as --ways 2 3 --shots 1 --hidden 128 --seeds 0 1"
        )
    mapping = apply_overrides(base, {**axes, **settings})
    if "name" not in mapping and fallback is not None:
        mapping["name"] = fallback
    return spec_from_mapping(mapping, where, name=args.name, device=args.device)


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
    if args.distinct_characters:
        words.append("--distinct-characters")
    if args.resize is not None:
        words += ["--resize", args.resize]
    if args.fast is False:
        words.append("--no-fast")
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    executor = sweep.make_executor(args.executor, args.workers, args.threads, args.address)
    training.resolve_device(args.device)
    outcome = sweep.run_sweep(
        spec, lambda: load_store(args, sweep.store_resize(spec)), args.results, args.runs, executor,
        progress=not args.quiet,
        command=command_line(args),
    )
    print(
        f"sweep {spec.name}: {outcome.cells} cells, {outcome.ran} run now, {outcome.skipped} already finished, "
        f"{len(outcome.failed)} failed; {outcome.wall_s:.0f} s; rows in {outcome.folder / 'results.jsonl'}",
        file=sys.stderr,
    )
    if not args.no_report:
        path = reporting.write_sweep_report(outcome.folder)
        print(path.read_text())
    if outcome.failed:
        print(f"mann: {len(outcome.failed)} cell(s) failed (errors in {outcome.folder / 'results.jsonl'}); "
              "rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0

