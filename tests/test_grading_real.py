"""Grading on the real Omniglot with the default rubric (skipped, with the reason, when absent)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grading_variants import BROKEN, CORRECT_VARIANTS, make_variant
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
    for name, edits in CORRECT_VARIANTS.items():
        make_variant(tmp_path / "class" / name, edits)
    for name in ("split_800_100_723", "lazy_split_800"):
        make_variant(tmp_path / "class" / name, BROKEN[name])
    rubric = load_rubric()
    untrained = replace(rubric, tests=tuple(t for t in rubric.tests if t.id != "training"))
    splits = replace(rubric, tests=tuple(t for t in rubric.tests if t.id == "split_disjoint"))
    with Grader(reference, rubric) as grader:
        subs = {s.name: s for s in find_submissions([tmp_path / "class"])}
        results = {"correct": grader.grade(subs["correct"]), "unshuffled": grader.grade(subs["unshuffled"], untrained)}
        results.update({name: grader.grade(subs[name], untrained) for name in CORRECT_VARIANTS})
        results.update({name: grader.grade(subs[name], splits) for name in ("split_800_100_723", "lazy_split_800")})
    correct = {t.spec.id: t for t in results["correct"].tests}
    assert results["correct"].score == 100, {k: t.message for k, t in correct.items() if not t.passed}
    assert "query accuracy on 500 test episodes" in correct["training"].message
    failed = {name: {t.spec.id for t in r.tests if not t.passed} for name, r in results.items()}
    assert failed == {"correct": set(), "unshuffled": {"query_shuffled"}, "self_shapes": set(), "lazy_split": set(),
                      "split_800_100_723": {"split_disjoint"}, "lazy_split_800": {"split_disjoint"}}, {
        name: [t.message for t in r.tests if not t.passed] for name, r in results.items()}
    exact = results["split_800_100_723"].tests[0].message
    assert "the train split holds 800 characters, not 1100" in exact and "measured exactly" in exact
    assert "the test split holds 723 characters, not 423" in exact
    estimated = results["lazy_split_800"].tests[0].message
    assert "the train split holds about" in estimated and "identified by their pixels" in estimated
