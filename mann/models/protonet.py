"""Prototypical networks (Snell et al. 2017) on tasks from the project's sampler.

Each class's prototype is the mean embedding of its support images; a query's
logits are its negative squared Euclidean distances to the N prototypes. All
tasks of a batch are embedded in one forward pass. Nothing in the network
depends on N, so a model trained on 60-way episodes scores 5- or 20-way ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mann.models.nets import conv4_embedding
from mann.models.tasks import Tasks, episode_to_tasks


class ProtoNetLearner:
    """module: the embedding, images float32 [M, 1, S, S] → [M, 64]; shots: K, the support rows."""

    def __init__(self, generator: torch.Generator, shots: int) -> None:
        self.module: nn.Module = conv4_embedding(generator)
        self.shots = shots

    def scores(self, images: torch.Tensor, labels: torch.Tensor, training: bool) -> torch.Tensor:
        """Query logits float32 [B, Q·N, N] for episodes of K+Q rows; batch norm uses running statistics unless training."""
        self.module.train(training)
        with torch.set_grad_enabled(training):
            return prototype_logits(self.module, episode_to_tasks(images, labels, self.shots))


def prototype_logits(embed: nn.Module, tasks: Tasks) -> torch.Tensor:
    """-‖f(query) − prototype‖², float32 [B, Q·N, N]."""
    batch, n_support = tasks.support_y.shape
    ways = tasks.ways
    images = torch.cat([tasks.support_x.flatten(0, 1), tasks.query_x.flatten(0, 1)])
    z = embed(images.contiguous(memory_format=torch.channels_last))
    support = z[: batch * n_support].view(batch, n_support, -1)
    query = z[batch * n_support:].view(batch, tasks.query_x.shape[1], -1)
    onehot = F.one_hot(tasks.support_y, ways).to(z.dtype)  # [B, K·N, N]
    prototypes = onehot.transpose(1, 2) @ support / onehot.sum(dim=1).unsqueeze(-1)  # [B, N, F]
    # Differences, not cdist: the square root inside cdist has no gradient at distance 0.
    return -(query.unsqueeze(2) - prototypes.unsqueeze(1)).pow(2).sum(dim=-1)
