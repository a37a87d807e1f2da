"""TensorBoard events beside log.csv, for ``tensorboard --logdir runs/<sweep>`` (optional).

When the ``tensorboard`` package is importable (``pip install 'mann-bench[tensorboard]'``),
every write of a run's log also writes its rows as scalars to an events file in the
run folder: phase 1's ``log.csv`` as ``train/loss``, ``train/accuracy``, ``val/loss``,
``val/accuracy`` in ``events.out.tfevents.mann``, the refit's ``log_refit.csv`` as
``refit/loss`` and ``refit/accuracy`` in ``events.out.tfevents.mann-refit``. Without the
package nothing is written and nothing else changes.

The file's contents are made from the log's rows alone, whole, each time (a few hundred
rows), rather than by a ``SummaryWriter`` appending to a file of its own: a resumed run
then has the events of the rows its checkpoint kept and no duplicates of the steps it
trains again, and the file has one fixed name, so a copy of it on another machine
(a Ray cell's, on the sweep's driver) updates the old one instead of sitting beside it.
The same rows always give the same bytes, so new rows only add bytes at the end, and
those are appended to the file in place (:func:`update_events_file`): TensorBoard's
reader keeps the file open and reads on from where it stopped, and would never see a
file replaced by a new one. Only a resume, which may drop rows, replaces it whole.
An event's wall time is the row's ``wall_s`` (seconds of training in that phase), so
TensorBoard's *relative* axis shows training time; its *wall* axis shows dates near 1970.
"""

from __future__ import annotations

import os
from pathlib import Path

from episodes.files import atomic_write_bytes

EVENTS_FILES = {1: "events.out.tfevents.mann", 2: "events.out.tfevents.mann-refit"}
# (log.csv column, tag) of each phase's scalars.
TAGS = {
    1: (("train_loss", "train/loss"), ("train_acc", "train/accuracy"), ("val_loss", "val/loss"),
        ("val_acc", "val/accuracy")),
    2: (("train_loss", "refit/loss"), ("train_acc", "refit/accuracy")),
}


def tensorboard_modules():
    """(event_pb2, summary_pb2, masked_crc32c) from the tensorboard package, or None when it is absent."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    except ImportError:
        return None
    return event_pb2, summary_pb2, masked_crc32c


def write_events(folder: Path, rows: list[dict], phase: int) -> Path | None:
    """Write the phase's log rows as the run folder's events file; its path, or None without tensorboard."""
    modules = tensorboard_modules()
    if modules is None:
        return None
    event_pb2, summary_pb2, masked_crc32c = modules

    def record(event) -> bytes:
        # A TFRecord: length, its masked CRC, the serialized event, its masked CRC (little-endian).
        data = event.SerializeToString(deterministic=True)
        header = len(data).to_bytes(8, "little")
        return (header + masked_crc32c(header).to_bytes(4, "little") + data
                + masked_crc32c(data).to_bytes(4, "little"))

    records = [record(event_pb2.Event(wall_time=0.0, file_version="brain.Event:2"))]
    for row in rows:
        values = [summary_pb2.Summary.Value(tag=tag, simple_value=float(row[column]))
                  for column, tag in TAGS[phase] if row.get(column) not in (None, "")]
        if values:
            records.append(record(event_pb2.Event(wall_time=float(row.get("wall_s") or 0.0), step=int(row["step"]),
                                                  summary=summary_pb2.Summary(value=values))))
    path = Path(folder) / EVENTS_FILES[phase]
    update_events_file(path, b"".join(records))
    return path


def is_events_file(name: str) -> bool:
    return name in EVENTS_FILES.values()


def update_events_file(path: str | Path, data: bytes) -> None:
    """Make the file hold ``data``: by appending the new end when the file holds the start of it, else by
    replacing it whole (atomically). A kill mid-append leaves a torn last record, which TensorBoard's
    reader waits out and the next update replaces, as the file is then no longer a start of its data."""
    path = Path(path)
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    if not old or not data.startswith(old):
        atomic_write_bytes(path, data)
    elif len(data) > len(old):
        with path.open("ab") as f:
            f.write(data[len(old):])
            f.flush()
            os.fsync(f.fileno())
