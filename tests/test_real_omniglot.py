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
