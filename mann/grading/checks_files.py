"""Checks of handed-in files, which read data and never run student code.

``mann_results_{K}_{N}.npy``: the assignment's deliverable, two arrays saved
one after the other into one file (labels, then predictions) from the
student's own training run. Each may be floats (one-hot or logits, [..., N])
or integer class indices, either for the query row only or for whole
episodes ([B, K+1, N, N], whose last row is then taken).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mann.grading.check import Check, Verdict, fail, ok
from mann.grading.raw import read_npy

MAX_BYTES = 64 << 20


def read_pair(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) from a file of two consecutive .npy arrays (no pickles)."""
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES >> 20} MB")
    # read_npy checks each header before allocating: np.load would allocate
    # whatever shape a header claims, even past the end of the file
    with open(path, "rb") as f:
        labels = read_npy(f, MAX_BYTES, f"{path.name} (labels)")
        preds = read_npy(f, MAX_BYTES, f"{path.name} (predictions)")
    return labels, preds


def classes(values: np.ndarray, ways: int) -> np.ndarray:
    """Class indices of the query row: floats [..., N] (one-hot or logits) are
    reduced by argmax, integers are class indices already."""
    if values.ndim == 4:
        values = values[:, -1]
    floating = not np.issubdtype(values.dtype, np.integer)
    if floating and values.ndim >= 2 and values.shape[-1] == ways:
        return values.argmax(-1)
    return values.astype(np.int64)


def results_judge(ref, p: dict, root: Path, probe=None) -> Verdict:
    lines, passed = [], True
    for shots, ways, minimum in p["runs"]:
        name = f"mann_results_{int(shots)}_{int(ways)}.npy"
        found = sorted(Path(root).rglob(name))
        if not found:
            lines.append(f"{name}: missing")
            passed = False
            continue
        try:
            labels, preds = read_pair(found[0])
            truth, guess = classes(labels, int(ways)), classes(preds, int(ways))
            if truth.shape != guess.shape or truth.size == 0:
                raise ValueError(f"labels {list(labels.shape)} and predictions {list(preds.shape)} do not match")
        except (ValueError, OSError, EOFError) as err:
            lines.append(f"{name}: unreadable as two arrays (labels, then predictions): {err}")
            passed = False
            continue
        accuracy = float((truth == guess).mean())
        good = accuracy >= minimum
        passed &= good
        lines.append(f"{name}: {100 * accuracy:.1f}% query accuracy ({'>=' if good else '<'} {100 * minimum:.0f}% needed)")
    message = "; ".join(lines)
    return ok(message) if passed else fail(message)


CHECKS = [
    Check("results_files", {"runs": [[1, 2, 0.90], [2, 2, 0.90], [1, 3, 0.75], [1, 4, 0.60]]}, None, results_judge),
]
