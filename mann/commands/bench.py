"""``mann bench``: benchmarks of the sampler, the model step, the ProtoNets step, the MAML meta-update
(whole and in micro-batches) and ``mann train``, each against its baseline."""

from __future__ import annotations

import argparse
import sys

from episodes.files import ensure_writable_dir
from mann import bench, training
from mann.commands.args import add_data_args, add_threads_arg

PARTS = ("sampler", "model", "protonet", "maml", "micro-batch", "e2e", "grading")
DEFAULT_PARTS = PARTS[:-1]  # grading a class of 40 takes about half an hour: asked for by name


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: sampler, model step, ProtoNets step, MAML meta-update, end to end, "
                                       "each against its baseline")
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(DEFAULT_PARTS),
                   help="which benchmarks (default: all but grading)")
    p.add_argument("--quick", action="store_true", help="one shape, short timings (a smoke run)")
    p.add_argument("--out", default=None, help="folder for bench.md and one CSV per table")
    add_data_args(p, resize=False)  # the benchmarks time the default (lanczos) store
    add_threads_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    training.set_threads(args.threads)
    out = ensure_writable_dir(args.out) if args.out else None
    plan = bench.QUICK if args.quick else bench.BenchPlan()
    tables = bench.run_benchmarks(args.data_root, plan, set(args.only), progress=lambda m: print(m, file=sys.stderr),
                                  download=not args.no_download)
    command = "mann bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "mann bench"
    text = bench.format_tables(tables, bench.machine(), command)
    print(text)
    if out is not None:
        bench.write_tables(tables, text, out)
    return 0
