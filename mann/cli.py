"""The ``mann`` command: one subcommand per job.

A mistake the user can fix (:class:`episodes.errors.UsageError`) is printed as
one line, ``mann: error: ...``, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from episodes.errors import UsageError
from mann.baselines.cli import add_parser as add_baselines_parser
from mann.grading import command as grade_command
from mann.lake import add_parser as add_lake_parser


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root", default=None,
        help="folder holding images_background/images_evaluation (zips or folders); default $OMNIGLOT_ROOT, "
        "else ~/.cache/mann-bench/omniglot (downloaded when missing)",
    )
    parser.add_argument("--no-download", action="store_true", help="never download Omniglot")


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def apply_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"--threads {threads}: use 1 or more")
    import torch

    torch.set_num_threads(threads)


def load_store(args: argparse.Namespace):
    from episodes.omniglot import load_omniglot

    return load_omniglot(args.data_root, download=not args.no_download)


def add_train_parser(sub) -> None:
    from mann.config import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train one MANN and test it on fixed held-out episodes")
    p.add_argument("--ways", "-N", type=int, default=d.ways, help="N classes per episode (default %(default)s)")
    p.add_argument("--shots", "-K", type=int, default=d.shots, help="K support examples per class (default %(default)s)")
    p.add_argument("--hidden", type=int, default=d.hidden, help="layer1 width (default %(default)s)")
    p.add_argument("--steps", type=int, default=d.steps, help="training steps (default %(default)s)")
    p.add_argument("--batch-size", "-B", type=int, default=d.batch_size, help="episodes per step (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the weights and training episodes")
    p.add_argument("--split", default=d.split, help="cs330 | lake (default %(default)s)")
    p.add_argument("--split-seed", type=int, default=d.split_seed, help="seed of the character split (default %(default)s)")
    p.add_argument("--rotations", action="store_true", help="add 90/180/270° rotated copies as new classes")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="validate every so many steps")
    p.add_argument("--val-episodes", type=int, default=d.val_episodes)
    p.add_argument("--test-episodes", type=int, default=d.test_episodes, help="fixed test episodes (default %(default)s)")
    p.add_argument("--eval-seed", type=int, default=d.eval_seed, help="seed of the fixed val/test episodes")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda (default %(default)s)")
    p.add_argument("--no-fast", action="store_true", help="use stock nn.LSTM on the CPU too (slower, same numbers)")
    p.add_argument("--out", required=True, help="run folder (summary.json, log.csv, checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_args(p)
    add_threads_arg(p)
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from mann.config import TrainConfig
    from mann.stats import format_ci
    from mann.train import check_run_folder, prepare_splits, resolve_device, train
    from mann.io import ensure_writable_dir

    config = TrainConfig(
        ways=args.ways, shots=args.shots, hidden=args.hidden, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, split=args.split, split_seed=args.split_seed, rotations=args.rotations,
        eval_every=args.eval_every, val_episodes=args.val_episodes, test_episodes=args.test_episodes,
        eval_seed=args.eval_seed, checkpoint_every=args.checkpoint_every, device=args.device, fast=not args.no_fast,
    ).validate()
    apply_threads(args.threads)
    resolve_device(config.device)
    out = ensure_writable_dir(args.out)
    check_run_folder(out, args.resume)
    store = load_store(args)
    splits = prepare_splits(store, config)
    for split in (splits.train, splits.val, splits.test):
        print(split.describe(), file=sys.stderr)
    summary = train(config, store, out, resume=args.resume, progress=not args.quiet)
    print(
        f"N={config.ways} K={config.shots} H={config.hidden}: test accuracy "
        f"{format_ci(summary['test_accuracy'], summary['test_ci95'])}% on {config.test_episodes} episodes, "
        f"{summary['train_time_s']:.0f} s; summary in {Path(out) / 'summary.json'}"
    )
    return 0


def add_data_parser(sub) -> None:
    p = sub.add_parser("data", help="locate, verify and describe Omniglot and the splits")
    add_data_args(p)
    p.add_argument("--split-seed", type=int, default=1)
    p.set_defaults(run=run_data)


def run_data(args: argparse.Namespace) -> int:
    from episodes.omniglot import cache_dir, resolve_root
    from episodes.splits import PARTS, SCHEMES, make_split

    store = load_store(args)
    print(f"Omniglot: {resolve_root(args.data_root)}; {len(store)} characters "
          f"({int(store.background.sum())} background), {store.images.shape[1]} drawers, "
          f"{store.image_size}x{store.image_size}; content {store.source}; cache {cache_dir()}")
    for scheme in SCHEMES:
        for part in PARTS:
            print(make_split(store, scheme, part, args.split_seed).describe())
    return 0


def add_report_parser(sub) -> None:
    p = sub.add_parser("report", help="tabulate finished runs or a sweep's results (CSV + Markdown, PNG plots)")
    p.add_argument("runs", help="folder holding run folders with summary.json, or a sweep's results/<name>")
    p.add_argument("--out", default=None, help="where to write the tables (required for run folders; "
                   "default for a sweep: its own folder)")
    p.add_argument("--command", default=None, help="the command that produced the runs, written under the table")
    p.add_argument("--by-model", action="store_true", help="one row per (split, N, K), one column per model (MANN and baselines)")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from mann.report import collect, is_sweep_store, write_report, write_sweep_report

    if is_sweep_store(args.runs):
        print(write_sweep_report(args.runs, args.out).read_text())
        return 0
    if args.out is None:
        raise UsageError(f"--out is required for a folder of run folders ({args.runs}); say where the tables go")
    runs = collect(args.runs)
    if args.by_model:
        from mann.report import write_model_report

        path = write_model_report(runs, args.out, args.command)
        print(path.read_text())
        return 0
    path = write_report(runs, args.out, args.command)
    print(path.read_text())
    return 0


def add_bench_parser(sub) -> None:
    from mann.bench import add_parser

    add_parser(sub)


# Each entry adds one subcommand; keep them in the order of the help text.
from mann.sweep import add_parser as add_sweep_parser  # noqa: E402 - sweep's flags live in its own module

PARSERS = [
    add_train_parser, add_sweep_parser, add_report_parser, add_baselines_parser, add_lake_parser,
    add_bench_parser, add_data_parser, grade_command.add_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mann", description="mann-bench: few-shot meta-learning on Omniglot (MANN, sweeps, baselines, grading)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in PARSERS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as err:
        print(f"mann: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mann: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
