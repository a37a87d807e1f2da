"""The test battery on a correct submission and on one broken submission per test.

All submissions are graded in one sandbox on the synthetic store (a 4-drawer
PNG tree); a correct submission must score full marks on every test, and each
broken one must fail exactly the tests its bug breaks. A bug in load_data.py
is graded on the data tests and a bug in mann.py on the model tests: each
probe imports only the module it tests, so the other half cannot notice it.
"""

from __future__ import annotations

import json

import pytest

from grading_variants import (BROKEN, CORRECT_VARIANTS, IMPORT_RNN, RNN_MODULE, TRICKS, USES_RNN, make_variant,
                              rubric_for_tests, write_results)
from mann.grading.gradescope import check_payload
from mann.grading.grade import Grader
from mann.grading.outputs import write_submission
from mann.grading.rubric import load_rubric
from mann.grading.submission import find_submissions

DATA_TESTS = ["data_shapes", "support_rows", "query_shuffled", "query_characters", "distinct_drawers", "split_disjoint"]
MODEL_TESTS = ["mann_layers", "mann_init", "mann_output", "query_masked", "loss_reference", "predictions_reference"]
ALL_BUT_TRAINING = DATA_TESTS + MODEL_TESTS
IDENTIFIED = {"support_rows", "query_shuffled", "query_characters", "distinct_drawers", "split_disjoint"}

# The tests each bug must fail (and no other) among the data or the model tests.
EXPECTED_FAILURES = {
    "unshuffled_query": {"query_shuffled"},
    "labels_only_shuffled": {"query_shuffled"},
    "query_other_characters": {"query_characters", "query_shuffled"},
    "support_shuffled": {"support_rows"},
    "drawers_with_replacement": {"distinct_drawers"},
    "split_overlap": {"split_disjoint"},
    "float64_images": {"data_shapes"},
    "not_inverted": {"data_shapes"} | IDENTIFIED,
    "leaked_query_labels": {"query_masked", "predictions_reference"},
    "loss_all_rows": {"loss_reference"},
    "wrong_reshape_order": {"predictions_reference"},
    "default_init": {"mann_init"},
    "two_layer_lstm": {"mann_layers", "predictions_reference"},
    "flat_output": {"mann_output", "predictions_reference"},
    "split_800_100_723": {"split_disjoint"},
    "lazy_split_800": {"split_disjoint"},
    "class_major_reshape": {"support_rows", "query_shuffled", "query_characters"},
    "query_drawn_separately": {"distinct_drawers"},
    "torch_tensors": {"data_shapes"},
    "tensors_int64_labels": {"data_shapes"},
    "int64_labels": {"data_shapes"},
    "float64_labels": {"data_shapes"},
}

# The model tests each trick must fail (and no other).
TRICK_FAILURES = {
    "zero_forward": {"mann_output", "query_masked", "predictions_reference"},
    "constant_forward": {"mann_output", "query_masked", "predictions_reference"},
    "all_labels_masked": {"mann_output", "query_masked", "predictions_reference"},
    "class_major_output": {"mann_output", "predictions_reference"},
}
IGNORES_INPUT = ("the query predictions do not change when the support images or labels change: "
                 "forward seems to ignore its input")


@pytest.fixture(scope="module")
def grader(grading_reference):
    with Grader(grading_reference, rubric_for_tests(ALL_BUT_TRAINING)) as g:
        yield g


def failed(result) -> set[str]:
    return {t.spec.id for t in result.tests if not t.passed}


def test_every_broken_submission_fails_exactly_its_tests(grader, tmp_path):
    assert set(EXPECTED_FAILURES) == set(BROKEN)
    make_variant(tmp_path / "correct" / "correct", {})
    for name, edits in CORRECT_VARIANTS.items():
        make_variant(tmp_path / "correct" / name, edits)
    for correct in (grader.grade(s) for s in find_submissions([tmp_path / "correct"])):
        assert failed(correct) == set(), (correct.submission.name, [t.message for t in correct.tests if not t.passed])
        assert correct.score == correct.max_score == 90
    for name, edits in BROKEN.items():
        make_variant(tmp_path / ("data" if "load_data.py" in edits else "model") / name, edits)
    results = {}
    for half, tests in (("data", DATA_TESTS), ("model", MODEL_TESTS)):
        rubric = rubric_for_tests(tests)
        results.update({s.name: grader.grade(s, rubric) for s in find_submissions([tmp_path / half])})
    wrong = {name: failed(results[name]) for name in BROKEN if failed(results[name]) != EXPECTED_FAILURES[name]}
    assert wrong == {}, {n: [t.message for t in results[n].tests if not t.passed] for n in wrong}
    # failures explain themselves
    messages = {name: {t.spec.id: t.message for t in r.tests} for name, r in results.items()}
    assert "same order" in messages["unshuffled_query"]["query_shuffled"]
    assert "sees the query labels" in messages["leaked_query_labels"]["query_masked"]
    assert "both the train and the" in messages["split_overlap"]["split_disjoint"]
    assert "float64" in messages["float64_images"]["data_shapes"]
    assert "appears twice" in messages["drawers_with_replacement"]["distinct_drawers"]
    assert "appears twice" in messages["query_drawn_separately"]["distinct_drawers"]
    both = messages["tensors_int64_labels"]["data_shapes"]  # every problem at once, not the first only
    assert "2 problems" in both and "images as torch.Tensor of float32" in both
    assert "labels as torch.Tensor of int64" in both and "(in 3 of 3 configurations)" in both
    assert "the train split holds 800 characters, not 1100" in messages["split_800_100_723"]["split_disjoint"]
    assert "the train split holds about" in messages["lazy_split_800"]["split_disjoint"]
    assert "MANN(5, 3, 32)" in messages["loss_all_rows"]["loss_reference"]  # each case on its own model

    # results.json in Gradescope's format, and the readable report
    folder = write_submission(results["unshuffled_query"], rubric_for_tests(DATA_TESTS), tmp_path / "out" / "bob")
    payload = json.loads((folder / "results.json").read_text())
    check_payload(payload)
    assert payload["score"] == 35
    assert len(payload["tests"]) == len(DATA_TESTS)
    zero = [t for t in payload["tests"] if t["score"] == 0]
    assert len(zero) == 1 and zero[0]["max_score"] == 10 and "Query row" in zero[0]["name"]
    report = (folder / "report.md").read_text()
    assert "# unshuffled_query: 35 / 45" in report and "FAIL" in report


def test_forwards_that_ignore_the_support_set_or_swap_axes_fail_the_output_tests(grader, tmp_path):
    assert set(TRICK_FAILURES) == set(TRICKS)
    for name, edits in TRICKS.items():
        make_variant(tmp_path / name, edits)
    rubric = rubric_for_tests(MODEL_TESTS)
    results = {s.name: grader.grade(s, rubric) for s in find_submissions([tmp_path])}
    messages = {name: {t.spec.id: t.message for t in r.tests} for name, r in results.items()}
    assert {name: failed(r) for name, r in results.items()} == TRICK_FAILURES, messages
    for name in ("zero_forward", "constant_forward"):
        assert messages[name]["mann_output"].startswith(IGNORES_INPUT), messages[name]["mann_output"]
        assert messages[name]["query_masked"].startswith(IGNORES_INPUT), messages[name]["query_masked"]
    for test in ("mann_output", "query_masked"):
        assert messages["all_labels_masked"][test].startswith(
            "the query predictions do not change when the support labels change: forward seems to ignore its "
            "input labels: zero only the query row's labels"), messages["all_labels_masked"][test]
    assert messages["class_major_output"]["mann_output"] == (
        "MANN.forward returned shape [5, 4, 3, 4]; expected [B, K+1, N, N] = [5, 3, 4, 4]")


def test_the_xcs330_preset_gives_a_correct_submission_full_marks(grader, tmp_path):
    rubric = load_rubric("xcs330")
    runs = {(1, 2): 0.95, (2, 2): 0.93, (1, 3): 0.80, (1, 4): 0.65}
    write_results(make_variant(tmp_path / "correct", {}), runs)
    # a query row in class order fails 1-1 and 1-2 (their shared check runs once); a 3-way run below 75% fails 3-2
    write_results(make_variant(tmp_path / "unshuffled", BROKEN["unshuffled_query"]), {**runs, (1, 3): 0.70})
    results = {s.name: grader.grade(s, rubric) for s in find_submissions([tmp_path])}
    correct = results["correct"]
    assert failed(correct) == set(), [t.message for t in correct.tests if not t.passed]
    assert correct.score == correct.max_score == 30
    assert failed(results["unshuffled"]) == {"1-1-basic", "1-2-hidden", "3-2-hidden"}
    assert results["unshuffled"].score == 20
    outcome = {t.spec.id: t for t in results["unshuffled"].tests}
    assert outcome["1-1-basic"].message.startswith("1 of 2 checks failed:\n- query_shuffled: FAIL: ")
    assert outcome["1-2-hidden"].message.startswith("1 of 5 checks failed:\n- query_shuffled: FAIL: ")
    assert "- support_rows: 20 episodes" in outcome["1-2-hidden"].message
    assert "mann_results_1_3.npy: 70.0% query accuracy (< 75% needed)" == outcome["3-2-hidden"].message
    folder = write_submission(correct, rubric, tmp_path / "out")
    payload = json.loads((folder / "results.json").read_text())
    check_payload(payload)
    assert [t["name"].split(":")[0] for t in payload["tests"]] == [t.id for t in rubric.tests]
    assert {t["visibility"] for t in payload["tests"] if "hidden" in t["name"].split(":")[0]} == {"after_due_date"}
    report = (folder / "report.md").read_text()
    assert "| 1 | 1-0-basic: DataGenerator" in report and "1-0-basic: 1-0-basic" not in report  # the id once


def test_all_layouts_and_zips_grade_alike(grader, tmp_path):
    import shutil

    make_variant(tmp_path / "class" / "src_layout", {}, layout="src")
    make_variant(tmp_path / "class" / "flat_layout", {}, layout="flat")
    zipped = make_variant(tmp_path / "zipped" / "alice", {})
    shutil.make_archive(str(tmp_path / "class" / "alice"), "zip", zipped.parent, "alice")
    # repositories: the submission below course folders, importing a sibling module
    make_variant(tmp_path / "class" / "bob", USES_RNN, {"mann.py": IMPORT_RNN["module"]}, layout="hw1/submission",
                 extra={"rnn.py": RNN_MODULE})
    xcs = make_variant(tmp_path / "zipped" / "carol", USES_RNN, {"mann.py": IMPORT_RNN["package"]},
                       layout="XCS330-PS2/src/submission", package=True, extra={"rnn.py": RNN_MODULE})
    shutil.make_archive(str(tmp_path / "class" / "carol"), "zip", xcs)
    subs = find_submissions([tmp_path / "class"])
    assert sorted(s.name for s in subs) == ["alice", "bob", "carol", "flat_layout", "src_layout"]
    assert {s.code for s in subs} == {"alice/submission/", "", "src/submission/", "hw1/submission/",
                                      "XCS330-PS2/src/submission/"}
    quick = rubric_for_tests(["data_shapes", "mann_layers", "mann_output"])
    for sub in subs:
        result = grader.grade(sub, quick)
        assert failed(result) == set(), (sub.name, [t.message for t in result.tests if not t.passed])


@pytest.mark.slow
def test_training_passes_a_correct_model_and_fails_a_broken_one(grader, tmp_path):
    make_variant(tmp_path / "correct", {})
    make_variant(tmp_path / "leaked", BROKEN["leaked_query_labels"])
    make_variant(tmp_path / "flat", BROKEN["flat_output"])
    training = rubric_for_tests(["training"])
    results = {s.name: grader.grade(s, training) for s in find_submissions([tmp_path])}
    assert failed(results["correct"]) == set(), results["correct"].tests[0].message
    assert "query accuracy" in results["correct"].tests[0].message
    # trained while seeing the query labels, it guesses once the grader hides them
    assert failed(results["leaked"]) == {"training"}, results["leaked"].tests[0].message
    assert failed(results["flat"]) == {"training"}
    assert "loss_function" in results["flat"].tests[0].message
