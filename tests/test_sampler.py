"""The episode sampler's contract: layout, labels, distinctness, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import decode_identity
from episodes import EpisodeSampler, UsageError, fixed_episodes, make_split


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
