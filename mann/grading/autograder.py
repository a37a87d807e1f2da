"""Gradescope's autograder zip (``mann grade --make-autograder``) and what its scripts run.

The zip holds, at its top, ``setup.sh`` and ``run_autograder`` (the templates in
autograder_files/), the project's wheel, the rubric (``rubric.toml``) and
Omniglot's two zips (``omniglot/``, unless the data are downloaded by setup.sh).
Gradescope unpacks it to /autograder/source, runs setup.sh once when it builds
the image, then run_autograder for each upload.

The scripts call this module (``python -m mann.grading.autograder``):

check-deps  exit 1, naming them, when mann-bench's dependencies (and the grading
            extra) are missing or of other versions than pinned
tree DIR    decode the store (no download) and write the PNG tree submissions read
run         grade one upload as a child subreaper: after ``mann grade`` ends,
            every process left below it is stopped and killed, and results.json
            is written only when none is left (none below this process, none whose
            working or root folder is in the grading's temporary folder)
summary F   print a results.json's score and failed tests (setup.sh's self-test)

Only the standard library is imported at the top: ``check-deps`` must run
before the dependencies are known to be there.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

FILES = Path(__file__).resolve().parent / "autograder_files"
SCRIPTS = ("setup.sh", "run_autograder")
DATA_SETS = ("images_background", "images_evaluation")
DISTRIBUTION, EXTRAS = "mann-bench", ("grading",)
PR_SET_CHILD_SUBREAPER = 36


# -- building the zip ----------------------------------------------------------
def make_autograder(zip_path: str | os.PathLike, rubric: str | os.PathLike | None = None,
                    data_root: str | os.PathLike | None = None, download: bool = False) -> list[tuple[str, int]]:
    """Write Gradescope's autograder zip; returns its entries (name, bytes).

    rubric: a rubric TOML (checked first; default: the packaged one). data_root:
    the folder of Omniglot's two zips (default ``$OMNIGLOT_ROOT``, else the
    download cache); with ``download`` they are not packed and setup.sh
    downloads them instead. UsageError for a bad rubric, missing data or a wheel
    that cannot be built.
    """
    from episodes.errors import UsageError
    from episodes.omniglot import resolve_root
    from mann import __version__
    from mann.grading.rubric import DEFAULT_RUBRIC, load_rubric

    rubric_path = Path(rubric) if rubric is not None else DEFAULT_RUBRIC
    load_rubric(rubric_path)
    zip_path = Path(zip_path)
    if zip_path.suffix != ".zip":
        raise UsageError(f"--make-autograder {zip_path}: name the file *.zip (Gradescope takes a zip)")
    data = []
    if not download:
        root = resolve_root(data_root)
        for name in DATA_SETS:
            archive = root / f"{name}.zip"
            if not zipfile.is_zipfile(archive):
                found = "a folder" if (root / name).is_dir() else "nothing readable"
                raise UsageError(
                    f"--make-autograder packs Omniglot's two zips, but {archive} is {found}; set --data-root "
                    f"(or OMNIGLOT_ROOT) to the folder holding images_background.zip and images_evaluation.zip, "
                    f"or use --autograder-download to have setup.sh download them")
            data.append(archive)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mann-autograder-") as scratch:
        wheel = build_wheel(Path(scratch))
        fd, partial_name = tempfile.mkstemp(dir=zip_path.parent, prefix=f".{zip_path.name}.")
        os.close(fd)
        partial = Path(partial_name)
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
                for name in SCRIPTS:
                    text = (FILES / name).read_text()
                    text = text.replace("@VERSION@", __version__).replace("@DATA@", "download" if download else "packed")
                    _add(z, name, text.encode(), 0o755)
                _add(z, "rubric.toml", rubric_path.read_bytes(), 0o644)
                _add(z, wheel.name, wheel.read_bytes(), 0o644)
                for archive in data:  # already compressed
                    _add(z, f"omniglot/{archive.name}", archive.read_bytes(), 0o644, zipfile.ZIP_STORED)
            os.chmod(partial, 0o644)
            os.replace(partial, zip_path)
        finally:
            partial.unlink(missing_ok=True)
    with zipfile.ZipFile(zip_path) as z:
        return [(i.filename, i.file_size) for i in z.infolist()]


def _add(z: zipfile.ZipFile, name: str, data: bytes, mode: int, compress: int = zipfile.ZIP_DEFLATED) -> None:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.external_attr = (stat.S_IFREG | mode) << 16  # unzip restores the mode: the scripts stay executable
    info.compress_type = compress
    z.writestr(info, data)


def project_source() -> Path:
    """The checkout this package runs from (its pyproject.toml beside mann/); UsageError when installed."""
    from episodes.errors import UsageError

    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "episodes").is_dir():
        raise UsageError(f"--make-autograder builds mann-bench's wheel from its source, but {root} is not a "
                         f"checkout of it; run it from the repository (e.g. scripts/setup, then .venv/bin/mann)")
    return root


def build_wheel(dest: Path) -> Path:
    """mann-bench's wheel, built offline (``pip wheel --no-deps --no-build-isolation --no-index``)
    from a clean copy of the source, so the checkout gets no build/ or egg-info."""
    from episodes.errors import UsageError

    source = project_source()
    copy = dest / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(source / name, copy / name)
    for package in ("episodes", "mann"):
        shutil.copytree(source / package, copy / package, ignore=ignore)
    out = dest / "wheel"
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
               "--disable-pip-version-check", "-w", str(out), str(copy)]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(out.glob("mann_bench-*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise UsageError(f"could not build mann-bench's wheel ({' '.join(command[:8])} ...): "
                         f"{(done.stderr or done.stdout).strip()[-600:]}; this Python needs pip, setuptools>=68 "
                         f"and wheel")
    return wheels[0]


# -- setup.sh: dependencies and the tree ---------------------------------------------
def unmet_requirements(distribution: str = DISTRIBUTION, extras: tuple[str, ...] = EXTRAS) -> list[str]:
    """What this Python lacks of ``distribution``'s requirements (with ``extras``), one line each."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip carries its own copy
        from pip._vendor.packaging.requirements import Requirement

    try:
        wanted = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return [f"{distribution} is not installed"]
    problems = []
    for text in wanted:
        requirement = Requirement(text)
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras)):
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{requirement.name}: not installed ({distribution} needs {requirement})")
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}: {version} is installed, {distribution} needs {requirement}")
    return problems


def write_tree(tree: Path) -> Path:
    """Decode the store (``$OMNIGLOT_ROOT``, no download) and write the PNG tree ``mann grade --tree`` reuses."""
    from episodes import load_omniglot
    from episodes.png_tree import write_png_tree

    return write_png_tree(load_omniglot(download=False), tree)


# -- run_autograder: grading, contained ------------------------------------------
@dataclass
class Contained:
    """returncode: the command's; killed: the processes left behind and killed
    ("<pid> <command name>"); alive: those still there after the kill (must be none
    to trust the result)."""

    returncode: int
    killed: list[str]
    alive: list[int]


def contain(command: list[str], env: dict | None = None, watch: Path | None = None, stdout=None,
            deadline_s: float = 30.0) -> Contained:
    """Run ``command`` as this process's child, this process being a child subreaper,
    then stop and kill every process left below this one (escaped into a new session
    or double-forked, they are reparented here), and any process whose working or
    root folder lies in ``watch``. Linux only."""
    subreaper = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    if not subreaper:
        print("mann autograder: warning: cannot become a child subreaper; only the grading's temporary "
              "folder is watched for leftover processes", file=sys.stderr)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    process = subprocess.Popen(command, env=env, stdout=stdout)
    try:
        returncode = process.wait()
    except KeyboardInterrupt:
        process.kill()
        process.wait()
        returncode = -signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
    _reap(0)  # the command's own ended children, handed over here as it ended
    killed = _kill_all(lambda: set(_descendants(os.getpid())) | set(_inside(watch)), deadline_s)
    alive = sorted(set(_descendants(os.getpid())) | set(_inside(watch)))
    return Contained(returncode, killed, alive)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _kill_all(find, deadline_s: float) -> list[str]:
    """Stop and kill what ``find`` returns (sandbox/tree.py: a chain of forks cannot
    outrun it), then reap our children. Returns them, "<pid> <name>" each."""
    from mann.grading.sandbox.tree import stop_and_kill_found

    names: dict[int, str] = {}

    def found() -> set[int]:
        pids = find()
        names.update((pid, _name(pid)) for pid in pids if pid not in names)
        return pids

    stopped = stop_and_kill_found(found, deadline_s)
    _reap(time.monotonic() + 5)
    return [f"{pid} {names[pid]}" for pid in sorted(stopped)]


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _reap(end: float) -> None:
    """Wait for the children that ended; until ``end`` (a monotonic time), for every
    process below this one (killed orphans are reparented here as they die)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # no child at all
            return
        if pid == 0:
            if time.monotonic() >= end or not _descendants(os.getpid()):
                return
            time.sleep(0.02)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _descendants(root: int) -> list[int]:
    from mann.grading.sandbox.tree import descendants

    return descendants(root)


def _inside(folder: Path | None) -> list[int]:
    """Processes (other than this one) whose working or root folder is ``folder`` or below it."""
    if folder is None:
        return []
    folder = str(Path(folder).resolve())
    out = []
    for pid in (int(entry) for entry in os.listdir("/proc") if entry.isdigit()):
        if pid == os.getpid():
            continue
        for link in ("cwd", "root"):
            try:
                target = os.readlink(f"/proc/{pid}/{link}")
            except OSError:
                continue
            if target == folder or target.startswith(folder + "/"):
                out.append(pid)
                break
    return out


def run_autograder(submission: Path, results: Path, rubric: Path, tree: Path, isolation: str = "auto",
                   sandbox_user: str = "", python: str = sys.executable) -> int:
    """Grade ``submission`` with ``mann grade`` contained (see :func:`contain`); write
    ``results`` only when no process it started is left. Returns the exit status."""
    work = Path(tempfile.mkdtemp(prefix="mann-autograder-"))
    private, tmp = work / "private", work / "tmp"
    private.mkdir(mode=0o700)
    tmp.mkdir()
    # the sandbox user must reach the sandbox's folder in tmp/, and list neither
    os.chmod(work, 0o711)
    os.chmod(tmp, 0o711)
    staged, out = private / "results.json", private / "out"
    command = [python, "-m", "mann.commands", "grade", str(submission), "--no-download", "--rubric", str(rubric),
               "--tree", str(tree), "--isolation", isolation, "--results-json", str(staged), "--out", str(out),
               "--quiet"] + (["--sandbox-user", sandbox_user] if sandbox_user else [])
    env = {**os.environ, "TMPDIR": str(tmp)}
    started = time.monotonic()
    try:
        with open(private / "grade.log", "wb") as log:  # the class summary of one submission: not needed
            done = contain(command, env=env, watch=work, stdout=log)
        if done.killed:
            print(f"mann autograder: warning: {len(done.killed)} process(es) outlived the grading and were killed "
                  f"({', '.join(done.killed)[:500]}; the sandbox should have killed them: tell the maintainers)",
                  file=sys.stderr)
        if done.alive:
            print(f"mann autograder: error: process(es) {done.alive} of the grading are still alive after "
                  f"SIGKILL; results.json is not written", file=sys.stderr)
            return 1
        if done.returncode != 0 or not staged.is_file():
            print(f"mann autograder: error: mann grade failed (exit status {done.returncode}); "
                  f"results.json is not written (its messages are above)", file=sys.stderr)
            return 1
        from mann.grading.gradescope import check_payload

        payload = json.loads(staged.read_text())
        check_payload(payload)
        results.parent.mkdir(parents=True, exist_ok=True)
        partial = results.with_name(f".{results.name}.partial")
        partial.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(partial, results)
        print(f"mann autograder: {payload['score']:g} points; {results} written after "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summary(results: Path) -> int:
    """Print the score of a results.json and the tests it failed; 1 when it is not a valid one."""
    from mann.grading.gradescope import check_payload

    try:
        payload = json.loads(Path(results).read_text())
        check_payload(payload)
    except (OSError, ValueError) as err:
        print(f"self-test: {results} is not a valid results.json: {err}", file=sys.stderr)
        return 1
    total = sum(t["max_score"] for t in payload["tests"])
    failed = [t for t in payload["tests"] if t["score"] < t["max_score"]]
    print(f"==> self-test: the shipped correct submission scored {payload['score']:g} / {total:g}")
    for test in failed:  # e.g. results_files, for which the specimen has no files
        print(f"    warning: it failed {test['name']!r}: {test['output'].splitlines()[0] if test['output'] else ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mann.grading.autograder",
                                     description="steps of the Gradescope autograder's setup.sh and run_autograder")
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("check-deps", help="exit 1 when mann-bench's dependencies are missing or of other versions")
    tree = sub.add_parser("tree", help="decode the store and write the PNG tree")
    tree.add_argument("folder")
    run = sub.add_parser("run", help="grade one upload, contained, and write its results.json")
    run.add_argument("--submission", required=True)
    run.add_argument("--results", required=True)
    run.add_argument("--rubric", required=True)
    run.add_argument("--tree", required=True)
    run.add_argument("--isolation", default="auto")
    run.add_argument("--sandbox-user", default="")
    show = sub.add_parser("summary", help="print a results.json's score and failed tests")
    show.add_argument("results")
    args = parser.parse_args(argv)
    if args.step == "check-deps":
        problems = unmet_requirements()
        for line in problems:
            print(f"    {line}")
        return 1 if problems else 0
    if args.step == "tree":
        from episodes.errors import UsageError

        try:
            write_tree(Path(args.folder))
        except UsageError as err:
            print(f"mann autograder: error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.step == "run":
        return run_autograder(Path(args.submission), Path(args.results), Path(args.rubric), Path(args.tree),
                              args.isolation, args.sandbox_user)
    return summary(Path(args.results))


if __name__ == "__main__":
    sys.exit(main())
