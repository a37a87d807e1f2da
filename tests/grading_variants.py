"""Helpers of the grading tests: quick rubrics, sandbox-escape code, and the specimens
(the correct submission and its variants) from :mod:`mann.grading.specimens`."""

from __future__ import annotations

from mann.grading.specimens import (  # noqa: F401 - re-exported for the tests
    BROKEN, CORRECT, CORRECT_VARIANTS, IMPORT_RNN, LAYOUTS, RNN_MODULE, TRICKS, USES_RNN, copy_correct, make_variant,
    write_results,
)

QUICK_TRAINING = {"steps": 400, "batch": 32, "hidden": 64, "lr": 3e-3, "test_episodes": 200, "threshold": 0.6}


# Fewer episodes than the default rubric's: still enough to catch each bug here
# (split_disjoint: 50 x 20 draws, where a train split of 800 passes with probability 6e-6).
QUICK_DATA = {
    "data_shapes": {"episodes": 2}, "support_rows": {"episodes": 8}, "query_shuffled": {"episodes": 20},
    "query_characters": {"episodes": 8}, "distinct_drawers": {"episodes": 10}, "split_disjoint": {"episodes": 20},
}


def rubric_for_tests(include: list[str] | None = None, limits: dict | None = None, **params):
    """The default rubric restricted to ``include`` (ids), with quick data and
    training parameters, and test limits and per-test parameters overridden
    (``training={...}``)."""
    import tomllib

    from mann.grading.rubric import DEFAULT_RUBRIC, parse_rubric

    data = tomllib.loads(DEFAULT_RUBRIC.read_text())
    if include is not None:
        data["tests"] = {k: v for k, v in data["tests"].items() if k in include}
        for entry in data["tests"].values():
            entry["enabled"] = True
    data["tests"].get("training", {}).update(QUICK_TRAINING)
    for test_id, values in QUICK_DATA.items():
        data["tests"].get(test_id, {}).update(values)
    data["tests"].get("training", {}).pop("limits", None)
    for test_id, values in params.items():
        data["tests"][test_id].update(values)
    if limits:
        data["limits"].update(limits)
    return parse_rubric(data, "test rubric")


def pry_code(paths: dict[str, str]) -> str:
    """Code put at the top of mann.py that tries to escape the sandbox and prints
    what happened: `PRY <what>: blocked (<error>)` or `PRY <what>: SUCCEEDED`.

    paths: read-reference, read-rubric, read-other-student, write-results
    (absolute paths outside the sandbox the code should not reach).
    """
    return f'''
import os as _os, signal as _signal
def _pry(label, fn):
    try:
        fn()
        print(f"PRY {{label}}: SUCCEEDED", flush=True)
    except BaseException as err:
        print(f"PRY {{label}}: blocked ({{type(err).__name__}})", flush=True)
def _read(path):
    with open(path) as f:
        f.read(1)
def _write(path):
    with open(path, "w") as f:
        f.write('{{"score": 1000, "tests": []}}')
_pry("import-episodes", lambda: __import__("episodes"))
_pry("import-grader", lambda: __import__("mann.grading"))
_pry("read-reference", lambda: _read({paths["read-reference"]!r}))
_pry("read-rubric", lambda: _read({paths["read-rubric"]!r}))
_pry("read-other-student", lambda: _read({paths["read-other-student"]!r}))
_pry("write-results", lambda: _write({paths["write-results"]!r}))
_pry("kill-parent", lambda: _os.kill(_os.getppid(), _signal.SIGKILL))
_write("results.json")  # the throwaway copy's own folder: allowed, and changes nothing
if _os.fork() == 0:  # a process that leaves the session, to outlive the test
    _os.setsid()
    _os.execv("/bin/sleep", ["sleep", "4321"])
'''


def rubric_error(tmp_path, text: str) -> str:
    """The UsageError message of loading ``text`` as a rubric file (the test fails if it loads)."""
    import pytest

    from episodes.errors import UsageError
    from mann.grading.rubric import load_rubric

    path = tmp_path / "rubric.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_rubric(path)
    return str(err.value)
