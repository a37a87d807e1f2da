"""mann-bench: few-shot meta-learning on Omniglot — the MANN, one trainer for every model,
sweeps, reports, benchmarks and a grader for the CS330 homework.

Packages (data flows down the list; each imports only those above it):
  episodes/        (beside mann/) the data: Omniglot store, splits, EpisodeSampler
  mann.models      the learners (MANN, MAML/Meta-SGD/ANIL, ProtoNets, your own class)
  mann.training    config, the one loop, the run folder (log, checkpoint, summary)
  mann.sweep       grids, the result store, executors (local processes, Ray)
  mann.reporting   tables, plots, the Lake runs' error rates
  mann.bench       benchmarks against starter-style baselines
  mann.grading     grading homework submissions in a sandbox
  mann.commands    the ``mann`` command, one module per subcommand
mann.stats (confidence intervals), mann.provenance (versions, timestamps) and mann.signals
(SIGTERM / Ctrl-C as a clean stop) serve every layer.

``from mann import MANN, loss_function`` loads the model on first use.
"""

from episodes.lazy import lazy_exports

__version__ = "0.2.0"
__all__ = ["MANN", "TrainConfig", "loss_function", "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "MANN": "models.mann", "loss_function": "models.mann", "TrainConfig": "training.config",
})
