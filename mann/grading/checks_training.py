"""The training test: does the student's MANN learn with its own loss?

The sandbox trains ``MANN(N, K+1, H)`` with Adam on the student's
``loss_function`` for a few hundred steps of reference episodes (the
project's sampler on the ``cs330`` train split, sent as image indices), then
predicts fixed reference test episodes. Nothing in the sandbox can tell a
query image's class: the test episodes go in as their images (not indices
into the character-ordered split), with the query row's labels zeroed (the
model must ignore them anyway), and without the PNG tree to look images up
in. The true labels stay in the grader (``Probe.answers``), which scores the
returned logits itself.
"""

from __future__ import annotations

import numpy as np

from episodes.layout import DRAWERS
from episodes.sampler import EVAL_BATCH, EpisodeSampler, flat_positions
from mann.grading.check import Check, Verdict, fail, ok, shape_problem
from mann.grading.reference import Reference
from mann.grading.runner import Probe, RunResult

EVAL_SEED = 1234


def episode_indices(sampler: EpisodeSampler, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """rows int32 [steps, B, K+1, N] (into the split's images as [C·20]) and
    labels int8 [steps, B, K+1, N], exactly the sampler's next ``steps`` batches."""
    rows, labels = [], []
    for _ in range(steps):
        r, lab = flat_positions(sampler.sample_indices())
        rows.append(r.numpy().astype(np.int32))
        labels.append(lab.numpy().astype(np.int8))
    return np.stack(rows), np.stack(labels)


def training_probe(ref: Reference, p: dict) -> Probe:
    n, k = p["ways"], p["shots"]
    train = EpisodeSampler(ref.train, n, k, batch_size=p["batch"], seed=p["seed"])
    train_rows, train_labels = episode_indices(train, p["steps"])
    test = EpisodeSampler(ref.test, n, k, batch_size=EVAL_BATCH, seed=EVAL_SEED)
    batches = -(-p["test_episodes"] // EVAL_BATCH)
    test_rows, test_labels = episode_indices(test, batches)
    shape = (-1, k + 1, n)
    rows = test_rows.reshape(shape)[: p["test_episodes"]]
    labels = test_labels.reshape(shape)[: p["test_episodes"]]
    shown = labels.copy()
    shown[:, -1] = 0  # the answers: kept here, never sent
    arrays = {
        "train_images": ref.train.images.reshape(ref.train.num_classes, DRAWERS, -1),
        "train_rows": train_rows, "train_labels": train_labels,
        # uint8 [E, K+1, N, 784]: the pixels only, no index that names a character
        "test_images": ref.test.images.reshape(ref.test.num_classes * DRAWERS, -1)[rows],
        "test_labels": shown,
    }
    job = {"ways": n, "shots": k, "hidden": p["hidden"], "steps": p["steps"], "lr": p["lr"], "seed": p["seed"]}
    return Probe("train", job, arrays, answers={"test_labels": labels}, data=False)


def training_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    n, k, episodes = p["ways"], p["shots"], p["test_episodes"]
    preds = result.arrays.get("test_preds")
    wrong = shape_problem(preds, (episodes, k + 1, n, n), f"MANN.forward's predictions on the {episodes} test episodes",
                          "[B, K+1, N, N] per batch")
    if wrong:
        return fail(wrong)
    truth = probe.answers["test_labels"][:, -1]
    accuracy = float((preds[:, -1].argmax(-1) == truth).mean())
    losses = result.arrays.get("losses")
    curve = ""  # only for the curve of the steps asked for, as the probe records it
    if not shape_problem(losses, (p["steps"],), "the losses") and losses.size:
        curve = f"training loss {losses[:10].mean():.3f} -> {losses[-10:].mean():.3f}"
    summary = (f"{n}-way {k}-shot after {p['steps']} steps: {100 * accuracy:.1f}% query accuracy on {episodes} "
               f"test episodes (query labels hidden; chance {100 / n:.0f}%, needed {100 * p['threshold']:.0f}%); {curve}")
    if not np.isfinite(preds).all():
        return fail(f"{summary}; the predictions hold NaN or infinite values")
    if accuracy < p["threshold"]:
        return fail(f"{summary}. The model did not learn enough: check the loss (query row only), the label "
                    f"masking and that forward returns logits in episode order")
    return ok(summary)


CHECKS = [
    Check("training", {"ways": 2, "shots": 1, "hidden": 128, "steps": 400, "batch": 128, "lr": 1e-3,
                       "test_episodes": 500, "threshold": 0.70},
          training_probe, training_judge, limits={"wall_s": 600, "cpu_s": 600}),
]
