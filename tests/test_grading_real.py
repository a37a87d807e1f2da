"""Grading on the real Omniglot with the default rubric (skipped, with the reason, when absent)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grading_variants import BROKEN, make_variant
from mann.grading.grade import Grader
from mann.grading.reference import build_reference
from mann.grading.rubric import load_rubric
from mann.grading.submission import find_submissions

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_default_rubric_on_real_omniglot(real_store, tmp_path):
    # 4 drawers per character are all the default rubric's K+1 <= 4 episodes need
    reference = build_reference(real_store, tmp_path / "omniglot_resized", drawers=4)
    make_variant(tmp_path / "class" / "correct", {})
    make_variant(tmp_path / "class" / "unshuffled", BROKEN["unshuffled_query"])
    rubric = load_rubric()
    untrained = replace(rubric, tests=tuple(t for t in rubric.tests if t.id != "training"))
    with Grader(reference, rubric) as grader:
        subs = {s.name: s for s in find_submissions([tmp_path / "class"])}
        results = {"correct": grader.grade(subs["correct"]), "unshuffled": grader.grade(subs["unshuffled"], untrained)}
    correct = {t.spec.id: t for t in results["correct"].tests}
    assert results["correct"].score == 100, {k: t.message for k, t in correct.items() if not t.passed}
    assert "query accuracy on 500 test episodes" in correct["training"].message
    failed = {t.spec.id for t in results["unshuffled"].tests if not t.passed}
    assert failed == {"query_shuffled"}
