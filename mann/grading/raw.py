"""Read what a submission's process left behind, trusting none of it.

The probe writes ``info.json`` and ``result.npz``, but the submission runs in
the same process and may replace them with anything: a FIFO (an ``open``
that never returns), a link to a file of the grader, JSON nested 100,000 deep,
a list where a dict belongs, an ``.npy`` header claiming 10^14 elements.
Every reader here checks before it reads or allocates: a regular file with
one link, at most ``cap`` bytes, bounded JSON depth and types, and for each
array its header (dtype, number of dimensions, element count, byte size)
before any byte of its data. Any violation raises :class:`RawOutputError`
with a sentence saying what was wrong, which the runner turns into that
test's zero.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

MAX_DEPTH = 12  # the probe's info.json nests 5 deep at most
MAX_ARRAYS = 256
MAX_DIMS = 8
HEADER_CAP = 10_000  # bytes of an .npy header (numpy's own default)
# bool, signed and unsigned integers, floats, unicode strings: what the probes
# save. No objects (pickles), records, complex numbers, dates or raw bytes.
ARRAY_KINDS = "biufU"


class RawOutputError(ValueError):
    """A raw output that cannot be used: its message says why."""


def open_regular(path: Path) -> IO[bytes] | None:
    """The file at ``path`` opened for reading, or None when there is none.

    Refuses a symlink (it could point at a grader file), anything that is not
    a regular file (a FIFO blocks the reader forever, a device never ends) and
    a file with several hard links (another file's contents under this name).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        if os.path.islink(path):
            raise RawOutputError(f"{Path(path).name} is a symbolic link, not a file the probe wrote") from None
        raise RawOutputError(f"{Path(path).name} cannot be opened ({err.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RawOutputError(f"{Path(path).name} is not a regular file")
    if info.st_nlink != 1:
        os.close(fd)
        raise RawOutputError(f"{Path(path).name} has {info.st_nlink} hard links (a link to another file)")
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, cap: int) -> bytes | None:
    """All of a regular file, or None when there is none; RawOutputError past ``cap`` bytes."""
    f = open_regular(path)
    if f is None:
        return None
    with f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise RawOutputError(f"{Path(path).name} is larger than the {cap} bytes allowed")
    return data


def read_head(path: Path, limit: int) -> tuple[str, int]:
    """(the first ``limit`` bytes as text, the file's full size); ("", 0) when
    there is no such regular file (a printed log is never worth a zero)."""
    try:
        f = open_regular(path)
    except RawOutputError as err:
        return f"[the output log could not be read: {err}]", 0
    if f is None:
        return "", 0
    with f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(limit)
    return head.decode("utf-8", errors="replace"), size


# --- JSON -------------------------------------------------------------------

def parse_json(data: bytes, name: str, max_depth: int = MAX_DEPTH):
    """The JSON value of ``data``, nested at most ``max_depth`` deep."""
    try:
        value = json.loads(data)
    except RecursionError:  # the C parser recurses once per level
        raise RawOutputError(f"{name} nests deeper than Python can parse") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise RawOutputError(f"{name} is not valid JSON ({str(err)[:120]})") from None
    depth_of(value, name, max_depth)
    return value


def depth_of(value, name: str, max_depth: int) -> int:
    """The nesting depth of a parsed JSON value (iterative: never recurses)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise RawOutputError(f"{name} nests more than {max_depth} levels deep")
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def read_json(path: Path, cap: int, max_depth: int = MAX_DEPTH):
    """The JSON value in ``path`` (None when there is no file), bounded in bytes and depth."""
    data = read_bytes(path, cap)
    return None if data is None else parse_json(data, Path(path).name, max_depth)


# --- arrays -------------------------------------------------------------------

def array_header(fp: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy stream at ``fp``, checked
    against the kinds and bounds above; the data is not read."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp, max_header_size=HEADER_CAP)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp, max_header_size=HEADER_CAP)
        else:
            raise RawOutputError(f"{where}: .npy format version {version} is not one numpy writes for these arrays")
    except RawOutputError:
        raise
    except (ValueError, EOFError, OSError, SyntaxError, TypeError, zipfile.BadZipFile, zlib.error) as err:
        raise RawOutputError(f"{where}: not a readable .npy array header ({str(err)[:160]})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in ARRAY_KINDS:
        raise RawOutputError(f"{where}: arrays of dtype {dtype} are not accepted (numbers or strings only)")
    if dtype.itemsize == 0:
        raise RawOutputError(f"{where}: dtype {dtype} has zero-size elements")
    if len(shape) > MAX_DIMS or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise RawOutputError(f"{where}: shape {list(shape)[:MAX_DIMS + 1]} is not a shape of at most {MAX_DIMS} "
                             f"non-negative sizes")
    return shape, fortran, dtype


def read_npy(fp: IO[bytes], cap: int, where: str) -> np.ndarray:
    """The next array of the .npy stream ``fp``, refused before any allocation
    when its header declares more than ``cap`` bytes."""
    shape, fortran, dtype = array_header(fp, where)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > cap:
        raise RawOutputError(f"{where}: the header declares shape {list(shape)} of {dtype} ({nbytes} bytes), "
                             f"more than the {cap} bytes allowed")
    try:
        data = fp.read(nbytes)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise RawOutputError(f"{where}: the array's data cannot be read ({str(err)[:160]})") from None
    if len(data) != nbytes:
        raise RawOutputError(f"{where}: truncated: {len(data)} of the {nbytes} bytes its header declares")
    # bytearray: a writable copy, so a judge may modify what it reads
    return np.frombuffer(bytearray(data), dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def read_npz(path: Path, cap: int) -> dict[str, np.ndarray]:
    """The arrays of an .npz ({} when there is no file): at most MAX_ARRAYS
    members, ``cap`` bytes in all, as declared and as read."""
    f = open_regular(path)
    if f is None:
        return {}
    name = Path(path).name
    with f:
        if os.fstat(f.fileno()).st_size > cap:
            raise RawOutputError(f"{name} is larger than the {cap} bytes allowed")
        try:
            archive = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise RawOutputError(f"{name} is not a readable .npz archive ({str(err)[:160]})") from None
        with archive:
            members = archive.infolist()
            if len(members) > MAX_ARRAYS:
                raise RawOutputError(f"{name} holds {len(members)} arrays, more than {MAX_ARRAYS}")
            declared = sum(m.file_size for m in members)
            if declared > cap:
                raise RawOutputError(f"{name} expands to {declared} bytes, more than the {cap} allowed")
            arrays, left = {}, cap
            for member in members:
                if not member.filename.endswith(".npy") or member.is_dir():
                    raise RawOutputError(f"{name}: member {member.filename[:80]!r} is not an .npy array")
                key, where = member.filename[:-4], f"{name}:{member.filename[:80]}"
                try:
                    with archive.open(member) as fp:
                        array = read_npy(fp, left, where)
                        if fp.read(1):
                            raise RawOutputError(f"{where}: data after the array")
                except RawOutputError:
                    raise
                except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError,
                        RuntimeError, io.UnsupportedOperation, zlib.error) as err:
                    raise RawOutputError(f"{where}: cannot be read ({str(err)[:160]})") from None
                left -= array.nbytes
                arrays[key] = array
    return arrays
