"""The one training loop: any learner, episodes of one split, fixed held-out test episodes.

Every model trains the same way: a batch of ``batch_size`` episodes per step
from ``EpisodeSampler(train split, training_ways, K, seed)``, Adam on the mean
query cross-entropy (halving its rate every ``lr_halve_every`` steps when set),
validation on fixed episodes every ``eval_every`` steps, a checkpoint every
``checkpoint_every`` steps (and whenever ``checkpoint_minutes`` of training
passed since the last one, so a slow run loses minutes, not hours, when it is
cut off), and a test on ``fixed_episodes(test split, N, K,
test_episodes, eval_seed)`` — the same episodes for every model of the same N,
K and split. A run interrupted and resumed gives the numbers of one that was
not: the checkpoint holds the weights, the optimiser and schedule, the
sampler's generator and the partial averages of the current log window.
``micro_batch`` computes each step's gradient a few episodes at a time
(:mod:`mann.training.micro_batches`); it may differ on resuming, which changes
the numbers by float rounding only.

Two options give the protocol of Snell et al. (2017): ``patience`` stops when
the validation loss has not improved for that many evaluations and keeps the
best evaluation's weights; ``refit`` then trains fresh weights on train + val
for the best step plus the patience (the length early stopping chose), without
validation (val is part of its training data), and tests those. That second
phase logs to ``log_refit.csv`` and resumes like the first. Without ``patience``
the last weights are tested (model.pt) and the best validation loss's weights
are kept too, in the checkpoints and as best.pt, and tested on the same episodes
(``best_val_test_accuracy`` beside ``test_accuracy``; ``mann test --best`` scores them again).

With the ``tensorboard`` package installed, each log write also writes the rows as
TensorBoard events beside the log (:mod:`mann.training.events`).
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
from episodes.splits import Split
from mann.models.protocol import parameter_count, query_hits
from mann.models.registry import build_learner
from mann.provenance import run_environment
from mann.signals import Stopped, stop_at_safe_point
from mann.training.config import TrainConfig, refit_length
from mann.training.data import RunSplits
from mann.training.device import keep_freed_memory, resolve_device
from mann.training.events import write_events
from mann.training.micro_batches import backward_in_micro_batches
from mann.training.scoring import evaluate, fixed_test_scores
from mann.training.summary_fields import BEST_PREFIX, test_fields
from mann.training.run_folder import (
    BEST_WEIGHTS, check_run_folder, finished_summary, load_checkpoint, save_checkpoint, write_log, write_summary,
)


def train(
    config: TrainConfig,
    splits: RunSplits,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
    on_write: Callable[[], None] | None = None,
) -> dict:
    """Train, checkpoint, test; return the summary row (also written to ``out``).

    config: a checked config (see :func:`mann.training.config.make_config`);
    splits: its prepared splits (:func:`mann.training.data.prepare_splits`).
    ``on_step(step, steps)``, when given, is called once at the start of each
    phase (with the resumed step) and after every step, so a caller can draw its
    own progress. ``on_write()``, when given, is called after each step that wrote
    the log or a checkpoint, so a caller can copy the run folder elsewhere as it
    grows (a Ray task sends it to the sweep's driver).
    """
    device = resolve_device(config.device)
    keep_freed_memory()  # every step allocates the same activations: keep their pages mapped
    out = ensure_writable_dir(out)
    check_run_folder(out, resume)
    finished = finished_summary(out, config) if resume else None
    if finished is not None:
        return finished

    checkpoint = out / "checkpoint.pt"
    state = load_checkpoint(checkpoint, config) if resume and checkpoint.exists() else None
    val_batches = fixed_episodes(splits.val, config.ways, config.shots + config.validation_queries - 1,
                                 config.val_episodes, config.eval_seed, device, config.distinct_characters)
    first_runs_now = state is None or state.get("phase", 1) == 1
    if first_runs_now:
        first = run_phase(config, 1, splits.train, val_batches, config.steps, device, out, state, progress, on_step,
                          on_write)
        state = None
    else:
        first = state["first_phase"]
        if state["model"] is None:  # stopped between the phases: the refit starts afresh
            state = None
    result = first
    # Training time of earlier invocations: phase 1's part of it, plus the refit's when it resumes.
    before = first["elapsed_before"] if first_runs_now else first["train_time"]
    if config.refit:
        refit_steps = refit_length(first["best_step"], config.patience, config.eval_every)
        result = run_phase(config, 2, splits.trainval, None, refit_steps, device, out, state, progress, on_step, on_write,
                           first_phase=first)
        before += result["elapsed_before"]

    learner = result["learner"]
    best_weights = result.get("best_model")  # phase 1's best validation weights; None after a refit
    if config.patience and best_weights is not None:
        learner.module.load_state_dict(best_weights)

    def test() -> dict[int, tuple[float, float, float]]:
        return fixed_test_scores(learner, splits.test, (config.ways, *config.also_test_ways), config.shots,
                                 config.test_episodes, config.eval_seed, device, progress, config.distinct_characters)

    tests = test()
    state_dict = learner.module.state_dict()
    atomic_write(out / "model.pt", lambda f: torch.save(state_dict, f))
    best_tests = {}
    if best_weights is not None and not config.patience:
        # The recipe's figure is the last weights'; the best validation loss's are kept and tested beside
        # them, so a run that ends in a dip reports both without anyone having to keep its folder.
        atomic_write(out / BEST_WEIGHTS, lambda f: torch.save(best_weights, f))
        best_tests = tests
        if first["best_step"] != result["steps"]:
            learner.module.load_state_dict(best_weights)
            best_tests = test()
    log_rows = first["log"]
    steps_run = result["steps"] - result["start_step"]
    summary = {
        **config.to_dict(),
        "parameters": parameter_count(learner.module),
        **splits.fingerprints(),
        **test_fields(tests, config.ways),
        "val_accuracy": log_rows[-1]["val_acc"] if log_rows else None,
        "final_train_loss": result["log"][-1]["train_loss"] if result["log"] else None,
        **best_validation_fields(config, first),
        **test_fields(best_tests, config.ways, BEST_PREFIX),
        **({"refit_steps": result["steps"], "first_phase_time_s": first["train_time"]} if config.refit else {}),
        "train_time_s": first["train_time"] + (result["train_time"] if config.refit else 0.0),
        "resumed_from_step": result["start_step"],
        "resumed_train_time_s": before,
        "steps_per_s": steps_run / max(result["train_time"] - result["elapsed_before"], 1e-9) if steps_run else None,
        **run_environment(device, splits.source),
    }
    write_summary(out, summary)
    return summary


def run_phase(
    config: TrainConfig,
    phase: int,
    split: Split,
    val_batches: list | None,
    steps: int,
    device: torch.device,
    out: Path,
    state: dict | None,
    progress: bool,
    on_step: Callable[[int, int], None] | None,
    on_write: Callable[[], None] | None = None,
    first_phase: dict | None = None,
) -> dict:
    """Train fresh weights (or the checkpoint ``state``'s) on ``split`` for up to ``steps`` steps.

    Phase 1 validates on ``val_batches`` every ``eval_every`` steps and, with
    ``patience``, stops early and keeps the best weights; phase 2 (the refit)
    has no validation. Returns {"learner", "best_model" (a state_dict or None),
    "best_step", "best_loss", "steps" (the last step run), "start_step", "log",
    "train_time", "elapsed_before"}; ``first_phase`` (phase 1's result without
    its learner) is kept in phase 2's checkpoints.
    """
    learner = build_learner(config, device)
    optimizer = torch.optim.Adam(learner.module.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_halve_every, 0.5) if config.lr_halve_every else None
    queries = config.queries
    sampler = EpisodeSampler(split, config.training_ways, config.shots + queries - 1, config.batch_size, config.seed,
                             device, config.distinct_characters)

    start_step, log_rows, elapsed = 0, [], 0.0
    best = {"loss": float("inf"), "step": 0, "wait": 0, "model": None}
    # Sums over the steps since the last log row, kept on the device: a .item() per step would stall a GPU.
    window = {"loss": torch.zeros((), device=device), "acc": torch.zeros((), device=device), "steps": 0}
    if state is not None:
        learner.module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(state["schedule"])
        sampler.generator.set_state(state["sampler_generator"])
        if "window" in state:  # checkpoints from before the window was saved start a fresh one
            window = {"loss": state["window"]["loss"].to(device), "acc": state["window"]["acc"].to(device),
                      "steps": state["window"]["steps"]}
        best = state.get("best", best)
        start_step, log_rows, elapsed = state["step"], list(state["log"]), float(state["elapsed"])
    log_file = out / ("log.csv" if phase == 1 else "log_refit.csv")
    stopped = phase == 1 and patience_ran_out(best, config.patience)

    # Started after a resume has restored the generator.
    batches = Prefetcher(sampler, background=has_spare_core(device))
    bar = tqdm(total=steps, initial=start_step, disable=not progress, dynamic_ncols=True,
               desc=("refit on train+val " if phase == 2 else "train ") + f"{config.label} N={config.ways} "
               f"K={config.shots}" + (f" H={config.hidden}" if config.hidden is not None else ""))
    if on_step is not None:
        on_step(start_step, steps)
    t0 = time.perf_counter() - elapsed
    saved_at = time.perf_counter()
    step, signalled = start_step, None
    notice = "stopping after this step, with a checkpoint"
    with stop_at_safe_point(notice) as stop_signal:
        while step < steps and not stopped:
            step += 1
            images, labels = batches.next()
            optimizer.zero_grad(set_to_none=True)
            loss, logits = backward_in_micro_batches(learner, images, labels, queries, config.micro_batch)
            optimizer.step()
            if schedule is not None:
                schedule.step()
            window["loss"] += loss
            window["acc"] += query_hits(logits, labels).float().mean()
            window["steps"] += 1
            bar.update(1)
            if on_step is not None:
                on_step(step, steps)
            wrote = False
            if step % config.eval_every == 0 or step == steps:
                row = {"step": step, "train_loss": window["loss"].item() / window["steps"],
                       "train_acc": window["acc"].item() / window["steps"]}
                if val_batches is not None:
                    val_acc, val_loss = evaluate(learner, val_batches, queries=config.validation_queries)
                    row.update(val_loss=val_loss, val_acc=float(val_acc.mean()))
                    if val_loss < best["loss"]:
                        # Kept with or without early stopping: an unstable run's last weights can sit in a dip.
                        best = {"loss": val_loss, "step": step, "wait": 0, "model": clone_state(learner.module)}
                    else:
                        best["wait"] += 1
                    stopped = patience_ran_out(best, config.patience)
                row["wall_s"] = time.perf_counter() - t0
                log_rows.append(row)
                write_log(log_file, log_rows)
                write_events(out, log_rows, phase)
                wrote = True
                bar.set_postfix(loss=f"{row['train_loss']:.3f}",
                                **({"val_acc": f"{row['val_acc']:.3f}"} if "val_acc" in row else {}))
                window["loss"].zero_()
                window["acc"].zero_()
                window["steps"] = 0
            overdue = config.checkpoint_minutes and time.perf_counter() - saved_at >= 60 * config.checkpoint_minutes
            signalled = stop_signal()
            if step % config.checkpoint_every == 0 or step == steps or stopped or overdue or signalled:
                save_checkpoint(out / "checkpoint.pt", {
                    "config": config.to_dict(), "phase": phase, "step": step, "model": learner.module.state_dict(),
                    "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict() if schedule else None,
                    "sampler_generator": batches.state(), "window": {**window}, "log": log_rows, "best": best,
                    "elapsed": time.perf_counter() - t0, "first_phase": first_phase,
                })
                saved_at = time.perf_counter()
                wrote = True
            if wrote and on_write is not None:
                on_write()
            if signalled:
                break
    bar.close()
    batches.close()
    if signalled:
        raise Stopped(signalled, f"after step {step} of {steps}, checkpoint in {out}: the same flags with "
                                 "--resume (mann train), or the same mann sweep, continue from it")
    result = {
        "learner": learner, "best_model": best["model"] if phase == 1 else None,
        "best_step": best["step"], "best_loss": best["loss"], "steps": step, "start_step": start_step,
        "log": log_rows, "train_time": time.perf_counter() - t0, "elapsed_before": elapsed,
    }
    if phase == 1 and config.refit:
        # The refit starts from its own fresh weights; phase 1's are only a record now.
        save_checkpoint(out / "checkpoint.pt", {
            "config": config.to_dict(), "phase": 2, "step": 0, "first_phase": without_learner(result),
            "model": None, "log": [], "elapsed": 0.0,
        })
        if on_write is not None:
            on_write()
    return result


def best_validation_fields(config: TrainConfig, first: dict) -> dict:
    """Summary fields of phase 1's best validation loss: early stopping's choice (best_step, the weights
    tested), or without early stopping the step best.pt is from; {} for a run that never validated."""
    if config.patience:
        return {"best_step": first["best_step"], "stopped_step": first["steps"], "best_val_loss": first["best_loss"]}
    if first["best_step"]:
        return {"best_val_step": first["best_step"], "best_val_loss": first["best_loss"]}
    return {}


def patience_ran_out(best: dict, patience: int) -> bool:
    """Early stopping (patience > 0): more than ``patience`` evaluations since the best validation loss."""
    return best["wait"] > patience > 0


def clone_state(module: torch.nn.Module) -> dict:
    """A copy of the module's state_dict that later steps do not change."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def without_learner(result: dict) -> dict:
    """Phase 1's result as it is kept in phase 2's checkpoints (no weights)."""
    return {k: v for k, v in result.items() if k not in ("learner", "best_model")}
