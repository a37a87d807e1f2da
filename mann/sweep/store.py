"""The result store of a sweep: ``results/<name>/``, safe against a kill at any moment.

Files:
  sweep.json       the sweep's cells (id → config) and how it was described; a rerun
                   with another grid is refused instead of mixing two sweeps' rows
  results.jsonl    one JSON row per finished (or failed) cell, appended as each
                   cell finishes: one ``write`` of a whole line, then ``fsync``
  sessions.jsonl   how each ``mann sweep`` invocation went: a line when it starts, after
                   each cell it finishes and when it ends (command, wall time so far,
                   cells run); the last line of an invocation wins, so one killed
                   mid-way still counts up to its last finished cell
  logs/<cell>.csv  the cell's learning curve (its run folder's log.csv)

A kill can at worst leave a torn last line in a ``.jsonl`` file (a line without
its newline): readers ignore it and the next append cuts it off first. The
last row of a cell wins, so a failed cell that later succeeds counts as finished.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from episodes.errors import UsageError
from episodes.files import atomic_write_json, atomic_write_text
from mann.training.config import with_legacy_fields
from mann.sweep.grid import Cell

SPEC_FILE = "sweep.json"
ROWS_FILE = "results.jsonl"
SESSIONS_FILE = "sessions.jsonl"
LOCK_FILE = ".lock"
# Stores written before sweeps had a models axis hold MANN cells without these fields: they had these values.
LEGACY_IDENTITY = {"model": "mann", "lr_halve_every": 0, "train_ways": None, "fast_lr": None, "adapt_steps": None,
                   "test_adapt_steps": None, "first_order": None, "train_queries": None, "val_queries": None, "patience": 0,
                   "refit": False, "also_test_ways": [], "resize": "lanczos", "maml_impl": None,
                   "published_learner": None, "distinct_characters": False}


def legacy_identity(identity: dict) -> dict:
    """A stored cell's identity with the fields it predates filled in as they were then: a run
    folder's rules (:func:`mann.training.config.with_legacy_fields`), then the MANN's values."""
    return {**LEGACY_IDENTITY, **identity, **with_legacy_fields(identity)}


def read_jsonl(path: Path) -> list[dict]:
    """Every complete row of a JSON-lines file; a torn last line (no newline) is ignored."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    rows = []
    for number, line in enumerate(complete.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise UsageError(
                f"{path} line {number} is not a JSON row (the file was edited by hand?); delete that line and rerun"
            ) from None
    return rows


def append_jsonl(path: Path, row: dict) -> None:
    """Append one row as a single write + fsync, first cutting off a torn last line left by a kill."""
    line = (json.dumps(row, sort_keys=True, allow_nan=True) + "\n").encode()
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = os.pread(fd, size, 0)
            os.ftruncate(fd, data.rfind(b"\n") + 1)
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ResultStore:
    """One sweep's folder of results. Reading never writes; ``open_for`` is the first write."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @property
    def rows_path(self) -> Path:
        return self.folder / ROWS_FILE

    def is_sweep(self) -> bool:
        return (self.folder / SPEC_FILE).exists()

    def spec(self) -> dict:
        return json.loads((self.folder / SPEC_FILE).read_text())

    def check_compatible(self, cells: list[Cell]) -> None:
        """UsageError, before any work, if the folder holds anything but this sweep's results."""
        if not self.folder.exists():
            return
        if not self.folder.is_dir():
            raise UsageError(f"results folder {self.folder} is a file; pass --name (or --results) to choose a folder")
        if not self.is_sweep():
            others = sorted(p.name for p in self.folder.iterdir() if not p.name.startswith("."))
            if others:
                raise UsageError(
                    f"results folder {self.folder} holds {', '.join(others[:4])}{', ...' if len(others) > 4 else ''} "
                    f"but no {SPEC_FILE}: it is not a sweep's store; pass --name NEW to write elsewhere"
                )
            return
        saved = {cell: legacy_identity(identity) for cell, identity in self.spec().get("cells", {}).items()}
        wanted = {c.id: c.identity() for c in cells}
        if saved != wanted:
            raise UsageError(
                f"results folder {self.folder} holds another sweep ({describe_difference(saved, wanted)}); "
                f"rerun the command that made it, or pass --name NEW to start a separate sweep"
            )

    @contextmanager
    def open_for(self, cells: list[Cell], description: dict) -> Iterator["ResultStore"]:
        """Create the folder, take its lock (one sweep writes at a time), record the grid."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(
                    f"results folder {self.folder} is being written by another running `mann sweep`; "
                    f"wait for it to finish or pass --name NEW"
                ) from None
            self.check_compatible(cells)
            if not self.is_sweep():
                atomic_write_json(
                    self.folder / SPEC_FILE, {**description, "cells": {c.id: c.identity() for c in cells}}
                )
            yield self
        finally:
            os.close(fd)

    def rows(self) -> list[dict]:
        """Every row ever appended, oldest first (a retried cell appears more than once)."""
        return read_jsonl(self.rows_path)

    def latest(self) -> dict[str, dict]:
        """cell id → its last row."""
        return {row["cell"]: row for row in self.rows()}

    def finished(self) -> set[str]:
        return {cell for cell, row in self.latest().items() if row.get("status") == "ok"}

    def add(self, row: dict, log_csv: str | None) -> None:
        """Record a finished cell: its learning curve first, then its row (the row marks it done)."""
        if log_csv:
            logs = self.folder / "logs"
            logs.mkdir(exist_ok=True)
            atomic_write_text(logs / f"{row['cell']}.csv", log_csv)
        append_jsonl(self.rows_path, row)

    def add_session(self, session: dict) -> None:
        append_jsonl(self.folder / SESSIONS_FILE, session)

    def sessions(self) -> list[dict]:
        """One record per invocation, oldest first: its last line (a line without a ``session`` id stands alone)."""
        last: dict[object, dict] = {}
        for number, line in enumerate(read_jsonl(self.folder / SESSIONS_FILE)):
            last[line.get("session", number)] = line  # dicts keep first-insertion order
        return list(last.values())


def describe_difference(saved: dict, wanted: dict) -> str:
    """A short account of how two {cell id: config} maps differ, for an error message."""
    only_saved = sorted(set(saved) - set(wanted))
    only_wanted = sorted(set(wanted) - set(saved))
    parts = [f"{len(saved)} cells there, {len(wanted)} in this command"]
    if only_saved:
        parts.append(f"e.g. {only_saved[0]} only there")
    if only_wanted:
        parts.append(f"e.g. {only_wanted[0]} only here")
    for cell in sorted(set(saved) & set(wanted)):
        diff = [k for k in wanted[cell] if saved[cell].get(k) != wanted[cell][k]]
        if diff:
            k = diff[0]
            parts.append(f"{cell}: {k}={saved[cell].get(k)!r} there vs {wanted[cell][k]!r} here")
            break
    return "; ".join(parts)
