"""Sweeps: many training runs (cells) over a grid, resumable, on local processes or Ray.

grid.py         axes (models, N, K, hidden, seeds, ...), settings, [params.<model>] tables, TOML
                and presets (presets/*.toml) → cells with stable ids and checked configs
store.py        the result store results/<name>/: sweep.json, results.jsonl, sessions.jsonl, logs/
carry.py        unfinished cells' checkpoints kept in the store (carry_checkpoints), for a fresh clone
cell_runner.py  run one cell through mann.training and turn its outcome into a row (never raises)
progress.py     how executors report back: emit(kind, cell id, payload), throttled steps
executors.py    where cells run: this process, worker processes, Ray tasks (make_executor)
ray_executor.py cells as Ray tasks in node-local scratch folders, retried on a lost node from the last checkpoint
ray_relay.py    the actor on the driver's node that carries the tasks' progress and run files to the driver
run_files.py    a run folder as bytes: read, written back atomically, what changed since the last look
run.py          run_sweep: check everything, run the unfinished cells, store each row as it lands

Names load their module on first use.
"""

from episodes.lazy import lazy_exports

__all__ = ["Cell", "ResultStore", "SweepSpec", "expand", "make_executor", "run_sweep", "spec_from_mapping",
           "store_resize"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "Cell": "grid", "SweepSpec": "grid", "expand": "grid", "spec_from_mapping": "grid", "store_resize": "grid",
    "ResultStore": "store", "make_executor": "executors", "run_sweep": "run",
})
