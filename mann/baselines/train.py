"""Train a baseline on the project's episodes and test it on the MANN's fixed test episodes.

Training episodes come from ``EpisodeSampler(train split, N, K, meta_batch, seed)``
and the test episodes from ``fixed_episodes(test split, N, K, test_episodes,
eval_seed)``: exactly what ``mann.train`` uses, so for the same N, K, split and
eval seed a baseline and the MANN are scored on the same images.

Files written in the run folder (the MANN's names, so ``mann report`` reads both):
  log.csv       step, train_loss, train_acc, val_loss, val_acc, wall_s (every eval)
  model.pt      the ``state_dict`` of the meta-learned module (see load_baseline)
  summary.json  one result row: every field of a MANN row plus ``model`` and
  summary.csv   ``parameters`` and the baseline's own hyperparameters
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from episodes.errors import UsageError
from episodes.omniglot import OmniglotStore
from episodes.sampler import EpisodeSampler, check_episode_shape, fixed_episodes
from episodes.splits import make_split
from mann.baselines.config import GRADIENT_MODELS, BaselineConfig
from mann.baselines.learners import parameter_count
from mann.baselines.tasks import Tasks, episode_to_tasks
from mann.io import ensure_writable_dir
from mann.stats import mean_ci95
from mann.train import RunSplits, _write_log, check_run_folder, resolve_device, run_environment, write_summary

Batch = tuple[torch.Tensor, torch.Tensor]


class Baseline(Protocol):
    """What the trainer needs of a baseline."""

    module: nn.Module

    def logits(self, tasks: Tasks, training: bool) -> torch.Tensor:
        """Query logits float32 [B, N, N]; with the graph when training."""


def build_baseline(config: BaselineConfig, generator: torch.Generator) -> Baseline:
    """The named baseline with freshly initialised weights (UsageError if learn2learn is missing)."""
    if config.model in GRADIENT_MODELS:
        from mann.baselines.gradient import GradientBaseline

        return GradientBaseline(config, generator)
    from mann.baselines.protonet import ProtoNet

    return ProtoNet(config, generator)


def prepare_baseline_splits(store: OmniglotStore, config: BaselineConfig) -> RunSplits:
    """The run's splits, checked for N-way training (train_ways) and N-way testing."""
    splits = RunSplits(*(make_split(store, config.split, p, config.split_seed, config.rotations) for p in ("train", "val", "test")))
    for split, ways in ((splits.train, config.train_ways), (splits.val, config.ways), (splits.test, config.ways)):
        try:
            check_episode_shape(ways, config.shots, config.meta_batch, split.num_classes)
        except UsageError as err:
            raise UsageError(f"{err} (in {split.scheme}/{split.part})") from None
    return splits


def evaluate_baseline(baseline: Baseline, batches: list[Batch], progress: bool = False, desc: str = "test") -> tuple[np.ndarray, float]:
    """Per-episode query accuracy float64 [n] and the mean query loss, on episode batches."""
    accs, loss_sum, count = [], 0.0, 0
    bar = tqdm(total=sum(b[0].shape[0] for b in batches), disable=not progress, desc=desc, dynamic_ncols=True, leave=False)
    for images, labels in batches:
        tasks = episode_to_tasks(images, labels)
        logits = baseline.logits(tasks, training=False)
        accs.append(query_hits(logits, tasks).double().mean(dim=1).cpu())
        loss_sum += F.cross_entropy(logits.flatten(0, 1), tasks.query_y.flatten()).item() * len(tasks)
        count += len(tasks)
        bar.update(len(tasks))
    bar.close()
    return torch.cat(accs).numpy(), loss_sum / count


def query_hits(logits: torch.Tensor, tasks: Tasks) -> torch.Tensor:
    """bool [B, N]: which queries are classified right."""
    return logits.argmax(dim=-1) == tasks.query_y


def train_baseline(config: BaselineConfig, store: OmniglotStore, out: str | Path, progress: bool = True) -> dict:
    """Train, test, write the run folder; return the summary row."""
    config.validate()
    device = resolve_device(config.device)
    splits = prepare_baseline_splits(store, config)
    out = ensure_writable_dir(out)
    check_run_folder(out, resume=False)
    baseline = build_baseline(config, torch.Generator().manual_seed(config.seed))
    baseline.module.to(device)
    optimizer = torch.optim.Adam(baseline.module.parameters(), lr=config.meta_lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_halve_every, 0.5) if config.lr_halve_every else None
    sampler = EpisodeSampler(splits.train, config.train_ways, config.shots, config.meta_batch, config.seed, device)
    val_batches = fixed_episodes(splits.val, config.ways, config.shots, config.val_episodes, config.eval_seed, device)

    log_rows: list[dict] = []
    bar = tqdm(total=config.steps, disable=not progress, dynamic_ncols=True, desc=f"{config.model} N={config.ways} K={config.shots}")
    t0 = time.perf_counter()
    window_loss = window_acc = 0.0
    window = 0
    for step in range(1, config.steps + 1):
        tasks = episode_to_tasks(*sampler.sample())
        logits = baseline.logits(tasks, training=True)
        loss = F.cross_entropy(logits.flatten(0, 1), tasks.query_y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        window_loss += loss.item()
        window_acc += query_hits(logits.detach(), tasks).float().mean().item()
        window += 1
        bar.update(1)
        if step % config.eval_every == 0 or step == config.steps:
            val_acc, val_loss = evaluate_baseline(baseline, val_batches)
            row = {
                "step": step, "train_loss": window_loss / window, "train_acc": window_acc / window,
                "val_loss": val_loss, "val_acc": float(val_acc.mean()), "wall_s": time.perf_counter() - t0,
            }
            log_rows.append(row)
            _write_log(out / "log.csv", log_rows)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
            window_loss = window_acc = 0.0
            window = 0
    bar.close()
    train_time = time.perf_counter() - t0
    torch.save(baseline.module.state_dict(), out / "model.pt")

    test_batches = fixed_episodes(splits.test, config.ways, config.shots, config.test_episodes, config.eval_seed, device)
    test_acc, test_loss = evaluate_baseline(baseline, test_batches, progress=progress)
    mean, ci = mean_ci95(test_acc)
    summary = {
        **config.to_dict(),
        # The MANN row's names for the shared quantities, so one table holds both.
        "hidden": None,
        "batch_size": config.meta_batch,
        "lr": config.meta_lr,
        "checkpoint_every": None,
        "fast": None,
        "parameters": parameter_count(baseline.module),
        **splits.fingerprints(),
        "test_accuracy": mean,
        "test_ci95": ci,
        "test_loss": test_loss,
        "val_accuracy": log_rows[-1]["val_acc"] if log_rows else None,
        "final_train_loss": log_rows[-1]["train_loss"] if log_rows else None,
        "train_time_s": train_time,
        "resumed_from_step": 0,  # baselines train in one go (no checkpoints)
        "resumed_train_time_s": 0.0,
        "steps_per_s": config.steps / max(train_time, 1e-9) if config.steps else None,
        **run_environment(device, store),
    }
    write_summary(out, summary)
    return summary


@dataclass(frozen=True)
class LoadedBaseline:
    config: BaselineConfig
    baseline: Baseline


def load_baseline(folder: str | Path, device: str | torch.device = "cpu") -> LoadedBaseline:
    """A finished baseline run (summary.json + model.pt) rebuilt for scoring."""
    folder = Path(folder)
    try:
        summary = json.loads((folder / "summary.json").read_text())
        config = BaselineConfig.from_dict(summary)
    except (OSError, ValueError, TypeError) as err:
        raise UsageError(f"{folder}: no readable baseline summary.json ({err}); pass a finished `mann baselines` run folder") from None
    baseline = build_baseline(config, torch.Generator().manual_seed(config.seed))
    try:
        state = torch.load(folder / "model.pt", map_location=device, weights_only=True)
        baseline.module.load_state_dict(state)
    except (OSError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"{folder / 'model.pt'} does not load into a {config.model} for N={config.ways} ({first}); "
                         f"is it damaged or from another run? Train it again with mann baselines") from None
    baseline.module.to(device)
    return LoadedBaseline(config, baseline)
