"""The assignment's memory-augmented LSTM (the reference used for grading).

Interface of the CS330 "black-box meta-learning" homework: ``MANN(num_classes,
samples_per_class, hidden_dim)`` with ``layer1 = LSTM(num_classes + 784,
hidden_dim)`` and ``layer2 = LSTM(hidden_dim, num_classes)``, both batch-first;
Xavier-uniform input weights, orthogonal recurrent weights, zero biases.

The model reads the (K+1)·N images of an episode as one sequence, each image
concatenated with its one-hot label, the query row's labels zeroed. Only the
query row is scored.
"""

from __future__ import annotations

import torch
from torch import nn

from episodes.layout import IMAGE_DIM
from mann.models.protocol import hide_query_labels, query_loss


class MANN(nn.Module):
    """Two stacked batch-first LSTMs over an episode.

    num_classes: N; samples_per_class: K+1; hidden_dim: width of layer1.
    generator: optional ``torch.Generator`` for the initial weights (the global
        RNG is used when it is None, as in the assignment).
    """

    def __init__(
        self,
        num_classes: int,
        samples_per_class: int,
        hidden_dim: int = 128,
        input_dim: int = IMAGE_DIM,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.samples_per_class = samples_per_class
        self.hidden_dim = hidden_dim
        self.input_dim = input_dim
        self.layer1 = nn.LSTM(num_classes + input_dim, hidden_dim, batch_first=True)
        self.layer2 = nn.LSTM(hidden_dim, num_classes, batch_first=True)
        for layer in (self.layer1, self.layer2):
            init_lstm_(layer, generator)

    def forward(self, input_images: torch.Tensor, input_labels: torch.Tensor) -> torch.Tensor:
        """input_images: float32 [B, K+1, N, 784]; input_labels: float32 [B, K+1, N, N].

        Returns float32 [B, K+1, N, N]: layer2's output at every position. The
        caller's label tensor is left untouched.
        """
        x = episode_sequence(input_images, input_labels)
        hidden, _ = self.layer1(x)
        out, _ = self.layer2(hidden)
        return out.reshape(input_labels.shape)


def init_lstm_(layer: nn.LSTM, generator: torch.Generator | None = None) -> None:
    """Xavier-uniform input weights, orthogonal recurrent weights, zero biases."""
    with torch.no_grad():
        nn.init.xavier_uniform_(layer.weight_ih_l0, generator=generator)
        nn.init.orthogonal_(layer.weight_hh_l0, generator=generator)
        nn.init.zeros_(layer.bias_ih_l0)
        nn.init.zeros_(layer.bias_hh_l0)


def episode_sequence(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """float32 [B, (K+1)·N, 784 + N]: images beside labels, query labels zeroed.

    Built out of place: zeroing the caller's tensor would also hide the query
    labels from the loss.
    """
    batch, rows, ways, _ = labels.shape
    return torch.cat([images, hide_query_labels(labels)], dim=-1).reshape(batch, rows * ways, -1)


def loss_function(preds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the B·N query predictions only.

    preds: float32 [B, K+1, N, N] (logits); labels: float32 one-hot [B, K+1, N, N].
    Returns a float32 scalar.
    """
    return query_loss(preds[:, -1], labels)


def mann_parameter_count(ways: int, hidden: int, input_dim: int = IMAGE_DIM) -> int:
    """Weights of ``MANN(ways, ·, hidden)``: per LSTM 4·out·(in + out) weights and two 4·out biases."""
    return 4 * hidden * (input_dim + ways + hidden) + 8 * hidden + 4 * ways * (hidden + ways) + 8 * ways
