"""Argument helpers shared by the subcommands (no torch: ``--help`` must be fast)."""

from __future__ import annotations

import argparse

import episodes


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root", default=None,
        help="folder holding images_background/images_evaluation (zips or folders); default $OMNIGLOT_ROOT, "
        "else ~/.cache/mann-bench/omniglot (downloaded when missing)",
    )
    parser.add_argument("--no-download", action="store_true", help="never download Omniglot")


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def load_store(args: argparse.Namespace):
    """The Omniglot store the data flags point at (UsageError if it is missing and cannot be fetched)."""
    return episodes.load_omniglot(args.data_root, download=not args.no_download)
