"""Saved weights on their run's fixed test episodes, for ``mann test``.

Any saved weights work: a finished run folder (model.pt), a run still training or
a sweep cell (checkpoint.pt), or a checkpoint carried in ``results/``. Each is
tested on ``fixed_episodes(its test split, N, its K, episodes, eval seed)``, the
episodes its own run is (or will be) tested on, so a checkpoint at step S scores
what ``mann train ... --steps S`` would report, and a finished run scores its
summary's figure again (the table shows both). ``best`` scores the weights of the
best validation loss instead, which a run without early stopping keeps beside its
last ones (an unstable run's last weights can sit in a dip). ``distinct_characters``
scores them on Finn et al.'s kind of episodes (N distinct characters, one random
rotation each): the own test of a run trained on them, another test for the rest.
Every path is loaded and checked before any is scored.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd

from episodes.errors import UsageError
from episodes.layout import check_episode_shape
from episodes.omniglot import OmniglotStore
from episodes.splits import character_groups_for, make_split
from mann.stats import format_ci
from mann.training.run_folder import SavedWeights, load_weights
from mann.training.scoring import fixed_test_scores
from mann.training.summary_fields import test_figure


def tested_ways(saved: SavedWeights, ways: tuple[int, ...] | None) -> tuple[int, ...]:
    """The N to test ``saved`` at: ``ways``, else its run's N and also_test_ways; UsageError for an N its
    model cannot score (every model but a metric one has an output layer of its run's N)."""
    config = saved.config
    if not ways:
        return (config.ways, *config.also_test_ways)
    if config.kind != "metric":
        other = [n for n in ways if n != config.ways]
        if other:
            raise UsageError(f"--ways {other[0]} for {saved.source}: its {config.label} has an output layer for "
                             f"N={config.ways}; test it at --ways {config.ways} (only ProtoNets scores any N)")
    return tuple(ways)


def score_saved_weights(
    paths: list[str],
    store_for: Callable[[str], OmniglotStore],
    ways: tuple[int, ...] | None = None,
    episodes: int | None = None,
    eval_seed: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    best: bool = False,
    distinct_characters: bool = False,
) -> pd.DataFrame:
    """One row per (path, N): the weights' test accuracy ± 95% CI on their run's fixed test episodes.

    store_for(resize) gives the Omniglot store decoded the way a run was trained (each
    run's test images are decoded as its own were). ``episodes`` and ``eval_seed``
    default to each run's own; a finished run's row repeats its summary's accuracy
    when the test is the one its run made.
    """
    if episodes is not None and episodes < 1:
        raise UsageError(f"--episodes {episodes}: use 1 or more test episodes (1000 is the harness's default)")
    saved = [load_weights(p, device, best) for p in paths]
    plans = []
    for weights in saved:
        config = weights.config
        split = make_split(store_for(config.resize), config.split, "test", config.split_seed, config.rotations)
        stored = (weights.summary or {}).get("test_fingerprint")
        if stored is not None and stored != split.fingerprint:
            raise UsageError(f"{weights.source}: its run was tested on a {config.split} test split with "
                             f"fingerprint {stored}, this data gives {split.fingerprint}; point --data-root at "
                             f"the Omniglot it was trained on")
        ns = tested_ways(weights, ways)
        for n in ns:
            try:
                check_episode_shape(n, config.shots, 1, split.num_classes)
            except UsageError as err:
                raise UsageError(f"{weights.source}: {err} (in {split.scheme}/{split.part})") from None
        draws = distinct_characters or config.distinct_characters
        if draws:
            try:
                character_groups_for(split, max(ns))
            except UsageError as err:
                raise UsageError(f"{weights.source}: {err}") from None
        plans.append((weights, split, ns, draws))

    rows = []
    for weights, split, ns, draws in plans:
        config = weights.config
        count = episodes or config.test_episodes
        seed = config.eval_seed if eval_seed is None else eval_seed
        others = distinct_characters and not config.distinct_characters  # not the episodes of the run's test
        scores = fixed_test_scores(weights.learner, split, ns, config.shots, count, seed, device, progress, draws)
        for n, (mean, ci, loss) in scores.items():
            rows.append({
                "weights": str(weights.source),
                "model": config.label,
                "split": config.split + (" +rotations" if config.rotations else ""),
                "N": n,
                "K": config.shots,
                "step": weights.step,
                "of steps": config.steps,
                "weights of": "best val loss" if weights.best else "last step",
                "phase": "refit" if weights.phase == 2 else "train",
                "test accuracy % (95% CI)": format_ci(mean, ci),
                "summary's %": "" if others else summary_figure(weights, n, count, seed),
                "test loss": round(loss, 4),
                "test episodes": count,
                "classes of an episode": "distinct characters" if draws else "distinct classes",
                "eval seed": seed,
                "test fingerprint": split.fingerprint,
                "test_accuracy": mean,
                "test_ci95": ci,
            })
    return pd.DataFrame(rows)


def summary_figure(weights: SavedWeights, ways: int, episodes: int, seed: int) -> str:
    """A finished run's own test accuracy at N = ``ways`` when it was made on these episodes, else ''."""
    summary, config = weights.summary, weights.config
    if not weights.tested_by_summary or (episodes, seed) != (config.test_episodes, config.eval_seed):
        return ""
    mean, ci = test_figure(summary, ways, config.ways, weights.summary_prefix)
    return format_ci(mean, ci) if mean is not None and ci is not None else ""
