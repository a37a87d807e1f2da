"""Write a store as the assignment's ``omniglot_resized`` tree of 28x28 PNGs.

The CS330 starter code reads ``<data_folder>/<alphabet>/<character>/*.png``,
scales each image by its maximum and inverts it (``1 - img / img.max()``), so
the files hold dark ink on a white background, like the original Omniglot:
pixel = 255 - ink. Files are named ``<id>_<drawer>.png`` (id = the
character's 1-based position in the store, drawer 01..20), the pattern of the
original archives.

The tree is written once into a folder and then made read-only. It holds
nothing but the alphabet folders (loaders list it and may take any entry for
an alphabet), so its completion marker lives beside it: ``<folder>.complete``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from episodes.errors import UsageError
from episodes.omniglot import OmniglotStore



def marker(folder: Path) -> Path:
    """The file whose presence says ``folder`` holds a complete tree."""
    return folder.with_name(folder.name + ".complete")


def png_path(root: Path, store: OmniglotStore, character: int, drawer: int) -> Path:
    """The file of ``store.images[character, drawer]`` (drawer 0-based) in the tree."""
    return root / store.characters[character] / f"{character + 1:04d}_{drawer + 1:02d}.png"


def assignment_pixels(ink: np.ndarray) -> np.ndarray:
    """What the starter code's loader returns for images of ink (uint8, ink=255).

    ink: uint8 [..., S, S]. Returns float32 [..., S·S]: ``1 - png / png.max()``
    per image, where png = 255 - ink is the file's content.
    """
    png = (255 - ink.astype(np.float32)).reshape(*ink.shape[:-2], -1)
    peak = png.max(axis=-1, keepdims=True)
    return 1.0 - png / np.where(peak > 0, peak, 1.0)


def write_png_tree(
    store: OmniglotStore, folder: str | os.PathLike, drawers: int | None = None, progress: bool = False
) -> Path:
    """Materialise the store as ``folder/<alphabet>/<character>/<id>_<drawer>.png``.

    drawers: write only the first so many drawers of each character (small
    trees for tests; the assignment's loaders need only K+1 per character).
    progress: show a bar (the full tree is 32,460 files, tens of seconds).
    Returns the folder. A folder that already holds a complete tree is reused
    as is; the tree is built in a temporary sibling and renamed into place, so
    an interrupted run never leaves a partial tree behind. Files end up
    read-only (0444, folders 0555).
    """
    folder = Path(folder)
    count = store.images.shape[1] if drawers is None else drawers
    if marker(folder).is_file():
        if marker(folder).read_text().split() != [store.source, str(count)]:
            raise UsageError(
                f"{folder} holds a PNG tree of other data or another drawer count "
                f"({marker(folder).read_text().strip()}); delete it with its .complete file, or choose another folder"
            )
        return folder
    if folder.exists():
        raise UsageError(
            f"{folder} exists but holds no complete PNG tree (no {marker(folder).name}); delete it and run again"
        )
    if not 1 <= count <= store.images.shape[1]:
        raise UsageError(f"drawers = {drawers}: choose 1..{store.images.shape[1]}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for c in tqdm(range(len(store)), desc="writing PNG tree", unit="character", disable=not progress):
            target = staging / store.characters[c]
            target.mkdir(parents=True)
            for d in range(count):
                Image.fromarray(255 - store.images[c, d]).save(png_path(staging, store, c, d))
        _make_read_only(staging)
        os.rename(staging, folder)
        marker(folder).write_text(f"{store.source} {count}\n")
    except BaseException:
        _make_writable(staging)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(dirpath, 0o555)


def _make_writable(root: Path) -> None:
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)


def remove_png_tree(folder: str | os.PathLike) -> None:
    """Delete a tree written by :func:`write_png_tree` (its folders are read-only)."""
    folder = Path(folder)
    marker(folder).unlink(missing_ok=True)
    if folder.exists():
        _make_writable(folder)
        shutil.rmtree(folder)
