"""``mann data``: where Omniglot is, its size, content hash and resize, and every split part with its fingerprint."""

from __future__ import annotations

import argparse

import episodes
from episodes.errors import UsageError
from episodes.layout import PARTS, SCHEMES
from mann.commands.args import add_data_args, load_store


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="locate, verify and describe Omniglot and the splits")
    add_data_args(p)
    p.add_argument("--split-seed", type=int, default=1)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store = load_store(args)
    print(f"Omniglot: {episodes.resolve_root(args.data_root)}; {len(store)} characters "
          f"({int(store.background.sum())} background), {store.images.shape[1]} drawers, "
          f"{store.image_size}x{store.image_size} ({store.resize} resize); content {store.source}; "
          f"cache {episodes.cache_dir()}")
    for scheme in SCHEMES:
        try:
            lines = [episodes.make_split(store, scheme, part, args.split_seed).describe() for part in PARTS]
        except UsageError as err:  # e.g. vinyals on a copy whose names differ: the other splits still show
            lines = [f"split {scheme}: not available: {err}"]
        print("\n".join(lines))
    return 0
