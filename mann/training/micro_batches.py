"""One training step's loss and gradient, computed a few episodes at a time (``--micro-batch``).

For a learner that computes each episode on its own (the MANN, MAML and its
kin: each task's batch norm uses that task's statistics), the query loss of a
batch of B episodes is the mean of its episodes' losses. So the batch can be
split into micro-batches of at most m episodes: each micro-batch's mean loss,
weighted by its share of B, is backpropagated on its own and the gradients add
up in ``.grad`` to the batch's, equal up to float rounding.

Why: only one micro-batch's autograd graph exists at a time. A second-order MAML
meta-update keeps every activation of every inner step; for Finn et al.'s
20-way 5-shot recipe (16 tasks of 200 images, 5 steps) that is gigabytes, which
the update streams through memory. A task or two at a time stays nearer the
cache: ``mann bench --only micro-batch`` times the recipes' shapes both ways.
"""

from __future__ import annotations

import torch

from mann.models.protocol import Learner, hide_query_labels, query_loss


def micro_batch_slices(batch: int, size: int | None) -> list[slice]:
    """The consecutive slices of at most ``size`` episodes that cover a batch of ``batch`` (None: one slice)."""
    size = batch if size is None else size
    return [slice(start, min(start + size, batch)) for start in range(0, batch, size)]


def backward_in_micro_batches(learner: Learner, images: torch.Tensor, labels: torch.Tensor, queries: int,
                              micro_batch: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Backpropagate the batch's mean query loss into the learner's ``.grad``, ``micro_batch`` episodes at a time.

    images: float32 [B, K+Q, N, D]; labels: float32 one-hot [B, K+Q, N, N], the
    last ``queries`` rows the queries (hidden from the learner here). The
    gradients are added to what ``.grad`` holds: zero it first.
    Returns (the batch's mean query loss, a detached float32 scalar; the query
    logits, detached float32 [B, Q·N, N]). With one slice (``micro_batch`` None
    or >= B) the weight is 1.0 and every number is the plain step's (scores, loss, backward).
    """
    batch = images.shape[0]
    losses, all_logits = [], []
    for part in micro_batch_slices(batch, micro_batch):
        logits = learner.scores(images[part], hide_query_labels(labels[part], queries), training=True)
        # Every episode scores the same Q·N queries, so the micro-batch's share of the batch's mean is its size / B.
        loss = query_loss(logits, labels[part]) * ((part.stop - part.start) / batch)
        loss.backward()
        losses.append(loss.detach())
        all_logits.append(logits.detach())
    return torch.stack(losses).sum(), torch.cat(all_logits)
