"""Everything the grader compares submissions against, built once per session.

The reference is the project's own code: the Omniglot store, the ``cs330``
split (seed 1) and its episode sampler, the reference ``MANN`` and
``loss_function`` (mann/models/mann.py), the PNG tree handed to submissions, and an
index that identifies every image of that tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from episodes.omniglot import OmniglotStore, cache_dir
from episodes.png_tree import write_png_tree
from episodes.splits import CS330_SIZES, Split, make_split
from mann.grading.image_index import ImageIndex

SPLIT, SPLIT_SEED = "cs330", 1


@dataclass(frozen=True)
class Reference:
    """store: the decoded Omniglot; tree: the read-only PNG tree at
    ``config["data_folder"]``; index: identifies the tree's images;
    train / test: the reference split parts for training and testing runs."""

    store: OmniglotStore
    tree: Path
    index: ImageIndex
    train: Split
    test: Split

    @property
    def split_sizes(self) -> dict[str, int]:
        """Characters in each part of the assignment's split (1100 / 100 / rest)."""
        return {**CS330_SIZES, "test": len(self.store) - sum(CS330_SIZES.values())}


def build_reference(
    store: OmniglotStore, tree: Path | None = None, drawers: int | None = None, progress: bool = False
) -> Reference:
    """The reference for ``store``; writes its PNG tree once (default: in the cache folder)."""
    count = store.images.shape[1] if drawers is None else drawers
    if tree is None:
        tree = cache_dir() / f"omniglot_resized-{store.source}-{count}"
    write_png_tree(store, tree, drawers=count, progress=progress)
    return Reference(
        store=store,
        tree=Path(tree).resolve(),
        index=ImageIndex(store, count),
        train=make_split(store, SPLIT, "train", SPLIT_SEED),
        test=make_split(store, SPLIT, "test", SPLIT_SEED),
    )
