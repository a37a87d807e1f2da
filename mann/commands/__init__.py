"""The ``mann`` command: one module per subcommand, on top of everything else (nothing imports it).

args.py   the flags several subcommands share (data root, threads) and loading the store
train.py  mann train    test.py   mann test     sweep.py  mann sweep    report.py  mann report
lake.py   mann lake     bench.py  mann bench    data.py   mann data     grade.py   mann grade

A mistake the user can fix (:class:`episodes.errors.UsageError`) is printed as
one line, ``mann: error: ...``, with exit status 2 and no traceback. Building
the parser imports no torch, numpy or pandas (the packages below load their
modules on first use), so ``mann --help`` answers at once. A command stopped
by SIGTERM or Ctrl-C (:mod:`mann.signals`) says where it stopped and exits
with 128 + the signal's number; training stops at the end of its step, with
a checkpoint, so the same command resumes it.
"""

from __future__ import annotations

import argparse
import sys

from episodes.errors import UsageError
from mann.signals import Stopped
from mann.commands import bench, data, grade, lake, report, sweep, test, train

# Each module adds one subcommand; in the order of the help text.
SUBCOMMANDS = (train, test, sweep, report, lake, bench, data, grade)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mann", description="mann-bench: few-shot meta-learning on Omniglot (MANN, baselines, sweeps, grading)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as err:
        print(f"mann: error: {err}", file=sys.stderr)
        return 2
    except Stopped as stop:
        print(f"mann: {stop}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("mann: interrupted", file=sys.stderr)
        return 130
