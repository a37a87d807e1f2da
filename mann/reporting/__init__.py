"""Reporting: what finished runs and sweeps measured, as tables, plots and error rates.

tables.py    collect run folders or a sweep store → CSV + Markdown: per-run tables, seeds
             aggregated with Student's t, pivots N x K, the side-by-side table of models
papers.py    the published Omniglot figures, and a sweep's finished tests beside them
progress.py  how far a sweep's unfinished cells have come, from their carried checkpoints
protocol.py  the papers' protocol across sweep stores: every published cell beside ours, or how far it is
gaps.py      a store's gaps.toml: the measured reason a cell is off its paper's figure, checked
plots.py     PNGs (matplotlib, optional): accuracy vs N, accuracy vs hidden, learning curves
lake.py      error rates of trained models on the 20 official one-shot runs
saved_tests.py  saved weights (a finished run's, a checkpoint's) on their run's fixed test episodes

Names load their module on first use.
"""

from episodes.lazy import lazy_exports

__all__ = ["collect", "is_sweep_store", "lake_error_table", "score_lake_runs", "score_saved_weights",
           "write_model_report", "write_report", "write_protocol_report", "write_sweep_report", "write_table"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "collect": "tables", "is_sweep_store": "tables", "write_model_report": "tables", "write_report": "tables",
    "write_sweep_report": "tables", "write_table": "tables", "write_protocol_report": "protocol",
    "lake_error_table": "lake", "score_lake_runs": "lake", "score_saved_weights": "saved_tests",
})
