"""Small file helpers: atomic writes, so a kill never leaves a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from episodes.errors import UsageError


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def ensure_writable_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Create the folder if needed and prove it takes files; UsageError if not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise UsageError(
            f"{flag} {path}: cannot write there ({err.strerror}); choose a writable folder"
        ) from None
    return path
