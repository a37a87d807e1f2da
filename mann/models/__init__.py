"""The learners: every model the harness trains, behind one small interface.

protocol.py         Learner: ``scores(images, labels, training) -> query logits [B, N, N]``,
                    ``module`` (the trained parameters); query_loss / query_hits shared by all
mann.py             the assignment's MANN, the reference for grading
fast_lstm.py        the same MANN's CPU fast path (same weights, same numbers)
black_box.py        BlackBoxLearner: the MANN or any model with its interface, query row scored
plugin.py           a user's own class, ``path/file.py:Class`` or ``package.module:Class``
maml_batched.py     MAML, Meta-SGD, ANIL with every task of a meta-batch adapted at once (the default)
gradient.py         the same through learn2learn's per-task loop, the reference (l2l.py imports it, lazily)
protonet.py         prototypical networks; nets.py the networks; tasks.py episodes → support/query
hyperparameters.py  model names, kinds and published hyperparameters (pure Python)
registry.py         build_learner(settings): the one place that maps a name to a class

To add a model: give it a ``scores`` method and a ``module``, name it in
hyperparameters.py (its kind and defaults) and build it in registry.py.
Names load their module on first use.
"""

from episodes.lazy import lazy_exports

__all__ = ["MANN", "Learner", "build_learner", "loss_function", "query_hits", "query_loss"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "MANN": "mann", "loss_function": "mann", "Learner": "protocol", "query_hits": "protocol",
    "query_loss": "protocol", "build_learner": "registry",
})
