"""Write the store as the assignment's ``omniglot_resized`` tree of 28x28 PNGs.

Students' data loaders (and the starter-style baseline sampler) read
``<folder>/<Alphabet>/<characterNN>/<file>.png``: greyscale, dark ink on a white
background, as the resized tree of the original homework. The tree is written
once per folder; a marker file records which store it came from, so a second
call with the same store costs nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from episodes.errors import UsageError
from episodes.omniglot import OmniglotStore

MARKER = ".mann-bench-tree"


def write_png_tree(store: OmniglotStore, folder: str | os.PathLike) -> Path:
    """Write every image as ``<folder>/<Alphabet>/<characterNN>/<NN>.png`` (drawer NN).

    Pixels are ``255 - store`` (ink dark, as in the original files), so a loader
    doing ``1 - img / img.max()`` gets ink ≈ 1, background 0.
    """
    folder = Path(folder)
    marker = folder / MARKER
    stamp = f"{store.source} {len(store)} {store.image_size}\n"
    if marker.is_file() and marker.read_text() == stamp:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, images in zip(store.characters, store.images):
            character = folder / name
            character.mkdir(parents=True, exist_ok=True)
            for drawer, pixels in enumerate(images, start=1):
                Image.fromarray(255 - pixels).save(character / f"{drawer:02d}.png")
        marker.write_text(stamp)
    except OSError as err:
        raise UsageError(f"cannot write the PNG tree in {folder} ({err.strerror}); choose a writable folder") from None
    return folder


def read_png(path: str | os.PathLike) -> np.ndarray:
    """uint8 [H, W] pixels of one PNG of such a tree (ink dark)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)
