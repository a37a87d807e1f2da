"""The episode sampler's contract: layout, labels, distinctness, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import decode_identity
from episodes import EpisodeSampler, UsageError, fixed_episodes, make_split
from episodes.splits import ROTATED


@pytest.fixture(scope="module")
def train(store):
    return make_split(store, "cs330", "train")


@pytest.mark.parametrize("ways,shots,batch", [(5, 1, 16), (2, 3, 7), (20, 5, 4)])
def test_shapes_and_dtypes(train, ways, shots, batch):
    images, labels = EpisodeSampler(train, ways, shots, batch_size=batch, seed=0).sample()
    assert images.shape == (batch, shots + 1, ways, 784) and images.dtype == torch.float32
    assert labels.shape == (batch, shots + 1, ways, ways) and labels.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_support_rows_are_classes_in_order_and_query_a_joint_permutation(train):
    ways, shots = 5, 3
    images, labels = EpisodeSampler(train, ways, shots, batch_size=64, seed=1).sample()
    chars, _ = decode_identity(images)  # [B, K+1, N]
    eye = torch.eye(ways)
    assert torch.equal(labels[:, :shots], eye.expand(64, shots, ways, ways))
    # Every support row shows the same class at column n.
    assert (chars[:, :shots] == chars[:, :1]).all()
    # The query row: a permutation of the same characters, labels moved with them.
    query_label = labels[:, -1].argmax(-1).numpy()  # [B, N]
    assert (np.sort(query_label, 1) == np.arange(ways)).all()
    support_char_of_label = np.take_along_axis(chars[:, 0], query_label, 1)
    np.testing.assert_array_equal(chars[:, -1], support_char_of_label)
    # ... and not always the identity: a model could memorise the class order.
    assert (query_label != np.arange(ways)).any(axis=1).mean() > 0.5


def test_distinct_classes_and_drawers_from_the_split_only(train, store):
    ways, shots = 20, 19
    images, _ = EpisodeSampler(train, ways, shots, batch_size=8, seed=2).sample()
    chars, drawers = decode_identity(images)
    for b in range(8):
        assert len(set(chars[b, 0])) == ways
        for n in range(ways):
            # the query of the class shown at support column n
            q = int(np.flatnonzero(chars[b, -1] == chars[b, 0, n])[0])
            rows = list(drawers[b, :-1, n]) + [drawers[b, -1, q]]
            assert len(set(rows)) == shots + 1
    allowed = {store.characters.index(c) for c in train.characters}
    assert set(chars.ravel()) <= allowed


def test_same_seed_same_batches_other_seed_other_batches(train):
    a = EpisodeSampler(train, 5, 1, batch_size=32, seed=7)
    b = EpisodeSampler(train, 5, 1, batch_size=32, seed=7)
    c = EpisodeSampler(train, 5, 1, batch_size=32, seed=8)
    for _ in range(3):
        (ia, la), (ib, lb), (ic, _) = a.sample(), b.sample(), c.sample()
        assert torch.equal(ia, ib) and torch.equal(la, lb)
        assert not torch.equal(ia, ic)


def test_successive_batches_differ(train):
    sampler = EpisodeSampler(train, 5, 1, batch_size=32, seed=0)
    first, second = sampler.sample(), sampler.sample()
    assert not torch.equal(first[0], second[0])
    assert not torch.equal(first[1][:, -1], second[1][:, -1])


def test_classes_are_uniform_over_the_split(train):
    sampler = EpisodeSampler(train, 5, 1, batch_size=2000, seed=3)
    chars, _ = decode_identity(sampler.sample()[0][:, 0])
    counts = np.bincount(chars.ravel())
    drawn = counts[counts > 0]
    # 10,000 draws over 1100 classes: about 9 each; no class is favoured wildly.
    assert len(drawn) > 1000 and drawn.max() < 30


def test_label_is_not_tied_to_class_index(train):
    sampler = EpisodeSampler(train, 2, 1, batch_size=4000, seed=4)
    chars, _ = decode_identity(sampler.sample()[0][:, 0])
    # With random label assignment, label 0 holds the smaller index about half the time.
    frac = (chars[:, 0] < chars[:, 1]).mean()
    assert 0.45 < frac < 0.55


def test_fixed_episodes_do_not_depend_on_anything_but_their_seed(train):
    a = fixed_episodes(train, 5, 1, 300, seed=11)
    b = fixed_episodes(train, 5, 1, 300, seed=11)
    assert sum(x.shape[0] for x, _ in a) == 300
    for (ia, la), (ib, lb) in zip(a, b):
        assert torch.equal(ia, ib) and torch.equal(la, lb)


@pytest.mark.parametrize(
    "ways,shots,batch,match",
    [
        (1, 1, 4, "N >= 2"),
        (5, 0, 4, "K >= 1"),
        (5, 20, 4, "K <= 19"),
        (1101, 1, 4, "larger than the split"),
        (5, 1, 0, "batch size >= 1"),
    ],
)
def test_bad_shapes_are_refused_before_any_work(train, ways, shots, batch, match):
    with pytest.raises(UsageError, match=match):
        EpisodeSampler(train, ways, shots, batch_size=batch, seed=0)


def test_distinct_character_episodes_draw_one_rotation_of_each_of_n_characters(store):
    # Finn et al.'s tasks: two rotations of one character never share an episode, and every rotation is drawn.
    rotated = make_split(store, "cs330", "test", rotations=True)
    images, labels = EpisodeSampler(rotated, 20, 1, batch_size=500, seed=5, distinct_characters=True).sample()
    sampler = EpisodeSampler(rotated, 20, 1, batch_size=500, seed=5, distinct_characters=True)
    drawn = sampler.sample_indices().classes.numpy()  # [500, 20]
    # A class name is "<character>", or "<character>@<degrees>" for a rotated copy.
    character_of, turn_of = (np.array(parts) for parts in zip(*(n.partition(ROTATED)[::2] for n in rotated.characters)))
    assert all(len(set(row)) == 20 for row in character_of[drawn])
    assert set(turn_of[drawn].ravel()) == {"", "90", "180", "270"}
    # Plain episodes of the same split do pair rotations of one character now and then (about 1 in 3 here).
    plain = EpisodeSampler(rotated, 20, 1, batch_size=500, seed=5).sample_indices().classes.numpy()
    paired = np.array([len(set(row)) < 20 for row in character_of[plain]])
    assert 0.1 < paired.mean() < 0.6
    assert images.shape == (500, 2, 20, 784) and torch.equal(labels[:, 0], torch.eye(20).expand(500, 20, 20))
    again = EpisodeSampler(rotated, 20, 1, batch_size=500, seed=5, distinct_characters=True).sample()
    assert torch.equal(again[0], images) and torch.equal(again[1], labels)


def test_distinct_characters_are_refused_where_they_mean_nothing_or_too_few_exist(train, store):
    with pytest.raises(UsageError, match="one class per character.*drop --distinct-characters, or add --rotations"):
        EpisodeSampler(train, 5, 1, distinct_characters=True)
    rotated = make_split(store, "cs330", "val", rotations=True)  # 100 characters, 400 classes
    with pytest.raises(UsageError, match=r"N \(ways\) = 101 distinct characters.*has 100; use --ways 100 or fewer"):
        EpisodeSampler(rotated, 101, 1, distinct_characters=True)
    assert fixed_episodes(rotated, 100, 1, 3, seed=0, distinct_characters=True)[0][0].shape == (3, 2, 100, 784)
