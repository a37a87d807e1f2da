"""The one training loop: any learner, episodes of one split, fixed held-out test episodes.

Every model trains the same way: a batch of ``batch_size`` episodes per step
from ``EpisodeSampler(train split, training_ways, K, seed)``, Adam on the mean
query cross-entropy (halving its rate every ``lr_halve_every`` steps when set),
validation on fixed episodes every ``eval_every`` steps, a checkpoint every
``checkpoint_every`` steps, and a test on ``fixed_episodes(test split, N, K,
test_episodes, eval_seed)`` — the same episodes for every model of the same N,
K and split. A run interrupted and resumed gives the numbers of one that was
not: the checkpoint holds the weights, the optimiser and schedule, the
sampler's generator and the partial averages of the current log window.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from episodes.files import atomic_write, ensure_writable_dir
from episodes.prefetch import Prefetcher, has_spare_core
from episodes.sampler import EpisodeSampler, fixed_episodes
from mann.models.protocol import hide_query_labels, parameter_count, query_hits, query_loss
from mann.models.registry import build_learner
from mann.provenance import run_environment
from mann.stats import mean_ci95
from mann.training.config import TrainConfig
from mann.training.data import RunSplits
from mann.training.device import resolve_device
from mann.training.scoring import evaluate
from mann.training.run_folder import (
    check_run_folder, finished_summary, load_checkpoint, save_checkpoint, write_log, write_summary,
)


def train(
    config: TrainConfig,
    splits: RunSplits,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
) -> dict:
    """Train, checkpoint, test; return the summary row (also written to ``out``).

    config: a checked config (see :func:`mann.training.config.make_config`);
    splits: its prepared splits (:func:`mann.training.data.prepare_splits`).
    ``on_step(step, steps)``, when given, is called once at the start (with the
    resumed step) and after every step, so a caller can draw its own progress.
    """
    device = resolve_device(config.device)
    out = ensure_writable_dir(out)
    check_run_folder(out, resume)
    finished = finished_summary(out, config) if resume else None
    if finished is not None:
        return finished

    learner = build_learner(config, device)
    optimizer = torch.optim.Adam(learner.module.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_halve_every, 0.5) if config.lr_halve_every else None
    sampler = EpisodeSampler(splits.train, config.training_ways, config.shots, config.batch_size, config.seed, device)
    val_batches = fixed_episodes(splits.val, config.ways, config.shots, config.val_episodes, config.eval_seed, device)

    start_step, log_rows, elapsed = 0, [], 0.0
    # Sums over the steps since the last log row, kept on the device: a .item() per step would stall a GPU.
    window = {"loss": torch.zeros((), device=device), "acc": torch.zeros((), device=device), "steps": 0}
    checkpoint = out / "checkpoint.pt"
    if resume and checkpoint.exists():
        state = load_checkpoint(checkpoint, config)
        learner.module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(state["schedule"])
        sampler.generator.set_state(state["sampler_generator"])
        if "window" in state:  # checkpoints from before the window was saved start a fresh one
            window = {"loss": state["window"]["loss"].to(device), "acc": state["window"]["acc"].to(device),
                      "steps": state["window"]["steps"]}
        start_step, log_rows, elapsed = state["step"], list(state["log"]), float(state["elapsed"])

    # Started after a resume has restored the generator.
    batches = Prefetcher(sampler, background=has_spare_core(device))
    bar = tqdm(total=config.steps, initial=start_step, disable=not progress, dynamic_ncols=True,
               desc=f"train {config.label} N={config.ways} K={config.shots}"
               + (f" H={config.hidden}" if config.hidden is not None else ""))
    if on_step is not None:
        on_step(start_step, config.steps)
    t0 = time.perf_counter() - elapsed
    for step in range(start_step + 1, config.steps + 1):
        images, labels = batches.next()
        logits = learner.scores(images, hide_query_labels(labels), training=True)
        loss = query_loss(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        window["loss"] += loss.detach()
        window["acc"] += query_hits(logits.detach(), labels).float().mean()
        window["steps"] += 1
        bar.update(1)
        if on_step is not None:
            on_step(step, config.steps)
        if step % config.eval_every == 0 or step == config.steps:
            val_acc, val_loss = evaluate(learner, val_batches)
            row = {
                "step": step,
                "train_loss": window["loss"].item() / window["steps"],
                "train_acc": window["acc"].item() / window["steps"],
                "val_loss": val_loss,
                "val_acc": float(val_acc.mean()),
                "wall_s": time.perf_counter() - t0,
            }
            log_rows.append(row)
            write_log(out / "log.csv", log_rows)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
            window["loss"].zero_()
            window["acc"].zero_()
            window["steps"] = 0
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(checkpoint, {
                "config": config.to_dict(), "step": step, "model": learner.module.state_dict(),
                "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict() if schedule else None,
                "sampler_generator": batches.state(), "window": {**window}, "log": log_rows,
                "elapsed": time.perf_counter() - t0,
            })
    bar.close()
    batches.close()
    train_time = time.perf_counter() - t0

    test_batches = fixed_episodes(splits.test, config.ways, config.shots, config.test_episodes, config.eval_seed, device)
    test_acc, test_loss = evaluate(learner, test_batches, progress=progress)
    mean, ci = mean_ci95(test_acc)
    state_dict = learner.module.state_dict()
    atomic_write(out / "model.pt", lambda f: torch.save(state_dict, f))
    steps_run = config.steps - start_step
    summary = {
        **config.to_dict(),
        "parameters": parameter_count(learner.module),
        **splits.fingerprints(),
        "test_accuracy": mean,
        "test_ci95": ci,
        "test_loss": test_loss,
        "val_accuracy": log_rows[-1]["val_acc"] if log_rows else None,
        "final_train_loss": log_rows[-1]["train_loss"] if log_rows else None,
        "train_time_s": train_time,
        "resumed_from_step": start_step,
        "resumed_train_time_s": elapsed,
        "steps_per_s": steps_run / max(train_time - elapsed, 1e-9) if steps_run else None,
        **run_environment(device, splits.source),
    }
    write_summary(out, summary)
    return summary
