"""The one interface the training loop needs of every learner, and the loss all share.

A learner scores the query row of a batch of episodes::

    logits = learner.scores(images, labels, training)   # float32 [B, N, N]

images: float32 [B, K+1, N, 784]; labels: float32 one-hot [B, K+1, N, N] with
the query row (row K) zeroed by the loop, so no learner can read the answers.
``logits[b, i]`` scores the i-th query image of episode b against the N
classes. ``learner.module`` holds every trained parameter: the optimiser
takes it, ``model.pt`` is its ``state_dict``, the parameter count is its size.
Every learner is trained on :func:`query_loss`, the mean cross-entropy over the
B·N query predictions, which for the MANN is the assignment's ``loss_function``.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn


class Learner(Protocol):
    module: nn.Module

    def scores(self, images: torch.Tensor, labels: torch.Tensor, training: bool) -> torch.Tensor:
        """Query logits float32 [B, N, N]; with the autograd graph when ``training``."""


def hide_query_labels(labels: torch.Tensor) -> torch.Tensor:
    """float32 [B, K+1, N, N]: a copy of the labels with the query row zeroed."""
    return torch.cat([labels[:, :-1], torch.zeros_like(labels[:, -1:])], dim=1)


def query_targets(labels: torch.Tensor) -> torch.Tensor:
    """int64 [B, N]: the class of each query image."""
    return labels[:, -1].argmax(dim=-1)


def query_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (float32 scalar) of logits [B, N, N] against the query row of labels [B, K+1, N, N]."""
    return F.cross_entropy(logits.flatten(0, 1), query_targets(labels).flatten())


def query_hits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """bool [B, N]: which queries are classified right."""
    return logits.argmax(dim=-1) == query_targets(labels)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
