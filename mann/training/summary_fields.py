"""The names of a run summary's test fields, shared by the loop that writes them and the tables that read them.

No torch here: ``mann report`` reads summaries without it.
"""

from __future__ import annotations

# The figures of one test, in fixed_test_scores's order.
TEST_KEYS = ("test_accuracy", "test_ci95", "test_loss")

# The fields testing best.pt, the best validation loss's weights: best_val_test_accuracy ...
BEST_PREFIX = "best_val_"


def test_field(key: str, ways: int, own_ways: int, prefix: str = "") -> str:
    """The summary field of one test figure: ``key`` (test_accuracy, test_ci95, test_loss) at N = ``ways`` of a run
    of N = ``own_ways`` ('test_accuracy', 'test_accuracy_N20'), after ``prefix`` ('best_val_' for best.pt's test)."""
    return f"{prefix}{key}{'' if ways == own_ways else f'_N{ways}'}"


def test_fields(tests: dict[int, tuple[float, float, float]], own_ways: int, prefix: str = "") -> dict:
    """The summary fields of ``tests`` (:func:`mann.training.scoring.fixed_test_scores`'s result): the run's own
    N first, then the others."""
    ordered = sorted(tests, key=lambda ways: ways != own_ways)
    return {test_field(key, ways, own_ways, prefix): value for ways in ordered
            for key, value in zip(TEST_KEYS, tests[ways])}


def test_figure(summary: dict, ways: int, own_ways: int, prefix: str = "") -> tuple:
    """(accuracy, CI) of one test in a summary or a sweep row, each None where it lacks the field."""
    return tuple(summary.get(test_field(key, ways, own_ways, prefix)) for key in TEST_KEYS[:2])
