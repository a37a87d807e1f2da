"""Shared fixtures: a synthetic Omniglot-shaped tree and store, and the real data."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from episodes.errors import UsageError
from episodes.omniglot import N_ALPHABETS, N_CHARACTERS, SETS, OmniglotStore

REPO = Path(__file__).resolve().parents[1]


def real_root() -> Path | None:
    """The real Omniglot: $OMNIGLOT_ROOT, else ../shared/omniglot beside the repo."""
    for candidate in (os.environ.get("OMNIGLOT_ROOT"), REPO.parent / "shared" / "omniglot"):
        if candidate and (Path(candidate) / "images_background.zip").exists():
            return Path(candidate)
    return None


# Test tensors are small: one thread avoids OpenMP stalls when the machine is busy.
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Decoded arrays go to a test-only cache, never the user's."""
    old = os.environ.get("MANN_CACHE")
    os.environ["MANN_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("MANN_CACHE", None)
    else:
        os.environ["MANN_CACHE"] = old


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    root = real_root()
    if root is None:
        pytest.skip("real Omniglot not found: set OMNIGLOT_ROOT or put the zips in ../shared/omniglot")
    return root


@pytest.fixture(scope="session")
def real_store(real_data_root):
    from episodes import load_omniglot

    return load_omniglot(real_data_root, download=False)


def png_bytes(pixels: np.ndarray) -> bytes:
    """A 1-bit PNG like Omniglot's: True = white background, False = ink."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def write_tree(root: Path, alphabets: dict[str, int], size: int = 8, as_zip: bool = True, seed: int = 0) -> Path:
    """Write both image sets in the original layout with random ink blots.

    alphabets: {set name: alphabet count}; each alphabet gets characters
    so that the set's total is N_CHARACTERS when the count is the original.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name in SETS:
        n_alpha = alphabets[name]
        n_chars = N_CHARACTERS[name] if n_alpha == N_ALPHABETS[name] else 2 * n_alpha
        per = np.full(n_alpha, n_chars // n_alpha)
        per[: n_chars % n_alpha] += 1
        entries = {}
        for a, count in enumerate(per):
            for c in range(1, count + 1):
                for d in range(1, 21):
                    pixels = rng.random((size, size)) > 0.3
                    entries[f"{name}/Alpha_{name[7]}{a:02d}/character{c:02d}/{a:02d}{c:02d}_{d:02d}.png"] = png_bytes(pixels)
        if as_zip:
            with zipfile.ZipFile(root / f"{name}.zip", "w") as z:
                for path, data in entries.items():
                    z.writestr(path, data)
        else:
            for path, data in entries.items():
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(data)
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A full-count Omniglot-shaped tree (50 alphabets, 1623 x 20 PNGs) of 8x8 blots."""
    return write_tree(tmp_path_factory.mktemp("omniglot"), dict(N_ALPHABETS))


def identity_store(n_background: int = 964, n_evaluation: int = 659, size: int = 28) -> OmniglotStore:
    """A decoded store whose pixels name their source: [0]=char//256, [1]=char%256, [2]=drawer."""
    n = n_background + n_evaluation
    images = np.zeros((n, 20, size, size), dtype=np.uint8)
    flat = images.reshape(n, 20, -1)
    chars = np.arange(n)
    flat[:, :, 0] = (chars // 256)[:, None]
    flat[:, :, 1] = (chars % 256)[:, None]
    flat[:, :, 2] = np.arange(20)[None, :]
    names = tuple(f"{'Bg' if i < n_background else 'Ev'}_{i // 20:03d}/character{i % 20 + 1:02d}" for i in range(n))
    background = np.arange(n) < n_background
    return OmniglotStore(images=images, characters=names, background=background, source="identity")


def decode_identity(images) -> tuple[np.ndarray, np.ndarray]:
    """(character index, drawer) of each image of float32 [..., 784] made by identity_store."""
    pix = np.rint(np.asarray(images)[..., :3] * 255).astype(np.int64)
    return pix[..., 0] * 256 + pix[..., 1], pix[..., 2]


@pytest.fixture(scope="session")
def store() -> OmniglotStore:
    return identity_store()


def pattern_store(n_background: int = 964, n_evaluation: int = 659, seed: int = 0) -> OmniglotStore:
    """A store where each character is a random ink pattern, its 20 drawers noisy copies.

    Matching a query to its support example is easy here, so a short training
    run must rise well above chance.
    """
    rng = np.random.default_rng(seed)
    n = n_background + n_evaluation
    base = rng.random((n, 1, 28, 28)) < 0.2
    flips = rng.random((n, 20, 28, 28)) < 0.03
    images = ((base ^ flips) * 255).astype(np.uint8)
    names = tuple(f"P_{i // 20:03d}/character{i % 20 + 1:02d}" for i in range(n))
    return OmniglotStore(images=images, characters=names, background=np.arange(n) < n_background, source="pattern")


@pytest.fixture(scope="session")
def easy_store() -> OmniglotStore:
    return pattern_store()


@pytest.fixture(scope="session")
def grading_reference(easy_store, tmp_path_factory):
    """The grader's reference on the learnable synthetic store, with a 4-drawer PNG tree (fast to write)."""
    from mann.grading.reference import build_reference

    return build_reference(easy_store, tmp_path_factory.mktemp("grading") / "omniglot_resized", drawers=4)


def train_on(config, store, out, **kwargs) -> dict:
    """``mann.training.train`` on the config's splits of ``store`` (the summary row)."""
    from mann.training import prepare_splits, train

    return train(config, prepare_splits(store, config), out, **kwargs)


def train_cut_at(config, store, out, step: int) -> None:
    """:func:`train_on` interrupted (KeyboardInterrupt) as step ``step`` ends, before its checkpoint."""
    def cut(at, steps):
        if at == step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_on(config, store, out, progress=False, on_step=cut)


def corner_store(n_background: int = 300, n_evaluation: int = 200, seed: int = 0) -> OmniglotStore:
    """Characters told apart only by an 8x8 corner pattern, the rest of each image fresh noise.

    An untrained network is swamped by the noise; a trained one learns to look
    at the corner, so accuracy must rise with training, not merely be high.
    """
    rng = np.random.default_rng(seed)
    n = n_background + n_evaluation
    images = rng.random((n, 20, 28, 28)) < 0.2
    corner = rng.random((n, 1, 8, 8)) < 0.5
    images[:, :, :8, :8] = corner ^ (rng.random((n, 20, 8, 8)) < 0.03)
    names = tuple(f"C_{i // 20:03d}/character{i % 20 + 1:02d}" for i in range(n))
    return OmniglotStore((images * 255).astype(np.uint8), names, np.arange(n) < n_background, "corner")


@pytest.fixture(scope="session")
def learn2learn():
    """The learn2learn module; the test is skipped, saying why, where it cannot be imported."""
    from mann.models.l2l import import_learn2learn

    try:
        return import_learn2learn()
    except UsageError as err:
        pytest.skip(f"learn2learn is not importable ({err}): the learn2learn models and comparisons need it")


def random_episodes(tasks: int, ways: int, shots: int, seed: int, dtype=torch.float32):
    """Random images [B, K+1, N, 784] and one-hot labels [B, K+1, N, N], each query row in its own order."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(tasks, shots + 1, ways, 28 * 28, generator=gen, dtype=dtype)
    labels = torch.eye(ways).repeat(tasks, shots + 1, 1, 1)
    for b in range(tasks):
        labels[b, -1] = labels[b, -1, torch.randperm(ways, generator=gen)]
    return images, labels.to(dtype)


def largest_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """max |a - b| over every tensor, relative to the largest |a| (some true gradients are ~0:
    conv biases before batch norm)."""
    top = max(float(x.abs().max()) for x in a)
    return max(float((x - y).abs().max()) for x, y in zip(a, b)) / top
