"""Draw the next batch on a background thread while the current step trains.

Tensor ops release the GIL, so sampling batch t+1 overlaps with step t. The
generator state saved for a checkpoint is the one that redraws the first batch
not yet handed out, so a resumed run sees exactly the batches an uninterrupted
one would have.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch

from episodes.sampler import EpisodeSampler


class Prefetcher:
    """Wraps an :class:`EpisodeSampler`; ``next()`` returns what ``sampler.sample()`` would."""

    def __init__(self, sampler: EpisodeSampler) -> None:
        self.sampler = sampler
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="episodes")
        self._resume_state = sampler.generator.get_state()
        self._pending: Future | None = None

    def _draw(self) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        batch = self.sampler.sample()
        return self.sampler.generator.get_state(), batch

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """images float32 [B, K+1, N, 784], labels float32 [B, K+1, N, N]."""
        if self._pending is None:
            self._pending = self._pool.submit(self._draw)
        state, batch = self._pending.result()
        self._resume_state = state
        self._pending = self._pool.submit(self._draw)
        return batch

    def state(self) -> torch.Tensor:
        """Generator state that redraws the next batch ``next()`` will return."""
        return self._resume_state

    def close(self) -> None:
        if self._pending is not None:
            self._pending.result()
        self._pool.shutdown(wait=True)
