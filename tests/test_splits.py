"""Named splits: sizes, disjointness, reproducibility, rotations, the shipped vinyals lists."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest
from PIL import Image

from conftest import identity_store
from episodes import UsageError, make_split
from episodes.omniglot import OmniglotStore
from episodes.splits import check_vinyals_lists, classes_by_character, vinyals_character, vinyals_lines


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


@pytest.mark.parametrize("scheme,part,match", [("cs331", "train", "cs330, lake, vinyals"),
                                               ("cs330", "training", "train, val, trainval, test")])
def test_unknown_names_are_refused(store, scheme, part, match):
    with pytest.raises(UsageError, match=match):
        make_split(store, scheme, part)


@pytest.mark.parametrize("scheme", ["cs330", "lake"])
def test_trainval_is_the_union_of_train_and_val_sorted(store, scheme):
    train, val, trainval = (make_split(store, scheme, p) for p in ("train", "val", "trainval"))
    assert trainval.characters == tuple(sorted(train.characters + val.characters))
    assert trainval.num_classes == train.num_classes + val.num_classes


VINYALS = {"train": (4112, "984522c194c3"), "val": (688, "11f99e54faee"), "trainval": (4800, "5276ae50c755"),
           "test": (1692, "845264cc5c15")}


@pytest.mark.parametrize("part", VINYALS)
def test_shipped_vinyals_lists_are_the_published_files(part):
    raw = resources.files("episodes").joinpath("vinyals", f"{part}.txt").read_bytes()
    size, sha_prefix = VINYALS[part]
    assert hashlib.sha256(raw).hexdigest().startswith(sha_prefix)
    lines = raw.decode().splitlines()
    assert len(lines) == size == len(set(lines))
    assert all(line.rsplit("/", 1)[-1] in ("rot000", "rot090", "rot180", "rot270") for line in lines)


def test_vinyals_trainval_is_train_then_val_and_parts_share_no_character():
    check_vinyals_lists()
    assert vinyals_lines("trainval") == vinyals_lines("train") + vinyals_lines("val")
    chars = {p: {vinyals_character(ln) for ln in vinyals_lines(p)} for p in ("train", "val", "test")}
    assert [len(c) for c in chars.values()] == [1028, 172, 423]
    assert not (chars["train"] & chars["val"] or chars["train"] & chars["test"] or chars["val"] & chars["test"])


def test_the_license_notice_ships_beside_the_lists():
    folder = resources.files("episodes").joinpath("vinyals")
    notice = folder.joinpath("LICENSE").read_text()
    assert "MIT License" in notice and "Jake Snell" in notice
    assert "c9bb4d258267c11cb6e23f0a19242d24ca98ad8a" in folder.joinpath("README.md").read_text()


def vinyals_store() -> OmniglotStore:
    """identity_store renamed to the 1623 characters the vinyals lists name (sorted, like a loaded store)."""
    names = sorted({vinyals_character(ln) for p in ("train", "val", "test") for ln in vinyals_lines(p)})
    base = identity_store(len(names), 0)
    return OmniglotStore(images=base.images, characters=tuple(names), background=base.background, source="vinyals")


def test_vinyals_classes_are_the_list_lines_with_their_rotation():
    data = vinyals_store()
    split = make_split(data, "vinyals", "val")
    assert split.characters == vinyals_lines("val") and split.images.shape == (688, 20, 28, 28)
    for c in (0, 1, 2, 3, 687):
        character, rotation = split.characters[c].rsplit("/", 1)
        k = {"rot000": 0, "rot090": 1, "rot180": 2, "rot270": 3}[rotation]
        original = data.images[data.characters.index(character)]
        np.testing.assert_array_equal(split.images[c], np.rot90(original, k, axes=(-2, -1)))


def test_vinyals_ignores_the_seed_and_refuses_rotations():
    data = vinyals_store()
    assert make_split(data, "vinyals", "test", seed=1).fingerprint == make_split(data, "vinyals", "test", seed=7).fingerprint
    with pytest.raises(UsageError, match="already hold every character.*drop --rotations"):
        make_split(data, "vinyals", "train", rotations=True)


def test_vinyals_on_a_store_without_its_characters_names_the_first_missing_class(store):
    # The synthetic store's names are not Omniglot's: every listed character is missing.
    with pytest.raises(UsageError, match=r"names 1692 of its 1692 classes.*first 'Gurmukhi/character42/rot000'.*full Omniglot"):
        make_split(store, "vinyals", "test")


def test_one_missing_character_is_counted_and_named():
    data = vinyals_store()
    keep = [i for i, n in enumerate(data.characters) if n != "Angelic/character01"]
    partial = OmniglotStore(images=data.images[keep], characters=tuple(data.characters[i] for i in keep),
                            background=data.background[keep], source="partial")
    with pytest.raises(UsageError, match=r"names 4 of its 4112 classes.*first 'Angelic/character01/rot000'"):
        make_split(partial, "vinyals", "train")
    assert make_split(partial, "vinyals", "test").num_classes == 1692


def test_rot090_is_pils_counter_clockwise_rotate():
    # An L in one corner: no rotation maps it onto itself, so a clockwise turn would show.
    pixels = np.zeros((9, 9), dtype=np.uint8)
    pixels[1:7, 1] = 255
    pixels[6, 1:4] = 255
    pil = {angle: np.asarray(Image.fromarray(pixels).rotate(angle)) for angle in (90, 180, 270)}
    for angle, rotated in pil.items():
        np.testing.assert_array_equal(np.rot90(pixels, angle // 90, axes=(-2, -1)), rotated)
    assert not np.array_equal(pil[90], pil[270])


def test_classes_by_character_groups_each_characters_rotations(store):
    vinyals = make_split(vinyals_store(), "vinyals", "test")
    groups = classes_by_character(vinyals)
    assert groups.shape == (423, 4)
    for row in groups[[0, 211, 422]]:
        names = [vinyals.characters[c] for c in row]
        assert len({vinyals_character(n) for n in names}) == 1
        assert sorted(n.rsplit("/", 1)[1] for n in names) == ["rot000", "rot090", "rot180", "rot270"]
    rotated = make_split(store, "cs330", "val", rotations=True)
    groups = classes_by_character(rotated)
    assert groups.shape == (100, 4) and sorted(groups.ravel()) == list(range(400))
    assert [rotated.characters[c] for c in groups[0]] == [rotated.characters[0] + s for s in ("", "@90", "@180", "@270")]
