"""Train a MANN on episodes of one split and test it on fixed held-out episodes.

Files written in the run folder:
  log.csv        step, train_loss, train_acc, val_loss, val_acc, wall_s (every eval)
  checkpoint.pt  model + optimiser + sampler state, for ``--resume``
  model.pt       the final ``state_dict`` (loads into the reference MANN)
  summary.json   one result row: config, split fingerprints, test accuracy ± 95% CI,
  summary.csv    wall time, steps/s, device and versions
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from episodes.errors import UsageError
from episodes.omniglot import OmniglotStore
from episodes.prefetch import Prefetcher, has_spare_core
from episodes.sampler import EpisodeSampler, check_episode_shape, fixed_episodes
from episodes.splits import Split, make_split
from mann.config import TrainConfig
from mann.fast_lstm import fast_forward
from mann.io import atomic_write_json, atomic_write_text, ensure_writable_dir
from mann.model import MANN, loss_function, query_accuracy
from mann.stats import mean_ci95

LOG_FIELDS = ("step", "train_loss", "train_acc", "val_loss", "val_acc", "wall_s")
Batch = tuple[torch.Tensor, torch.Tensor]
Forward = Callable[[MANN, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class RunSplits:
    train: Split
    val: Split
    test: Split

    def fingerprints(self) -> dict[str, str]:
        return {f"{p}_fingerprint": getattr(self, p).fingerprint for p in ("train", "val", "test")}


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda when available, else cpu; UsageError for cuda without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA GPU is visible here; use --device cpu or auto")
    return torch.device(name)


def prepare_splits(store: OmniglotStore, config: TrainConfig) -> RunSplits:
    """The run's three splits, with N and K checked against each of them."""
    splits = RunSplits(
        *(make_split(store, config.split, p, config.split_seed, config.rotations) for p in ("train", "val", "test"))
    )
    for split in (splits.train, splits.val, splits.test):
        try:
            check_episode_shape(config.ways, config.shots, config.batch_size, split.num_classes)
        except UsageError as err:
            raise UsageError(f"{err} (in {split.scheme}/{split.part})") from None
    return splits


def choose_forward(config: TrainConfig, device: torch.device) -> Forward:
    """The CPU fast path (same function, same weights) or the stock cuDNN LSTM."""
    if config.fast and device.type == "cpu":
        return fast_forward
    return lambda model, images, labels: model(images, labels)


@torch.no_grad()
def evaluate(model: MANN, batches: list[Batch], forward: Forward = fast_forward) -> tuple[np.ndarray, float]:
    """Per-episode query accuracy float64 [n] and the mean query loss over the batches."""
    model.eval()
    accs, loss_sum, count = [], 0.0, 0
    for images, labels in batches:
        preds = forward(model, images, labels)
        accs.append(query_accuracy(preds, labels).double().cpu())
        loss_sum += loss_function(preds, labels).item() * images.shape[0]
        count += images.shape[0]
    model.train()
    return torch.cat(accs).numpy(), loss_sum / count


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse to overwrite a finished or unfinished run unless resuming."""
    if resume:
        return
    if (out / "summary.json").exists():
        raise UsageError(f"--out {out} already holds a finished run; choose another folder (or --resume to re-test it)")
    if (out / "checkpoint.pt").exists():
        raise UsageError(f"--out {out} holds an unfinished run; pass --resume to continue it or choose another folder")


def train(
    config: TrainConfig,
    store: OmniglotStore,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
) -> dict:
    """Train, checkpoint, test; return the summary row (also written to ``out``).

    ``on_step(step, steps)``, when given, is called once at the start (with the
    resumed step) and after every step, so a caller can draw its own progress.
    """
    config.validate()
    device = resolve_device(config.device)
    splits = prepare_splits(store, config)
    out = ensure_writable_dir(out)
    check_run_folder(out, resume)
    finished = _finished_summary(out, config) if resume else None
    if finished is not None:
        return finished

    model = MANN(config.ways, config.shots + 1, config.hidden, generator=torch.Generator().manual_seed(config.seed))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    sampler = EpisodeSampler(splits.train, config.ways, config.shots, config.batch_size, config.seed, device)
    forward = choose_forward(config, device)
    val_batches = fixed_episodes(splits.val, config.ways, config.shots, config.val_episodes, config.eval_seed, device)

    start_step, log_rows, elapsed = 0, [], 0.0
    checkpoint = out / "checkpoint.pt"
    if resume and checkpoint.exists():
        start_step, log_rows, elapsed = _load_checkpoint(checkpoint, config, model, optimizer, sampler)

    # Started after a resume has restored the generator.
    batches = Prefetcher(sampler, background=has_spare_core(device))
    bar = tqdm(
        total=config.steps, initial=start_step, disable=not progress, dynamic_ncols=True,
        desc=f"train N={config.ways} K={config.shots} H={config.hidden}",
    )
    if on_step is not None:
        on_step(start_step, config.steps)
    t0 = time.perf_counter() - elapsed
    window_loss = torch.zeros((), device=device)
    window_acc = torch.zeros((), device=device)
    window = 0
    for step in range(start_step + 1, config.steps + 1):
        images, labels = batches.next()
        preds = forward(model, images, labels)
        loss = loss_function(preds, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Summed on the device: a .item() per step would stall a GPU.
        window_loss += loss.detach()
        window_acc += query_accuracy(preds.detach(), labels).mean()
        window += 1
        bar.update(1)
        if on_step is not None:
            on_step(step, config.steps)
        if step % config.eval_every == 0 or step == config.steps:
            val_acc, val_loss = evaluate(model, val_batches, forward)
            row = {
                "step": step,
                "train_loss": window_loss.item() / window,
                "train_acc": window_acc.item() / window,
                "val_loss": val_loss,
                "val_acc": float(val_acc.mean()),
                "wall_s": time.perf_counter() - t0,
            }
            log_rows.append(row)
            _write_log(out / "log.csv", log_rows)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
            window_loss.zero_()
            window_acc.zero_()
            window = 0
        if step % config.checkpoint_every == 0 or step == config.steps:
            _save_checkpoint(checkpoint, config, step, model, optimizer, batches.state(), log_rows, time.perf_counter() - t0)
    bar.close()
    batches.close()
    train_time = time.perf_counter() - t0

    test_batches = fixed_episodes(splits.test, config.ways, config.shots, config.test_episodes, config.eval_seed, device)
    test_acc, test_loss = evaluate(model, test_batches, forward)
    mean, ci = mean_ci95(test_acc)
    torch.save(model.state_dict(), out / "model.pt")
    steps_run = config.steps - start_step
    summary = {
        **config.to_dict(),
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
        **run_environment(device, store),
    }
    write_summary(out, summary)
    return summary


def run_environment(device: torch.device, store: OmniglotStore) -> dict:
    """The fields of a result row that say where and with what it ran."""
    return {
        "device": _device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "data_source": store.source,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_summary(out: Path, summary: dict) -> None:
    """The result row as summary.json and summary.csv, each written atomically."""
    atomic_write_json(out / "summary.json", summary)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(summary))
    writer.writeheader()
    writer.writerow(summary)
    atomic_write_text(out / "summary.csv", buffer.getvalue())


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()})"


def _write_log(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _save_checkpoint(path, config, step, model, optimizer, sampler_state, log_rows, elapsed) -> None:
    state = {
        "config": config.to_dict(),
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler_generator": sampler_state,
        "log": log_rows,
        "elapsed": elapsed,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_checkpoint(path, config, model, optimizer, sampler) -> tuple[int, list[dict], float]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    saved = TrainConfig.from_dict(state["config"])
    # Only the length may change on resume; anything else would mix two runs.
    mismatched = [
        k for k, v in config.to_dict().items() if k not in ("steps", "device", "checkpoint_every") and saved.to_dict()[k] != v
    ]
    if mismatched:
        detail = ", ".join(f"{k}={saved.to_dict()[k]!r} there vs {config.to_dict()[k]!r} now" for k in mismatched)
        raise UsageError(f"--resume: {path} was made with another config ({detail}); use the same flags or another --out")
    if state["step"] > config.steps:
        raise UsageError(f"--resume: {path} is at step {state['step']}, past --steps {config.steps}; raise --steps")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    sampler.generator.set_state(state["sampler_generator"])
    return state["step"], list(state["log"]), float(state["elapsed"])


def _finished_summary(out: Path, config: TrainConfig) -> dict | None:
    """The run folder's summary if it already finished this exact config, else None."""
    path = out / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    same = all(summary.get(k) == v for k, v in config.to_dict().items() if k not in ("device", "checkpoint_every"))
    return summary if same else None


def read_summary(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "summary.json").read_text())
