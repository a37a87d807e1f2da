"""A correct student MANN for the grader's tests (the assignment's interface).

Variants of this file made by tests/test_grading_*.py break one marked line
at a time; the markers are the comments `# GRADER-TEST: <name>`.
"""

import torch
import torch.nn.functional as F
from torch import nn


class MANN(nn.Module):
    def __init__(self, num_classes, samples_per_class, hidden_dim):
        super().__init__()
        self.num_classes = num_classes
        self.samples_per_class = samples_per_class
        self.layer1 = nn.LSTM(num_classes + 784, hidden_dim, batch_first=True)  # GRADER-TEST: layer1
        self.layer2 = nn.LSTM(hidden_dim, num_classes, batch_first=True)
        for layer in (self.layer1, self.layer2):  # GRADER-TEST: init
            nn.init.xavier_uniform_(layer.weight_ih_l0)
            nn.init.orthogonal_(layer.weight_hh_l0)
            nn.init.zeros_(layer.bias_ih_l0)
            nn.init.zeros_(layer.bias_hh_l0)

    def forward(self, input_images, input_labels):
        """input_images [B, K+1, N, 784], input_labels [B, K+1, N, N] -> [B, K+1, N, N]."""
        b, k1, n, _ = input_labels.shape
        shown = input_labels.clone()
        shown[:, -1] = 0  # GRADER-TEST: mask
        sequence = torch.cat([input_images, shown], dim=-1).reshape(b, k1 * n, -1)  # GRADER-TEST: sequence
        hidden, _ = self.layer1(sequence)
        out, _ = self.layer2(hidden)
        return out.reshape(b, k1, n, n)  # GRADER-TEST: output

    def loss_function(self, preds, labels):
        """Mean cross-entropy over the B·N query predictions."""
        n = labels.shape[-1]
        logits = preds[:, -1].reshape(-1, n)  # GRADER-TEST: loss
        target = labels[:, -1].reshape(-1, n).argmax(-1)  # GRADER-TEST: loss-target
        return F.cross_entropy(logits, target)
