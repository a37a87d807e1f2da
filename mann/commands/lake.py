"""``mann lake``: error rates of trained models on the 20 official 20-way one-shot runs (Lake et al. 2015)."""

from __future__ import annotations

import argparse
from pathlib import Path

import episodes
from episodes.files import ensure_writable_dir
from episodes.layout import LAKE_ARCHIVE
from mann import reporting
from mann.commands.args import add_data_args


def add_parser(sub) -> None:
    p = sub.add_parser("lake", help="error rates on the 20 official 20-way one-shot runs (all_runs.zip)")
    p.add_argument("--run-folder", action="append", required=True,
                   help="a finished mann train run (any model) trained with --split lake (repeat for several)")
    p.add_argument("--archive", default=None,
                   help=f"path of {LAKE_ARCHIVE} (default: {LAKE_ARCHIVE} in --data-root / $OMNIGLOT_ROOT)")
    p.add_argument("--out", default=None, help="also write lake.csv and lake.md there")
    p.add_argument("--command", default=None, help="the command that produced the runs, written under the table")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default %(default)s)")
    add_data_args(p, resize=False)  # each run's images are decoded with the resize its model was trained on
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    archive = Path(args.archive) if args.archive else episodes.resolve_root(args.data_root) / LAKE_ARCHIVE
    out = ensure_writable_dir(args.out) if args.out else None
    runs, accuracies = reporting.score_lake_runs(args.run_folder, archive, args.device)
    table = reporting.lake_error_table(runs, accuracies)
    markdown = table.to_markdown(index=False)
    if out is not None:
        reporting.write_table(out, "lake", table, markdown, args.command)
    print(markdown)
    return 0
