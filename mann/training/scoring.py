"""Scoring a learner on batches of episodes: per-episode query accuracy and the mean query loss, and its
test on the fixed test episodes of a split (the same for every model of the same N, K and split)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from episodes.sampler import fixed_episodes
from episodes.splits import Split
from mann.models.protocol import Learner, hide_query_labels, query_hits, query_loss
from mann.stats import mean_ci95

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


def fixed_test_scores(learner: Learner, split: Split, ways: tuple[int, ...], shots: int, episodes: int, seed: int,
                      device: str | torch.device = "cpu", progress: bool = False,
                      distinct_characters: bool = False) -> dict[int, tuple[float, float, float]]:
    """{N: (accuracy, its 95% CI, mean query loss)} of the learner on ``fixed_episodes(split, N, shots,
    episodes, seed)`` for each N in ``ways``: the test every run and every saved checkpoint gets
    (``distinct_characters``: on Finn et al.'s kind of episodes instead, N distinct characters each)."""
    tests = {}
    for n in ways:
        batches = fixed_episodes(split, n, shots, episodes, seed, device, distinct_characters)
        accuracy, loss = evaluate(learner, batches, progress=progress, desc=f"test N={n}")
        tests[n] = (*mean_ci95(accuracy), loss)
    return tests
