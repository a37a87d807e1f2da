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

``vinyals``: the standard few-shot protocol of Vinyals et al. (2016) as shipped
by Prototypical Networks: fixed lists (episodes/vinyals/, MIT, see its README)
of 4112 / 688 / 1692 classes (train / val / test; trainval = train then val,
4800), each class one character at one of four rotations, e.g.
``Angelic/character01/rot090``: its 20 drawers rotated 90° counter-clockwise.
The parts share no character. The lists fix the split, so the seed is unused.

``trainval`` of every scheme is train and val together: for cs330 and lake
their union sorted like the other parts, for vinyals the shipped list.

Optional class augmentation by 90° rotations (Santoro et al. 2016; MAML) turns
each character into four classes, applied within each part so no rotation of
a test character ever appears in training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from episodes.errors import UsageError
from episodes.layout import PARTS, SCHEMES
from episodes.omniglot import OmniglotStore

CS330_SIZES = {"train": 1100, "val": 100}
LAKE_VAL = 100
VINYALS_SIZES = {"train": 4112, "val": 688, "trainval": 4800, "test": 1692}
_ROTATIONS = {"rot000": 0, "rot090": 1, "rot180": 2, "rot270": 3}  # np.rot90 k (counter-clockwise)
ROTATED = "@"  # --rotations names a character's turned copies "<character>@90" etc.


@dataclass(frozen=True)
class Split:
    """The characters of one part of a split.

    images: uint8 [C, 20, S, S] (ink=255), one row per class.
    characters: C class names (``"<Alphabet>/characterNN"``, plus ``"@90"`` etc.
        for rotated copies; vinyals: the list's lines, ``"<Alphabet>/characterNN/rot090"``).
    seed: the seed the split was asked with (vinyals ignores it: its lists are fixed).
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
        how = "fixed lists" if self.scheme == "vinyals" else f"seed {self.seed}{rot}"
        return (
            f"split {self.scheme}/{self.part} ({how}): "
            f"{self.num_classes} classes, fingerprint {self.fingerprint}"
        )


@lru_cache(maxsize=None)
def vinyals_lines(part: str) -> tuple[str, ...]:
    """The shipped vinyals list of one part: its lines (class names) in file order."""
    text = resources.files("episodes").joinpath("vinyals", f"{part}.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


def vinyals_character(line: str) -> str:
    """``"Alphabet/character01/rot090"`` -> ``"Alphabet/character01"``."""
    return line.rsplit("/", 1)[0]


@lru_cache(maxsize=None)
def check_vinyals_lists() -> None:
    """UsageError unless the shipped lists are whole: their sizes, no repeats, known
    rotations, trainval = train then val, and no character in two of train / val / test."""
    lines = {p: vinyals_lines(p) for p in PARTS}
    fix = "the package's episodes/vinyals/ lists are damaged; reinstall mann-bench"
    for part, expected in VINYALS_SIZES.items():
        if len(lines[part]) != expected or len(set(lines[part])) != expected:
            raise UsageError(f"vinyals {part} lists {len(lines[part])} lines ({len(set(lines[part]))} distinct), "
                             f"not {expected}; {fix}")
        bad = next((ln for ln in lines[part] if ln.rsplit("/", 1)[-1] not in _ROTATIONS), None)
        if bad is not None:
            raise UsageError(f"vinyals {part} line {bad!r} names no rotation of {', '.join(_ROTATIONS)}; {fix}")
    if lines["trainval"] != lines["train"] + lines["val"]:
        raise UsageError(f"vinyals trainval is not train followed by val; {fix}")
    chars = {p: {vinyals_character(ln) for ln in lines[p]} for p in ("train", "val", "test")}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = sorted(chars[a] & chars[b])
        if shared:
            raise UsageError(f"vinyals {a} and {b} share {len(shared)} characters (first {shared[0]}); {fix}")


def vinyals_classes(store: OmniglotStore, part: str) -> tuple[np.ndarray, np.ndarray]:
    """The vinyals list of ``part`` against the store, in list order.

    Returns (character int64 [C], index into the store's characters;
    quarter_turns int64 [C], the np.rot90 k of each class).
    UsageError if a listed character is not in the store.
    """
    check_vinyals_lists()
    lines = vinyals_lines(part)
    position = {name: i for i, name in enumerate(store.characters)}
    missing = [ln for ln in lines if vinyals_character(ln) not in position]
    if missing:
        raise UsageError(
            f"the vinyals {part} list names {len(missing)} of its {len(lines)} classes whose character is not "
            f"in the data (first {missing[0]!r}); vinyals needs the full Omniglot (both sets, 1623 characters): "
            f"point OMNIGLOT_ROOT (or --data-root) at a complete copy"
        )
    character = np.array([position[vinyals_character(ln)] for ln in lines], dtype=np.int64)
    quarter_turns = np.array([_ROTATIONS[ln.rsplit("/", 1)[-1]] for ln in lines], dtype=np.int64)
    return character, quarter_turns


def split_indices(store: OmniglotStore, scheme: str, seed: int = 1) -> dict[str, np.ndarray]:
    """{part: int64 [C], the store character of each class} for a named scheme.

    cs330 and lake: sorted, train / val / test disjoint, trainval their train and
    val together. vinyals: in list order, one entry per class (so a character
    appears once per rotation listed); the seed is unused.
    """
    if scheme not in SCHEMES:
        raise UsageError(f"unknown split {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme == "vinyals":
        return {part: vinyals_classes(store, part)[0] for part in PARTS}
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
    parts["trainval"] = np.concatenate([parts["train"], parts["val"]])
    return {part: np.sort(idx) for part, idx in parts.items()}


def make_split(
    data: OmniglotStore,
    scheme: str = "cs330",
    part: str = "train",
    seed: int = 1,
    rotations: bool = False,
) -> Split:
    """One part ("train" | "val" | "trainval" | "test") of a named split ("cs330" | "lake" | "vinyals").

    rotations: add each class's 90/180/270° copies as classes (cs330, lake only:
    vinyals lists its rotations as classes already).
    """
    if part not in PARTS:
        raise UsageError(f"unknown split part {part!r}; choose one of {', '.join(PARTS)}")
    if scheme == "vinyals":
        if rotations:
            raise UsageError("--rotations does not apply to the vinyals split: its lists already hold every "
                             "character at 0/90/180/270 degrees as four classes; drop --rotations")
        return vinyals_split(data, part, seed)
    idx = split_indices(data, scheme, seed)[part]
    names = [data.characters[i] for i in idx]
    images = data.images[idx]
    if rotations:
        # np.rot90 on the last two axes keeps drawers aligned across rotations.
        images = np.concatenate([np.rot90(images, k, axes=(-2, -1)) for k in range(4)])
        names = [f"{n}{ROTATED}{90 * k}" if k else n for k in range(4) for n in names]
    return Split(
        scheme=scheme,
        part=part,
        seed=seed,
        rotations=rotations,
        characters=tuple(names),
        images=np.ascontiguousarray(images),
    )


def classes_by_character(split: Split) -> np.ndarray:
    """int64 [G, R]: row g the R classes (indices into the split) of its g-th character, one per rotation.

    Characters in order of first appearance, classes in split order. UsageError unless every
    character holds the same R > 1 classes (vinyals, or cs330 / lake with --rotations): only then
    can an episode draw N distinct characters and one rotation of each uniformly.
    """
    character = [vinyals_character(c) if split.scheme == "vinyals" else c.split(ROTATED, 1)[0]
                 for c in split.characters]
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(character):
        groups.setdefault(name, []).append(index)
    sizes = {len(g) for g in groups.values()}
    if sizes == {1}:
        raise UsageError(f"split {split.scheme}/{split.part} holds one class per character, so distinct classes are "
                         f"already distinct characters; drop --distinct-characters, or add --rotations")
    if len(sizes) != 1:
        raise UsageError(f"split {split.scheme}/{split.part}: its characters hold {min(sizes)} to {max(sizes)} "
                         f"classes each; distinct-character episodes need the same number for every character")
    return np.array(list(groups.values()), dtype=np.int64)


def character_groups_for(split: Split, ways: int) -> np.ndarray:
    """:func:`classes_by_character` of ``split``, after checking it has the N = ``ways`` distinct
    characters an episode of that kind needs (UsageError otherwise)."""
    groups = classes_by_character(split)
    if ways > len(groups):
        raise UsageError(f"N (ways) = {ways} distinct characters, but split {split.scheme}/{split.part} has "
                         f"{len(groups)}; use --ways {len(groups)} or fewer, or drop --distinct-characters")
    return groups


def vinyals_split(data: OmniglotStore, part: str, seed: int = 1) -> Split:
    """One part of the vinyals lists: class c is its character's 20 drawers turned
    counter-clockwise by the listed angle (images uint8 [C, 20, S, S])."""
    character, quarter_turns = vinyals_classes(data, part)
    images = np.empty((len(character), *data.images.shape[1:]), dtype=data.images.dtype)
    for k in range(4):
        rows = quarter_turns == k
        images[rows] = np.rot90(data.images[character[rows]], k, axes=(-2, -1))
    return Split(scheme="vinyals", part=part, seed=seed, rotations=False,
                 characters=vinyals_lines(part), images=images)
