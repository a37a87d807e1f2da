"""Prefetching hands out exactly the sampler's batches, and its saved state redraws the next one."""

from __future__ import annotations

import pytest
import torch

from episodes import make_split
from episodes.prefetch import Prefetcher, has_spare_core
from episodes.sampler import EpisodeSampler


@pytest.mark.parametrize("background", [True, False])
def test_prefetched_batches_are_the_samplers_and_the_state_redraws_the_next(store, background):
    split = make_split(store, "cs330", "train")
    expected = EpisodeSampler(split, 3, 2, batch_size=4, seed=7)
    reference = [expected.sample() for _ in range(5)]
    batches = Prefetcher(EpisodeSampler(split, 3, 2, batch_size=4, seed=7), background=background)
    try:
        for images, labels in reference[:3]:
            got_images, got_labels = batches.next()
            assert torch.equal(got_images, images) and torch.equal(got_labels, labels)
        # A run resumed from this state continues with batch 4, whatever was drawn ahead.
        resumed = EpisodeSampler(split, 3, 2, batch_size=4, seed=123)
        resumed.generator.set_state(batches.state())
        for images, labels in reference[3:]:
            got_images, got_labels = resumed.sample()
            assert torch.equal(got_images, images) and torch.equal(got_labels, labels)
    finally:
        batches.close()


def test_a_sampling_thread_is_used_only_beside_a_spare_core(monkeypatch):
    monkeypatch.setattr("episodes.prefetch.available_cores", lambda: 2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert not has_spare_core("cpu")  # the step's kernels already use both cores
        assert has_spare_core("cuda")  # the CPU waits on the GPU anyway
        torch.set_num_threads(1)
        assert has_spare_core("cpu")
    finally:
        torch.set_num_threads(threads)
