"""``mann grade PATH...``: grade one submission or a whole class.

Per submission, ``<out>/<name>/results.json`` (Gradescope's format) and
``<out>/<name>/report.md``; for the run, ``<out>/gradebook.csv`` and
``<out>/summary.md``. Every input is checked before any grading starts; the
entries of a class folder that are not graded are said on stderr and listed
in summary.md. SIGTERM or Ctrl-C stops the run cleanly (mann/signals.py):
the sandbox and its temp folders are gone, the gradebook of everyone graded so
far is written, and the exit status is 128 + the signal's number.
``mann grade --make-autograder autograder.zip`` grades nothing: it writes
Gradescope's autograder zip (mann/grading/autograder.py).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from tqdm.auto import tqdm

from episodes.errors import UsageError
from episodes.files import ensure_writable_dir
from mann import grading
from mann.commands.args import add_data_args, load_store, positive_int
from mann.signals import Stopped, stop_on_signals


def add_parser(sub) -> None:
    p = sub.add_parser(
        "grade", help="grade MANN homework submissions (folders or .zip) in a sandbox",
        description="Grade CS330 MANN submissions: each PATH is a submission folder or .zip "
        "(load_data.py and mann.py at its top or in one submission/ folder at any depth) or a folder of them.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="submission folder or .zip, or a folder of them")
    p.add_argument("--out", default="grading", help="output folder (default %(default)s)")
    p.add_argument("--rubric", default=None,
                   help="a packaged rubric by name (default, xcs330: the course grader's test ids) or a rubric TOML "
                   "(default: default)")
    p.add_argument("--results-json", default=None,
                   help="also write the one submission's results.json here (Gradescope: /autograder/results/results.json); "
                   "PATH is then one submission, never a class")
    p.add_argument("--sandbox-user", default=None,
                   help="run submissions as this user (root only, e.g. nobody on Gradescope)")
    p.add_argument("--isolation", default="auto", choices=("auto", "namespaces", "fallback"),
                   help="sandbox isolation: namespaces (bubblewrap), fallback (Landlock, rlimits, no capabilities), "
                   "or auto: the strongest this machine allows (default)")
    p.add_argument("--jobs", type=positive_int, default=0, metavar="N",
                   help="grade N submissions at once, each in its own sandbox (default: the cores)")
    p.add_argument("--tree", default=None,
                   help="where to write the 28x28 PNG tree handed to submissions (default: the cache folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--make-autograder", default=None, metavar="ZIP",
                   help="instead of grading, write Gradescope's autograder zip: setup.sh, run_autograder, this "
                   "project's wheel, the rubric (--rubric) and Omniglot's two zips (--data-root)")
    p.add_argument("--autograder-download", action="store_true",
                   help="with --make-autograder: pack no data; setup.sh downloads Omniglot instead")
    add_data_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.make_autograder:
        return make_autograder(args)
    if args.autograder_download:
        raise UsageError("--autograder-download goes with --make-autograder ZIP")
    if not args.paths:
        raise UsageError("name the submissions to grade (PATH...), or --make-autograder ZIP to build Gradescope's zip")
    rubric = grading.load_rubric(args.rubric)
    submissions, skipped = grading.find_all(args.paths, single=bool(args.results_json))
    if args.results_json and len(submissions) != 1:
        raise UsageError(f"--results-json names one file but {len(submissions)} submissions were found; "
                         f"grade one submission, or leave it out and use --out")
    out = ensure_writable_dir(args.out)
    results_json = Path(args.results_json) if args.results_json else None
    if results_json is not None:
        ensure_writable_dir(results_json.parent, "--results-json")
    store = load_store(args)
    reference = grading.build_reference(store, Path(args.tree) if args.tree else None, progress=not args.quiet)
    exclude = [out, *(s.source for s in submissions)] + ([results_json] if results_json else [])
    for entry in skipped:
        print(f"mann: not graded: {entry.path}: {entry.reason}", file=sys.stderr)
    results: list = []  # as they arrive; the gradebook sorts them into the submissions' order
    order = {id(s): i for i, s in enumerate(submissions)}
    announced = threading.Event()
    bar = tqdm(total=len(submissions), desc="grading", unit="submission", disable=args.quiet)

    def open_grader():
        return grading.Grader(reference, rubric, exclude=exclude, sandbox_user=args.sandbox_user,
                              isolation=args.isolation)

    def done(submission, result, grader):
        if not announced.is_set():
            announced.set()
            announce(grader, rubric, len(submissions), jobs, args.sandbox_user)
        protections = grader.sandbox.protections()
        try:
            grading.write_submission(result, rubric, out / submission.name, protections, results_json)
        except Exception as err:  # noqa: BLE001 - e.g. text that cannot be written; the class goes on
            result = grading.internal_error(submission, rubric, err, result.seconds)
            grading.write_submission(result, rubric, out / submission.name, protections, results_json)
        results.append((order[id(submission)], result))
        bar.update()
        tqdm.write(f"{submission.name}: {result.score:g} / {result.max_score:g}"
                   + (f" ({result.problem})" if result.problem else ""), file=sys.stderr)
        return result

    jobs = args.jobs or grading.default_jobs()
    try:
        with stop_on_signals():
            try:
                grading.grade_class(submissions, open_grader, jobs, done)
            finally:
                # Even when the run is stopped (SIGTERM, Ctrl-C, a full disk), staff
                # get the gradebook of everyone graded so far.
                bar.close()
                graded = [r for _, r in sorted(results, key=lambda pair: pair[0])]
                csv_path, md_path = grading.write_gradebook(graded, out, skipped) if graded else (None, None)
    except Stopped as stop:
        written = f"; the gradebook of those is in {out}" if results else ""
        print(f"mann: {stop}: graded {len(results)} of {len(submissions)} submission(s){written}", file=sys.stderr)
        return stop.exit_status
    print(md_path.read_text())
    print(f"gradebook: {csv_path}; per-submission results.json and report.md in {out}/<name>/")
    return 0


def announce(grader, rubric, count: int, jobs: int, sandbox_user: str | None) -> None:
    """What grades the class, and the warnings about it (once, with the first result)."""
    sandbox = grader.sandbox
    print(f"grading {count} submission(s) with {len(rubric.tests)} tests ({rubric.max_score:g} points, rubric "
          f"{rubric.source}) on {min(jobs, count)} sandbox(es) at once; sandbox: {sandbox.protections()}",
          file=sys.stderr)
    if sandbox_user and sandbox.isolation.namespaced:
        print(f"mann: note: --sandbox-user {sandbox_user} is not needed in namespaces (the sandbox's root has no "
              f"capability outside them) and is not used", file=sys.stderr)
    if not sandbox.isolation.namespaced:
        print(f"mann: warning: grading with the weaker isolation level: {sandbox.isolation.reason}; see the "
              f"README's isolation section for what a submission can still do", file=sys.stderr)
    if not sandbox.landlock_abi:
        print("mann: warning: Landlock is unavailable, so submissions can read any file this user can; "
              "grade as root with --sandbox-user nobody, or on a Linux >= 5.13 kernel", file=sys.stderr)


def make_autograder(args: argparse.Namespace) -> int:
    from mann.grading.autograder import make_autograder as build

    if args.paths:
        raise UsageError("--make-autograder ZIP builds the autograder and grades nothing; leave out the PATHs")
    entries = build(args.make_autograder, args.rubric, args.data_root, download=args.autograder_download)
    for name, size in entries:
        print(f"  {size:>12,}  {name}")
    print(f"{args.make_autograder}: Gradescope's autograder ({len(entries)} files); upload it as the assignment's "
          f"autograder (README: \"As a Gradescope autograder\")")
    return 0
