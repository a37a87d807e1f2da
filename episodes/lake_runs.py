"""The 20 official one-shot classification runs of Lake et al. (2015).

``all_runs.zip`` (from the ``python/one-shot-classification`` folder of
``brendenlake/omniglot``) holds ``run01`` .. ``run20``; each run has 20
training images ``training/classKK.png`` (one drawing of each of 20
evaluation-set characters), 20 test images ``test/itemMM.png`` (another
drawing of each) and ``class_labels.txt``, one line per test item naming its
class: ``runNN/test/itemMM.png runNN/training/classKK.png``. The task is
20-way 1-shot: put each test item with its class; people err on 4.5% of the
items, Bayesian program learning on 3.3%.

Each run becomes one episode in the sampler's layout (N=20, K=1): row 0 holds
class01..class20 with labels 0..19, row 1 the 20 test items in file order with
their classes' labels. The file order is Lake's own shuffle, so row 1 is a
permutation of the classes, as in every sampled episode. Images go through
:func:`episodes.omniglot.decode_png`, the store's own preprocessing.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from episodes.errors import UsageError
from episodes.layout import LAKE_ARCHIVE
from episodes.omniglot import check_resize, decode_png

RUNS = 20
WAYS = 20
ARCHIVE = LAKE_ARCHIVE
HUMAN_ERROR = 0.045
BPL_ERROR = 0.033
_LINE = re.compile(r"^(run\d\d)/test/item(\d\d)\.png\s+(run\d\d)/training/class(\d\d)\.png$")
_FIX = "download all_runs.zip again (brendenlake/omniglot, python/one-shot-classification/)"


@dataclass(frozen=True)
class LakeRun:
    """One run, decoded.

    training: uint8 [20, S, S] (ink=255), class01..class20 in order.
    test: uint8 [20, S, S], item01..item20 in order.
    labels: int64 [20], the class (0..19) of each test item; a permutation.
    """

    name: str
    training: np.ndarray
    test: np.ndarray
    labels: np.ndarray

    def pairs(self) -> list[tuple[str, str]]:
        """(test file, training file) per item, as written in class_labels.txt."""
        return [
            (f"{self.name}/test/item{i + 1:02d}.png", f"{self.name}/training/class{c + 1:02d}.png")
            for i, c in enumerate(self.labels.tolist())
        ]


def read_lake_runs(path: str | Path, image_size: int = 28, resize: str = "lanczos") -> list[LakeRun]:
    """The 20 runs of ``all_runs.zip``, each checked whole before anything is scored.

    resize: the store pipeline to decode with ("lanczos" | "nearest"), the one
    the scored model was trained on.

    Raises UsageError naming the archive and the problem when it is missing,
    truncated, not a zip, or lacks a run, an image or a well-formed label file.
    """
    check_resize(resize)
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file; point --archive at all_runs.zip (or {_FIX})")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            return [_read_run(archive, names, f"run{r:02d}", image_size, resize, path) for r in range(1, RUNS + 1)]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise UsageError(f"{path} is not a readable zip ({err}); it may be truncated: {_FIX}") from None


def _read_run(archive: zipfile.ZipFile, names: set[str], run: str, size: int, resize: str, path: Path) -> LakeRun:
    labels_file = f"{run}/class_labels.txt"
    if labels_file not in names:
        raise UsageError(f"{path}: {labels_file} is missing (20 runs run01..run20 are expected); {_FIX}")
    lines = [line.strip() for line in archive.read(labels_file).decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) != WAYS:
        raise UsageError(f"{path}: {labels_file} has {len(lines)} lines, not {WAYS}; {_FIX}")
    labels = np.full(WAYS, -1, dtype=np.int64)
    for line in lines:
        match = _LINE.match(line)
        if match is None or match.group(1) != run or match.group(3) != run:
            raise UsageError(f"{path}: {labels_file} has a malformed line {line!r}; {_FIX}")
        item, cls = int(match.group(2)), int(match.group(4))
        if not (1 <= item <= WAYS and 1 <= cls <= WAYS) or labels[item - 1] >= 0:
            raise UsageError(f"{path}: {labels_file} line {line!r} is out of range or repeats an item; {_FIX}")
        labels[item - 1] = cls - 1
    if sorted(labels.tolist()) != list(range(WAYS)):
        raise UsageError(f"{path}: {labels_file} does not give each of the {WAYS} classes one test item; {_FIX}")
    training = _decode_all(archive, names, [f"{run}/training/class{c:02d}.png" for c in range(1, WAYS + 1)], size,
                           resize, path)
    test = _decode_all(archive, names, [f"{run}/test/item{i:02d}.png" for i in range(1, WAYS + 1)], size, resize, path)
    return LakeRun(run, training, test, labels)


def _decode_all(archive: zipfile.ZipFile, names: set[str], files: list[str], size: int, resize: str,
                path: Path) -> np.ndarray:
    out = []
    for name in files:
        if name not in names:
            raise UsageError(f"{path}: {name} is missing; {_FIX}")
        png = archive.read(name)  # a damaged archive raises here, reported by read_lake_runs
        try:
            out.append(decode_png(png, size, resize))
        except Exception as err:  # Pillow raises several types for a damaged PNG
            raise UsageError(f"{path}: {name} is not a readable PNG ({err}); {_FIX}") from None
    return np.stack(out)


def lake_episodes(runs: list[LakeRun], device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """All runs as one batch of 20-way 1-shot episodes in the sampler's layout.

    Returns images float32 [R, 2, 20, S·S] in [0, 1] (row 0 the training
    images in class order, row 1 the test items in file order) and labels
    float32 one-hot [R, 2, 20, 20] (row 1 the test items' classes).
    """
    training = np.stack([r.training for r in runs]).reshape(len(runs), 1, WAYS, -1)
    test = np.stack([r.test for r in runs]).reshape(len(runs), 1, WAYS, -1)
    images = torch.from_numpy(np.concatenate([training, test], axis=1)).to(torch.float32).div_(255.0)
    classes = torch.arange(WAYS).expand(len(runs), WAYS)
    query = torch.from_numpy(np.stack([r.labels for r in runs]))
    eye = torch.eye(WAYS)
    labels = torch.stack([eye[classes], eye[query]], dim=1)
    return images.to(device), labels.to(device)
