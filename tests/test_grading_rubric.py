"""The checks of a rubric's tests: one check in several tests (``check = ...``),
several checks in one test (``all_of = [...]``), and parameters that could not
tell a swapped layout from the right one."""

from __future__ import annotations

import pytest

from episodes.errors import UsageError
from mann.grading.rubric import load_rubric


def rubric_error(tmp_path, text: str) -> str:
    path = tmp_path / "rubric.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_rubric(path)
    return str(err.value)


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
