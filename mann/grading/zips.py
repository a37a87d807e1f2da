"""Read a submission's zip as untrusted: every limit is checked before any byte of a member is read.

A zip says how much it holds before anything is decompressed: the end record
counts its entries, the central directory gives each member's size before
and after compression. A zip bomb (50 KB that inflate to gigabytes) says so
too, or lies. So, in this order:

* the entry count of the end record, before the central directory is parsed
  (``entry_count``: a million entries cost the parser gigabytes);
* each member (``check_members``): no symbolic link, no path outside the zip,
  the declared size of each member and of all of them against the caps, the
  number of files, and the compression ratio of every member large enough to
  matter;
* while extracting (``copy_member``), a member that decompresses to more than
  it declared is refused, and so is one whose data does not match its CRC.

Every refusal is a UsageError naming the zip, the member, the limit and the
value, which grading turns into that student's zero.
"""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from episodes.errors import UsageError

# Deflate shrinks code, text and the homework's .npy deliverables 2 to 50
# times; only long runs of one byte (zeros: a bomb's filling) pass ~200, and
# deflate cannot pass ~1030. Small members may have any ratio: 4 MB of zeros
# cost nothing, and a 1 MB all-zero array in a repository is ordinary.
MAX_RATIO = 200
RATIO_FLOOR_BYTES = 4 << 20
# Entries of the central directory, files and folders, ignored ones (.git/)
# included: room for a repository's history beside the files that count.
MAX_ENTRIES = 50_000
CHUNK = 1 << 20
_END = b"PK\x05\x06"  # end of central directory record: 22 bytes and a comment of at most 65,535
_END64_LOCATOR = b"PK\x06\x07"  # 20 bytes just before it in a ZIP64 archive
_END64 = b"PK\x06\x06"


def entry_count(path: Path) -> int | None:
    """How many entries the zip's end record declares; None when it has no end
    record (then zipfile refuses the zip, saying why)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 22 - 0xFFFF))
        tail = f.read()
        # as zipfile looks: a record without comment ends the file, else the last signature
        at = len(tail) - 22 if tail[-22:-18] == _END and tail[-2:] == b"\0\0" else tail.rfind(_END)
        if at < 0 or len(tail) - at < 22:
            return None
        count = struct.unpack_from("<H", tail, at + 10)[0]
        if count != 0xFFFF or at < 20 or tail[at - 20:at - 16] != _END64_LOCATOR:
            return count
        # ZIP64: the real count is in the ZIP64 end record the locator points at
        f.seek(struct.unpack_from("<Q", tail, at - 12)[0])
        record = f.read(40)
        if len(record) < 40 or record[:4] != _END64:
            return count
        return struct.unpack_from("<Q", record, 32)[0]


def is_link(info: zipfile.ZipInfo) -> bool:
    """Whether the member is a symbolic link (unzip would recreate it as one)."""
    return stat.S_ISLNK(info.external_attr >> 16)


def check_members(path: Path, members: list[zipfile.ZipInfo], max_file: int, max_total: int,
                  max_files: int) -> None:
    """UsageError unless every member is a plain file inside the zip, within the
    caps by its declared sizes and not compressed suspiciously well."""
    links = [m.filename for m in members if is_link(m)]
    if links:
        raise UsageError(f"{path}: {listing(links)} {'is a symbolic link' if len(links) == 1 else 'are symbolic links'}"
                         f"; links are not graded (a link can reach files that are not the student's): zip the "
                         f"files themselves and resubmit")
    for m in members:
        rel = PurePosixPath(m.filename)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise UsageError(f"{path}: member {m.filename!r} points outside the zip; ask for a new upload")
    if len(members) > max_files:
        raise UsageError(f"{path}: holds {len(members)} files, more than the cap of {max_files}; "
                         f"ask for a zip of the submission's folder alone")
    total = 0
    for m in members:
        if m.file_size > max_file:
            raise UsageError(f"{path}: member {m.filename!r} declares {size_text(m.file_size)} uncompressed, "
                             f"over the cap of {size_text(max_file)} a file; ask for an upload without it")
        if m.file_size > RATIO_FLOOR_BYTES and m.file_size > MAX_RATIO * m.compress_size:
            ratio = f"{m.file_size / m.compress_size:,.0f}:1" if m.compress_size else "unbounded"
            raise UsageError(f"{path}: member {m.filename!r} declares {size_text(m.file_size)} from "
                             f"{size_text(m.compress_size)} compressed (ratio {ratio}, over the {MAX_RATIO}:1 "
                             f"allowed above {size_text(RATIO_FLOOR_BYTES)}): a zip bomb, or padding; "
                             f"ask for an upload without it")
        total += m.file_size
    if total > max_total:
        raise UsageError(f"{path}: its members declare {size_text(total)} uncompressed in all, over the cap of "
                         f"{size_text(max_total)}; ask for an upload without the large files")


def copy_member(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo, out: BinaryIO) -> None:
    """Decompress one member into ``out``, never more than it declared."""
    written = 0
    with _reading(path, info):
        src = z.open(info)
    with src:
        while True:
            with _reading(path, info):
                chunk = src.read(CHUNK)
            if not chunk:
                return
            written += len(chunk)
            # zipfile stops at the declared size today; counting keeps the
            # bound that check_members relied on whatever zipfile does
            if written > info.file_size:
                raise UsageError(f"{path}: member {info.filename!r} decompresses to more than the "
                                 f"{size_text(info.file_size)} its header declares; ask for a new upload")
            out.write(chunk)


@contextmanager
def _reading(path: Path, info: zipfile.ZipInfo):
    """Errors of reading the zip (not of writing the copy) as the student's UsageError."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as err:
        # a header that declares less than the data holds cuts it short of its CRC: "Bad CRC-32"
        raise UsageError(f"{path}: member {info.filename!r} cannot be read ({err}): its data does not match "
                         f"its header, or it is encrypted or corrupt; ask for a new upload") from None


def listing(names: list[str], shown: int = 5) -> str:
    """``'a', 'b' and 3 more`` for messages."""
    quoted = [repr(n) for n in names[:shown]]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(quoted) + more


def size_text(n: int) -> str:
    """A byte count for messages: exact, and in KB or MB when that is easier to read."""
    if n >= 1 << 20:
        return f"{n:,} bytes ({n / (1 << 20):.1f} MB)"
    if n >= 1 << 10:
        return f"{n:,} bytes ({n / (1 << 10):.1f} KB)"
    return f"{n:,} bytes"
