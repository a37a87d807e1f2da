"""Integration tests on the real Omniglot (skipped, with the reason, when it is absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from episodes import EpisodeSampler, make_split
from mann.commands import main

pytestmark = pytest.mark.integration


def test_the_whole_data_set_is_there(real_store):
    assert len(real_store) == 1623 and int(real_store.background.sum()) == 964
    assert real_store.images.shape == (1623, 20, 28, 28)
    alphabets = {c.split("/")[0] for c in real_store.characters}
    assert len(alphabets) == 50
    # Ink is the minority and bright; the background is 0.
    assert 0.05 < (real_store.images > 127).mean() < 0.25
    # The one known duplicate in the source data (Braille character01, drawers 03 and 19).
    braille = real_store.characters.index("Braille/character01")
    np.testing.assert_array_equal(real_store.images[braille, 2], real_store.images[braille, 18])


def test_split_fingerprints_are_stable_across_machines(real_store):
    # Published in the README so that two machines can compare their splits.
    expected = {("cs330", "train"): "656a1f2cc1", ("cs330", "val"): "7a39c3920b", ("cs330", "test"): "73fc5f43cc"}
    for (scheme, part), fingerprint in expected.items():
        assert make_split(real_store, scheme, part).fingerprint == fingerprint


def test_real_episodes_look_right(real_store):
    test = make_split(real_store, "lake", "test")
    images, labels = EpisodeSampler(test, 20, 1, batch_size=4, seed=0).sample()
    assert images.shape == (4, 2, 20, 784)
    assert (labels[:, -1].sum(1) == 1).all()


@pytest.mark.slow
def test_two_way_one_shot_learns_in_800_steps(real_data_root, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "-N", "2", "-K", "1", "--steps", "800", "--seed", "0", "--out", str(out),
                 "--data-root", str(real_data_root), "--quiet", "--device", "cpu", "--no-download"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_episodes"] >= 1000
    assert summary["test_accuracy"] >= 0.70, summary["test_accuracy"]


VINYALS_FINGERPRINTS = {"train": (4112, "573c8ef3be"), "val": (688, "f1f2921330"), "trainval": (4800, "13d45debef"),
                        "test": (1692, "cc8b4f0307")}


@pytest.mark.parametrize("part", VINYALS_FINGERPRINTS)
def test_vinyals_parts_hold_the_lists_classes_rotated(real_store, part):
    from episodes.splits import vinyals_lines

    split = make_split(real_store, "vinyals", part)
    size, fingerprint = VINYALS_FINGERPRINTS[part]
    assert split.characters == vinyals_lines(part) and split.num_classes == size
    assert split.images.shape == (size, 20, 28, 28) and split.fingerprint == fingerprint
    for c in range(0, size, 97):  # every rotation occurs: lines come in rot000..rot270 groups of four
        character, rotation = split.characters[c].rsplit("/", 1)
        k = int(rotation[3:]) // 90
        original = real_store.images[real_store.characters.index(character)]
        np.testing.assert_array_equal(split.images[c], np.rot90(original, k, axes=(-2, -1)))


def test_cs330_trainval_is_train_and_val_together(real_store):
    train, val, trainval = (make_split(real_store, "cs330", p) for p in ("train", "val", "trainval"))
    assert trainval.characters == tuple(sorted(train.characters + val.characters))
    assert trainval.num_classes == 1200 and trainval.fingerprint == "39dc1bbba0"


def sample_pngs(root, step: int = 100) -> list[bytes]:
    """Every ``step``-th PNG of both original zips (325 images for step 100)."""
    import zipfile

    pngs = []
    for name in ("images_background", "images_evaluation"):
        with zipfile.ZipFile(root / f"{name}.zip") as z:
            members = sorted(n for n in z.namelist() if n.endswith(".png"))
            pngs += [z.read(n) for n in members[::step]]
    return pngs


def test_nearest_resize_commutes_with_the_90_degree_rotations(real_data_root):
    # ProtoNets rotates the 105x105 original and then resizes; the vinyals split here
    # rotates the 28x28 store image. Both give the same pixels for every image tried.
    import io

    from PIL import Image

    from episodes.omniglot import decode_png

    pngs = sample_pngs(real_data_root)
    assert len(pngs) == 325
    for png in pngs:
        small = decode_png(png, 28, "nearest")
        with Image.open(io.BytesIO(png)) as im:
            assert im.mode == "1" and im.size == (105, 105)
            for angle in (90, 180, 270):
                papers = 255 - np.asarray(im.rotate(angle).resize((28, 28)).convert("L"), dtype=np.uint8)
                np.testing.assert_array_equal(np.rot90(small, angle // 90), papers)


def test_nearest_store_is_binary_and_differs_from_lanczos(real_data_root, real_store):
    from episodes import load_omniglot

    nearest = load_omniglot(real_data_root, download=False, resize="nearest")
    assert nearest.resize == "nearest" and real_store.resize == "lanczos"
    assert nearest.images.shape == real_store.images.shape and nearest.source == real_store.source
    assert set(np.unique(nearest.images)) == {0, 255}
    differ = (nearest.images != real_store.images).mean()
    assert 0.15 < differ < 0.30  # measured: 22.2% of all pixels (the grey stroke edges of lanczos)
    assert make_split(nearest, "vinyals", "test").fingerprint == VINYALS_FINGERPRINTS["test"][1]
