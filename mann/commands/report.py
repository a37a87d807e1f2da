"""``mann report``: tables (CSV + Markdown) and plots of finished runs or of a sweep's result store."""

from __future__ import annotations

import argparse

from episodes.errors import UsageError
from mann import reporting


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="tabulate finished runs or a sweep's results (CSV + Markdown, PNG plots)")
    p.add_argument("runs", nargs="+", help="folder holding run folders with summary.json, or a sweep's "
                   "results/<name> (with --papers: several sweeps' results/<name>)")
    p.add_argument("--out", default=None, help="where to write the tables (required for run folders; "
                   "default for a sweep: its own folder)")
    p.add_argument("--command", default=None, help="the command that produced the runs, written under the table")
    p.add_argument("--by-model", action="store_true",
                   help="one row per (split, N, K), one column per model (a sweep over models has it anyway)")
    p.add_argument("--papers", action="store_true",
                   help="one table of every published Omniglot cell beside ours across the given sweep stores "
                   "(e.g. results/protonets-omniglot results/maml-omniglot results/mann-omniglot); needs --out")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.papers:
        if args.out is None:
            raise UsageError("--papers needs --out: say where the combined table goes (e.g. results/papers-protocol)")
        print(reporting.write_protocol_report(args.runs, args.out).read_text())
        return 0
    if len(args.runs) > 1:
        raise UsageError(f"one folder at a time ({len(args.runs)} given: {' '.join(args.runs)}); "
                         "pass --papers to combine several sweep stores into the papers' table")
    args.runs = args.runs[0]
    if reporting.is_sweep_store(args.runs):
        print(reporting.write_sweep_report(args.runs, args.out).read_text())
        return 0
    if args.out is None:
        raise UsageError(f"--out is required for a folder of run folders ({args.runs}); say where the tables go")
    runs = reporting.collect(args.runs)
    write = reporting.write_model_report if args.by_model else reporting.write_report
    print(write(runs, args.out, args.command).read_text())
    return 0
