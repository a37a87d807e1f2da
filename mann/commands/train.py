"""``mann train``: train one model (the MANN, a baseline or your own class) and test it on fixed episodes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from episodes.errors import UsageError
from episodes.files import ensure_writable_dir
from mann import models, training
from mann.commands.args import add_data_args, add_threads_arg, load_store
from mann.models.hyperparameters import MAML_IMPLS, MODELS, PLUGIN_HINT, describe_models
from mann.stats import format_ci
from mann.training.config import TrainConfig, make_config

D = TrainConfig()


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train one model (MANN, MAML, ProtoNets, ... or your own) and test it on fixed episodes",
        description="Train any learner through the same loop (log.csv, checkpoint.pt + --resume, model.pt, "
        "summary.json) and test it on the fixed test episodes every model of the same N, K and split gets. "
        "A flag left out takes the model's published value for N (--list-models shows them).",
    )
    p.add_argument("--model", default="mann", help=f"{' | '.join(MODELS)}, {PLUGIN_HINT} (default %(default)s)")
    p.add_argument("--list-models", action="store_true", help="describe the models and their defaults for -N, then exit")
    p.add_argument("--ways", "-N", type=int, default=D.ways, help="N classes per episode (default %(default)s)")
    p.add_argument("--shots", "-K", type=int, default=D.shots, help="K support examples per class (default %(default)s)")
    p.add_argument("--seed", type=int, default=D.seed, help="seed of the weights and training episodes")
    schedule = p.add_argument_group("schedule (default: the model's; the MANN's are the assignment's)")
    schedule.add_argument("--steps", type=int, help=f"training steps (MANN: {D.steps})")
    schedule.add_argument("--batch-size", "-B", "--meta-batch", dest="batch_size", type=int,
                          help=f"episodes per step (MANN: {D.batch_size})")
    schedule.add_argument("--lr", "--meta-lr", dest="lr", type=float, help=f"Adam learning rate (MANN: {D.lr})")
    schedule.add_argument("--lr-halve-every", type=int, help="halve the learning rate every so many steps (0: never)")
    schedule.add_argument("--eval-every", type=int, help=f"validate every so many steps (MANN: {D.eval_every})")
    schedule.add_argument("--val-episodes", type=int, help=f"fixed validation episodes (MANN: {D.val_episodes})")
    schedule.add_argument("--checkpoint-every", type=int, help=f"steps between checkpoints (default {D.checkpoint_every})")
    schedule.add_argument("--checkpoint-minutes", type=float,
                          help="also checkpoint once this many minutes of training passed since the last checkpoint, "
                               f"so an interruption loses at most that (default {D.checkpoint_minutes:g}; 0: by steps only)")
    schedule.add_argument("--patience", type=int, help="stop when the validation loss has not improved for this many "
                          "evaluations, and test the best evaluation's weights (default 0: never stop early)")
    schedule.add_argument("--refit", action="store_true", default=None,
                          help="after stopping early, train fresh weights on train+val for the best step plus the "
                               "patience and test those (Snell et al.'s final models); needs --patience")
    own = p.add_argument_group("the model's own hyperparameters (each applies to one kind of model)")
    own.add_argument("--hidden", type=int, help=f"black-box models: layer1 width / hidden_dim (default {D.hidden})")
    own.add_argument("--no-fast", dest="fast", action="store_false", default=None,
                     help="MANN: stock nn.LSTM on the CPU too (slower, same numbers)")
    own.add_argument("--fast-lr", type=float, help="MAML, Meta-SGD, ANIL: inner step size (Meta-SGD: its initial value)")
    own.add_argument("--adapt-steps", type=int, help="MAML, Meta-SGD, ANIL: inner steps in training")
    own.add_argument("--test-adapt-steps", type=int, help="MAML, Meta-SGD, ANIL: inner steps when testing")
    own.add_argument("--first-order", action="store_true", default=None, help="MAML, Meta-SGD, ANIL: first-order meta-gradient")
    own.add_argument("--maml-impl", choices=MAML_IMPLS,
                     help="MAML, Meta-SGD, ANIL: vectorized (every task of a meta-batch at once; default) or "
                          "learn2learn (its per-task loop, the reference; needs learn2learn)")
    own.add_argument("--published-learner", action="store_true", default=None,
                     help="MAML, ANIL: Finn et al.'s learner as their code builds it (batch norm without scale, "
                          "epsilon 1e-3, its offset not adapted in the inner loop; their initialisation). Their "
                          "inner step acts on N x the mean support loss: their --update_lr 0.4 at 5-way is --fast-lr 2.0")
    own.add_argument("--train-ways", type=int, help="ProtoNets: N of the training episodes (default 60)")
    own.add_argument("--train-queries", type=int, help="ProtoNets: query images per class in a training episode (default 5)")
    own.add_argument("--val-queries", type=int, help="ProtoNets: query images per class in a validation episode (default 15)")
    data = p.add_argument_group("data and testing (the same for every model)")
    data.add_argument("--split", default=D.split, help="cs330 | lake | vinyals (default %(default)s)")
    data.add_argument("--split-seed", type=int, default=D.split_seed, help="seed of the character split (default %(default)s; vinyals is fixed lists)")
    data.add_argument("--rotations", action="store_true", help="add 90/180/270° rotated copies as new classes")
    data.add_argument("--distinct-characters", action="store_true",
                      help="draw every episode as N distinct characters at one random rotation each, as Finn et "
                           "al.'s MAML code does (default: N distinct classes, so two rotations of one character "
                           "can meet); needs --rotations or --split vinyals")
    data.add_argument("--test-episodes", type=int, default=D.test_episodes, help="fixed test episodes (default %(default)s)")
    data.add_argument("--eval-seed", type=int, default=D.eval_seed, help="seed of the fixed val/test episodes")
    data.add_argument("--also-test-ways", type=int, nargs="+", metavar="N",
                      help="also test the final weights on N-way episodes for each N given (e.g. 20)")
    p.add_argument("--device", default=D.device, help="auto | cpu | cuda (default %(default)s)")
    p.add_argument("--micro-batch", type=int, metavar="M",
                   help="forward and backward M episodes of a step at a time, adding up their gradients: the "
                        "same step up to float rounding, less memory (MANN, MAML, Meta-SGD, ANIL; default: the "
                        "whole batch at once; may change on --resume)")
    p.add_argument("--out", help="run folder (summary.json, log.csv, checkpoint.pt, model.pt)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_args(p)
    add_threads_arg(p)
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return make_config(
        args.model, args.ways, shots=args.shots, seed=args.seed, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, lr_halve_every=args.lr_halve_every, eval_every=args.eval_every, val_episodes=args.val_episodes,
        checkpoint_every=args.checkpoint_every, checkpoint_minutes=args.checkpoint_minutes, hidden=args.hidden,
        fast=args.fast, fast_lr=args.fast_lr,
        adapt_steps=args.adapt_steps, test_adapt_steps=args.test_adapt_steps, first_order=args.first_order,
        maml_impl=args.maml_impl, published_learner=args.published_learner,
        train_ways=args.train_ways, train_queries=args.train_queries, val_queries=args.val_queries, patience=args.patience, refit=args.refit,
        also_test_ways=tuple(args.also_test_ways) if args.also_test_ways else None, split=args.split, split_seed=args.split_seed, rotations=args.rotations, distinct_characters=args.distinct_characters, resize=args.resize,
        test_episodes=args.test_episodes, eval_seed=args.eval_seed, device=args.device, micro_batch=args.micro_batch,
    )


def run(args: argparse.Namespace) -> int:
    if args.list_models:
        print(describe_models(args.ways))
        return 0
    config = config_from_args(args)
    if not args.out:
        raise UsageError(f"--out is required: the run folder, e.g. --out runs/{config.label}_N{config.ways}_K{config.shots}")
    training.set_threads(args.threads)
    training.resolve_device(config.device)
    models.build_learner(config)  # a missing learn2learn or a broken model class: one line, before anything is written
    out = ensure_writable_dir(args.out)
    training.check_run_folder(out, args.resume)
    splits = training.prepare_splits(load_store(args), config)
    for line in splits.describe():
        print(line, file=sys.stderr)
    summary = training.train(config, splits, out, resume=args.resume, progress=not args.quiet)
    size = f" H={config.hidden}" if config.hidden is not None else ""
    print(
        f"{config.label} N={config.ways} K={config.shots}{size}: test accuracy "
        f"{format_ci(summary['test_accuracy'], summary['test_ci95'])}% on {config.test_episodes} episodes, "
        f"{config.steps} steps, {summary['train_time_s']:.0f} s, {summary['parameters']:,} parameters; "
        f"summary in {Path(out) / 'summary.json'}"
    )
    return 0
