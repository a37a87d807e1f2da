"""``mann report``: tables (CSV + Markdown) and plots of finished runs or of a sweep's result store."""

from __future__ import annotations

import argparse

from episodes.errors import UsageError
from mann import reporting


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="tabulate finished runs or a sweep's results (CSV + Markdown, PNG plots)")
    p.add_argument("runs", help="folder holding run folders with summary.json, or a sweep's results/<name>")
    p.add_argument("--out", default=None, help="where to write the tables (required for run folders; "
                   "default for a sweep: its own folder)")
    p.add_argument("--command", default=None, help="the command that produced the runs, written under the table")
    p.add_argument("--by-model", action="store_true",
                   help="one row per (split, N, K), one column per model (a sweep over models has it anyway)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if reporting.is_sweep_store(args.runs):
        print(reporting.write_sweep_report(args.runs, args.out).read_text())
        return 0
    if args.out is None:
        raise UsageError(f"--out is required for a folder of run folders ({args.runs}); say where the tables go")
    runs = reporting.collect(args.runs)
    write = reporting.write_model_report if args.by_model else reporting.write_report
    print(write(runs, args.out, args.command).read_text())
    return 0
