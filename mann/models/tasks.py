"""Episodes in the sampler's layout, rearranged into the support/query tasks that
optimisation- and metric-based learners take.

The sampler's episode holds K support rows (classes in order) and one query row
(classes shuffled; ProtoNets train on episodes with Q query rows); a learner such as MAML wants a support set and a query set
of images with integer labels. The conversion is a pure reshaping: no image is
added, dropped or reordered within its row, so a baseline scores exactly the
queries the MANN scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tasks:
    """B few-shot tasks (S = image side, 28 for Omniglot).

    support_x: float32 [B, K·N, 1, S, S]; support image k·N + n is row k, column n.
    support_y: int64 [B, K·N], the class (0..N-1) of each support image.
    query_x: float32 [B, Q·N, 1, S, S], the query rows (Q = 1 but in ProtoNets'
        training episodes), row by row, each in its own order.
    ways: N.

    The query classes are not part of a task: learners get the episodes with
    the query labels hidden, and the loop scores the logits against them.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    ways: int

    def __len__(self) -> int:
        return int(self.query_x.shape[0])

    def episode(self, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Task b as (support x [K·N, 1, S, S], support y [K·N], query x [Q·N, 1, S, S])."""
        return self.support_x[b], self.support_y[b], self.query_x[b]


def episode_to_tasks(images: torch.Tensor, labels: torch.Tensor, shots: int | None = None) -> Tasks:
    """Split a batch of episodes into support and query sets.

    images: float32 [B, K+Q, N, D] with D = S·S; labels: float32 one-hot
    [B, K+Q, N, N]; rows 0..K-1 support, rows K.. queries (their labels are not
    read). shots: K (default: every row but the last, Q = 1).
    """
    batch, rows, ways, dim = images.shape
    side = math.isqrt(dim)
    shots = rows - 1 if shots is None else shots
    if side * side != dim or labels.shape != (batch, rows, ways, ways) or not 1 <= shots < rows:
        raise ValueError(f"not an episode batch of {shots} shots: images {tuple(images.shape)}, "
                         f"labels {tuple(labels.shape)}")
    return Tasks(
        support_x=images[:, :shots].reshape(batch, shots * ways, 1, side, side),
        support_y=labels[:, :shots].argmax(dim=-1).reshape(batch, shots * ways),
        query_x=images[:, shots:].reshape(batch, (rows - shots) * ways, 1, side, side),
        ways=ways,
    )
