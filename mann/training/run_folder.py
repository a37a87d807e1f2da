"""A run folder, the same for every model:

  log.csv        step, train_loss, train_acc, val_loss, val_acc, wall_s (every eval)
  checkpoint.pt  model + optimiser + schedule + sampler state + log so far, for ``--resume``
  model.pt       the final ``state_dict`` of the learner's module (a MANN's loads into the reference MANN)
  best.pt        without early stopping: the ``state_dict`` at the best validation loss (``best_val_step``),
                 tested beside model.pt (``best_val_test_accuracy``)
  summary.json   one result row: config, split fingerprints, test accuracy ± 95% CI,
  summary.csv    parameter count, wall time, steps/s, device and versions
  events.out.tfevents.mann*  the log's rows for TensorBoard, when it is installed (events.py)

Every file is written atomically, so a kill never leaves half of one; the events file
grows in place instead, for TensorBoard to follow (events.py says why).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from episodes.errors import UsageError
from episodes.files import atomic_write, atomic_write_json, atomic_write_text
from mann.models.protocol import Learner
from mann.models.registry import build_learner
from mann.training.config import EXECUTION_FIELDS, TrainConfig, stored_config
from mann.training.summary_fields import BEST_PREFIX

LOG_FIELDS = ("step", "train_loss", "train_acc", "val_loss", "val_acc", "wall_s")
BEST_WEIGHTS = "best.pt"
# What may change when a run is resumed: its length and how it executes.
RESUMABLE_CHANGES = ("steps", *EXECUTION_FIELDS)


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse to overwrite a finished or unfinished run unless resuming."""
    if resume:
        return
    if (out / "summary.json").exists():
        raise UsageError(f"--out {out} already holds a finished run; choose another folder (or --resume to re-test it)")
    if (out / "checkpoint.pt").exists():
        raise UsageError(f"--out {out} holds an unfinished run; pass --resume to continue it or choose another folder")


def write_log(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def write_summary(out: Path, summary: dict) -> None:
    """The result row as summary.json and summary.csv."""
    atomic_write_json(out / "summary.json", summary)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(summary))
    writer.writeheader()
    writer.writerow(summary)
    atomic_write_text(out / "summary.csv", buffer.getvalue())


def read_summary(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "summary.json").read_text())


def finished_summary(out: Path, config: TrainConfig) -> dict | None:
    """The run folder's summary if it already finished this exact config, else None."""
    path = out / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    stored = stored_config(summary)
    same = all(stored[k] == v for k, v in config.to_dict().items() if k not in EXECUTION_FIELDS)
    return summary if same else None


def save_checkpoint(path: Path, state: dict) -> None:
    """state: config (dict), step, model, optimizer, schedule, sampler_generator, window, log, elapsed."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path, config: TrainConfig) -> dict:
    """The checkpoint's state, refused unless it was made by this config (only its length may grow)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    # A checkpoint from before a field existed: the field as runs were then (one from before the
    # model field was a MANN's).
    saved = stored_config(state["config"])
    wanted = config.to_dict()
    mismatched = [k for k, v in wanted.items() if k not in RESUMABLE_CHANGES and saved.get(k) != v]
    if mismatched:
        detail = ", ".join(f"{k}={saved.get(k)!r} there vs {wanted[k]!r} now" for k in mismatched)
        raise UsageError(f"--resume: {path} was made with another config ({detail}); use the same flags or another --out")
    if state["step"] > config.steps:
        raise UsageError(f"--resume: {path} is at step {state['step']}, past --steps {config.steps}; raise --steps")
    return state


@dataclass(frozen=True)
class FinishedRun:
    """A finished run rebuilt for scoring: its config, summary and trained learner."""

    config: TrainConfig
    summary: dict
    learner: Learner


def load_run(folder: str | Path, device: str | torch.device = "cpu") -> FinishedRun:
    """The learner of a finished run folder (summary.json + model.pt), for any model."""
    folder = Path(folder)
    config, summary = finished_config(folder)
    learner = build_learner(config, device)
    load_state(learner, folder / "model.pt", config, device)
    return FinishedRun(config, summary, learner)


def finished_config(folder: Path) -> tuple[TrainConfig, dict]:
    """The config and summary row of a finished run folder; UsageError where its summary.json does not read."""
    try:
        summary = read_summary(folder)
        return TrainConfig.from_dict({**summary, "device": "cpu"}), summary
    except (OSError, ValueError, TypeError) as err:
        raise UsageError(f"{folder}: no readable summary.json of a finished run ({err}); "
                         f"pass a folder written by mann train") from None


@dataclass(frozen=True)
class SavedWeights:
    """A run's weights as saved, finished or still training, rebuilt for testing.

    step: the training step the weights are from (a finished run's best step when it stopped
    early; its refit's length when it refit); phase: 1 training, 2 the refit on train+val;
    summary: a finished run's summary row, None for a checkpoint; source: the file read;
    best: the weights of the best validation loss (early stopping's, or ``--best``'s).
    """

    config: TrainConfig
    learner: Learner
    step: int
    phase: int
    source: Path
    summary: dict | None = None
    best: bool = False

    @property
    def tested_by_summary(self) -> bool:
        """Whether these are weights the finished run's summary reports a test of (model.pt's as
        ``test_accuracy``, best.pt's as ``best_val_test_accuracy``)."""
        return self.summary is not None and self.source.name in ("model.pt", BEST_WEIGHTS)

    @property
    def summary_prefix(self) -> str:
        """The prefix of the summary's fields that test these weights ('best_val_' for best.pt)."""
        return BEST_PREFIX if self.source.name == BEST_WEIGHTS else ""


def load_weights(path: str | Path, device: str | torch.device = "cpu", best: bool = False) -> SavedWeights:
    """The weights at ``path``: a finished run folder (its model.pt), an unfinished one (its
    checkpoint.pt), or a checkpoint.pt file itself (a sweep cell's, one carried in results/).

    best: the weights of the best validation loss instead (a finished run's best.pt, or the
    copy a checkpoint keeps; an early-stopped run's model.pt already is). Raises UsageError
    for a path that holds neither, or none of the weights asked for.
    """
    path = Path(path)
    if path.is_dir() and (path / "summary.json").exists() and (path / "model.pt").exists():
        return finished_weights(path, device, best)
    checkpoint = path / "checkpoint.pt" if path.is_dir() else path
    if not checkpoint.is_file():
        raise UsageError(f"{path}: neither a run folder (summary.json + model.pt, or checkpoint.pt) nor a "
                         f"checkpoint.pt file; pass a folder written by mann train or mann sweep, or its checkpoint.pt")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        config = TrainConfig.from_dict({**state["config"], "device": "cpu"})
        step, phase, weights = int(state["step"]), int(state.get("phase", 1)), state["model"]
        kept = state.get("best") or {}
    except (OSError, EOFError, RuntimeError, KeyError, TypeError, ValueError, AttributeError) as err:
        first = first_line(err)
        raise UsageError(f"{checkpoint}: not a checkpoint written by mann train ({first}); "
                         f"pass a run folder or its checkpoint.pt") from None
    if best:
        if phase == 2:
            raise refit_has_no_best(checkpoint)
        if kept.get("model") is None:
            raise UsageError(f"{checkpoint}: holds no best validation weights (written before mann kept them, or "
                             f"no validation improved since it resumed); test its last weights without --best, or "
                             f"resume it until a validation loss improves")
        step, weights = int(kept["step"]), kept["model"]
    if weights is None:
        raise UsageError(f"{checkpoint}: stopped between early stopping and the refit, so it holds no weights "
                         f"to test; resume it (the same mann train flags with --resume) to train the refit")
    learner = build_learner(config, device)
    learner.module.load_state_dict(weights)
    return SavedWeights(config, learner, step, phase, checkpoint, best=best)


def finished_weights(path: Path, device: str | torch.device, best: bool) -> SavedWeights:
    """A finished run folder's weights for :func:`load_weights` (one weights file read)."""
    config, summary = finished_config(path)
    source, step, phase, is_best = path / "model.pt", config.steps, 1, False
    if config.refit:
        if best:
            raise refit_has_no_best(path)
        step, phase = int(summary["refit_steps"]), 2
    elif config.patience:  # model.pt holds early stopping's choice
        step, is_best = int(summary["best_step"]), True
    elif best:
        source = path / BEST_WEIGHTS
        if not source.is_file():
            raise UsageError(f"{path}: no {BEST_WEIGHTS} (the run kept no best validation weights: it finished "
                             f"before mann kept them, or no validation improved after it resumed); test its last "
                             f"weights without --best")
        step, is_best = int(summary["best_val_step"]), True
    learner = build_learner(config, device)
    load_state(learner, source, config, device)
    return SavedWeights(config, learner, step, phase, source, summary, is_best)


def load_state(learner: Learner, source: Path, config: TrainConfig, device: str | torch.device) -> None:
    """Load the state_dict file ``source`` into ``learner``; UsageError naming the file when it does not fit."""
    try:
        learner.module.load_state_dict(torch.load(source, map_location=device, weights_only=True))
    except (OSError, RuntimeError, ValueError) as err:
        first = first_line(err)
        raise UsageError(f"{source} does not load into a {config.label} for N={config.ways} ({first}); "
                         f"is it damaged or from another run? Train it again with mann train") from None


def refit_has_no_best(path: Path) -> UsageError:
    """--best for a refit run: the error that says which weights it has instead."""
    return UsageError(f"{path}: a refit run tests the weights trained on train+val, which have no validation; "
                      f"early stopping's weights are not kept. Test it without --best")


def first_line(err: BaseException) -> str:
    """An error's first line for a one-line message (its type's name when it has no text)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def checkpoint_position(path: str | Path) -> tuple[int, int] | None:
    """(phase, step) of the checkpoint at ``path`` (phase 2: the refit); None where none loads."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        return int(state.get("phase", 1)), int(state["step"])
    except (OSError, EOFError, RuntimeError, KeyError, TypeError, ValueError, AttributeError):
        return None
