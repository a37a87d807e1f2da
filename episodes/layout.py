"""The shape of Omniglot episodes: image size, drawers, split names, and the N/K rules every part checks.

Pure Python (no numpy, no torch), so that configs and the command line can
check a shape before anything heavy is imported.
"""

from __future__ import annotations

from episodes.errors import UsageError

IMAGE_SIZE = 28  # side of the stored images (the assignment's 28x28)
IMAGE_DIM = IMAGE_SIZE * IMAGE_SIZE  # 784: one flattened image
DRAWERS = 20  # Omniglot has 20 drawings (drawers) of every character
SCHEMES = ("cs330", "lake", "vinyals")  # the named splits of episodes.splits
# trainval: train and val together, what the papers train their final models on.
PARTS = ("train", "val", "trainval", "test")
RUN_PARTS = ("train", "val", "test")  # the parts one training run uses
# How the store shrinks the 105x105 1-bit PNGs (episodes.omniglot.decode_png).
RESIZES = ("lanczos", "nearest")
LAKE_ARCHIVE = "all_runs.zip"  # the 20 official one-shot runs (episodes.lake_runs)


def episode_shape_problems(
    ways: object, shots: object, batch_size: object = 1, num_classes: int | None = None
) -> list[str]:
    """Every reason an N-way K-shot batch cannot be drawn, one message each (empty: it can).

    num_classes: the classes of the split it is drawn from (None: not checked yet).
    """
    problems = []
    if not isinstance(ways, int) or isinstance(ways, bool) or ways < 2:
        problems.append(f"--ways {ways}: an episode needs N >= 2 classes")
    elif num_classes is not None and ways > num_classes:
        problems.append(f"N (ways) = {ways} is larger than the split's {num_classes} classes; "
                        f"use --ways {num_classes} or fewer, or a larger split")
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
        problems.append(f"--shots {shots}: use K >= 1 support example per class")
    elif shots + 1 > DRAWERS:
        problems.append(f"--shots {shots}: K+1 = {shots + 1} distinct drawers are needed but Omniglot has "
                        f"{DRAWERS}; use K <= {DRAWERS - 1}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        problems.append(f"--batch-size {batch_size}: use a batch size >= 1")
    return problems


def check_episode_shape(ways: int, shots: int, batch_size: int = 1, num_classes: int | None = None) -> None:
    """Raise UsageError with the first problem of :func:`episode_shape_problems`, before any work."""
    problems = episode_shape_problems(ways, shots, batch_size, num_classes)
    if problems:
        raise UsageError(problems[0])
