"""Our figures beside the papers' own on the standard protocol: one row per (model, N, K) test.

A run tested at several N (``also_test_ways``) gives one row per N. Each row shows
our test accuracy ± 95% CI over the fixed test episodes, the published mean and
its interval where the paper gives one, the difference, the test of the best
validation loss's weights where a run without early stopping kept them (the
recipe's figure is the last weights'), and what the run cost
(steps, the early-stopping step and the refit's length, hours), so a reader can
tell a short schedule from a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mann.models.hyperparameters import model_label
from mann.stats import format_ci
from mann.training.summary_fields import BEST_PREFIX, test_figure


@dataclass(frozen=True)
class Published:
    """A paper's Omniglot figure: test accuracy (%) and its 95% interval (None where the paper gives none)."""

    mean: float
    ci95: float | None
    source: str


# Snell et al. (2017), Table 1 (Vinyals split, 1,000 test episodes; no intervals given for Omniglot).
# Finn et al. (2017), Table 1 (conv learner; own 1100/100/423 train/val/test character split with rotations; 600 episodes).
PUBLISHED: dict[tuple[str, int, int], Published] = {
    ("protonet", 5, 1): Published(98.8, None, "Snell et al. 2017"),
    ("protonet", 5, 5): Published(99.7, None, "Snell et al. 2017"),
    ("protonet", 20, 1): Published(96.0, None, "Snell et al. 2017"),
    ("protonet", 20, 5): Published(98.9, None, "Snell et al. 2017"),
    ("maml-cnn", 5, 1): Published(98.7, 0.4, "Finn et al. 2017"),
    ("maml-cnn", 5, 5): Published(99.9, 0.1, "Finn et al. 2017"),
    ("maml-cnn", 20, 1): Published(95.8, 0.3, "Finn et al. 2017"),
    ("maml-cnn", 20, 5): Published(98.9, 0.2, "Finn et al. 2017"),
    ("maml-fc", 5, 1): Published(89.7, 1.1, "Finn et al. 2017"),
    ("maml-fc", 5, 5): Published(97.5, 0.6, "Finn et al. 2017"),
}


# What each source's figures are, for a table's footnote.
SOURCE_NOTES = {
    "Snell et al. 2017": "Snell et al. (2017) Table 1 (ProtoNets; no intervals given for Omniglot)",
    "Finn et al. 2017": "Finn et al. (2017) Table 1 (MAML; ± 95% CI over 600 episodes, on their own 1100/100/423 "
                        "character split with rotations)",
}


def sources_note(sources) -> str:
    """'Published: <what each of ``sources`` is>.' for the sources a table cites ('' where it cites none)."""
    cited = [SOURCE_NOTES[s] for s in SOURCE_NOTES if s in set(sources)]
    return f"Published: {'; '.join(cited)}." if cited else ""


def published_columns(published: Published | None) -> dict[str, str]:
    """The 'published %' and 'source' cells of a row ('' each where the paper gives no figure)."""
    return {"published %": published_text(published), "source": "" if published is None else published.source}


def published_text(published: Published | None) -> str:
    """'98.7 ± 0.4' (or '98.8' where the paper gives no interval); '' where there is no published figure."""
    if published is None:
        return ""
    return f"{published.mean:.1f}" + (f" ± {published.ci95:.1f}" if published.ci95 is not None else "")


def test_ways(config: dict) -> list[int]:
    """The N of every test a cell makes (a config or a finished row): its own N, then each also_test_ways N."""
    also = config.get("also_test_ways")
    # A table's row of a cell without the option holds NaN there, not None.
    return [int(config["ways"]), *[int(n) for n in (also if isinstance(also, (list, tuple)) else [])]]


def protocol_tests(config: dict) -> list[tuple[str, int, int]]:
    """(model label, N, K) of every test a sweep cell's ``config`` makes on the papers' protocol
    (the vinyals split); none for a cell on another split."""
    if config.get("split") != "vinyals":
        return []
    return [(model_label(config["model"]), ways, int(config["shots"])) for ways in test_ways(config)]


def tests_of(row: dict) -> list[tuple[int, float, float]]:
    """(N, accuracy, CI) of every test of a finished row: its own N, then each also_test_ways N it has a figure for."""
    own = int(row["ways"])
    tests = []
    for ways in test_ways(row):
        accuracy, ci = test_figure(row, int(ways), own)
        if not _blank(accuracy):
            tests.append((int(ways), accuracy, ci))
    return tests


def best_val_test_text(row: dict, ways: int) -> str:
    """'93.1 ± 0.4 (step 52,000)': the test at N = ``ways`` of a finished row's best-validation-loss weights
    (a run without early stopping tests them beside its last ones); '' where the row has none."""
    accuracy, ci = test_figure(row, ways, int(row["ways"]), BEST_PREFIX)
    step = _int_or_blank(row.get("best_val_step"))
    if _blank(accuracy) or step == "":
        return ""
    return f"{format_ci(accuracy, ci)} (step {step:,})"


def papers_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per test of every finished row of ``rows`` (a sweep's rows), published figures beside ours."""
    out = []
    for row in rows[rows["status"] == "ok"].to_dict("records"):
        for ways, accuracy, ci in tests_of(row):
            published = PUBLISHED.get((row["model"], ways, int(row["shots"])))
            out.append({
                "model": model_label(row["model"]),
                "N": ways,
                "K": int(row["shots"]),
                "seed": int(row["seed"]),
                "ours % (95% CI)": format_ci(accuracy, ci),
                "published %": published_text(published),
                "ours − published": "" if published is None else f"{100 * accuracy - published.mean:+.1f}",
                "at best val loss %": best_val_test_text(row, ways),
                "source": published_columns(published)["source"],
                "split": f"{row['split']} ({row.get('test_fingerprint', '')})",
                "steps": _int_or_blank(row.get("stopped_step")) or int(row["steps"]),
                "best step": _int_or_blank(row.get("best_step")),
                "refit steps": _int_or_blank(row.get("refit_steps")),
                "hours": round(float(row["wall_s"]) / 3600, 2) if row.get("wall_s") else "",
            })
    return pd.DataFrame(out)


def _blank(value) -> bool:
    """Whether a row lacks a field: None, or NaN after pandas."""
    return value is None or value != value


def _int_or_blank(value) -> int | str:
    """An integer, or '' for a field the row lacks."""
    return "" if _blank(value) else int(value)
