"""Rubrics by name and their tests' checks: the packaged ``xcs330`` preset, one
check in several tests (``check = ...``), several checks in one test
(``all_of = [...]``), and parameters that could not tell a swapped layout."""

from __future__ import annotations

import pytest

from episodes.errors import UsageError
from grading_variants import rubric_error
from mann.grading.rubric import load_rubric, packaged_rubrics

XCS330 = {  # id: (points, visibility, checks)
    "1-0-basic": (2, "visible", ["data_shapes"]),
    "1-1-basic": (2, "visible", ["support_rows", "query_shuffled"]),
    "1-2-hidden": (6, "after_due_date", ["support_rows", "query_shuffled", "query_characters", "distinct_drawers",
                                         "split_disjoint"]),
    "2-0-basic": (2, "visible", ["mann_output"]),
    "2-1-hidden": (4, "after_due_date", ["loss_reference"]),
    "2-2-hidden": (6, "after_due_date", ["predictions_reference"]),
    "3-0-hidden": (2, "after_due_date", ["results_files"]),
    "3-1-hidden": (2, "after_due_date", ["results_files"]),
    "3-2-hidden": (2, "after_due_date", ["results_files"]),
    "3-3-hidden": (2, "after_due_date", ["results_files"]),
}


def test_the_xcs330_preset_has_the_course_ids_points_and_split():
    rubric = load_rubric("xcs330")
    got = {t.id: (t.points, t.visibility, [p.check for p in t.parts]) for t in rubric.tests}
    assert got == XCS330
    assert list(got) == list(XCS330)  # in the course's order
    assert rubric.max_score == 30
    assert all(t.name.startswith(f"{t.id}: ") for t in rubric.tests)  # students see the course's ids
    tests = {t.id: t for t in rubric.tests}
    assert [t.params["runs"] for t in rubric.tests if t.id.startswith("3-")] == [
        [[1, 2, 0.90]], [[2, 2, 0.90]], [[1, 3, 0.75]], [[1, 4, 0.60]]]
    assert tests["2-1-hidden"].params["tolerance"] == 1e-5 and tests["2-2-hidden"].params["tolerance"] == 1e-3
    # a check shared by two tests has the same parameters in both, so it runs once
    assert tests["1-1-basic"].parts == tests["1-2-hidden"].parts[:2]


def test_rubrics_go_by_packaged_name_or_by_path(tmp_path):
    assert set(packaged_rubrics()) == {"default", "xcs330"}
    assert load_rubric("default") == load_rubric()
    assert load_rubric(packaged_rubrics()["xcs330"]) == load_rubric("xcs330")
    copy = tmp_path / "mine.toml"
    copy.write_text(packaged_rubrics()["xcs330"].read_text())
    assert [t.id for t in load_rubric(copy).tests] == list(XCS330)
    with pytest.raises(UsageError, match=r"--rubric xcs331: no packaged rubric of that name and no such file; "
                                         r"packaged rubrics: default, xcs330"):
        load_rubric("xcs331")
    with pytest.raises(UsageError, match="no such file"):
        load_rubric(tmp_path / "missing.toml")


def test_one_check_in_several_tests_each_with_its_parameters(tmp_path):
    path = tmp_path / "rubric.toml"
    path.write_text('[tests.easy]\ncheck = "results_files"\npoints = 1\nruns = [[1, 2, 0.5]]\n'
                    '[tests.hard]\ncheck = "results_files"\npoints = 3\nruns = [[1, 2, 0.99]]\n'
                    '[tests.hard.limits]\nwall_s = 5\n')
    easy, hard = load_rubric(path).tests
    assert (easy.id, easy.params["runs"], hard.id, hard.params["runs"]) == ("easy", [[1, 2, 0.5]], "hard", [[1, 2, 0.99]])
    assert hard.limits.wall_s == 5 and easy.limits.wall_s == 60
    assert "unknown test [tests.easy]" in rubric_error(tmp_path, "[tests.easy]\npoints = 1\n")
    assert 'or name the check it runs with check = "<id>"' in rubric_error(tmp_path, "[tests.easy]\npoints = 1\n")
    assert "unknown check 'results'" in rubric_error(tmp_path, '[tests.easy]\ncheck = "results"\npoints = 1\n')
    assert "may hold only letters" in rubric_error(tmp_path, '[tests."a b"]\ncheck = "results_files"\npoints = 1\n')
    assert "unknown key 'steps'" in rubric_error(tmp_path, '[tests.x]\ncheck = "results_files"\npoints = 1\nsteps = 3\n')


def test_a_test_of_several_checks_takes_each_ones_parameters_in_its_table(tmp_path):
    path = tmp_path / "rubric.toml"
    path.write_text('[tests.order]\nall_of = ["support_rows", "query_shuffled"]\npoints = 4\n'
                    '[tests.order.query_shuffled]\nepisodes = 7\n[tests.order.limits]\ncpu_s = 9\n')
    (order,) = load_rubric(path).tests
    support, query = order.parts
    assert (support.check, support.params["episodes"], query.check, query.params["episodes"]) == (
        "support_rows", 20, "query_shuffled", 7)
    assert support.limits.cpu_s == query.limits.cpu_s == 9
    with pytest.raises(ValueError, match="runs 2 checks"):
        order.params
    several = '[tests.order]\nall_of = ["support_rows", "query_shuffled"]\npoints = 1\n'
    message = rubric_error(tmp_path, several + "episodes = 3\n")
    assert "unknown key 'episodes'; with all_of, give each check's parameters in its own table" in message
    assert "unknown key 'stepz'" in rubric_error(tmp_path, several + "[tests.order.support_rows]\nstepz = 1\n")
    assert "names 'support_rows' twice" in rubric_error(
        tmp_path, '[tests.o]\nall_of = ["support_rows", "support_rows"]\npoints = 1\n')
    assert "not both" in rubric_error(tmp_path, '[tests.o]\nall_of = ["support_rows"]\ncheck = "support_rows"\npoints = 1\n')
    assert "give a list of check ids" in rubric_error(tmp_path, '[tests.o]\nall_of = []\npoints = 1\n')


@pytest.mark.parametrize("table, words", [
    ("[tests.data_shapes]\npoints = 1\nconfigs = [[2, 1], [5, 1]]\n",
     "configs [2, 1]: K+1 = N = 2, so images laid out [N, K+1, 784] would have the expected shape"),
    ("[tests.mann_output]\npoints = 1\nways = 3\nshots = 2\n",
     "shots + 1 = ways = 3: an output laid out [B, N, K+1, N] would have the expected shape"),
    ("[tests.predictions_reference]\npoints = 1\nways = 5\nbatch = 5\n",
     "batch = 5 equals ways: an output with those axes swapped would have the expected shape"),
    ("[tests.mann_output]\npoints = 1\nways = 4\nbatch = 3\n", "batch = 3 equals shots + 1"),
    ("[tests.query_masked]\npoints = 1\nways = 1\n", "ways = 1: one class has only one labelling"),
])
def test_parameters_that_cannot_tell_a_swapped_layout_are_refused(tmp_path, table, words):
    assert words in rubric_error(tmp_path, table)
