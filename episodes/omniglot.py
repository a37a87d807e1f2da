"""Locate, download, verify and decode Omniglot into a compact in-memory store.

The store keeps every image of the 1623 characters at 28x28 as uint8 with ink=255
and background=0 (the assignment's and MAML's convention after scaling: ink
≈ 1.0, background 0.0). Decoding the 32,460 PNGs takes a few seconds, so the
result is cached as one ``.npz`` keyed by the sources' content, the image
size and the resize; a second load reads ~25 MB and takes well under a second.

Two resize pipelines (``resize=``): "lanczos" (the default) converts the 1-bit
PNG to greyscale and resizes with Lanczos, so strokes keep anti-aliased grey
edges; "nearest" resizes the 1-bit original with nearest-neighbour, which is
what the published ProtoNets and MAML code get from Pillow (Pillow resizes
mode "1" images with nearest-neighbour whatever filter is named), so pixels
are 0 or 255 only.

Sources are looked up in this order: the ``root`` argument, ``$OMNIGLOT_ROOT``,
then ``$XDG_CACHE_HOME/mann-bench/omniglot`` (default ``~/.cache/...``). In a
root, each of the two sets may be the original zip (``images_background.zip``)
or its extracted folder (``images_background/``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from episodes.errors import UsageError
from episodes.files import atomic_write_bytes
from episodes.layout import DRAWERS, IMAGE_SIZE, RESIZES

SETS = ("images_background", "images_evaluation")
N_CHARACTERS = {"images_background": 964, "images_evaluation": 659}
N_ALPHABETS = {"images_background": 30, "images_evaluation": 20}
# The sums of the archives published in brendenlake/omniglot (python/ folder).
ORIGINAL_MD5 = {
    "images_background": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
}
DOWNLOAD_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/{name}.zip"
CACHE_FORMAT = 1
_PNG = re.compile(r"^(\d+)_(\d+)\.png$")


@dataclass(frozen=True)
class OmniglotStore:
    """All of Omniglot, decoded.

    images: uint8 [C, 20, S, S], ink=255, drawer d at index d-1 (C = 1623 for
        the full set, S the image side, 28 by default).
    characters: C names ``"<Alphabet>/characterNN"``, sorted.
    background: bool [C], True for the 964 characters of images_background.
    source: a short hash of the sources' content, for provenance.
    resize: how the PNGs were resized to S ("lanczos" | "nearest", see decode_png).
    """

    images: np.ndarray
    characters: tuple[str, ...]
    background: np.ndarray
    source: str
    resize: str = "lanczos"

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return len(self.characters)


def default_root() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mann-bench" / "omniglot"


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$OMNIGLOT_ROOT``, else the cache folder."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get("OMNIGLOT_ROOT")
    if env:
        return Path(env).expanduser()
    return default_root()


def cache_dir() -> Path:
    """Where decoded arrays go (never inside the data root, which may be read-only)."""
    env = os.environ.get("MANN_CACHE")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mann-bench"


def load_omniglot(
    root: str | os.PathLike | None = None,
    image_size: int = IMAGE_SIZE,
    download: bool = True,
    use_cache: bool = True,
    verify: bool = True,
    resize: str = "lanczos",
) -> OmniglotStore:
    """Load all 1623 characters x 20 drawers as a decoded :class:`OmniglotStore`.

    resize: "lanczos" (greyscale, then Lanczos: grey stroke edges) or "nearest"
    (nearest-neighbour on the 1-bit original, as the ProtoNets/MAML code did:
    0/255 only); see :func:`decode_png`.

    verify=False accepts any tree of the original layout whatever its size
    (a subset, or a synthetic tree in tests); the default insists on the
    complete data set: 50 alphabets, 1623 characters, drawers 1..20 each.

    Raises UsageError when the root holds no Omniglot and it cannot be downloaded,
    when an archive is truncated or corrupt, or when a folder's layout is wrong.
    """
    if image_size < 1:
        raise UsageError(f"image size {image_size} is not positive; use e.g. 28")
    check_resize(resize)
    root = resolve_root(root)
    sources = [_find_source(root, name, download) for name in SETS]
    key = _content_key(sources, image_size)
    # Unverified subsets get their own cache entries.
    key = key if verify else f"{key}-subset"
    cached = cache_dir() / cache_name(image_size, key, resize)
    if use_cache and cached.is_file():
        try:
            store = _read_cache(cached)
            if store.resize == resize:
                return store
        except Exception:  # a damaged cache is rebuilt, never trusted
            pass
    images, names, background = [], [], []
    for name, src in zip(SETS, sources):
        files = _read_set(src, name, verify)
        for character in sorted(files):
            drawers = files[character]
            images.append(np.stack([decode_png(drawers[d], image_size, resize) for d in sorted(drawers)]))
            names.append(character)
            background.append(name == "images_background")
    order = np.argsort(names, kind="stable")
    store = OmniglotStore(
        images=np.stack(images)[order],
        characters=tuple(names[i] for i in order),
        background=np.asarray(background, dtype=bool)[order],
        source=key,
        resize=resize,
    )
    if use_cache:
        _write_cache(cached, store)
    return store


def check_resize(resize: object) -> None:
    """UsageError unless ``resize`` names one of the pipelines of :func:`decode_png`."""
    if resize not in RESIZES:
        raise UsageError(f"unknown resize {resize!r}; choose one of {', '.join(RESIZES)} (--resize)")


def cache_name(image_size: int, key: str, resize: str) -> str:
    """The cache file of one store; the lanczos name is the one used before resize existed,
    so those caches stay valid."""
    tag = "" if resize == "lanczos" else f"-{resize}"
    return f"omniglot-{image_size}px{tag}-{key}.npz"


def _find_source(root: Path, name: str, download: bool) -> Path:
    folder, archive = root / name, root / f"{name}.zip"
    if folder.is_dir():
        return folder
    if archive.is_file():
        return archive
    if download:
        return _download(root, name)
    raise UsageError(
        f"no Omniglot in {root}: neither {archive.name} nor {folder.name}/ is there; "
        f"set OMNIGLOT_ROOT (or --data-root) to the folder holding the two zips, "
        f"or allow the download"
    )


def _download(root: Path, name: str) -> Path:
    url = DOWNLOAD_URL.format(name=name)
    target = root / f"{name}.zip"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response:
            payload = response.read()
    except OSError as err:
        raise UsageError(
            f"no Omniglot in {root} and downloading {url} failed ({err}); "
            f"set OMNIGLOT_ROOT (or --data-root) to a folder holding {name}.zip"
        ) from None
    digest = hashlib.md5(payload).hexdigest()
    if digest != ORIGINAL_MD5[name]:
        raise UsageError(
            f"downloaded {url} has md5 {digest}, not {ORIGINAL_MD5[name]}; "
            f"retry, or place {name}.zip in {root} by hand"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, payload)
    return target


def _read_set(src: Path, name: str, verify: bool) -> dict[str, dict[int, bytes]]:
    """{"Alphabet/characterNN": {drawer: png bytes}}, checked for Omniglot's shape."""
    if src.is_dir():
        entries = (
            (p.relative_to(src).as_posix(), p.read_bytes) for p in sorted(src.rglob("*.png"))
        )
        files = _group(entries, src, name, inner_prefix="")
    else:
        # The content is checked whatever the archive's md5: rebuilt copies with
        # other sums but the original pixels are common (see ../shared/omniglot).
        try:
            with zipfile.ZipFile(src) as archive:
                entries = (
                    (info.filename, (lambda a=archive, i=info: a.read(i)))
                    for info in archive.infolist()
                    if info.filename.endswith(".png")
                )
                files = _group(entries, src, name, inner_prefix=f"{name}/")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
            raise UsageError(
                f"{src} is not a readable zip ({err}); it may be truncated: "
                f"delete it and download it again"
            ) from None
    _check_shape(files, src, name, verify)
    return files


def _group(entries, src: Path, name: str, inner_prefix: str) -> dict[str, dict[int, bytes]]:
    files: dict[str, dict[int, bytes]] = {}
    for path, read in entries:
        if inner_prefix and path.startswith(inner_prefix):
            path = path[len(inner_prefix):]
        parts = path.split("/")
        match = _PNG.match(parts[-1])
        if len(parts) != 3 or match is None:
            raise UsageError(
                f"{src}: unexpected file {path!r}; the layout must be "
                f"{inner_prefix}<Alphabet>/characterNN/<ID>_<drawer>.png as in the original {name}"
            )
        files.setdefault(f"{parts[0]}/{parts[1]}", {})[int(match.group(2))] = read()
    return files


def _check_shape(files: dict[str, dict[int, bytes]], src: Path, name: str, verify: bool) -> None:
    alphabets = {c.split("/")[0] for c in files}
    wrong = [c for c, d in files.items() if sorted(d) != list(range(1, DRAWERS + 1))]
    counts_ok = len(files) == N_CHARACTERS[name] and len(alphabets) == N_ALPHABETS[name]
    if wrong or not files or (verify and not counts_ok):
        detail = f"; e.g. {wrong[0]} has drawers {sorted(files[wrong[0]])}" if wrong else ""
        raise UsageError(
            f"{src} holds {len(alphabets)} alphabets / {len(files)} characters, not "
            f"{N_ALPHABETS[name]} / {N_CHARACTERS[name]} with drawers 1..{DRAWERS} each{detail}; "
            f"point OMNIGLOT_ROOT at a complete copy of Omniglot"
        )


def decode_png(png: bytes, size: int, resize: str = "lanczos") -> np.ndarray:
    """One Omniglot PNG as uint8 [size, size], ink=255: the store's preprocessing.

    Anything else scored beside the store's images (the 20 one-shot runs) is
    decoded here too, so a model sees the same pixels either way.

    "lanczos": converted to greyscale *before* resizing, because Pillow silently
    resizes 1-bit images with nearest-neighbour whatever filter is asked for.
    "nearest": the 1-bit original resized with nearest-neighbour, exactly what
    ``Image.open(png).resize((size, size))`` gives the ProtoNets/MAML code;
    values 0 and 255 only.
    """
    check_resize(resize)
    with Image.open(io.BytesIO(png)) as im:
        if resize == "nearest":
            small = im if im.size == (size, size) else im.resize((size, size), Image.Resampling.NEAREST)
            grey = small.convert("L")
        else:
            grey = im.convert("L")
            if grey.size != (size, size):
                grey = grey.resize((size, size), Image.Resampling.LANCZOS)
        return 255 - np.asarray(grey, dtype=np.uint8)


def _content_key(sources: list[Path], image_size: int) -> str:
    digest = hashlib.sha1(f"v{CACHE_FORMAT}/{image_size}".encode())
    for src in sources:
        if src.is_dir():
            for p in sorted(src.rglob("*.png")):
                stat = p.stat()
                digest.update(f"{p.relative_to(src)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        else:
            digest.update(hashlib.md5(src.read_bytes()).digest())
    return digest.hexdigest()[:12]


def _read_cache(path: Path) -> OmniglotStore:
    with np.load(path, allow_pickle=False) as z:
        return OmniglotStore(
            images=z["images"],
            characters=tuple(str(c) for c in z["characters"]),
            background=z["background"],
            source=str(z["source"]),
            # Caches written before resize existed hold lanczos images.
            resize=str(z["resize"]) if "resize" in z.files else "lanczos",
        )


def _write_cache(path: Path, store: OmniglotStore) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        images=store.images,
        characters=np.asarray(store.characters),
        background=store.background,
        source=np.asarray(store.source),
        resize=np.asarray(store.resize),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:
        pass  # an unwritable cache only costs time on the next load
