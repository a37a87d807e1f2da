"""Black-box learners: a network that reads the whole episode as a sequence (the MANN, or a
user's class with its interface) and predicts every position; the query row is scored.

The module is called as ``module(images, labels)`` → float32 [B, K+1, N, N]
(the assignment's interface); ``forward`` may replace that call with a faster
function computing the same thing (the MANN's CPU path, :mod:`mann.models.fast_lstm`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Forward = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def call_module(module: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return module(images, labels)


class BlackBoxLearner:
    """module: the network; forward(module, images, labels) → [B, K+1, N, N] (default: the module's own call)."""

    def __init__(self, module: nn.Module, forward: Forward = call_module) -> None:
        self.module = module
        self.forward = forward

    def scores(self, images: torch.Tensor, labels: torch.Tensor, training: bool) -> torch.Tensor:
        """Query logits float32 [B, N, N]: the output's last row."""
        self.module.train(training)
        return self.forward(self.module, images, labels)[:, -1]
