"""``mann baselines MODEL``: train one baseline and test it on the MANN's test episodes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    # Imported here: mann.cli imports this module to list its subcommands.
    from mann.baselines.config import MODELS, BaselineConfig
    from mann.cli import add_data_args, add_threads_arg

    d = BaselineConfig()
    p = sub.add_parser(
        "baselines",
        help="train a baseline (MAML, Meta-SGD, ANIL, ProtoNets) and test it on the MANN's test episodes",
        description="Models: " + "; ".join(f"{k}: {v}" for k, v in MODELS.items())
        + ". Flags left out take the published values for the model and N (see --list).",
    )
    p.add_argument("model", nargs="?", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--list", action="store_true", help="describe the models and their default hyperparameters, then exit")
    p.add_argument("--ways", "-N", type=int, default=d.ways, help="N classes per test episode (default %(default)s)")
    p.add_argument("--shots", "-K", type=int, default=d.shots, help="K support examples per class (default %(default)s)")
    p.add_argument("--steps", type=int, default=None, help="meta-updates (default: the model's published count)")
    p.add_argument("--meta-batch", type=int, default=None, help="episodes per meta-update")
    p.add_argument("--meta-lr", type=float, default=None, help="Adam learning rate of the meta-update")
    p.add_argument("--fast-lr", type=float, default=None, help="inner-loop step size (Meta-SGD: its initial value)")
    p.add_argument("--adapt-steps", type=int, default=None, help="inner-loop steps in training")
    p.add_argument("--test-adapt-steps", type=int, default=None, help="inner-loop steps when testing")
    p.add_argument("--first-order", action="store_true", default=None, help="first-order meta-gradient (FOMAML)")
    p.add_argument("--train-ways", type=int, default=None, help="N of the training episodes (ProtoNets; default 60)")
    p.add_argument("--lr-halve-every", type=int, default=None, help="halve the meta learning rate every so many steps (0: never)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the weights and training episodes")
    p.add_argument("--split", default=d.split, help="cs330 | lake (default %(default)s, as mann train)")
    p.add_argument("--split-seed", type=int, default=d.split_seed, help="seed of the character split (default %(default)s)")
    p.add_argument("--rotations", action="store_true", help="add 90/180/270° rotated copies as new classes")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="validate every so many steps")
    p.add_argument("--val-episodes", type=int, default=d.val_episodes)
    p.add_argument("--test-episodes", type=int, default=d.test_episodes, help="fixed test episodes (default %(default)s)")
    p.add_argument("--eval-seed", type=int, default=d.eval_seed, help="seed of the fixed val/test episodes (the MANN's default)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda (default %(default)s)")
    p.add_argument("--out", help="run folder (summary.json, log.csv, model.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_args(p)
    add_threads_arg(p)
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace):
    from episodes.errors import UsageError
    from mann.baselines.config import MODELS, published_config, unknown_model_message

    if not args.model:
        raise UsageError("name a baseline, e.g. mann baselines protonet --out runs/proto (mann baselines --list shows them)")
    if args.model not in MODELS:
        raise UsageError(unknown_model_message(args.model))
    return published_config(
        args.model, args.ways, args.shots, steps=args.steps, meta_batch=args.meta_batch, meta_lr=args.meta_lr,
        fast_lr=args.fast_lr, adapt_steps=args.adapt_steps, test_adapt_steps=args.test_adapt_steps,
        first_order=args.first_order, train_ways=args.train_ways, lr_halve_every=args.lr_halve_every, seed=args.seed,
        split=args.split, split_seed=args.split_seed, rotations=args.rotations, eval_every=args.eval_every,
        val_episodes=args.val_episodes, test_episodes=args.test_episodes, eval_seed=args.eval_seed, device=args.device,
    )


def describe_models(ways: int) -> str:
    from mann.baselines.config import MODELS, published_defaults

    lines = [f"baselines (defaults for N={ways}):"]
    for name, text in MODELS.items():
        values = {k: v for k, v in published_defaults(name, ways).items() if v is not None}
        lines.append(f"  {name:12s} {text}")
        lines.append("  " + " " * 13 + ", ".join(f"{k}={v}" for k, v in values.items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from episodes.errors import UsageError
    from mann.baselines.train import build_baseline, prepare_baseline_splits, train_baseline
    from mann.cli import apply_threads, load_store
    from mann.io import ensure_writable_dir
    from mann.stats import format_ci
    from mann.train import check_run_folder, resolve_device

    if args.list:
        print(describe_models(args.ways))
        return 0
    config = config_from_args(args)
    if not args.out:
        raise UsageError(f"--out is required: the run folder, e.g. --out runs/baselines/{config.model}")
    apply_threads(args.threads)
    resolve_device(config.device)
    import torch

    build_baseline(config, torch.Generator())  # learn2learn missing → one clear line, before any data is read
    out = ensure_writable_dir(args.out)
    check_run_folder(out, resume=False)
    store = load_store(args)
    splits = prepare_baseline_splits(store, config)
    for split in (splits.train, splits.val, splits.test):
        print(split.describe(), file=sys.stderr)
    summary = train_baseline(config, store, out, progress=not args.quiet)
    print(
        f"{config.model} N={config.ways} K={config.shots}: test accuracy "
        f"{format_ci(summary['test_accuracy'], summary['test_ci95'])}% on {config.test_episodes} episodes, "
        f"{config.steps} steps, {summary['train_time_s']:.0f} s, {summary['parameters']:,} parameters; "
        f"summary in {Path(out) / 'summary.json'}"
    )
    return 0
