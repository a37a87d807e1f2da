"""A per-episode, file-reading sampler in the style of the assignment's starter code.

It exists as the baseline of the benchmarks (``mann bench``): each episode
picks N character folders, lists each folder, reads K+1 PNG files one by one
and builds Python lists before stacking them, as the homework's
``DataGenerator._sample`` does. ``cache=True`` keeps decoded images in a dict,
as the starter's ``cache`` flag does. Randomness comes from an explicit
``random.Random(seed)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image
from torch.utils.data import IterableDataset


class StarterStyleGenerator(IterableDataset):
    """Yields episodes (images float32 [K+1, N, 784], labels float32 [K+1, N, N]) forever."""

    def __init__(self, folders: list[Path], ways: int, shots: int, cache: bool = True, seed: int = 0,
                 decoded: dict[Path, np.ndarray] | None = None) -> None:
        """decoded: a cache to share (see :meth:`fill_cache`); the starter's own cache starts empty."""
        self.folders = [Path(f) for f in folders]
        self.ways, self.shots, self.cache = ways, shots, cache
        self.rng = random.Random(seed)
        self.images: dict[Path, np.ndarray] = decoded if decoded is not None else {}

    def fill_cache(self) -> dict[Path, np.ndarray]:
        """Decode every image of every folder once (the cached generator at its steady state); return the cache."""
        for folder in self.folders:
            for name in os.listdir(folder):
                self.image(folder / name)
        return self.images

    def image(self, path: Path) -> np.ndarray:
        if self.cache and path in self.images:
            return self.images[path]
        with Image.open(path) as im:
            pixels = np.asarray(im, dtype=np.float32).reshape(-1)
        image = 1.0 - pixels / pixels.max()
        if self.cache:
            self.images[path] = image
        return image

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.rng.sample(self.folders, self.ways)
        rows: list[list[np.ndarray]] = [[] for _ in range(self.shots + 1)]
        for folder in chosen:
            files = self.rng.sample(sorted(os.listdir(folder)), self.shots + 1)
            for r, name in enumerate(files):
                rows[r].append(self.image(folder / name))
        images = np.asarray(rows, dtype=np.float32)  # [K+1, N, 784]
        labels = np.tile(np.eye(self.ways, dtype=np.float32), (self.shots + 1, 1, 1))
        order = list(range(self.ways))
        self.rng.shuffle(order)
        images[-1] = images[-1][order]
        labels[-1] = labels[-1][order]
        return images, labels

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            yield self.sample()
