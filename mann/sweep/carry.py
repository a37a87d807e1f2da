"""Checkpoints carried in the result store, so that a sweep's unfinished cells resume on a fresh clone.

Run folders (``runs/<name>/<cell>/``) are not committed; a sweep of runs that last
hours (the papers' recipes) sets ``carry_checkpoints = true`` and its store then
keeps ``checkpoints/<cell>/``: a copy of each unfinished cell's latest
``checkpoint.pt`` and its learning curves so far (``log.csv``, ``log_refit.csv``),
refreshed while the sweep runs and once more when it stops (even on Ctrl-C). On
a machine whose run folder lacks the checkpoint, the same command copies the
carried one in first and resumes from it; a finished cell's carried folder is
deleted. Copies are atomic, so a kill never leaves a torn one.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from episodes.files import atomic_write_bytes

CARRY_FOLDER = "checkpoints"
CHECKPOINT = "checkpoint.pt"
CARRIED = (CHECKPOINT, "log.csv", "log_refit.csv")


def carried_folder(results_folder: Path, cell_id: str) -> Path:
    return Path(results_folder) / CARRY_FOLDER / cell_id


def restore(results_folder: Path, run_dirs: dict[str, Path]) -> list[str]:
    """Copy each carried checkpoint into its cell's run folder where that has none; the ids restored."""
    restored = []
    for cell_id, run_dir in run_dirs.items():
        carried, local = carried_folder(results_folder, cell_id), Path(run_dir)
        if (carried / CHECKPOINT).exists() and not (local / CHECKPOINT).exists():
            local.mkdir(parents=True, exist_ok=True)
            for name in CARRIED:  # the logs too: the resumed run rewrites them from its checkpoint anyway
                if (carried / name).exists():
                    atomic_write_bytes(local / name, (carried / name).read_bytes())
            restored.append(cell_id)
    return restored


def drop(results_folder: Path, cell_id: str) -> None:
    """Delete a finished cell's carried folder (and the checkpoints folder once it is empty)."""
    carried = carried_folder(results_folder, cell_id)
    shutil.rmtree(carried, ignore_errors=True)
    if carried.parent.is_dir() and not any(carried.parent.iterdir()):
        carried.parent.rmdir()


class CheckpointMirror:
    """Copies every running cell's checkpoint and logs into the store every ``interval`` seconds, and at ``stop``."""

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
        """Copy each unfinished cell's files whose size or mtime changed since the last copy."""
        with self.lock:
            for cell_id, run_dir in self.run_dirs.items():
                if cell_id in self.finished or not (Path(run_dir) / CHECKPOINT).exists():
                    continue
                for name in CARRIED:
                    self._copy(Path(run_dir) / name, carried_folder(self.results_folder, cell_id) / name)

    def _copy(self, local: Path, target: Path) -> None:
        try:
            stat = local.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if self.seen.get(str(local)) == stamp:
                return
            data = local.read_bytes()
        except FileNotFoundError:  # not written yet, or replaced between stat and read: the next round
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
        self.seen[str(local)] = stamp

    def _loop(self) -> None:
        while not self.halt.wait(self.interval):
            self.sync()

    def stop(self) -> None:
        self.halt.set()
        if self.thread.is_alive():
            self.thread.join()
        self.sync()
