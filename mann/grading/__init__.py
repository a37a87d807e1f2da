"""Grade CS330 MANN homework submissions (``mann grade``).

submission.py   find folders / zips, check their layout, stage clean copies (links refused)
zips.py         read a submission's zip as untrusted: entries, sizes, ratio checked before any byte
rubric.py       the rubric (default_rubric.toml; xcs330_rubric.toml, by name): tests, points, visibility, limits
reference.py    what submissions are compared with: store, PNG tree, splits, image index
isolation.py    the sandbox's isolation level: bubblewrap namespaces, or the fallback
runner.py       the grader side of the sandbox; sandbox/ runs inside it
raw.py          read a submission's raw outputs as untrusted: bounded size, JSON depth, array headers
checks_*.py     the test battery (battery.py lists it): inputs out, verdicts in
coverage.py     what the distinct characters of a split's episodes say about its size
grade.py        run a rubric on submissions; parallel.py: a class on N sandboxes at once
outputs.py      with gradescope.py / feedback.py / gradebook.py: results.json, report.md, gradebook.csv, summary.md
specimens/      a correct submission and its known-bug variants (demo, tests, generated classes)
autograder.py   Gradescope's autograder zip (``mann grade --make-autograder``; templates in
                autograder_files/) and the steps its setup.sh and run_autograder call
(the ``mann grade`` subcommand is mann/commands/grade.py)

Names load their module on first use.
"""

from episodes.lazy import lazy_exports

__all__ = ["Grader", "build_reference", "default_jobs", "find_all", "find_submissions", "grade_class",
           "internal_error", "load_rubric", "write_gradebook", "write_submission"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "Grader": "grade", "build_reference": "reference", "find_all": "submission", "find_submissions": "submission",
    "internal_error": "grade", "load_rubric": "rubric", "default_jobs": "parallel", "grade_class": "parallel",
    "write_gradebook": "gradebook", "write_submission": "outputs",
})
