"""What runs inside the sandbox: call the submission, save its raw outputs.

The grader prepares the inputs (``job`` and the arrays in ``inputs.npz``) and
judges the outputs itself; this module only calls the student's
``DataGenerator`` and ``MANN`` and writes what they return, unjudged, to
``outdir/result.npz`` (arrays) and ``outdir/info.json`` (types, shapes,
errors). It imports the standard library, numpy and torch, never the grader's
packages.

Probes (``kind``):
  episodes  sample episodes from ``DataGenerator`` for some (N, K, split)
  model     one operation on ``MANN``: layers, forwards, reference, init on
            MANN(N, K+1, H) of the job; loss on one MANN per case, built for its N, K, H
  train     train ``MANN`` with its own ``loss_function`` on given batches, then
            predict given test episodes (pixels, query labels zeroed by the grader)
"""

from __future__ import annotations

import importlib
import json
import mmap
import os
import random
import sys
import time
import traceback

import numpy as np
import torch

IMAGE_DIM = 784
TRACEBACK_CHARS = 3000
STAGE_FILE, STAGE_BYTES = "stage", 64
# How much of its time limit a test may plan to use before it stops itself (the
# rest covers writing its outputs and a busy machine).
TIME_SHARE = 0.85
_stage = {"map": None, "part": ""}
_clock = {"deadline": None, "limit_s": 0.0}


class TooSlow(Exception):
    """The test would run past its time limit: stopped early, with the projection."""

    def __init__(self, part: str, unit: str, done: int, total: int, per_item_s: float, projected_s: float) -> None:
        super().__init__(part)
        self.record = {"part": part, "unit": unit, "done": done, "total": total, "per_item_s": round(per_item_s, 4),
                       "projected_s": round(projected_s, 1), "limit_s": _clock["limit_s"]}


class Pace:
    """Stops a loop of ``total`` items as soon as, at the pace of the items done
    so far, the rest would end past the test's deadline (TooSlow)."""

    def __init__(self, part: str, unit: str, total: int, after: int = 2) -> None:
        self.part, self.unit, self.total, self.after = part, unit, total, after
        self.started = time.monotonic()
        self.done = 0

    def tick(self) -> None:
        self.done += 1
        deadline = _clock["deadline"]
        if deadline is None or self.done < self.after or self.done >= self.total:
            return
        now = time.monotonic()
        per_item = (now - self.started) / self.done
        end = now + per_item * (self.total - self.done)
        if end > deadline:
            projected = end - (deadline - TIME_SHARE * _clock["limit_s"])
            raise TooSlow(self.part, self.unit, self.done, self.total, per_item, projected)


def part_of(stage: str) -> str:
    """Which part of the submission a stage of the probe runs (the grader skips
    later tests that need a part that hung)."""
    if stage.startswith("import "):
        return stage
    if "loss" in stage and not stage.startswith(("loss.backward", "float(loss)")):
        return "loss_function"
    if "forward" in stage or stage.startswith("convert the output"):
        return "MANN.forward"
    if "DataGenerator" in stage or stage.startswith(("convert images", "convert labels", "stack the episodes")):
        return "DataGenerator"
    if stage.startswith(("MANN(", "find MANN", "MANN.")):
        return "MANN.__init__"
    if stage.startswith(("loss.backward", "optimizer", "torch.optim", "float(loss)")):
        return "training step"
    return ""


def enter(part: str) -> None:
    """Record the part now running where the grader reads it even after a kill
    (a shared mapping of ``outdir/stage``: a memory write per change, no system call)."""
    if part == _stage["part"] or _stage["map"] is None:
        return
    _stage["part"] = part
    _stage["map"][:STAGE_BYTES] = part.encode()[:STAGE_BYTES].ljust(STAGE_BYTES)


class StudentError(Exception):
    """The submission raised (or exited) while the probe called it."""

    def __init__(self, stage: str, text: str) -> None:
        super().__init__(stage)
        self.stage, self.text = stage, text


def call(stage: str, fn, *args, **kwargs):
    """fn(*args, **kwargs), turning anything it raises (even SystemExit) into StudentError."""
    enter(part_of(stage))
    try:
        return fn(*args, **kwargs)
    except BaseException as err:  # noqa: BLE001 - a submission may raise anything
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        raise StudentError(stage, text[-TRACEBACK_CHARS:]) from None


def import_student(module: str):
    """The student's module, imported as ``submission.<module>``: a package
    whether or not the folder has an __init__.py (a namespace package then),
    so relative imports of sibling modules work either way, and absolute ones
    too (the folder itself is on sys.path)."""
    return call(f"import {module}.py", importlib.import_module, f"submission.{module}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def describe(value) -> dict:
    """Type, dtype and shape of a returned value, whatever it is."""
    info = {"type": f"{type(value).__module__}.{type(value).__qualname__}"}
    if isinstance(value, (np.ndarray, torch.Tensor)):
        info["dtype"] = str(value.dtype).replace("torch.", "")
        info["shape"] = list(value.shape)
    return info


def as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


# --- episodes ---------------------------------------------------------------

MAX_LISTS, MAX_LIST_ITEMS = 16, 10_000


def folder_lists(generator, data_folder: str) -> dict[str, list[str]]:
    """The generator's attributes that hold lists of character folders of the
    data tree (``self.metatrain_character_folders`` of the starter code...):
    {attribute: ["alphabet/character", ...]}, each folder resolved against the
    tree (so ``./omniglot_resized/...`` and absolute paths compare equal).
    Lists inside a dict attribute are named ``attr[key]``; other values are
    left out. Nothing is judged here."""
    root = os.path.realpath(data_folder)
    found: dict[str, list[str]] = {}
    try:
        items = list(vars(generator).items())
    except TypeError:  # no __dict__ (slots): nothing exposed
        return found
    candidates = []
    for name, value in items:
        if isinstance(value, dict):
            candidates += [(f"{name}[{key!r}]", v) for key, v in list(value.items())[:MAX_LISTS]]
        else:
            candidates.append((name, value))
    for name, value in candidates:
        if len(found) >= MAX_LISTS:
            break
        if not isinstance(value, (list, tuple)) or not 0 < len(value) <= MAX_LIST_ITEMS:
            continue
        names = []
        for item in value:
            if not isinstance(item, (str, os.PathLike)):
                break
            rel = os.path.relpath(os.path.realpath(os.fspath(item)), root)
            parts = rel.split(os.sep)
            if len(parts) != 2 or ".." in parts:
                break
            names.append("/".join(parts))
        else:
            found[str(name)] = names
    return found


def probe_episodes(job: dict, inputs: dict) -> tuple[dict, dict]:
    load_data = import_student("load_data")
    generator_class = call("find DataGenerator", getattr, load_data, "DataGenerator")
    arrays, configs = {}, []
    pace = Pace("DataGenerator", "episode", sum(cfg["episodes"] for cfg in job["configs"]))
    for i, cfg in enumerate(job["configs"]):
        record = {"ways": cfg["ways"], "shots": cfg["shots"], "split": cfg["split"], "episodes": cfg["episodes"]}
        configs.append(record)
        try:
            generator = call(
                f"DataGenerator({cfg['ways']}, {cfg['shots'] + 1}, {cfg['split']!r}, config=...)",
                generator_class, cfg["ways"], cfg["shots"] + 1, cfg["split"],
                config={"data_folder": job["data_folder"], "img_size": (28, 28)},
            )
            images, labels = [], []
            for e in range(cfg["episodes"]):
                out = call("DataGenerator._sample()", generator._sample)
                if not (isinstance(out, (tuple, list)) and len(out) == 2):
                    record["returned"] = describe(out)
                    raise StudentError("DataGenerator._sample()", f"returned {describe(out)['type']}, "
                                       "not a pair (images, labels)")
                if e == 0:
                    record["images"], record["labels"] = describe(out[0]), describe(out[1])
                images.append(call("convert images to an array", as_array, out[0]))
                labels.append(call("convert labels to an array", as_array, out[1]))
                pace.tick()
            arrays[f"images_{i}"] = call("stack the episodes' images", np.stack, images)
            arrays[f"labels_{i}"] = call("stack the episodes' labels", np.stack, labels)
            if job.get("folder_lists"):
                lists = call("read the DataGenerator's attributes", folder_lists, generator, job["data_folder"])
                record["folder_lists"] = list(lists)
                for j, names in enumerate(lists.values()):
                    arrays[f"folders_{i}_{j}"] = np.array(names, dtype=str)
        except StudentError as err:
            record["error"] = {"stage": err.stage, "traceback": err.text}
    return {"configs": configs}, arrays


# --- model ------------------------------------------------------------------

def build_model(job: dict, module=None):
    """(the student's mann module, MANN(N, K+1, H)) for the job's (or a case's) ways, shots and hidden."""
    module = module or import_student("mann")
    cls = call("find MANN", getattr, module, "MANN")
    model = call(f"MANN({job['ways']}, {job['shots'] + 1}, {job['hidden']})",
                 cls, job["ways"], job["shots"] + 1, job["hidden"])
    return module, model


def loss_callable(module, model):
    """The submission's loss: MANN.loss_function when defined, else mann.loss_function."""
    method = getattr(model, "loss_function", None)
    if callable(method):
        return method
    function = getattr(module, "loss_function", None)
    if callable(function):
        return function
    raise StudentError("find loss_function", "neither MANN.loss_function nor a module-level "
                       "loss_function(preds, labels) is defined in mann.py")


def lstm_description(layer) -> dict:
    info = {"type": f"{type(layer).__module__}.{type(layer).__qualname__}",
            "is_lstm": isinstance(layer, torch.nn.LSTM)}
    for attr in ("input_size", "hidden_size", "num_layers", "batch_first", "bidirectional", "proj_size", "bias"):
        value = getattr(layer, attr, None)
        if isinstance(value, (bool, int)):
            info[attr] = value
    return info


def forward(model, images: np.ndarray, labels: np.ndarray, stage: str):
    """The model's raw return value for numpy inputs, without gradients."""
    with torch.no_grad():
        return call(stage, model, torch.from_numpy(images), torch.from_numpy(labels))


def probe_loss(job: dict, inputs: dict) -> tuple[dict, dict]:
    """loss_function on each case's predictions, called on a MANN built for
    that case's N, K and H, as the homework's training code would: a loss
    may reshape with self.num_classes. A case that raises is recorded and the
    others still run."""
    module = import_student("mann")
    info: dict = {"op": "loss", "cases": []}
    arrays: dict = {}
    for i, case in enumerate(job["cases"]):
        record: dict = {}
        info["cases"].append(record)
        try:
            _, model = build_model(case, module)
            loss = loss_callable(module, model)
            value = call(f"MANN({case['ways']}, {case['shots'] + 1}, {case['hidden']}).loss_function(preds, labels)",
                         loss, torch.from_numpy(inputs[f"preds_{i}"]), torch.from_numpy(inputs[f"labels_{i}"]))
            record["value"] = describe(value)
            arrays[f"value_{i}"] = call("convert the loss to an array", as_array, value)
        except StudentError as err:
            record["error"] = {"stage": err.stage, "traceback": err.text}
    return info, arrays


def probe_model(job: dict, inputs: dict) -> tuple[dict, dict]:
    op = job["op"]
    if op == "loss":
        return probe_loss(job, inputs)
    module, model = build_model(job)
    info: dict = {"op": op}
    arrays: dict = {}
    if op in ("layers", "init"):
        info["layers"] = {name: lstm_description(getattr(model, name, None)) for name in ("layer1", "layer2")}
        state = call("MANN.state_dict()", model.state_dict)
        info["parameters"] = {k: list(v.shape) for k, v in state.items()}
        if op == "init":
            arrays = {k: as_array(v).astype(np.float64) for k, v in state.items()}
    elif op == "forwards":
        # One model for every pair: the judge compares outputs of the same weights.
        # Fresh copies of the inputs: a forward that edits them in place (zeroing
        # the query labels of the caller's tensor) must not change the next call's.
        for i, (images, labels, name) in enumerate(job["pairs"]):
            out = forward(model, inputs[images].copy(), inputs[labels].copy(), "MANN.forward(images, labels)")
            if i == 0:
                info["output"] = describe(out)
            arrays[name] = call("convert the output to an array", as_array, out)
    elif op == "reference":
        weights = {k[2:]: torch.from_numpy(v) for k, v in inputs.items() if k.startswith("w:")}
        call("MANN.load_state_dict(reference weights)", model.load_state_dict, weights)
        out = forward(model, inputs["images"], inputs["labels"], "MANN.forward(images, labels)")
        info["output"] = describe(out)
        arrays["output"] = call("convert the output to an array", as_array, out)
    else:
        raise ValueError(f"unknown model operation {op!r}")
    return info, arrays


# --- train ------------------------------------------------------------------

def one_hot(label: np.ndarray, ways: int) -> torch.Tensor:
    """float32 [..., N] one-hot vectors of the class indices ``label``."""
    labels = torch.eye(ways).index_select(0, torch.from_numpy(label.astype(np.int64)).reshape(-1))
    return labels.view(*label.shape, ways)


def episode_batch(flat: torch.Tensor, rows: np.ndarray, label: np.ndarray, ways: int):
    """Images float32 [b, K+1, N, 784] and one-hot labels float32 [b, K+1, N, N]
    gathered exactly as the reference sampler does (uint8 / 255)."""
    index = torch.from_numpy(rows.astype(np.int64))
    images = flat.index_select(0, index.reshape(-1)).to(torch.float32).mul_(1.0 / 255.0)
    return images.view(*rows.shape, -1), one_hot(label, ways)


def probe_train(job: dict, inputs: dict) -> tuple[dict, dict]:
    module, model = build_model(job)
    loss_fn = loss_callable(module, model)
    optimiser = call("torch.optim.Adam(MANN.parameters())", torch.optim.Adam, model.parameters(), lr=job["lr"])
    ways = job["ways"]
    train_flat = torch.from_numpy(inputs["train_images"].reshape(-1, IMAGE_DIM))
    losses = np.zeros(job["steps"], dtype=np.float64)
    started = time.monotonic()
    # the predictions after training cost about as much as a few steps: counted as 5% more steps
    pace = Pace("training step", "training step", job["steps"] + max(1, job["steps"] // 20), after=3)
    for step in range(job["steps"]):
        images, labels = episode_batch(train_flat, inputs["train_rows"][step], inputs["train_labels"][step], ways)
        preds = call("MANN.forward(images, labels)", model, images, labels)
        loss = call("loss_function(preds, labels)", loss_fn, preds, labels)
        call("optimizer.zero_grad()", optimiser.zero_grad)
        call("loss.backward()", lambda: loss.backward())
        call("optimizer.step()", optimiser.step)
        losses[step] = call("float(loss)", lambda: float(loss.detach()))
        pace.tick()
    train_s = time.monotonic() - started
    # The test episodes come as their pixels with the query labels already zeroed
    # by the grader, which keeps the true ones: nothing here holds an answer.
    preds_out = []
    pixels, label = inputs["test_images"], inputs["test_labels"]
    for start in range(0, len(pixels), 250):
        images = torch.from_numpy(pixels[start:start + 250]).to(torch.float32).mul_(1.0 / 255.0)
        labels = one_hot(label[start:start + 250], ways)
        labels[:, -1] = 0.0  # zeros, not one-hots of class 0
        with torch.no_grad():
            out = call("MANN.forward(images, labels)", model, images, labels)
        preds_out.append(call("convert the output to an array", as_array, out))
    arrays = {"losses": losses, "test_preds": np.concatenate(preds_out)}
    return {"train_s": train_s}, arrays


PROBES = {"episodes": probe_episodes, "model": probe_model, "train": probe_train}


def open_stage_map(outdir: str):
    """A writable shared mapping of ``outdir/stage`` (None where it cannot be made)."""
    try:
        fd = os.open(os.path.join(outdir, STAGE_FILE), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, STAGE_BYTES)
            return mmap.mmap(fd, STAGE_BYTES)
        finally:
            os.close(fd)
    except OSError:
        return None


def run(kind: str, job: dict, inputs_path: str, outdir: str) -> None:
    """Run one probe and write ``result.npz`` and ``info.json`` into ``outdir``.

    A StudentError is written as ``info["error"]``; anything else escaping
    here is a bug of the probe and is recorded as ``info["probe_error"]``.
    """
    started = time.monotonic()
    limit = float(job.get("time_limit_s") or 0)
    _clock.update(deadline=started + TIME_SHARE * limit if limit else None, limit_s=limit)
    _stage["map"] = open_stage_map(outdir)
    seed_everything(int(job.get("seed", 0)))
    inputs = {}
    if os.path.exists(inputs_path):
        with np.load(inputs_path, allow_pickle=False) as z:
            inputs = {k: z[k] for k in z.files}
    info: dict = {}
    arrays: dict = {}
    try:
        info, arrays = PROBES[kind](job, inputs)
    except StudentError as err:
        info["error"] = {"stage": err.stage, "traceback": err.text}
    except TooSlow as err:
        info["too_slow"] = err.record
    except BaseException:  # noqa: BLE001 - reported to the grader, which decides
        info["probe_error"] = traceback.format_exc()[-TRACEBACK_CHARS:]
    sys.stdout.flush()
    sys.stderr.flush()
    safe = {}
    for key, value in arrays.items():
        array = np.asarray(value)
        if array.dtype == object:
            info.setdefault("unsaved", []).append(key)
            continue
        safe[key] = array
    np.savez(os.path.join(outdir, "result.npz"), **safe)
    with open(os.path.join(outdir, "info.json"), "w") as f:
        json.dump(info, f, default=str)
