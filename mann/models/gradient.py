"""MAML, Meta-SGD and ANIL through learn2learn, on tasks from the project's sampler: the reference
(``--maml-impl learn2learn``) that the default, :mod:`mann.models.maml_batched`, is tested against.

Each task is adapted on its own: the learner is cloned, takes ``adapt_steps``
gradient steps on the support set (second-order unless ``first_order``), and
its query logits give the meta-loss. At test time the adaptation takes
``test_adapt_steps`` first-order steps (the meta-gradient is not needed, and
the adapted weights are the same).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mann.models.l2l import import_learn2learn
from mann.models.nets import cnn_learner, fc_learner
from mann.models.tasks import episode_to_tasks


class GradientLearner:
    """A learn2learn-wrapped learner for N = ``ways``.

    model: maml-fc | maml-cnn | metasgd-cnn | anil-cnn; fast_lr: the inner step
        size (Meta-SGD: its initial value); adapt_steps / test_adapt_steps: inner
        steps in training / when scoring; first_order: drop second-order terms.
    shots: K, the support rows of an episode; the rows after them are queries (MAML's
        K-shot episodes train on K queries per class).
    module: every meta-learned parameter (the learner's initial weights, and
        Meta-SGD's step sizes), for the optimiser, ``model.pt`` and the count.
    """

    def __init__(self, model: str, ways: int, fast_lr: float, adapt_steps: int, test_adapt_steps: int,
                 first_order: bool, generator: torch.Generator, shots: int | None = None) -> None:
        l2l = import_learn2learn()
        self.adapt_steps, self.test_adapt_steps = adapt_steps, test_adapt_steps
        self.shots = shots  # K: the support rows (None: all but the last row); the rest are queries
        net = fc_learner(ways, generator) if model == "maml-fc" else cnn_learner(ways, generator)
        algorithm = model.split("-")[0]
        if algorithm == "maml":
            self.module: nn.Module = l2l.algorithms.MAML(net, lr=fast_lr, first_order=first_order)
        elif algorithm == "metasgd":
            self.module = l2l.algorithms.MetaSGD(net, lr=fast_lr, first_order=first_order)
        elif algorithm == "anil":
            # ANIL adapts only the head; the features are meta-learned by the outer loop alone.
            head = l2l.algorithms.MAML(net.classifier, lr=fast_lr, first_order=first_order)
            self.module = nn.ModuleDict({"features": net.features, "head": head})
        else:
            raise ValueError(f"not a gradient-based model: {model}")
        self.anil = algorithm == "anil"

    def scores(self, images: torch.Tensor, labels: torch.Tensor, training: bool) -> torch.Tensor:
        """Query logits float32 [B, Q·N, N] after adapting to each episode's support set (Q = the rows after K).

        training=True keeps the graph for the meta-gradient; otherwise the
        result is detached and the adaptation first-order.
        """
        tasks = episode_to_tasks(images, labels, self.shots)
        steps = self.adapt_steps if training else self.test_adapt_steps
        first_order = None if training else True
        out = []
        with torch.enable_grad():  # adaptation needs gradients even when scoring
            for b in range(len(tasks)):
                support_x, support_y, query_x = tasks.episode(b)
                logits = self._adapt_and_predict(support_x, support_y, query_x, steps, first_order)
                out.append(logits if training else logits.detach())
        return torch.stack(out)

    def _adapt_and_predict(self, support_x, support_y, query_x, steps, first_order) -> torch.Tensor:
        if self.anil:
            features = self.module["features"]
            support_x, query_x = features(support_x), features(query_x)
            learner = self.module["head"].clone()
        else:
            learner = self.module.clone()
        for _ in range(steps):
            learner.adapt(F.cross_entropy(learner(support_x), support_y), first_order=first_order)
        return learner(query_x)
