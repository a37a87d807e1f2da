"""The one interface the training loop needs of every learner, and the loss all share.

A learner scores the query row of a batch of episodes::

    logits = learner.scores(images, labels, training)   # float32 [B, N, N]

images: float32 [B, K+1, N, 784]; labels: float32 one-hot [B, K+1, N, N] with
the query row (row K) zeroed by the loop, so no learner can read the answers.
``logits[b, i]`` scores the i-th query image of episode b against the N
classes. A learner that trains on several queries per class (ProtoNets, Snell
et al.) gets training episodes of K+Q rows, the last Q of them queries, and
returns float32 [B, Q·N, N] for them, row by row; every function below reads Q
from the logits' shape, so Q = 1 is the plain episode. ``learner.module`` holds every trained parameter: the optimiser
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


def hide_query_labels(labels: torch.Tensor, queries: int = 1) -> torch.Tensor:
    """float32 [B, K+Q, N, N]: a copy of the labels with the last ``queries`` rows zeroed."""
    return torch.cat([labels[:, :-queries], torch.zeros_like(labels[:, -queries:])], dim=1)


def query_targets(labels: torch.Tensor, queries: int = 1) -> torch.Tensor:
    """int64 [B, Q·N]: the class of each query image of the last ``queries`` rows, row by row."""
    return labels[:, -queries:].argmax(dim=-1).flatten(1)


def scored_rows(logits: torch.Tensor, labels: torch.Tensor) -> int:
    """Q, the query rows that logits [B, Q·N, N] score in episodes labels [B, K+Q, N, N]."""
    return logits.shape[1] // labels.shape[-1]


def query_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (float32 scalar) of logits [B, Q·N, N] against the last Q rows of labels [B, K+Q, N, N]."""
    return F.cross_entropy(logits.flatten(0, 1), query_targets(labels, scored_rows(logits, labels)).flatten())


def query_hits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """bool [B, Q·N]: which queries are classified right."""
    return logits.argmax(dim=-1) == query_targets(labels, scored_rows(logits, labels))


def parameter_count(module: nn.Module) -> int:
    """The learned numbers (a frozen parameter, such as the published MAML learner's batch norm scale, is not one)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
