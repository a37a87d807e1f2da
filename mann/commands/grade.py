"""``mann grade PATH...``: grade one submission or a whole class.

Per submission, ``<out>/<name>/results.json`` (Gradescope's format) and
``<out>/<name>/report.md``; for the run, ``<out>/gradebook.csv`` and
``<out>/summary.md``. Every input is checked before any grading starts.
``mann grade --make-autograder autograder.zip`` grades nothing: it writes
Gradescope's autograder zip (mann/grading/autograder.py).
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


def add_parser(sub) -> None:
    p = sub.add_parser(
        "grade", help="grade MANN homework submissions (folders or .zip) in a sandbox",
        description="Grade CS330 MANN submissions: each PATH is a submission folder or .zip "
        "(load_data.py and mann.py at its top or in one submission/ folder at any depth) or a folder of them.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="submission folder or .zip, or a folder of them")
    p.add_argument("--out", default="grading", help="output folder (default %(default)s)")
    p.add_argument("--rubric", default=None, help="rubric TOML (default: the packaged default_rubric.toml)")
    p.add_argument("--results-json", default=None,
                   help="also write the one submission's results.json here (Gradescope: /autograder/results/results.json); "
                   "PATH is then one submission, never a class")
    p.add_argument("--sandbox-user", default=None,
                   help="run submissions as this user (root only, e.g. nobody on Gradescope)")
    p.add_argument("--isolation", default="auto", choices=("auto", "namespaces", "fallback"),
                   help="sandbox isolation: namespaces (bubblewrap), fallback (Landlock, rlimits, no capabilities), "
                   "or auto: the strongest this machine allows (default)")
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
    submissions = grading.find_submissions(args.paths, single=bool(args.results_json))
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
    results = []
    with grading.Grader(reference, rubric, exclude=exclude, sandbox_user=args.sandbox_user,
                        isolation=args.isolation) as grader:
        protections = grader.sandbox.protections()
        print(f"grading {len(submissions)} submission(s) with {len(rubric.tests)} tests "
              f"({rubric.max_score:g} points, rubric {rubric.source}); sandbox: {protections}", file=sys.stderr)
        if args.sandbox_user and grader.sandbox.isolation.namespaced:
            print(f"mann: note: --sandbox-user {args.sandbox_user} is not needed in namespaces (the sandbox's root "
                  f"has no capability outside them) and is not used", file=sys.stderr)
        if not grader.sandbox.isolation.namespaced:
            print(f"mann: warning: grading with the weaker isolation level: {grader.sandbox.isolation.reason}; "
                  f"see the README's isolation section for what a submission can still do", file=sys.stderr)
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
            # Even when the run is stopped (Ctrl-C, a full disk), staff get the
            # gradebook of everyone graded so far.
            csv_path, md_path = grading.write_gradebook(results, out) if results else (None, None)
    print(md_path.read_text())
    print(f"gradebook: {csv_path}; per-submission results.json and report.md in {out}/<name>/")
    return 0


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
