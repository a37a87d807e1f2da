"""Rubric parameters that could not tell a swapped layout from the right one are refused."""

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
