"""Find submissions on disk, check their layout, and stage a clean copy of each.

A submission is a folder or a ``.zip`` holding the assignment's two files,
``load_data.py`` and ``mann.py``, together in exactly one place:

    load_data.py, mann.py                      (at the top, as Gradescope stores uploads)
    .../submission/load_data.py, .../submission/mann.py
                                               (a folder named submission at any depth:
                                                submission/, src/submission/ with __init__.py,
                                                hw1/submission/, XCS330-PS2/src/submission/...)

and, in a zip, also in a top folder (``alice/load_data.py``).
Two such places make the submission ambiguous, and it is graded zero with
both named; the 2021/2022 layout (``load_data.py`` with ``hw1.py``, no
``mann.py``) is refused with what to rename. Sibling files of the two travel
with them (``rnn.py`` that mann.py imports).

A folder holding the files at its top, in ``submission/`` or in
``src/submission/`` is one submission. Otherwise it is a class (one
submission per entry, named after it) when it holds a zip or when two or more
of its entries hold a submission; else it is one submission found deeper
(a repository: ``hw1/submission/``). ``single`` (``--results-json``) makes
every folder one submission.

Staging copies regular files only (no symlinks, no ``__pycache__``), with size
caps, so the sandbox never sees anything but the student's own files. A zip
is checked by zips.py before any byte of it is decompressed.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from episodes.errors import UsageError
from mann.grading import zips

REQUIRED = ("load_data.py", "mann.py")
LEGACY = "hw1.py"  # where the 2021/2022 homework kept MANN
FOLDER = "submission"
EXPECTED = (
    f"expected {' and '.join(REQUIRED)} in submission/ (at any depth: src/submission/ with __init__.py, "
    f"hw1/submission/...) or at the top level"
)
_PREFIXES = ("", "submission/", "src/submission/")
MAX_DEPTH = 12
MAX_FILE_BYTES = 64 << 20
MAX_TOTAL_BYTES = 256 << 20
MAX_FILES = 5000
# never code of the submission: skipped when locating and staging (a copy of
# the data tree alone is 32,460 files; the sandbox links the grader's instead)
_IGNORED = re.compile(r"(^|/)(__MACOSX|__pycache__|\.git|\.venv|venv|\.ipynb_checkpoints|omniglot_resized)(/|$)")


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
    recognised: bool = True  # False: no trace of the homework (not a submission at all)

    @property
    def gradable(self) -> bool:
        return self.code is not None and not self.problem


def locate(files: list[str], wrapped: bool = False) -> tuple[str | None, str, bool]:
    """(folder holding both required files, problem, recognised) among relative posix paths.

    The folder is the top, any folder named ``submission``, or, when
    ``wrapped`` (zips), a top folder. Exactly one must qualify; two
    or more are ambiguous. recognised is False when nothing of the homework
    was found (neither the files nor the 2021/2022 layout).
    """
    present = {f for f in files if not _IGNORED.search(f)}

    def folders_with(*names: str) -> list[str]:
        found = []
        for path in present:
            pure = PurePosixPath(path)
            if pure.name != names[0]:
                continue
            folder = "" if str(pure.parent) == "." else f"{pure.parent}/"
            qualifies = folder == "" or pure.parent.name == FOLDER or (wrapped and folder.count("/") == 1)
            if qualifies and all(f"{folder}{n}" in present for n in names[1:]):
                found.append(folder)
        return sorted(found, key=lambda f: (f.count("/"), f))

    candidates = folders_with(*REQUIRED)
    if len(candidates) == 1:
        return candidates[0], "", True
    if candidates:
        named = " and ".join(where(c) for c in candidates)
        return None, (f"ambiguous submission: {named} each hold {' and '.join(REQUIRED)}; keep one of them "
                      f"(delete or rename the other folders) and resubmit"), True
    legacy = folders_with(REQUIRED[0], LEGACY)  # none of them holds mann.py, or it would be a candidate
    if legacy:
        folder = legacy[0]
        return None, (f"{where(folder)} holds {REQUIRED[0]} and {LEGACY} but no {REQUIRED[1]}: the 2021/2022 "
                      f"homework's layout (MANN in {LEGACY}); this grader grades the 2023-2024 one, with MANN and "
                      f"loss_function in {REQUIRED[1]}: rename {folder}{LEGACY} to {folder}{REQUIRED[1]} "
                      f"(its training code may stay) and resubmit"), True
    shown = sorted(present, key=lambda p: (p.count("/"), p))[:8]
    found = ", ".join(shown) if shown else "nothing"
    return None, f"not a submission: {EXPECTED}; found {found}", False


def where(folder: str) -> str:
    """A located folder for messages: ``hw1/submission/`` or ``the top level``."""
    return folder or "the top level"


def own_layout(folder: Path) -> bool:
    """Whether ``folder`` holds load_data.py at its top, in submission/ or in src/submission/."""
    return any((folder / prefix / REQUIRED[0]).is_file() for prefix in _PREFIXES)


def folder_files(folder: Path) -> list[str]:
    """Relative posix paths of the regular files below ``folder``, shallowest
    first (breadth-first, so a cap never hides a shallow file behind a deep
    tree), at most MAX_FILES of them, MAX_DEPTH folders down; no symlinks,
    nothing that _IGNORED names."""
    out: list[str] = []
    level = [Path(".")]
    for _ in range(MAX_DEPTH + 1):
        below = []
        for rel in level:
            try:
                entries = sorted(os.scandir(folder / rel), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                path = (rel / entry.name).as_posix()
                if _IGNORED.search(path) or entry.is_symlink():
                    continue
                if entry.is_dir():
                    below.append(rel / entry.name)
                elif entry.is_file():
                    out.append(path)
                    if len(out) >= MAX_FILES:
                        return out
        level = below
    return out


def zip_listing(path: Path) -> tuple[list[str], str]:
    """(paths of the zip's files, problem): the files ``locate`` looks among, and
    why the zip is not extracted ("" when it can be: zips.check_members).

    Raises UsageError when it is not a readable zip or lists more than
    zips.MAX_ENTRIES entries. Nothing of a member is read here: a CRC error
    shows when the member is extracted.
    """
    with open_zip(path) as z:
        members = _members(z.infolist())
    try:
        zips.check_members(path, members, MAX_FILE_BYTES, MAX_TOTAL_BYTES, MAX_FILES)
    except UsageError as err:
        return [m.filename for m in members], str(err)
    return [m.filename for m in members], ""


def open_zip(path: Path) -> zipfile.ZipFile:
    """The zip, opened once its end record shows at most zips.MAX_ENTRIES entries;
    UsageError when it lists more or is not a readable zip."""
    try:
        entries = zips.entry_count(path)
        if entries is None or entries <= zips.MAX_ENTRIES:
            return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as err:
        raise UsageError(f"{path} is not a readable zip ({err}); ask for a new upload or unzip it by hand") from None
    raise UsageError(f"{path}: lists {entries:,} entries, more than the {zips.MAX_ENTRIES:,} the grader reads; "
                     f"ask for a zip of the submission's folder alone")


def _members(infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The members that are staged or refused: not folders, nothing that _IGNORED names."""
    return [i for i in infos if not i.is_dir() and not _IGNORED.search(i.filename)]


def inspect(path: Path, name: str | None = None) -> Submission:
    """A Submission for one folder or zip (problems recorded, never raised)."""
    name = name or (path.stem if path.suffix.lower() == ".zip" else path.name)
    try:
        files, problem = zip_listing(path) if path.is_file() else (folder_files(path), "")
    except UsageError as err:
        return Submission(name, path, None, str(err))
    code, layout_problem, recognised = locate(files, wrapped=path.is_file())
    # a folder or zip with no trace of the homework is "not a submission" whatever else is wrong with it
    return Submission(name, path, code, (problem if recognised else "") or layout_problem, recognised)


def class_members(folder: Path) -> list[Submission]:
    """One Submission per entry (folder or zip) of a class folder."""
    entries = [e for e in sorted(folder.iterdir()) if not e.name.startswith((".", "__"))
               and (e.is_dir() or e.suffix.lower() == ".zip") and not e.is_symlink()]
    return [inspect(e) for e in entries]


def find_submissions(paths: list[str | os.PathLike], single: bool = False) -> list[Submission]:
    """The submissions named by the command line: each path is a submission
    (folder or zip) or, unless ``single``, a class folder of them (see the
    module's docstring for how the two are told apart).

    Raises UsageError, before any grading, for a missing path, a path that is
    neither a submission nor a folder of them, an unreadable zip given
    directly, or two submissions with the same name. Problems of a submission
    that was found (two candidate folders, the 2021/2022 layout, a zip over
    the caps) and of
    entries of a class folder (a stray folder, a corrupt zip) are recorded on
    it, and it is then graded zero with that message.
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
            files, problem = zip_listing(path)  # raises for an unreadable zip
            code, layout_problem, recognised = locate(files, wrapped=True)
            if not recognised:
                raise UsageError(f"{path}: {layout_problem}")
            found.append(Submission(path.stem, path, code, problem or layout_problem))
            continue
        if not single and not own_layout(path):
            members = class_members(path)
            if any(m.source.is_file() for m in members) or sum(m.recognised for m in members) >= 2:
                found.extend(members)
                continue
        one = inspect(path)
        if not one.recognised:
            raise UsageError(f"{path} is {one.problem}" + ("" if single else ", nor a folder of submission folders or zips"))
        found.append(one)
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
    UsageError for a zip with unsafe paths, members over the caps or
    unreadable data (it is checked again: it may have changed since it was found).
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
    """Extract the zip's members into ``dest``, checked again (it may have
    changed since it was found), each decompressed within its declared size."""
    with open_zip(path) as z:
        members = _members(z.infolist())
        zips.check_members(path, members, MAX_FILE_BYTES, MAX_TOTAL_BYTES, MAX_FILES)
        for info in members:
            target = dest.joinpath(*PurePosixPath(info.filename).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                zips.copy_member(path, z, info, out)
