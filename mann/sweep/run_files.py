"""A run folder as bytes, so that it can travel between machines that share no disk.

A run folder's own files are the regular files at its top level whose names do not
start with a dot (those are an atomic write's temporary file or a writability probe):
training writes nothing else (:mod:`mann.training.run_folder`). ``FolderWatch`` says
which of them changed since it last looked, by content: a file replaced twice within
the file system's timestamp granularity (a few milliseconds) with one of the same
size (every checkpoint of a model is) would look unchanged to its size and mtime.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from episodes.files import atomic_write_bytes
from mann.training.events import is_events_file, update_events_file

CHECKPOINT = "checkpoint.pt"


def is_run_file(name: str) -> bool:
    return bool(name) and not name.startswith(".") and Path(name).name == name


def read_files(folder: str | Path) -> dict[str, bytes]:
    """name → contents of the folder's run files ({} for a folder that does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    files = {}
    for path in sorted(folder.iterdir()):
        if is_run_file(path.name) and path.is_file() and not path.is_symlink():
            try:
                files[path.name] = path.read_bytes()
            except FileNotFoundError:  # replaced between the listing and the read: the next look has it
                continue
    return files


def write_files(folder: str | Path, files: dict[str, bytes]) -> None:
    """Write each file into the folder atomically, the checkpoint last (its logs are then never older);
    TensorBoard's events files grow in place instead, for a TensorBoard following them (mann.training.events)."""
    folder = Path(folder)
    bad = [name for name in files if not is_run_file(name)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not the name of a run folder's file (a plain name, no leading dot)")
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda n: (n == CHECKPOINT, n)):
        if is_events_file(name):
            update_events_file(folder / name, files[name])
        else:
            atomic_write_bytes(folder / name, files[name])


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class FolderWatch:
    """The run files of ``folder`` that changed since the last look (the first look: since it was made)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.seen = {name: digest(data) for name, data in read_files(self.folder).items()}

    def changed(self) -> dict[str, bytes]:
        out = {}
        for name, data in read_files(self.folder).items():
            stamp = digest(data)
            if self.seen.get(name) != stamp:
                self.seen[name] = stamp
                out[name] = data
        return out
