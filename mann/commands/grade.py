"""``mann grade PATH...``: grade one submission or a whole class.

Per submission, ``<out>/<name>/results.json`` (Gradescope's format) and
``<out>/<name>/report.md``; for the run, ``<out>/gradebook.csv`` and
``<out>/summary.md``. Every input is checked before any grading starts; the
entries of a class folder that are not graded are said on stderr and listed
in summary.md. SIGTERM or Ctrl-C stops the run cleanly (mann/grading/signals.py):
the sandbox and its temp folders are gone, the gradebook of everyone graded so
far is written, and the exit status is 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from episodes.errors import UsageError
from episodes.files import ensure_writable_dir
from mann import grading
from mann.commands.args import add_data_args, load_store
from mann.grading.signals import Stopped, stop_on_signals


def add_parser(sub) -> None:
    p = sub.add_parser(
        "grade", help="grade MANN homework submissions (folders or .zip) in a sandbox",
        description="Grade CS330 MANN submissions: each PATH is a submission folder or .zip "
        "(load_data.py and mann.py at its top or in one submission/ folder at any depth) or a folder of them.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="submission folder or .zip, or a folder of them")
    p.add_argument("--out", default="grading", help="output folder (default %(default)s)")
    p.add_argument("--rubric", default=None, help="rubric TOML (default: the packaged default_rubric.toml)")
    p.add_argument("--results-json", default=None,
                   help="also write the one submission's results.json here (Gradescope: /autograder/results/results.json); "
                   "PATH is then one submission, never a class")
    p.add_argument("--sandbox-user", default=None,
                   help="run submissions as this user (root only, e.g. nobody on Gradescope)")
    p.add_argument("--tree", default=None,
                   help="where to write the 28x28 PNG tree handed to submissions (default: the cache folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
    results = []
    try:
        with stop_on_signals(), grading.Grader(reference, rubric, exclude=exclude,
                                               sandbox_user=args.sandbox_user) as grader:
            protections = grader.sandbox.protections()
            print(f"grading {len(submissions)} submission(s) with {len(rubric.tests)} tests "
                  f"({rubric.max_score:g} points, rubric {rubric.source}); sandbox: {protections}", file=sys.stderr)
            if not grader.sandbox.landlock_abi:
                print("mann: warning: Landlock is unavailable, so submissions can read any file this user can; "
                      "grade as root with --sandbox-user nobody, or on a Linux >= 5.13 kernel", file=sys.stderr)
            try:
                for submission in tqdm(submissions, desc="grading", unit="submission", disable=args.quiet):
                    result = grader.grade(submission)  # never raises: a broken grading is that student's zero
                    try:
                        grading.write_submission(result, rubric, out / submission.name, protections, results_json)
                    except Exception as err:  # noqa: BLE001 - e.g. text that cannot be written; the class goes on
                        result = grading.internal_error(submission, rubric, err, result.seconds)
                        grading.write_submission(result, rubric, out / submission.name, protections, results_json)
                    results.append(result)
                    tqdm.write(f"{submission.name}: {result.score:g} / {result.max_score:g}"
                               + (f" ({result.problem})" if result.problem else ""), file=sys.stderr)
            finally:
                # Even when the run is stopped (SIGTERM, Ctrl-C, a full disk), staff
                # get the gradebook of everyone graded so far.
                csv_path, md_path = grading.write_gradebook(results, out, skipped) if results else (None, None)
    except Stopped as stop:
        written = f"; the gradebook of those is in {out}" if results else ""
        print(f"mann: {stop}: graded {len(results)} of {len(submissions)} submission(s){written}", file=sys.stderr)
        return stop.exit_status
    print(md_path.read_text())
    print(f"gradebook: {csv_path}; per-submission results.json and report.md in {out}/<name>/")
    return 0
