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

Staging copies regular files only (no ``__pycache__``), with size caps, so
the sandbox never sees anything but the student's own files. A symbolic or
hard link in a submission (a folder's, or a zip's link entry) makes it that
student's zero naming the links: a link reaches files that are not the
student's (another user's 0600 file, through a hard link), and a file left
out quietly would be graded as if the student had forgotten it. A zip is
checked by zips.py before any byte of it is decompressed. An entry of a class
folder that is no submission (a link, a stray file) is a Skipped entry,
listed in summary.md.
"""

from __future__ import annotations

import os
import re
import stat
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


@dataclass(frozen=True)
class Skipped:
    """An entry of a class folder that is not graded: path, and why (for summary.md and stderr)."""

    path: Path
    reason: str


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


def scan_folder(folder: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(files, links) below ``folder``.

    files: relative posix paths of the regular files with one link,
    shallowest first (breadth-first, so a cap never hides a shallow file
    behind a deep tree), at most MAX_FILES of them, MAX_DEPTH folders down,
    nothing that _IGNORED names. links: (path, what it is) of what is refused
    instead (``("submission/rnn.py", "a symbolic link")``); never followed.
    """
    out: list[str] = []
    links: list[tuple[str, str]] = []
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
                if _IGNORED.search(path):
                    continue
                if entry.is_symlink():
                    links.append((path, "a symbolic link"))
                elif entry.is_dir(follow_symlinks=False):
                    below.append(rel / entry.name)
                elif entry.is_file(follow_symlinks=False):
                    names = entry.stat(follow_symlinks=False).st_nlink
                    if names > 1:
                        links.append((path, f"a hard link (its file has {names} names)"))
                        continue
                    out.append(path)
                    if len(out) >= MAX_FILES:
                        return out, links
        level = below
    return out, links


def link_problem(links: list[tuple[str, str]]) -> str:
    """Why a submission holding ``links`` (scan_folder's) is not graded, and what to do."""
    shown = "; ".join(f"{path!r} is {what}" for path, what in links[:5])
    shown += f"; and {len(links) - 5} more links" if len(links) > 5 else ""
    hard = any(what.startswith("a hard link") for _, what in links)
    return (f"links are not graded: {shown}. A link can reach files that are not the student's: replace each "
            f"with a copy of the file itself and resubmit"
            + (" (a class folder copied with hard links, as cp -l or rsync --link-dest make, shows this for "
               "every file: copy it without them)" if hard else ""))


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
        if path.is_file():
            files, problem = zip_listing(path)
        else:
            files, links = scan_folder(path)
            files += [link for link, _ in links]  # a linked mann.py still shows where the code is
            problem = link_problem(links) if links else ""
    except UsageError as err:
        return Submission(name, path, None, str(err))
    code, layout_problem, recognised = locate(files, wrapped=path.is_file())
    # a folder or zip with no trace of the homework is "not a submission" whatever else is wrong with it
    return Submission(name, path, code, (problem if recognised else "") or layout_problem, recognised)


def class_members(folder: Path) -> tuple[list[Submission], list[Skipped]]:
    """One Submission per folder or zip of a class folder, and the entries that are neither."""
    members: list[Submission] = []
    skipped: list[Skipped] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            skipped.append(Skipped(entry, "hidden (its name starts with '.')"))
        elif entry.name.startswith("__"):
            skipped.append(Skipped(entry, "its name starts with '__' (archive metadata such as __MACOSX)"))
        elif entry.is_symlink():
            skipped.append(Skipped(entry, "a symbolic link, not followed (it could point anywhere); put the "
                                          "folder or zip itself in the class folder"))
        elif entry.is_dir() or (entry.suffix.lower() == ".zip" and entry.is_file()):
            members.append(inspect(entry))
        else:
            skipped.append(Skipped(entry, "neither a folder nor a .zip (archives of other kinds are not read: "
                                          "unpack it into a folder)"))
    return members, skipped


def find_submissions(paths: list[str | os.PathLike], single: bool = False) -> list[Submission]:
    """The submissions named by the command line (``find_all`` without the skipped entries)."""
    return find_all(paths, single)[0]


def find_all(paths: list[str | os.PathLike], single: bool = False) -> tuple[list[Submission], list[Skipped]]:
    """The submissions named by the command line, and the entries of class
    folders that are not graded. Each path is a submission (folder or zip) or,
    unless ``single``, a class folder of them (see the module's docstring for
    how the two are told apart).

    Raises UsageError, before any grading, only for a path that does not exist
    or two submissions with the same name: every path that exists is a student
    (``mann grade class/*``). Problems of a submission (no assignment files,
    not a zip, an unreadable zip, two candidate folders, the 2021/2022 layout,
    a link, a zip over the caps) and of entries of a class folder (a stray
    folder, a corrupt zip) are recorded on it, and it is then graded zero with
    that message.
    Entries of a class folder that are neither a folder nor a zip (a link, a
    stray file) are returned as Skipped, with why.
    """
    if not paths:
        raise UsageError("no submission given; name a submission folder, a .zip, or a folder of them")
    found: list[Submission] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise UsageError(f"{path} does not exist; name a submission folder, a .zip, or a folder of them")
        if path.is_file():
            found.append(explicit_zip(path))
            continue
        if not single and not own_layout(path):
            members, left_out = class_members(path)
            if any(m.source.is_file() for m in members) or sum(m.recognised for m in members) >= 2:
                found.extend(members)
                skipped.extend(left_out)
                continue
        one = inspect(path)
        if not one.recognised:  # still a student: graded zero with what is wrong
            one = Submission(one.name, one.source, None, f"{path.name} is {one.problem}"
                             + ("" if single else ", nor a folder of submission folders or zips"))
        found.append(one)
    check_names(found)
    return found, skipped


def explicit_zip(path: Path) -> Submission:
    """A file named on the command line: a student, whatever it holds (a zip
    that cannot be read or is no submission, or not a zip at all, is graded
    zero with the reason)."""
    if path.suffix.lower() != ".zip":
        return Submission(path.stem, path, None, f"{path.name} is a file, not a submission: "
                          f"upload a folder or a .zip ({EXPECTED})")
    try:
        files, problem = zip_listing(path)
    except UsageError as err:
        return Submission(path.stem, path, None, str(err))
    code, layout_problem, recognised = locate(files, wrapped=True)
    return Submission(path.stem, path, code if recognised else None, problem or layout_problem)


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
    UsageError for a zip with unsafe paths, links, members over the caps or
    unreadable data, and for a folder that now holds links or files over the
    caps (it is checked again: it may have changed since it was found).
    """
    if submission.code is None:
        raise UsageError(f"{submission.source}: {submission.problem}")
    dest.mkdir(parents=True, exist_ok=True)
    if submission.source.is_file():
        _extract(submission.source, dest)
    else:
        files, links = scan_folder(submission.source)
        if links:
            raise UsageError(link_problem(links))
        total = 0
        for rel in files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            total += _copy_file(submission.source, rel, target, MAX_TOTAL_BYTES - total)
    return dest / submission.code, dest


def _copy_file(root: Path, rel: str, target: Path, room: int) -> int:
    """Copy root/rel to ``target``, refusing anything but a regular file with
    one link, over MAX_FILE_BYTES or over ``room`` (what is left of the total);
    returns the bytes copied.

    Opened one folder at a time without following links: a folder replaced by
    a link after the scan cannot take the copy elsewhere.
    """
    cap = min(MAX_FILE_BYTES, room)
    fd = _open_below(root, rel)
    with os.fdopen(fd, "rb") as src:
        info = os.fstat(src.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise UsageError(link_problem([(rel, f"a hard link (its file has {info.st_nlink} names)")])
                             if stat.S_ISREG(info.st_mode) else f"{root}: {rel!r} is not a regular file any more")
        too_big = UsageError(f"{root}: {rel!r} ({zips.size_text(info.st_size)}) makes the submission larger "
                             f"than the caps ({zips.size_text(MAX_FILE_BYTES)} a file, "
                             f"{zips.size_text(MAX_TOTAL_BYTES)} in all); ask for an upload without it")
        if info.st_size > cap:
            raise too_big
        copied = 0
        with open(target, "wb") as out:
            # read to the end, not to st_size: a file that grows meanwhile stays within the caps
            while chunk := src.read(min(zips.CHUNK, cap + 1 - copied)):
                copied += len(chunk)
                if copied > cap:
                    raise too_big
                out.write(chunk)
    return copied


def _open_below(root: Path, rel: str) -> int:
    """A read-only descriptor of root/rel; UsageError when a part of the path is a link."""
    parts = rel.split("/")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            # O_NONBLOCK: a FIFO put in a file's place must not hang the grader in open()
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                fd = os.open(part, flags, dir_fd=folder)
            except OSError as err:
                if os.path.islink(root.joinpath(*parts[: i + 1])):
                    raise UsageError(link_problem([("/".join(parts[: i + 1]), "a symbolic link")])) from None
                raise UsageError(f"{root}: {rel!r} cannot be read ({err.strerror}); it changed while being "
                                 f"graded: grade it again") from None
            if last:
                return fd
            os.close(folder)
            folder = fd
    finally:
        os.close(folder)
    raise AssertionError("unreachable: rel has at least one part")


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
