"""Training any learner: the config, the one loop, the run folder.

config.py      TrainConfig and make_config: a model's published defaults, the given values, checked once
data.py        RunSplits / prepare_splits: the run's train, val and test splits, built once
loop.py        train(config, splits, out): the loop for every model, resumable exactly
micro_batches.py  a step's gradient a few episodes at a time (--micro-batch), the whole batch's up to rounding
scoring.py     evaluate(learner, batches): per-episode query accuracy and mean loss; fixed_test_scores: the test
run_folder.py  log.csv, checkpoint.pt, model.pt, summary.json; load_run rebuilds a finished run,
               load_weights any saved weights (a finished run's or a checkpoint's)
summary_fields.py  the names of a summary's test fields (test_accuracy_N20, best_val_test_accuracy)
events.py      the log's rows as TensorBoard events beside it (when the tensorboard package is installed)
device.py      resolve_device, set_threads

Names load their module on first use (config.py itself imports no torch).
"""

from episodes.lazy import lazy_exports

__all__ = ["RunSplits", "TrainConfig", "evaluate", "fixed_test_scores", "load_run", "load_weights", "make_config",
           "prepare_splits", "read_summary", "resolve_device", "set_threads", "check_run_folder", "train"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "TrainConfig": "config", "make_config": "config", "RunSplits": "data", "prepare_splits": "data",
    "train": "loop", "evaluate": "scoring", "fixed_test_scores": "scoring", "load_run": "run_folder",
    "load_weights": "run_folder", "read_summary": "run_folder",
    "resolve_device": "device", "set_threads": "device", "check_run_folder": "run_folder",
})
