"""The test battery: every test the grader knows, by id, in rubric order."""

from __future__ import annotations

from mann.grading import checks_data, checks_files, checks_model, checks_training
from mann.grading.check import Check

CHECKS: dict[str, Check] = {
    c.id: c for c in [*checks_data.CHECKS, *checks_model.CHECKS, *checks_training.CHECKS, *checks_files.CHECKS]
}
