"""Find submissions on disk, check their layout, and stage a clean copy of each.

A submission is a folder or a ``.zip`` holding the assignment's two files,
``load_data.py`` and ``mann.py``, in one of the layouts seen in the wild:

    submission/load_data.py, submission/mann.py
    src/submission/__init__.py, src/submission/load_data.py, src/submission/mann.py
    load_data.py, mann.py                      (at the top, as Gradescope stores uploads)

in a zip possibly below one top folder (``alice/submission/...``). A folder
that is not itself a submission but holds submission folders or zips is a
class: one submission per entry, named after it.

Staging copies regular files only (no symlinks, no ``__pycache__``), with size
caps, so the sandbox never sees anything but the student's own files.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from episodes.errors import UsageError

REQUIRED = ("load_data.py", "mann.py")
LAYOUTS = ("submission/", "src/submission/", "the top level")
EXPECTED = (
    f"expected {' and '.join(REQUIRED)} in submission/, in src/submission/ "
    f"(with __init__.py) or at the top level"
)
_PREFIXES = ("", "submission/", "src/submission/")
MAX_DEPTH = 4
MAX_FILE_BYTES = 64 << 20
MAX_TOTAL_BYTES = 256 << 20
MAX_FILES = 5000
_IGNORED = re.compile(r"(^|/)(__MACOSX|__pycache__|\.git)(/|$)")


@dataclass(frozen=True)
class Submission:
    """One student's submission.

    name: the student's key (folder name or zip stem), used for output folders.
    source: the folder or zip as given.
    code: the path inside ``source`` (posix, "" = top) of the folder holding
        load_data.py and mann.py; None when the submission cannot be graded.
    problem: why it cannot be graded ("" when it can).
    """

    name: str
    source: Path
    code: str | None
    problem: str = ""

    @property
    def gradable(self) -> bool:
        return self.code is not None and not self.problem


def locate(files: list[str], wrapped: bool = False) -> tuple[str | None, str]:
    """(folder holding both required files, problem) among relative posix paths.

    The folder must be one of the known layouts (the top, ``submission/``,
    ``src/submission/``), or, when ``wrapped`` (zips), one of them below a
    single top folder. The shallowest wins; two at the same depth are ambiguous.
    """
    present = {f for f in files if not _IGNORED.search(f)}
    candidates = []
    for path in present:
        pure = PurePosixPath(path)
        if pure.name != REQUIRED[0]:
            continue
        folder = "" if str(pure.parent) == "." else f"{pure.parent}/"
        if f"{folder}{REQUIRED[1]}" in present and _known_layout(folder, wrapped):
            candidates.append(folder)
    if not candidates:
        shown = sorted(present, key=lambda p: (p.count("/"), p))[:8]
        found = ", ".join(shown) if shown else "nothing"
        return None, f"not a submission: {EXPECTED}; found {found}"
    depth = min(c.count("/") for c in candidates)
    best = sorted(c for c in candidates if c.count("/") == depth)
    if len(best) > 1:
        return None, f"ambiguous submission: {' and '.join(best)} both hold {' and '.join(REQUIRED)}; keep one"
    return best[0], ""


def _known_layout(folder: str, wrapped: bool) -> bool:
    if folder in _PREFIXES:
        return True
    top, _, rest = folder.partition("/")
    return wrapped and bool(top) and rest in _PREFIXES


def folder_files(folder: Path) -> list[str]:
    """Relative posix paths of the regular files below ``folder`` (depth-capped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = Path(dirpath).relative_to(folder)
        if len(rel.parts) > MAX_DEPTH + 1:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                out.append((rel / name).as_posix())
        if len(out) > MAX_FILES:
            break
    return out


def zip_files(path: Path) -> list[str]:
    """Member paths of a zip (files only); UsageError when it is not a readable zip."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as err:
        raise UsageError(f"{path} is not a readable zip ({err}); ask for a new upload or unzip it by hand") from None
    if bad is not None:
        raise UsageError(f"{path}: member {bad} is corrupt (CRC mismatch); ask for a new upload")
    return [i.filename for i in infos if not i.is_dir() and not _is_link(i)]


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def inspect(path: Path, name: str | None = None) -> Submission:
    """A Submission for one folder or zip (problems recorded, never raised)."""
    name = name or (path.stem if path.suffix.lower() == ".zip" else path.name)
    try:
        files = zip_files(path) if path.is_file() else folder_files(path)
    except UsageError as err:
        return Submission(name, path, None, str(err))
    code, problem = locate(files, wrapped=path.is_file())
    return Submission(name, path, code, problem)


def find_submissions(paths: list[str | os.PathLike]) -> list[Submission]:
    """The submissions named by the command line: each path is a submission
    (folder or zip) or a class folder of them.

    Raises UsageError, before any grading, for a missing path, a path that is
    neither a submission nor a folder of them, an unreadable zip given
    directly, or two submissions with the same name. Problems of entries of a
    class folder (a stray folder, a corrupt zip) are recorded on the entry,
    which is then graded zero with that message.
    """
    if not paths:
        raise UsageError("no submission given; name a submission folder, a .zip, or a folder of them")
    found: list[Submission] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise UsageError(f"{path} does not exist; name a submission folder, a .zip, or a folder of them")
        if path.is_file():
            if path.suffix.lower() != ".zip":
                raise UsageError(f"{path} is a file, not a submission: give its folder or a .zip ({EXPECTED})")
            code, problem = locate(zip_files(path), wrapped=True)  # zip_files raises for an unreadable zip
            if problem:
                raise UsageError(f"{path}: {problem}")
            found.append(Submission(path.stem, path, code))
            continue
        one = inspect(path)
        if one.gradable:
            found.append(one)
            continue
        entries = [e for e in sorted(path.iterdir()) if not e.name.startswith((".", "__"))
                   and (e.is_dir() or e.suffix.lower() == ".zip") and not e.is_symlink()]
        members = [inspect(e) for e in entries]
        if not any(m.gradable for m in members):
            raise UsageError(f"{path} is {one.problem}, nor a folder of submission folders or zips")
        found.extend(members)
    check_names(found)
    return found


def check_names(submissions: list[Submission]) -> None:
    seen: dict[str, Path] = {}
    for s in submissions:
        key = s.name.lower()
        if key in seen:
            raise UsageError(
                f"two submissions are named {s.name!r}: {seen[key]} and {s.source}; "
                f"rename one (names become output folders and gradebook rows)"
            )
        seen[key] = s.source


def stage(submission: Submission, dest: Path) -> tuple[Path, Path]:
    """Copy the submission's regular files into ``dest``.

    Returns (code folder, whole submission root) inside ``dest``. Raises
    UsageError for a zip with unsafe paths or over the size caps.
    """
    if submission.code is None:
        raise UsageError(f"{submission.source}: {submission.problem}")
    dest.mkdir(parents=True, exist_ok=True)
    if submission.source.is_file():
        _extract(submission.source, dest)
    else:
        total = 0
        for rel in folder_files(submission.source):
            src = submission.source / rel
            size = src.stat().st_size
            total += size
            if size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
                raise UsageError(f"{submission.source}: {rel} makes the submission larger than the caps "
                                 f"({MAX_FILE_BYTES >> 20} MB a file, {MAX_TOTAL_BYTES >> 20} MB in all)")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    return dest / submission.code, dest


def _extract(path: Path, dest: Path) -> None:
    total = 0
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.is_dir() or _is_link(info) or _IGNORED.search(info.filename):
                continue
            rel = PurePosixPath(info.filename)
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise UsageError(f"{path}: member {info.filename!r} points outside the zip; ask for a new upload")
            total += info.file_size
            if info.file_size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES or len(z.infolist()) > MAX_FILES:
                raise UsageError(f"{path}: larger than the caps ({MAX_FILE_BYTES >> 20} MB a file, "
                                 f"{MAX_TOTAL_BYTES >> 20} MB and {MAX_FILES} files in all)")
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
