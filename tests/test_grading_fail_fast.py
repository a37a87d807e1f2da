"""A submission that hangs or crawls costs one test's limit, not one per test:
tests that need the part that ran out of time get zero at once with the
reason, and a test that would run past its limit stops as soon as its pace
says so."""

from __future__ import annotations

import pytest

from grading_variants import make_variant, rubric_for_tests
from mann.grading.grade import Grader
from mann.grading.submission import find_submissions

MODEL_TESTS = ["mann_layers", "mann_output", "query_masked", "loss_reference", "predictions_reference"]
DATA_TESTS = ["data_shapes", "query_shuffled", "distinct_drawers"]  # in rubric order
LIMITS = {"wall_s": 8, "cpu_s": 8, "file_mb": 2, "output_kb": 8}


@pytest.fixture(scope="module")
def grader(grading_reference):
    rubric = rubric_for_tests(MODEL_TESTS + DATA_TESTS, LIMITS,
                              data_shapes={"episodes": 1}, query_shuffled={"episodes": 40})
    with Grader(grading_reference, rubric) as g:
        yield g


def outcomes(result) -> dict:
    return {t.spec.id: t for t in result.tests}


def grade_one(grader, folder, rubric=None):
    (submission,) = find_submissions([folder])
    return grader.grade(submission, rubric)


def test_a_forward_that_never_returns_costs_one_timeout(grader, tmp_path):
    make_variant(tmp_path / "loops", {"mann.py": {"output": "while True: pass"}})
    result = grade_one(grader, tmp_path / "loops")
    got = outcomes(result)
    assert "limit of 8" in got["mann_output"].message, got["mann_output"].message
    for test_id in ("query_masked", "predictions_reference"):
        assert not got[test_id].passed
        assert got[test_id].message.startswith("not run: needs MANN.forward, which "), got[test_id].message
        assert "in test \"" in got[test_id].message and got[test_id].seconds < 2
    # what does not call forward is graded as usual
    assert all(got[t].passed for t in ("mann_layers", "loss_reference", *DATA_TESTS)), {
        k: t.message for k, t in got.items()}
    assert result.seconds < 8 + 3 * 4 + 15  # one limit, not three


def test_a_crawling_loader_stops_when_its_pace_passes_the_limit(grader, tmp_path):
    make_variant(tmp_path / "slow", {"load_data.py": {"return": "__import__('time').sleep(0.5)\nreturn images, labels"}})
    got = outcomes(grade_one(grader, tmp_path / "slow"))
    assert got["data_shapes"].passed, got["data_shapes"].message  # 3 episodes: slow but within the limit
    shuffled = got["query_shuffled"]
    assert not shuffled.passed and shuffled.message.startswith("stopped after "), shuffled.message
    assert "of 40 episodes" in shuffled.message and "over its limit of 8 s" in shuffled.message
    assert shuffled.seconds < 7  # it did not wait for the limit
    assert got["distinct_drawers"].message.startswith("not run: needs the DataGenerator, which was too slow")
    assert all(got[t].passed for t in MODEL_TESTS)


def test_training_that_would_overrun_stops_after_its_first_steps(grader, tmp_path):
    rubric = rubric_for_tests(["training"], training={"ways": 2, "steps": 400, "test_episodes": 50,
                                                      "limits": {"wall_s": 20, "cpu_s": 20}})
    make_variant(tmp_path / "slow_forward", {"mann.py": {
        "output": "__import__('time').sleep(0.3)\nreturn out.reshape(b, k1, n, n)"}})
    (test,) = grade_one(grader, tmp_path / "slow_forward", rubric).tests
    assert not test.passed and "training steps" in test.message and "over its limit of 20 s" in test.message, \
        test.message
    assert test.seconds < 15
