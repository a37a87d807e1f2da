"""Benchmarks: every figure beside its baseline, measured in the same run.

* sampler episodes/s: ``EpisodeSampler`` vs the starter-style per-episode
  file-reading generator (cached and uncached) vs learn2learn's ``Taskset`` with
  ``FusedNWaysKShots``;
* model step (forward + backward + Adam): the trainer's path vs stock ``nn.LSTM``;
* ProtoNets step on Snell et al.'s 60-way training episode (K support + 5 queries
  per class): the embedding as this project runs it (pool before ReLU,
  channels-last) vs the paper's layer order in the default memory format;
* MAML meta-update (forward, second-order meta-gradient, Adam) of the CNN
  learner: learn2learn's per-task clone()/adapt() loop vs every task at once
  (``mann.models.maml_batched``), with the compute floor of one update from its
  FLOPs and this machine's measured rate for the learner's largest convolution;
* the same meta-update on the recipes' 5-shot and 20-way shapes, the whole
  meta-batch at once vs in micro-batches of a few tasks (``--micro-batch``,
  :mod:`mann.training.micro_batches`);
* end to end: ``mann train`` steps/s and peak memory vs a starter-style loop
  (a DataLoader over the per-episode generator, stock MANN), each in its own
  process so peak resident memory is its own;
* grading a generated class (correct, buggy, hostile) with the default rubric:
  seconds per submission, and the class serial vs ``--jobs 2`` (bench/grading.py).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from episodes.errors import UsageError
from episodes.files import atomic_write_text
from episodes.layout import IMAGE_DIM, IMAGE_SIZE
from episodes.omniglot import OmniglotStore, load_omniglot
from episodes.png_tree import remove_png_tree, write_png_tree
from episodes.sampler import EpisodeSampler
from episodes.splits import Split, make_split
from mann.bench.starter_sampler import StarterStyleGenerator
from mann.models.fast_lstm import fast_forward
from mann.models.gradient import GradientLearner
from mann.models.l2l import import_learn2learn
from mann.models.maml_batched import BatchedGradientLearner
from mann.models.mann import MANN, loss_function
from mann.models.nets import CHANNELS, conv4_embedding
from mann.models.protocol import hide_query_labels, query_loss
from mann.models.protonet import ProtoNetLearner
from mann.training.config import make_config
from mann.training.data import prepare_splits
from mann.training.device import keep_freed_memory
from mann.training.loop import train
from mann.training.micro_batches import backward_in_micro_batches


@dataclass(frozen=True)
class BenchPlan:
    sampler_shapes: tuple[tuple[int, int], ...] = ((2, 1), (5, 1), (20, 1), (2, 5), (5, 5), (20, 5))
    model_shapes: tuple[tuple[int, int], ...] = ((2, 1), (5, 1), (2, 5), (5, 5))
    end_to_end_shape: tuple[int, int] = (5, 1)
    batch_size: int = 128
    hidden: int = 128
    seconds: float = 1.0  # time budget of one measurement
    e2e_steps: int = 200
    protonet_shots: tuple[int, ...] = (1, 5)
    maml_shapes: tuple[tuple[int, int, int, float], ...] = ((5, 32, 1, 0.4), (20, 16, 5, 0.1))
    micro_batch_shapes: tuple[tuple[int, int, int, int, float], ...] = (
        (5, 5, 32, 1, 0.4), (20, 1, 16, 5, 0.1), (20, 5, 16, 5, 0.1))
    micro_batches: tuple[int, ...] = (4, 2, 1)
    grading_class: int = 40  # submissions of the generated class (mann.grading.specimens.make_class)
    grading_jobs: int = 2


# MAML shapes: (N, meta-batch, inner steps, step size) of Finn et al.'s 5- and 20-way 1-shot Omniglot recipes;
# micro-batch shapes: (N, K, meta-batch, inner steps, step size) of their other recipes (K queries per class).
QUICK = BenchPlan(sampler_shapes=((5, 1),), model_shapes=((5, 1),), seconds=0.3, e2e_steps=30, protonet_shots=(1,),
                  maml_shapes=((5, 4, 1, 0.4),), micro_batch_shapes=((5, 1, 4, 1, 0.4),), micro_batches=(1,),
                  grading_class=4)
# Snell et al.'s training episodes: 60 classes, 5 queries per class.
PROTONET_WAYS, PROTONET_QUERIES = 60, 5


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def seconds_per_call(fn: Callable[[], object], budget: float, warmup: int = 2) -> float:
    """Median seconds per call over repeats filling about ``budget`` seconds."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < budget or len(times) < 3:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sampler_rates(split: Split, tree: Path, plan: BenchPlan) -> pd.DataFrame:
    """Episodes/s of each sampler for each (N, K) of the plan, B = plan.batch_size."""
    folders = [tree / name for name in split.characters]
    decoded = StarterStyleGenerator(folders, 2, 1, cache=True, seed=0).fill_cache()
    rows = []
    for ways, shots in plan.sampler_shapes:
        batch = plan.batch_size
        ours = EpisodeSampler(split, ways, shots, batch_size=batch, seed=0)
        rates = {"mann-bench EpisodeSampler": batch / seconds_per_call(ours.sample, plan.seconds)}
        for label, cache in (("starter-style, cached", True), ("starter-style, uncached", False)):
            gen = StarterStyleGenerator(folders, ways, shots, cache=cache, seed=0, decoded=decoded if cache else None)
            rates[label] = 1 / seconds_per_call(gen.sample, plan.seconds / 4)
        l2l = learn2learn_taskset(split, ways, shots)
        if l2l is not None:
            rates["learn2learn Taskset (FusedNWaysKShots)"] = 1 / seconds_per_call(l2l.sample, plan.seconds / 4)
        for name, rate in rates.items():
            rows.append({"N": ways, "K": shots, "B": batch, "sampler": name, "episodes/s": rate})
    table = pd.DataFrame(rows)
    ours = table[table.sampler == "mann-bench EpisodeSampler"].set_index(["N", "K"])["episodes/s"]
    table["ours ÷ this"] = [ours[(n, k)] / r for n, k, r in zip(table.N, table.K, table["episodes/s"])]
    return table


def learn2learn_taskset(split: Split, ways: int, shots: int):
    """learn2learn's fastest Omniglot-style task pipeline over the same images, or None."""
    try:
        l2l = import_learn2learn()
    except UsageError:
        return None
    classes, drawers = split.images.shape[:2]
    images = torch.from_numpy(split.images.reshape(classes * drawers, 1, IMAGE_SIZE, IMAGE_SIZE)).float().div_(255)
    targets = torch.arange(classes).repeat_interleave(drawers)
    dataset = torch.utils.data.TensorDataset(images, targets)
    labels_to_indices = {c: list(range(c * drawers, (c + 1) * drawers)) for c in range(classes)}
    meta = l2l.data.MetaDataset(dataset, labels_to_indices=labels_to_indices)
    transforms = [
        l2l.data.transforms.FusedNWaysKShots(meta, n=ways, k=shots + 1),
        l2l.data.transforms.LoadData(meta),
        l2l.data.transforms.RemapLabels(meta),
        l2l.data.transforms.ConsecutiveLabels(meta),
    ]
    return l2l.data.Taskset(meta, task_transforms=transforms, num_tasks=-1)


def model_step_times(plan: BenchPlan) -> pd.DataFrame:
    """Milliseconds per training step (forward + backward + Adam) of each path."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    for ways, shots in plan.model_shapes:
        images = torch.rand(plan.batch_size, shots + 1, ways, IMAGE_DIM, generator=gen)
        labels = torch.eye(ways).expand(plan.batch_size, shots + 1, ways, ways).contiguous()
        model = MANN(ways, shots + 1, plan.hidden, generator=gen)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        paths = {"stock nn.LSTM (reference)": lambda: model(images, labels), "mann-bench fast path": lambda: fast_forward(model, images, labels)}
        times = {}
        for name, forward in paths.items():
            def step(forward=forward):
                optimizer.zero_grad(set_to_none=True)
                loss_function(forward(), labels).backward()
                optimizer.step()

            times[name] = seconds_per_call(step, plan.seconds) * 1e3
        for name, ms in times.items():
            rows.append({"N": ways, "K": shots, "B": plan.batch_size, "H": plan.hidden, "path": name, "ms/step": ms,
                         "speed-up vs stock": times["stock nn.LSTM (reference)"] / ms})
    return pd.DataFrame(rows)


def protonet_step_times(plan: BenchPlan) -> pd.DataFrame:
    """Milliseconds per ProtoNets training step (one 60-way episode, K + 5 rows) of each embedding."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    for shots in plan.protonet_shots:
        episode_rows = shots + PROTONET_QUERIES
        images = torch.rand(1, episode_rows, PROTONET_WAYS, IMAGE_DIM, generator=gen)
        labels = torch.eye(PROTONET_WAYS).expand(1, episode_rows, PROTONET_WAYS, PROTONET_WAYS).contiguous()
        hidden = hide_query_labels(labels, PROTONET_QUERIES)
        times = {}
        for name, published in (("paper's layer order, NCHW (reference)", True),
                                ("mann-bench: pool before ReLU, channels-last", False)):
            learner = ProtoNetLearner(gen, shots)
            learner.module = conv4_embedding(torch.Generator().manual_seed(0), as_published=published)
            optimizer = torch.optim.Adam(learner.module.parameters(), lr=1e-3)

            def step(learner=learner, optimizer=optimizer):
                optimizer.zero_grad(set_to_none=True)
                query_loss(learner.scores(images, hidden, training=True), labels).backward()
                optimizer.step()

            times[name] = seconds_per_call(step, plan.seconds) * 1e3
        reference = times["paper's layer order, NCHW (reference)"]
        for name, ms in times.items():
            rows.append({"N": PROTONET_WAYS, "K": shots, "queries": PROTONET_QUERIES, "path": name, "ms/step": ms,
                         "speed-up vs reference": reference / ms})
    return pd.DataFrame(rows)


def cnn_learner_macs(ways: int, side: int = IMAGE_SIZE) -> int:
    """Multiply-adds of one image through MAML's CNN learner: 4 stride-2 3x3 convs (64 channels), the head."""
    macs, channels = 0, 1
    for _ in range(4):
        side = (side + 1) // 2  # stride 2, padding 1
        macs += side * side * CHANNELS * channels * 9
        channels = CHANNELS
    return macs + CHANNELS * ways


def meta_update_flops(ways: int, shots: int, tasks: int, steps: int) -> float:
    """FLOPs (2 per multiply-add) of the convolutions and products of one second-order meta-update.

    In units of one forward pass F over an image: each inner step on the K·N
    support images is a forward (F), the inner gradient's backward (2F: input
    and weight gradients), and in the meta-gradient the backward through both
    (2F + 4F, the second-order backward being twice the backward it
    differentiates): 9F. The N query images take a forward and a backward: 3F.
    Batch norm, ReLU and the update itself are left out (memory-bound, not FLOPs).
    """
    per_task = 9 * steps * shots * ways + 3 * ways
    return 2.0 * cnn_learner_macs(ways) * per_task * tasks


def conv_gflops(images: int, budget: float) -> float:
    """GFLOP/s of the learner's costliest convolution (64 → 64 channels, 3x3, stride 2, 14x14 → 7x7)
    over ``images`` images on this machine: the rate the compute floor is taken at."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(images, CHANNELS, 14, 14, generator=gen)
    w = torch.rand(CHANNELS, CHANNELS, 3, 3, generator=gen)
    seconds = fastest_interleaved({"conv": lambda: torch.nn.functional.conv2d(x, w, stride=2, padding=1)}, budget,
                                  warmup=2)["conv"]
    return 2.0 * images * 7 * 7 * CHANNELS * CHANNELS * 9 / seconds / 1e9


def fastest_interleaved(fns: dict[str, Callable[[], object]], budget: float, warmup: int = 1) -> dict[str, float]:
    """The least seconds per call of each function, calling them in turns until ``budget`` seconds
    (at least 3 turns). In turns, so that load from other processes on a shared machine falls on
    every function alike; the least, as the run the load disturbed least."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {name: float("inf") for name in fns}
    start, turns = time.perf_counter(), 0
    while time.perf_counter() - start < budget or turns < 3:
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
        turns += 1
    return best


def maml_update_times(plan: BenchPlan) -> pd.DataFrame:
    """Milliseconds per MAML-CNN meta-update (forward, second-order meta-gradient, Adam), 1-shot,
    of each implementation on the same weights and tasks, beside the update's compute floor."""
    try:
        import_learn2learn()
        paths = {"learn2learn per-task loop (reference)": GradientLearner}
    except UsageError:
        paths = {}  # the reference cannot run here; the vectorized update is still timed
    paths["mann-bench vectorized (all tasks at once)"] = BatchedGradientLearner
    rows = []
    gen = torch.Generator().manual_seed(0)
    for ways, tasks, steps, step_size in plan.maml_shapes:
        images = torch.rand(tasks, 2, ways, IMAGE_DIM, generator=gen)
        labels = torch.eye(ways).expand(tasks, 2, ways, ways).contiguous()
        hidden = hide_query_labels(labels)
        flops = meta_update_flops(ways, 1, tasks, steps)
        # The better of two windows: in a fresh process the first second of convolutions ran up to 10x slow here.
        rate = max(conv_gflops(tasks * ways, plan.seconds / 2) for _ in range(2))
        updates = {}
        for name, cls in paths.items():
            learner = cls("maml-cnn", ways, step_size, steps, steps, False, torch.Generator().manual_seed(0))
            optimizer = torch.optim.Adam(learner.module.parameters(), lr=1e-3)

            def update(learner=learner, optimizer=optimizer):
                optimizer.zero_grad(set_to_none=True)
                query_loss(learner.scores(images, hidden, training=True), labels).backward()
                optimizer.step()

            updates[name] = update
        times = {name: seconds * 1e3 for name, seconds in fastest_interleaved(updates, plan.seconds * 2).items()}
        reference = times.get("learn2learn per-task loop (reference)")
        floor_ms = flops / (rate * 1e9) * 1e3
        for name, ms in times.items():
            rows.append({"N": ways, "K": 1, "B": tasks, "inner steps": steps, "path": name, "ms/update": ms,
                         "speed-up vs learn2learn": reference / ms if reference else float("nan"),
                         "GFLOP/update": flops / 1e9, "conv GFLOP/s": rate, "compute floor (ms)": floor_ms,
                         "÷ floor": ms / floor_ms})
    return pd.DataFrame(rows)


def micro_batch_times(plan: BenchPlan) -> pd.DataFrame:
    """Seconds per vectorized MAML-CNN meta-update (second order, Adam) of each recipe shape, the whole
    meta-batch at once vs micro-batches of each size in ``plan.micro_batches``, on the same weights and tasks."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    for ways, shots, tasks, steps, step_size in plan.micro_batch_shapes:
        images = torch.rand(tasks, 2 * shots, ways, IMAGE_DIM, generator=gen)  # K support + K query rows
        labels = torch.eye(ways).expand(tasks, 2 * shots, ways, ways).contiguous()
        learner = BatchedGradientLearner("maml-cnn", ways, step_size, steps, steps, False,
                                         torch.Generator().manual_seed(0), shots=shots)
        optimizer = torch.optim.Adam(learner.module.parameters(), lr=1e-3)

        def update(micro_batch, learner=learner, optimizer=optimizer, images=images, labels=labels, shots=shots):
            optimizer.zero_grad(set_to_none=True)
            backward_in_micro_batches(learner, images, labels, shots, micro_batch)
            optimizer.step()

        sizes = {"whole meta-batch": None, **{f"{m} task{'s' if m > 1 else ''}": m for m in plan.micro_batches}}
        times = fastest_interleaved({name: partial(update, m) for name, m in sizes.items()}, plan.seconds * 2)
        for name, seconds in times.items():
            rows.append({"N": ways, "K": shots, "B": tasks, "inner steps": steps, "micro-batch": name,
                         "s/update": seconds, "speed-up vs whole": times["whole meta-batch"] / seconds})
    return pd.DataFrame(rows)


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux's ``ru_maxrss`` survives ``exec``: a child started with ``spawn`` is
    first a fork of its parent, whose resident pages count as the child's, so
    it reports at least the parent's size. ``VmHWM`` is the peak of the
    current address space only; ``ru_maxrss`` is the fallback elsewhere.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(target: Callable, *args):
    """``target(*args, queue)`` run in a new interpreter; returns what it put on the queue.

    Timings taken after the sampler benchmarks in the same process came out up to
    1.4x slower (thread pools and heap left behind by the file-reading samplers and
    learn2learn), so each timed part starts clean.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    try:
        return queue.get()
    finally:
        proc.join()


def _timing_child(timing, plan: BenchPlan, threads: int, queue) -> None:
    """Put ``timing(plan)`` on the queue, timed with ``threads`` threads and malloc set as mann train sets it."""
    torch.set_num_threads(threads)
    keep_freed_memory()
    queue.put(timing(plan))


# The parts that time random tensors, each in a fresh process so that no part inherits another's
# allocator or thread pool: part → (what its progress line says, the timing function).
TIMING_PARTS = {
    "model": ("timing training steps", model_step_times),
    "protonet": ("timing 60-way training steps", protonet_step_times),
    "maml": ("timing MAML-CNN meta-updates", maml_update_times),
    "micro-batch": ("timing MAML-CNN meta-updates whole and in micro-batches", micro_batch_times),
}


def _e2e_child(kind: str, data_root: str | None, tree: Path, plan: BenchPlan, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    store = load_omniglot(data_root, download=False)  # the parent has found (or fetched) it already
    ways, shots = plan.end_to_end_shape
    if kind == "ours":
        config = make_config("mann", ways, shots=shots, hidden=plan.hidden, steps=plan.e2e_steps,
                             batch_size=plan.batch_size, eval_every=10**9, val_episodes=10, test_episodes=10,
                             checkpoint_every=10**9, device="cpu")
        with tempfile.TemporaryDirectory() as out:
            steps_per_s = train(config, prepare_splits(store, config), out, progress=False)["steps_per_s"]
    else:
        steps_per_s = _starter_loop(tree, make_split(store, "cs330", "train"), plan)
    queue.put({"steps_per_s": steps_per_s, "peak_rss_mib": peak_rss_mib()})


def _starter_loop(tree: Path, split: Split, plan: BenchPlan) -> float:
    """Steps/s of the homework's loop: DataLoader over per-episode files, stock MANN."""
    ways, shots = plan.end_to_end_shape
    folders = [tree / name for name in split.characters]
    loader = torch.utils.data.DataLoader(StarterStyleGenerator(folders, ways, shots, cache=True, seed=0),
                                         batch_size=plan.batch_size, num_workers=0)
    model = MANN(ways, shots + 1, plan.hidden, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(loader)
    start = time.perf_counter()
    for _ in range(plan.e2e_steps):
        images, labels = next(batches)
        loss = loss_function(model(images, labels), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return plan.e2e_steps / (time.perf_counter() - start)


def end_to_end(data_root: str | None, tree: Path, plan: BenchPlan, threads: int) -> pd.DataFrame:
    """Training steps/s and peak resident memory of each loop, each in a fresh process (the starter reads ``tree``)."""
    rows = []
    labels = {"ours": "mann train (resident uint8 episodes, fast path)", "starter": "starter-style loop (DataLoader + per-episode files, stock LSTM)"}
    for kind, label in labels.items():
        result = in_fresh_process(_e2e_child, kind, data_root, tree, plan, threads)
        ways, shots = plan.end_to_end_shape
        rows.append({"N": ways, "K": shots, "B": plan.batch_size, "H": plan.hidden, "loop": label,
                     "steps/s": result["steps_per_s"], "25k-step run (min)": 25_000 / result["steps_per_s"] / 60,
                     "peak RSS (MiB)": result["peak_rss_mib"]})
    table = pd.DataFrame(rows)
    table["speed-up vs starter"] = table["steps/s"] / table["steps/s"].iloc[-1]
    return table


def run_benchmarks(
    data_root: str | None, plan: BenchPlan, parts: set[str], progress=print, download: bool = True
) -> dict[str, pd.DataFrame]:
    tables = {}
    # The model step times random tensors; the other parts need the data, loaded up front so that
    # missing data stops the run before any timing, and one PNG tree serves every file-reading loop.
    store: OmniglotStore | None = (load_omniglot(data_root, download=download)
                                   if parts & {"sampler", "e2e", "grading"} else None)
    with tempfile.TemporaryDirectory() as tmp:
        tree = None
        try:
            if store is not None:
                progress("writing the 28x28 PNG tree the file-reading baselines read ...")
                tree = write_png_tree(store, Path(tmp) / "omniglot_resized")
            if "sampler" in parts:
                progress("sampler: timing samplers ...")
                tables["sampler"] = sampler_rates(make_split(store, "cs330", "train"), tree, plan)
            for part, (doing, timing) in TIMING_PARTS.items():
                if part in parts:
                    progress(f"{part}: {doing} in a fresh process ...")
                    tables[part] = in_fresh_process(_timing_child, timing, plan, torch.get_num_threads())
            if "e2e" in parts:
                progress("end to end: training in fresh processes ...")
                tables["e2e"] = end_to_end(data_root, tree, plan, torch.get_num_threads())
            if "grading" in parts:
                progress(f"grading: a class of {plan.grading_class}, serial then --jobs {plan.grading_jobs} ...")
                tables["grading"], tables["grading_class"] = class_grading(store, plan)
        finally:
            if tree is not None:
                remove_png_tree(tree)  # the tree is read-only
    return tables


def class_grading(store: OmniglotStore, plan: BenchPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The grading benchmark on ``store`` with the default rubric (mann/bench/grading.py)."""
    from mann.bench.grading import grading_times
    from mann.grading.reference import build_reference
    from mann.grading.rubric import load_rubric

    return grading_times(build_reference(store), load_rubric(None), plan.grading_class, plan.grading_jobs)


def readable_number(value: float) -> str:
    """Three significant digits, never an exponent: 1023.6 → '1,024', 136.2 → '136', 1.918 → '1.92'."""
    if value != value:  # NaN: a figure this run could not take
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its float columns as :func:`readable_number` text."""
    out = table.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = [readable_number(v) for v in out[column]]
    return out


def format_tables(tables: dict[str, pd.DataFrame], info: dict, command: str) -> str:
    """All tables as one Markdown document, with the machine and the command."""
    titles = {"sampler": "Sampler (episodes/s)", "model": "Model step (forward + backward + Adam)",
              "protonet": "ProtoNets step (one 60-way episode, 5 queries per class)",
              "maml": "MAML-CNN meta-update (forward, second-order meta-gradient, Adam), 1-shot",
              "micro-batch": "MAML-CNN meta-update (vectorized, second order, Adam): whole meta-batch vs micro-batches",
              "e2e": "End to end",
              "grading": "Grading: seconds per submission of a generated class (default rubric, serial run)",
              "grading_class": "Grading: the class serial vs several sandboxes at once"}
    lines = ["# mann-bench benchmarks", "", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
             "Command:", "", "```", command, "```", ""]
    for key, table in tables.items():
        align = ["right" if pd.api.types.is_numeric_dtype(table[c]) else "left" for c in table.columns]
        lines += [f"## {titles[key]}", "",
                  readable(table).to_markdown(index=False, disable_numparse=True, colalign=align), ""]
    if "sampler" in tables and "model" in tables:
        s, m = tables["sampler"], tables["model"]
        ours = s[s.sampler == "mann-bench EpisodeSampler"].set_index(["N", "K"])
        fast = m[m.path == "mann-bench fast path"].set_index(["N", "K"])
        for n, k in fast.index.intersection(ours.index):
            sample_ms = 1e3 * ours.loc[(n, k), "B"] / ours.loc[(n, k), "episodes/s"]
            share = sample_ms / (sample_ms + fast.loc[(n, k), "ms/step"])
            lines.append(f"Sampling share of a training step at N={n}, K={k}: {sample_ms:.2f} ms of "
                         f"{sample_ms + fast.loc[(n, k), 'ms/step']:.1f} ms ({100 * share:.1f}%).")
        lines.append("")
    return "\n".join(lines)


def write_tables(tables: dict[str, pd.DataFrame], text: str, out: Path) -> None:
    """bench.md and one CSV per table in ``out``."""
    for key, table in tables.items():
        atomic_write_text(out / f"{key}.csv", table.to_csv(index=False))
    atomic_write_text(out / "bench.md", text)
