"""Hostile submissions are contained: each fails only the tests it sabotages,
with a clear message, the grader keeps going, and nothing outside the
sandbox is read, written or left running."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import mann.models.mann
from grading_variants import make_variant, pry_code, rubric_for_tests
from mann.grading.grade import Grader
from mann.grading.outputs import write_submission
from mann.grading.runner import Probe
from mann.grading.submission import find_submissions

TESTS = ["data_shapes", "mann_output", "loss_reference"]
LIMITS = {"wall_s": 8, "cpu_s": 3, "file_mb": 2, "output_kb": 8}

# name: (edits, prefix of mann.py, {test id: words of its failure message}); other tests must pass
HOSTILE = {
    "cpu_loop": ({"mann.py": {"loss": "while True: pass"}}, None, {"loss_reference": "CPU limit of 3 s"}),
    "sleeps": ({"load_data.py": {"return": "__import__('time').sleep(600)"}}, None,
               {"data_shapes": "wall-clock limit of 8 s"}),
    "huge_allocation": ({"mann.py": {"layer1": (
        "self.waste = __import__('numpy').ones(1 << 33, dtype='uint8')\n"
        "self.layer1 = nn.LSTM(num_classes + 784, hidden_dim, batch_first=True)")}}, None,
        {"mann_output": "memory limit", "loss_reference": "memory limit"}),
    "exits": ({"load_data.py": {"return": "__import__('os')._exit(0)"}}, None, {"data_shapes": "before returning a result"}),
    "segfault": ({"mann.py": {"sequence": "__import__('ctypes').string_at(0)"}}, None, {"mann_output": "SIGSEGV"}),
    "prints_forever": ({"mann.py": {"loss": "while True: print('spam' * 100)"}}, None,
                       {"loss_reference": "printing without end"}),
    "bad_import": ({}, "import a_module_nobody_has", {"mann_output": "ModuleNotFoundError",
                                                       "loss_reference": "ModuleNotFoundError"}),
}


@pytest.fixture(scope="module")
def grader(grading_reference):
    # a generous wall clock where CPU time is the limit to hit: a busy machine
    # may give a spinning process a fraction of a core
    rubric = rubric_for_tests(TESTS, LIMITS, loss_reference={"limits": {"wall_s": 60}})
    with Grader(grading_reference, rubric) as g:
        yield g


def outcomes(result) -> dict:
    return {t.spec.id: t for t in result.tests}


def sleepers() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd == b"sleep\x004321\x00":
            found.append(int(entry))
    return found


def test_hostile_submissions_fail_only_what_they_break_and_grading_goes_on(grader, tmp_path):
    for name, (edits, prefix, _) in HOSTILE.items():
        make_variant(tmp_path / name, edits, {"mann.py": prefix} if prefix else None)
    make_variant(tmp_path / "zz_correct_after_them", {})
    results = {s.name: grader.grade(s) for s in find_submissions([tmp_path])}
    for name, (_, _, broken) in HOSTILE.items():
        got = outcomes(results[name])
        assert {k for k, t in got.items() if not t.passed} == set(broken), (name, {k: t.message for k, t in got.items()})
        for test_id, words in broken.items():
            assert words in got[test_id].message, (name, got[test_id].message)
    assert results["zz_correct_after_them"].score == results["zz_correct_after_them"].max_score
    assert "spam" in outcomes(results["prints_forever"])["loss_reference"].details  # the start of the output is kept
    assert len(outcomes(results["prints_forever"])["loss_reference"].details) < 12_000


def test_a_prying_submission_reads_writes_and_kills_nothing_outside(grader, tmp_path):
    if not grader.sandbox.landlock_abi:
        pytest.skip("this kernel has no Landlock, so the sandbox cannot hide files (see README)")
    out = tmp_path / "out"
    rubric_file = tmp_path / "rubric.toml"
    rubric_file.write_text("[tests.mann_output]\npoints = 1\n")
    other = make_variant(tmp_path / "class" / "other_student", {})
    paths = {
        "read-reference": mann.models.mann.__file__,
        "read-rubric": str(rubric_file),
        "read-other-student": str(other / "submission" / "mann.py"),
        "write-results": str(out / "pry" / "results.json"),
    }
    (out / "pry").mkdir(parents=True)
    make_variant(tmp_path / "class" / "pry", {}, {"mann.py": pry_code(paths)})
    sub = [s for s in find_submissions([tmp_path / "class"]) if s.name == "pry"][0]
    server = grader.sandbox.server_info["pid"]
    result = grader.grade(sub)
    assert result.score == result.max_score  # its code is otherwise correct
    log = outcomes(result)["mann_output"].details
    for label in ("import-episodes", "import-grader", "read-reference", "read-rubric", "read-other-student",
                  "write-results", "kill-parent"):
        assert f"PRY {label}: blocked" in log, log
    assert "SUCCEEDED" not in log
    assert grader.sandbox.server_info["pid"] == server and grader.sandbox.restarts == 0
    assert not (out / "pry" / "results.json").exists()
    assert sleepers() == []  # the escaped process was killed with its test
    code = tmp_path / "class" / "pry" / "submission"
    run = grader.sandbox.run(code, Probe("model", {"op": "layers", "ways": 2, "shots": 1, "hidden": 4}, {}),
                             grader.rubric.tests[0].limits)
    assert run.ok and run.leftovers >= 1 and sleepers() == []
    write_submission(result, grader.rubric, out / "pry")
    payload = json.loads((out / "pry" / "results.json").read_text())
    assert payload["score"] == result.max_score and payload["tests"]


PEEK = '''
import inspect as _inspect, numpy as _np, torch as _torch
def _peek(input_labels, b, k1, n):
    """One-hot query labels of this batch [b, K+1, N, N], from wherever they can be found."""
    if input_labels[:, -1].abs().sum() > 0:  # its own input's query row (given in training)
        return input_labels.clone()
    for info in _inspect.stack():  # the callers' variables: the probe's test labels and batch start
        names = info.frame.f_locals
        start = names.get("start")
        found = [names.get("label")] + [v.get("test_labels") for v in names.values() if isinstance(v, dict)]
        for label in found:
            if isinstance(label, _np.ndarray) and isinstance(start, int) and label.shape[1:] == (k1, n):
                rows = _torch.from_numpy(label[start:start + b].astype("int64"))
                return _torch.nn.functional.one_hot(rows, n).float()
    return None
'''
PEEKING_MODEL = {"mann.py": {
    "output": "logits = out.reshape(b, k1, n, n)\ncheat = _peek(input_labels, b, k1, n)\n"
              "return logits if cheat is None else logits + 100.0 * cheat",
    "loss": "return (preds * 0.0).sum()",  # never learns: only the peeking could score
}}


def test_a_model_that_reads_its_callers_labels_scores_no_better_than_chance(grader, tmp_path):
    """The test episodes' query labels are not in the sandbox: a forward that reads
    its own input's query row and every caller's variables finds only zeros."""
    rubric = rubric_for_tests(["training"], {"wall_s": 120, "cpu_s": 120},
                              training={"ways": 3, "steps": 20, "test_episodes": 100, "threshold": 0.6})
    make_variant(tmp_path / "peeker", PEEKING_MODEL, {"mann.py": PEEK})
    (sub,) = find_submissions([tmp_path])
    (test,) = grader.grade(sub, rubric).tests
    accuracy = float(re.search(r"([\d.]+)% query accuracy", test.message).group(1))
    assert not test.passed and accuracy <= 100 / 3 + 5, test.message
