"""Named splits: sizes, disjointness, reproducibility, rotations."""

from __future__ import annotations

import pytest

from episodes import UsageError, make_split


def names(split):
    return set(split.characters)


@pytest.mark.parametrize("scheme,sizes", [("cs330", (1100, 100, 423)), ("lake", (864, 100, 659))])
def test_parts_have_the_published_sizes_and_never_overlap(store, scheme, sizes):
    parts = [make_split(store, scheme, p) for p in ("train", "val", "test")]
    assert tuple(p.num_classes for p in parts) == sizes
    a, b, c = map(names, parts)
    assert not (a & b) and not (a & c) and not (b & c)
    assert len(a | b | c) == sum(sizes)


def test_lake_tests_on_the_evaluation_set_only(store):
    test = make_split(store, "lake", "test")
    train = make_split(store, "lake", "train")
    assert all(n.startswith("Ev_") for n in test.characters)
    assert all(n.startswith("Bg_") for n in train.characters)


def test_same_seed_same_split_other_seed_other_split(store):
    a = make_split(store, "cs330", "train", seed=1)
    assert a.fingerprint == make_split(store, "cs330", "train", seed=1).fingerprint
    assert a.fingerprint != make_split(store, "cs330", "train", seed=2).fingerprint


def test_split_does_not_depend_on_listing_order(store):
    from episodes.omniglot import OmniglotStore

    import numpy as np

    order = np.random.default_rng(0).permutation(len(store))
    # The loader sorts names; a store built from a shuffled listing is sorted again.
    resorted = sorted(range(len(store)), key=lambda i: store.characters[order[i]])
    shuffled = OmniglotStore(
        images=store.images[order][resorted],
        characters=tuple(store.characters[order[i]] for i in resorted),
        background=store.background[order][resorted],
        source="x",
    )
    assert make_split(shuffled, "cs330", "test").fingerprint == make_split(store, "cs330", "test").fingerprint


def test_rotations_quadruple_classes_within_a_part(store):
    plain = make_split(store, "cs330", "val")
    rotated = make_split(store, "cs330", "val", rotations=True)
    assert rotated.num_classes == 4 * plain.num_classes
    assert {n.split("@")[0] for n in rotated.characters} == names(plain)
    import numpy as np

    np.testing.assert_array_equal(rotated.images[plain.num_classes], np.rot90(plain.images[0], 1, axes=(-2, -1)))


@pytest.mark.parametrize("scheme,part,match", [("cs331", "train", "cs330, lake"), ("cs330", "training", "train, val, test")])
def test_unknown_names_are_refused(store, scheme, part, match):
    with pytest.raises(UsageError, match=match):
        make_split(store, scheme, part)
