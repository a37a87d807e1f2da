"""MAML, Meta-SGD and ANIL with every task of a meta-batch adapted at once, in plain torch.

The same algorithms as :mod:`mann.models.gradient` (learn2learn's per-task
``clone()``/``adapt()`` loop, kept as the reference), on the same parameters:
the module trees below have learn2learn's parameter names and order, so a
``model.pt`` of either implementation loads into the other and Adam sees the
same list.

Shapes (B tasks, M images of a set, N ways, C = 64 channels, S = 28):

* meta-parameters: the learner's tensors, in ``module.parameters()`` order,
  ``(w, b, bn_w, bn_b)`` for each of the 4 hidden layers, then the classifier's
  ``(w [N, F], b [N])``;
* task parameters: the same list with a leading task axis, float32 [B, *shape];
  at the start of adaptation ``p.expand(B, *p.shape)``, so each task's inner
  gradient lands on its own slice;
* images: float32 [B, M, 1, S, S]; labels int64 [B, M]; logits float32 [B, M, N].

The CNN runs its B tasks as one grouped convolution: activations are laid out
[M, B·C, H, W] (task b's channels are the b-th group of C) and weights
[B·C_out, C_in, 3, 3] with ``groups=B``. Batch normalisation on that layout
with ``training=True`` and no running statistics normalises each (task,
channel) over its own M images and positions: the per-task batch statistics of
the reference. The FC learner's linear layers are batched matrix products over
[B, M, F]. One ``autograd.grad`` of the summed per-task support losses gives
every task's own inner gradient, since no task's loss depends on another
task's parameters; ``create_graph=True`` keeps the second-order terms.

``published=True`` is Finn et al.'s inner loop on their learner
(:func:`mann.models.nets.cnn_learner`): batch norm has no scale, and its offset
is meta-learned but not adapted in the inner loop (their inner gradient is
taken with respect to the weights and biases alone). Their support loss is the
sum of the per-image losses divided by K, N × the mean this module takes
(``fast_lr`` here = N × their ``update_lr``).

Why this form (one second-order MAML-CNN meta-update, 2 threads, 2-core AMD EPYC
VM; the least of several runs, the machine shared with other jobs): learn2learn's
loop 290-314 ms (5-way, 32 tasks, 1 step) and 1.21-1.42 s (20-way, 16 tasks, 5
steps); this grouped-convolution form 150-185 ms and 1.12-1.29 s before
:class:`GroupedConv` took another 11-15% off (measured at one thread); ``torch.func``
(``vmap`` over ``grad`` of ``functional_call``, which folds the tasks into a
grouped convolution too) 180 ms and 1.40 s; im2col (``unfold``) and batched
matrix products in place of the convolutions, and batch norm with a hand-written
differentiable backward, were no faster. What remains is memory-bound: the
second-order backward of batch norm over the first layer's activations (14x14x64
per image, [M, B·64, 14, 14] here) is most of the 20-way update; the FLOPs of
the update would take a fifth (5-way) to a quarter (20-way) of its time at the
machine's measured convolution rate (``mann bench --only maml``). Training sets
glibc's malloc to keep freed blocks (:func:`mann.training.device.keep_freed_memory`):
without it the 20-way update page-faults its 16 MiB activations in each step and
takes a third longer.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mann.models.nets import BN_EPS, bn_eps, cnn_learner, fc_learner
from mann.models.tasks import episode_to_tasks

HIDDEN_LAYERS = 4
BN_PARAMS = (2, 3)  # of each hidden layer's (w, b, bn_w, bn_b)
Params = Sequence[torch.Tensor]
Forward = Callable[[Params, torch.Tensor], torch.Tensor]


def per_task_bn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = BN_EPS) -> torch.Tensor:
    """Batch norm of x [M, B·C, ...] with batch statistics per (task, channel); weight, bias [B, C]."""
    return F.batch_norm(x, None, None, weight.reshape(-1), bias.reshape(-1), training=True, eps=eps)


class GroupedConv(torch.autograd.Function):
    """The learner's 3x3, stride-2, padding-1 convolution of x [M, G·C_in, H, W] with weights
    [G·C_out, C_in, 3, 3] and bias [G·C_out] in G groups: F.conv2d, with a backward written as two
    differentiable convolutions so that the second-order backward stays fast.

    Autograd's own double backward of a grouped convolution computes one of its
    terms with one small convolution per group (32 per layer at meta-batch 32).
    Here the input gradient is a grouped transposed convolution and the weight
    gradient convolution_backward asked for the weight alone; differentiating
    those needs no per-group loop. 11-15% off a meta-update at one thread.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.groups = groups
        return F.conv2d(x, weight, bias, stride=2, padding=1, groups=groups)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            # A stride-2 convolution maps sides 2s and 2s-1 to s: the transpose needs to be told which.
            extra = x.shape[-1] - (2 * (grad.shape[-1] - 1) - 2 + 3)
            grad_x = F.conv_transpose2d(grad, weight, stride=2, padding=1, output_padding=extra, groups=ctx.groups)
        if ctx.needs_input_grad[1]:
            grad_w = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [2, 2], [1, 1], [1, 1], False, [0, 0], ctx.groups, [False, True, False])[1]
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None


def cnn_features(params: Params, images: torch.Tensor, eps: float = BN_EPS) -> torch.Tensor:
    """The CNN's 4 conv blocks and spatial mean: images [B, M, 1, S, S] → features float32 [B, M, C].

    params: the 16 tensors (conv w [B, C, C_in, 3, 3], conv b, bn w, bn b [B, C]) of the 4 blocks.
    """
    tasks, shots = images.shape[:2]
    x = images.transpose(0, 1).reshape(shots, tasks * images.shape[2], *images.shape[3:])  # [M, B·1, S, S]
    for i in range(HIDDEN_LAYERS):
        w, b, bn_w, bn_b = params[4 * i: 4 * i + 4]
        x = GroupedConv.apply(x, w.reshape(-1, *w.shape[2:]), b.reshape(-1), tasks)
        x = F.relu(per_task_bn(x, bn_w, bn_b, eps))
    return x.mean(dim=(2, 3)).reshape(shots, tasks, -1).transpose(0, 1)


def fc_features(params: Params, images: torch.Tensor, eps: float = BN_EPS) -> torch.Tensor:
    """The FC learner's 4 (linear, BN, ReLU) layers: images [B, M, 1, S, S] → features float32 [B, M, 64].

    params: the 16 tensors (linear w [B, out, in], b, bn w, bn b [B, out]) of the 4 layers.
    """
    tasks, shots = images.shape[:2]
    x = images.reshape(tasks, shots, -1)
    for i in range(HIDDEN_LAYERS):
        w, b, bn_w, bn_b = params[4 * i: 4 * i + 4]
        x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))  # [B, M, out]
        # BN wants the channels in dim 1 and the M images in dim 0: [M, B·out].
        x = per_task_bn(x.transpose(0, 1).reshape(shots, -1), bn_w, bn_b, eps)
        x = x.reshape(shots, tasks, -1).transpose(0, 1)
        x = F.relu(x)
    return x


def linear_head(params: Params, features: torch.Tensor) -> torch.Tensor:
    """Logits [B, M, N] of features [B, M, F] under per-task (w [B, N, F], b [B, N])."""
    w, b = params
    return torch.baddbmm(b.unsqueeze(1), features, w.transpose(1, 2))


def learner_forward(features: Forward) -> Forward:
    """The whole learner: its 16 feature tensors, then the head's 2."""
    def forward(params: Params, images: torch.Tensor) -> torch.Tensor:
        return linear_head(params[-2:], features(params[:-2], images))
    return forward


cnn_forward = learner_forward(cnn_features)
fc_forward = learner_forward(fc_features)


def per_task(params: Params, tasks: int) -> list[torch.Tensor]:
    """Each meta-parameter broadcast to B tasks, [B, *shape], without copying."""
    return [p.expand(tasks, *p.shape) for p in params]


def adapt(forward: Forward, params: Params, step_sizes: Params, inputs: torch.Tensor, targets: torch.Tensor,
          steps: int, create_graph: bool) -> list[torch.Tensor]:
    """``steps`` gradient steps of every task on its support set; the adapted task parameters.

    params: task parameters [B, *shape]; step_sizes: one scalar or tensor per
    parameter broadcasting against it (MAML's α, Meta-SGD's learned α), or None
    for a parameter the inner loop leaves as it is;
    inputs: what ``forward`` takes, [B, M, ...]; targets: int64 [B, M].
    create_graph: keep the graph of the inner gradients (second order); without
    it the inner gradients are constants, the first-order approximation.
    """
    params = list(params)
    adapted = [i for i, a in enumerate(step_sizes) if a is not None]
    tasks, shots = targets.shape
    for _ in range(steps):
        logits = forward(params, inputs)
        # Each task's loss is the mean over its own M support images; their sum over tasks has
        # the per-task gradients, each on its own task slice.
        loss = F.cross_entropy(logits.reshape(tasks * shots, -1), targets.reshape(-1), reduction="sum") / shots
        grads = torch.autograd.grad(loss, [params[i] for i in adapted], create_graph=create_graph)
        for i, g in zip(adapted, grads):
            params[i] = params[i] - step_sizes[i] * g
    return params


class LearnerUnder(nn.Module):
    """A learner under the attribute ``module``: learn2learn's ``MAML`` wrapper's parameter names."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


class WithStepSizes(LearnerUnder):
    """Meta-SGD's parameters: the learner under ``module`` and one step size per weight in ``lrs``
    (learn2learn's ``MetaSGD`` names), each initialised at ``lr``."""

    def __init__(self, module: nn.Module, lr: float) -> None:
        super().__init__(module)
        self.lrs = nn.ParameterList([nn.Parameter(torch.full_like(p, lr)) for p in module.parameters()])


class BatchedGradientLearner:
    """MAML, Meta-SGD or ANIL for N = ``ways``, all tasks of a batch adapted together.

    Arguments and ``module`` as :class:`mann.models.gradient.GradientLearner`
    (the same parameter names, order and initial values for the same generator).
    published: Finn et al.'s learner and inner loop (module docstring); MAML and ANIL only.
    """

    def __init__(self, model: str, ways: int, fast_lr: float, adapt_steps: int, test_adapt_steps: int,
                 first_order: bool, generator: torch.Generator, shots: int | None = None,
                 published: bool = False) -> None:
        self.adapt_steps, self.test_adapt_steps, self.first_order = adapt_steps, test_adapt_steps, first_order
        self.shots = shots  # K: the support rows (None: all but the last row); the rest are queries
        self.fast_lr = fast_lr
        self.algorithm = model.split("-")[0]
        if published and self.algorithm == "metasgd":
            raise ValueError("published=True is Finn et al.'s MAML learner; Meta-SGD has no such option")
        self.published = published
        net = (fc_learner(ways, generator, published=published) if model == "maml-fc"
               else cnn_learner(ways, generator, published=published))
        self.features = partial(fc_features if model == "maml-fc" else cnn_features, eps=bn_eps(net))
        if self.algorithm == "maml":
            self.module: nn.Module = LearnerUnder(net)
        elif self.algorithm == "metasgd":
            self.module = WithStepSizes(net, fast_lr)
        elif self.algorithm == "anil":
            self.module = nn.ModuleDict({"features": net.features, "head": LearnerUnder(net.classifier)})
        else:
            raise ValueError(f"not a gradient-based model: {model}")

    def scores(self, images: torch.Tensor, labels: torch.Tensor, training: bool) -> torch.Tensor:
        """Query logits float32 [B, Q·N, N] after adapting to each episode's support set (Q = the rows after K).

        training=True keeps the graph for the meta-gradient (second order unless
        ``first_order``); otherwise the adaptation is first-order on detached
        meta-parameters and the result is detached.
        """
        tasks = episode_to_tasks(images, labels, self.shots)
        steps = self.adapt_steps if training else self.test_adapt_steps
        create_graph = training and not self.first_order
        with torch.enable_grad():  # adaptation needs gradients even when scoring
            logits = self.adapt_and_predict(tasks.support_x, tasks.support_y, tasks.query_x, steps, create_graph,
                                            detached=not training)
        return logits if training else logits.detach()

    def adapt_and_predict(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                          steps: int, create_graph: bool, detached: bool = False) -> torch.Tensor:
        """Query logits [B, Q·N, N] of every task after ``steps`` inner steps on its support set.

        support_x [B, K·N, 1, S, S], support_y int64 [B, K·N], query_x [B, Q·N, 1, S, S].
        detached: start from detached meta-parameters (scoring needs no meta-gradient).
        """
        def meta(params):
            return [p.detach().requires_grad_() if detached else p for p in params]

        tasks = support_x.shape[0]
        if self.algorithm == "anil":
            # ANIL adapts only the head, on features computed once with the meta-learned weights
            # (each task's batch statistics); the features' own gradient comes from the outer loss.
            body = per_task(meta(self.module["features"].parameters()), tasks)
            support_f, query_f = self.features(body, support_x), self.features(body, query_x)
            head = adapt(linear_head, per_task(meta(self.module["head"].parameters()), tasks),
                         [self.fast_lr] * 2, support_f, support_y, steps, create_graph)
            return linear_head(head, query_f)
        forward = learner_forward(self.features)
        params = per_task(meta(self.module.module.parameters()), tasks)
        if self.algorithm == "metasgd":
            step_sizes = meta(self.module.lrs)
        else:
            step_sizes = [self.fast_lr] * len(params)
            if self.published:  # batch norm's offsets (and frozen scales) are not adapted
                for i in range(HIDDEN_LAYERS):
                    for j in BN_PARAMS:
                        step_sizes[4 * i + j] = None
        params = adapt(forward, params, step_sizes, support_x, support_y, steps, create_graph)
        return forward(params, query_x)
