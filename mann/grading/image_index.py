"""Tell which (character, drawer) an image returned by a student's loader shows.

A student's ``DataGenerator`` reads the PNG tree and returns each image as
``1 - png / png.max()`` (ink ≈ 1), float32 [784]. Rounding ``255 · value``
gives back an exact uint8 key for every image of the tree, whatever float
arithmetic the loader used, so the grader can identify every returned image
by a dictionary lookup and then check splits, drawers and permutations.
"""

from __future__ import annotations

import numpy as np

from episodes.omniglot import OmniglotStore
from episodes.png_tree import assignment_pixels

UNKNOWN = -1    # not an image of the tree (wrong scaling, not inverted, noise...)
AMBIGUOUS = -2  # several images of the tree have these pixels


def image_keys(images: np.ndarray) -> np.ndarray:
    """uint8 [..., 784] keys of float images in [0, 1] (values outside are clipped)."""
    scaled = np.rint(np.clip(np.nan_to_num(np.asarray(images, dtype=np.float64), nan=-1.0), 0.0, 1.0) * 255)
    return scaled.astype(np.uint8)


class ImageIndex:
    """(character, drawer) of every image the tree holds, looked up by pixels.

    characters, drawers = index.identify(images)   # images float [..., 784]
    -> int64 [...] each; character UNKNOWN or AMBIGUOUS when not identified,
    drawer -1 when it cannot be told.
    """

    def __init__(self, store: OmniglotStore, drawers: int | None = None) -> None:
        count = store.images.shape[1] if drawers is None else drawers
        keys = image_keys(assignment_pixels(store.images[:, :count]))
        self.names = store.characters
        self._by_name = {name: i for i, name in enumerate(self.names)}
        # key -> (character, drawer); a few Omniglot images have a pixel-identical
        # twin (e.g. two drawers of Braille/character01): the drawer is then
        # unknown (-1), and the character too if the twins' characters differ.
        self._table: dict[bytes, tuple[int, int]] = {}
        flat = keys.reshape(-1, keys.shape[-1])
        for position, row in enumerate(flat):
            key, found = row.tobytes(), divmod(position, count)
            seen = self._table.get(key)
            if seen is not None:
                found = (seen[0], -1) if seen[0] == found[0] else (AMBIGUOUS, -1)
            self._table[key] = found

    def identify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(characters, drawers), int64 [...] each, for float images [..., 784].

        A drawer is -1 where it cannot be told (unknown image, or an image with
        a pixel-identical twin in the same character)."""
        keys = image_keys(images)
        flat = keys.reshape(-1, keys.shape[-1])
        found = np.array([self._table.get(row.tobytes(), (UNKNOWN, -1)) for row in flat], dtype=np.int64)
        shape = keys.shape[:-1]
        return found[:, 0].reshape(shape), found[:, 1].reshape(shape)

    def character(self, name: str) -> int:
        """The index of the character whose tree folder is ``name`` ("alphabet/character"); UNKNOWN if none."""
        return self._by_name.get(name, UNKNOWN)

    def name(self, character: int) -> str:
        return self.names[character] if character >= 0 else "an unknown image"
