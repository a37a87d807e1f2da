"""Argument helpers shared by the subcommands (no torch: ``--help`` must be fast)."""

from __future__ import annotations

import argparse

import episodes
from episodes.layout import RESIZES


def add_data_args(parser: argparse.ArgumentParser, resize: bool = True) -> None:
    """--data-root and --no-download; with resize, also --resize (for commands that load the store via load_store)."""
    parser.add_argument(
        "--data-root", default=None,
        help="folder holding images_background/images_evaluation (zips or folders); default $OMNIGLOT_ROOT, "
        "else ~/.cache/mann-bench/omniglot (downloaded when missing)",
    )
    parser.add_argument("--no-download", action="store_true", help="never download Omniglot")
    if not resize:
        return
    parser.add_argument(
        "--resize", choices=RESIZES, default="lanczos",
        help="how the 105x105 PNGs become 28x28: lanczos (greyscale then Lanczos, grey stroke edges; default) or "
        "nearest (nearest-neighbour on the 1-bit original, 0/255 only, as the ProtoNets/MAML code did)",
    )


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def load_store(args: argparse.Namespace, resize: str | None = None):
    """The Omniglot store the data flags point at, decoded with ``resize`` (default: the --resize flag);
    UsageError if it is missing and cannot be fetched."""
    return episodes.load_omniglot(args.data_root, download=not args.no_download,
                                  resize=resize or getattr(args, "resize", "lanczos"))


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, with an error naming the value otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give e.g. 2") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1; give 1 or more")
    return value
