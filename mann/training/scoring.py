"""Scoring a learner on batches of episodes: per-episode query accuracy and the mean query loss."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from mann.models.protocol import Learner, hide_query_labels, query_hits, query_loss

Batch = tuple[torch.Tensor, torch.Tensor]


@torch.no_grad()
def evaluate(learner: Learner, batches: list[Batch], progress: bool = False, desc: str = "test",
             queries: int = 1) -> tuple[np.ndarray, float]:
    """Per-episode query accuracy float64 [n] and the mean query loss over the batches.

    batches: (images float32 [b, K+Q, N, 784], labels float32 [b, K+Q, N, N]) with
    Q = ``queries`` query rows (1 but for ProtoNets' validation); the learner sees
    the labels with the query rows hidden.
    """
    accs, loss_sum, count = [], 0.0, 0
    bar = tqdm(total=sum(b[0].shape[0] for b in batches), disable=not progress, desc=desc, dynamic_ncols=True,
               leave=False)
    for images, labels in batches:
        logits = learner.scores(images, hide_query_labels(labels, queries), training=False)
        accs.append(query_hits(logits, labels).double().mean(dim=1).cpu())
        loss_sum += query_loss(logits, labels).item() * images.shape[0]
        count += images.shape[0]
        bar.update(images.shape[0])
    bar.close()
    return torch.cat(accs).numpy(), loss_sum / count
