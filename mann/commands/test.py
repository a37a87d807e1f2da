"""``mann test``: saved weights (a finished run's, a training run's or a sweep cell's checkpoint) on their
run's fixed test episodes."""

from __future__ import annotations

import argparse

from episodes.files import ensure_writable_dir
from mann import reporting, training
from mann.commands.args import add_data_args, add_threads_arg, load_store, positive_int

# Columns kept for test.csv only: the Markdown table shows them formatted.
RAW_COLUMNS = ["test_accuracy", "test_ci95"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "test", help="test saved weights (a run folder, or a checkpoint.pt mid-training) on their fixed test episodes",
        description="Score saved weights on the fixed test episodes of the run that made them: a finished run "
        "folder (its model.pt), a run still training or a sweep cell (its checkpoint.pt), or a checkpoint "
        "carried in results/. A checkpoint at step S scores what `mann train ... --steps S` reports; a "
        "finished run scores its summary's figure again (shown beside it). --best scores the weights of the best "
        "validation loss instead, which runs without early stopping keep. Nothing is trained or changed.",
    )
    p.add_argument("weights", nargs="+", help="run folders or checkpoint.pt files (several give one table)")
    p.add_argument("--ways", "-N", type=positive_int, nargs="+", metavar="N",
                   help="test at these N (default: each run's N and its --also-test-ways; only ProtoNets takes "
                        "another N)")
    p.add_argument("--episodes", type=positive_int, help="fixed test episodes (default: each run's --test-episodes)")
    p.add_argument("--eval-seed", type=int, help="seed of the fixed test episodes (default: each run's)")
    p.add_argument("--best", action="store_true",
                   help="the weights of the best validation loss (a run folder's best.pt, or a checkpoint's copy) "
                        "instead of the last")
    p.add_argument("--distinct-characters", action="store_true",
                   help="draw each test episode's N classes from N distinct characters, one random rotation each, as "
                        "Finn et al.'s MAML code draws Omniglot tasks (default: the run's own test: N distinct "
                        "classes, where two rotations of one character can meet, as in the vinyals lists and "
                        "ProtoNets' code, unless it trained with --distinct-characters); for splits of rotated classes")
    p.add_argument("--out", default=None, help="also write test.csv and test.md there")
    p.add_argument("--command", default=None, help="the command that produced the weights, written under the table")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_args(p, resize=False)  # each run's test images are decoded as its training images were
    add_threads_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = ensure_writable_dir(args.out) if args.out else None
    training.set_threads(args.threads)
    device = training.resolve_device(args.device)
    stores = {}

    def store_for(resize: str):
        if resize not in stores:
            stores[resize] = load_store(args, resize)
        return stores[resize]

    table = reporting.score_saved_weights(args.weights, store_for, tuple(args.ways) if args.ways else None,
                                          args.episodes, args.eval_seed, device, progress=not args.quiet,
                                          best=args.best, distinct_characters=args.distinct_characters)
    markdown = table.drop(columns=RAW_COLUMNS).to_markdown(index=False)
    if out is not None:
        reporting.write_table(out, "test", table, markdown, args.command)
    print(markdown)
    return 0
