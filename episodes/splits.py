"""Named, reproducible character splits of Omniglot.

``cs330``: the assignment's 1100 / 100 / 423 characters (train / val / test)
drawn from all 1623. The assignment shuffled an unsorted directory listing
with ``random.seed(1)``, which gives different splits on different machines;
here the names are sorted first and shuffled with an explicit
``numpy.random.Generator``, and each split prints a fingerprint so two
machines can check they hold the same characters.

``lake``: the protocol of Lake et al. (2015) and of the 20 official one-shot
runs: train and val are characters of the background set (val = 100 of them,
drawn by the seed), test is the whole evaluation set (659 characters of 20
alphabets never seen in training).

Optional class augmentation by 90° rotations (Santoro et al. 2016; MAML) turns
each character into four classes, applied within each part so no rotation of
a test character ever appears in training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from episodes.errors import UsageError
from episodes.layout import PARTS, SCHEMES
from episodes.omniglot import OmniglotStore

CS330_SIZES = {"train": 1100, "val": 100}
LAKE_VAL = 100


@dataclass(frozen=True)
class Split:
    """The characters of one part of a split.

    images: uint8 [C, 20, S, S] (ink=255), one row per class.
    characters: C class names (``"<Alphabet>/characterNN"``, plus ``"@90"`` etc.
        for rotated copies).
    """

    scheme: str
    part: str
    seed: int
    rotations: bool
    characters: tuple[str, ...]
    images: np.ndarray

    @property
    def fingerprint(self) -> str:
        """A short hash of the class names: equal on two machines iff the split is."""
        joined = "\n".join(self.characters).encode()
        return hashlib.sha1(joined).hexdigest()[:10]

    @property
    def num_classes(self) -> int:
        return len(self.characters)

    def describe(self) -> str:
        rot = ", rotations" if self.rotations else ""
        return (
            f"split {self.scheme}/{self.part} (seed {self.seed}{rot}): "
            f"{self.num_classes} classes, fingerprint {self.fingerprint}"
        )


def split_indices(store: OmniglotStore, scheme: str, seed: int = 1) -> dict[str, np.ndarray]:
    """{part: indices into the store's characters}, disjoint, for a named scheme."""
    if scheme not in SCHEMES:
        raise UsageError(f"unknown split {scheme!r}; choose one of {', '.join(SCHEMES)}")
    rng = np.random.default_rng(seed)
    if scheme == "cs330":
        # The store is sorted by name, so the permutation alone fixes the split.
        order = rng.permutation(len(store))
        n_train, n_val = CS330_SIZES["train"], CS330_SIZES["val"]
        if len(store) <= n_train + n_val:
            raise UsageError(
                f"the cs330 split needs more than {n_train + n_val} characters, "
                f"the data has {len(store)}; use the full Omniglot"
            )
        parts = {
            "train": order[:n_train],
            "val": order[n_train:n_train + n_val],
            "test": order[n_train + n_val:],
        }
    else:
        background = np.flatnonzero(store.background)
        evaluation = np.flatnonzero(~store.background)
        shuffled = rng.permutation(background)
        parts = {"train": shuffled[LAKE_VAL:], "val": shuffled[:LAKE_VAL], "test": evaluation}
    return {part: np.sort(idx) for part, idx in parts.items()}


def make_split(
    data: OmniglotStore,
    scheme: str = "cs330",
    part: str = "train",
    seed: int = 1,
    rotations: bool = False,
) -> Split:
    """One part ("train" | "val" | "test") of a named split ("cs330" | "lake")."""
    if part not in PARTS:
        raise UsageError(f"unknown split part {part!r}; choose one of {', '.join(PARTS)}")
    idx = split_indices(data, scheme, seed)[part]
    names = [data.characters[i] for i in idx]
    images = data.images[idx]
    if rotations:
        # np.rot90 on the last two axes keeps drawers aligned across rotations.
        images = np.concatenate([np.rot90(images, k, axes=(-2, -1)) for k in range(4)])
        names = [f"{n}@{90 * k}" if k else n for k in range(4) for n in names]
    return Split(
        scheme=scheme,
        part=part,
        seed=seed,
        rotations=rotations,
        characters=tuple(names),
        images=np.ascontiguousarray(images),
    )
