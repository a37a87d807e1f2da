"""Checkpoints carried in the result store, so that a sweep's unfinished cells resume on a fresh clone.

Run folders (``runs/<name>/<cell>/``) are not committed; a sweep of runs that last
hours (the papers' recipes) sets ``carry_checkpoints = true`` and its store then
keeps ``checkpoints/<cell>.pt``: a copy of each unfinished cell's latest
checkpoint, refreshed while the sweep runs and once more when it stops (even on
Ctrl-C). On a machine whose run folder lacks the checkpoint, the same command
copies the carried one in first and resumes from it; a finished cell's carried
copy is deleted. Copies are atomic, so a kill never leaves a torn one.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from episodes.files import atomic_write_bytes

CARRY_FOLDER = "checkpoints"
CHECKPOINT = "checkpoint.pt"


def carried_path(results_folder: Path, cell_id: str) -> Path:
    return Path(results_folder) / CARRY_FOLDER / f"{cell_id}.pt"


def restore(results_folder: Path, run_dirs: dict[str, Path]) -> list[str]:
    """Copy each carried checkpoint into its cell's run folder where that has none; the ids restored."""
    restored = []
    for cell_id, run_dir in run_dirs.items():
        carried, local = carried_path(results_folder, cell_id), Path(run_dir) / CHECKPOINT
        if carried.exists() and not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(local, carried.read_bytes())
            restored.append(cell_id)
    return restored


def drop(results_folder: Path, cell_id: str) -> None:
    """Delete a finished cell's carried checkpoint (and the folder once it is empty)."""
    carried = carried_path(results_folder, cell_id)
    carried.unlink(missing_ok=True)
    if carried.parent.is_dir() and not any(carried.parent.iterdir()):
        shutil.rmtree(carried.parent, ignore_errors=True)


class CheckpointMirror:
    """Copies every running cell's checkpoint into the store every ``interval`` seconds, and at ``stop``."""

    def __init__(self, results_folder: Path, run_dirs: dict[str, Path], interval: float = 60.0) -> None:
        self.results_folder = Path(results_folder)
        self.run_dirs = dict(run_dirs)
        self.interval = interval
        self.seen: dict[str, tuple[int, int]] = {}
        self.finished: set[str] = set()
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="checkpoint-mirror", daemon=True)

    def start(self) -> "CheckpointMirror":
        self.thread.start()
        return self

    def cell_finished(self, cell_id: str) -> None:
        with self.lock:
            self.finished.add(cell_id)
            drop(self.results_folder, cell_id)

    def sync(self) -> None:
        """Copy each unfinished cell's checkpoint whose size or mtime changed since the last copy."""
        with self.lock:
            for cell_id, run_dir in self.run_dirs.items():
                local = Path(run_dir) / CHECKPOINT
                if cell_id in self.finished or not local.exists():
                    continue
                stat = local.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
                if self.seen.get(cell_id) == stamp:
                    continue
                try:
                    data = local.read_bytes()
                except FileNotFoundError:  # replaced between stat and read: the next round copies it
                    continue
                target = carried_path(self.results_folder, cell_id)
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, data)
                self.seen[cell_id] = stamp

    def _loop(self) -> None:
        while not self.halt.wait(self.interval):
            self.sync()

    def stop(self) -> None:
        self.halt.set()
        if self.thread.is_alive():
            self.thread.join()
        self.sync()
