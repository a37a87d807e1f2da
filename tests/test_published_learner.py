"""``--published-learner``: MAML on Finn et al.'s own learner and inner loop (cbfinn/maml), checked
against a per-task reference written from their code's definitions: batch norm with an offset but
no scale and epsilon 1e-3, the offset meta-learned but not adapted in the inner loop, the support
loss the sum of per-image losses divided by K; plus their initialisation, and the settings."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from conftest import largest_difference, random_episodes, train_cut_at, train_on
from episodes import UsageError
from mann.models.maml_batched import BatchedGradientLearner
from mann.models.protocol import hide_query_labels, query_loss
from mann.models.registry import build_learner
from mann.models.tasks import episode_to_tasks
from mann.sweep.store import legacy_identity
from mann.training.config import TrainConfig, make_config

WAYS, SHOTS, TASKS, UPDATE_LR = 5, 2, 3, 0.4


def published_forward(model: str, weights: dict, offsets: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """cbfinn/maml's forward_conv / forward_fc for one task: x [M, 1, 28, 28] → logits [M, N]."""
    for i in range(4):
        if model == "maml-cnn":
            x = F.conv2d(x, weights[f"w{i}"], weights[f"b{i}"], stride=2, padding=1)
        else:
            x = F.linear(x.flatten(1), weights[f"w{i}"], weights[f"b{i}"])
        x = F.relu(F.batch_norm(x, None, None, None, offsets[i], training=True, eps=1e-3))
    if model == "maml-cnn":
        x = x.mean(dim=(2, 3))
    return F.linear(x, weights["head_w"], weights["head_b"])


def published_meta_loss(model: str, module, images, labels, steps: int) -> torch.Tensor:
    """Each task adapted on its own as their task_metalearn does; the mean query cross-entropy."""
    params = list(module.parameters())
    weights = {f"{kind}{i}": params[4 * i + j] for i in range(4) for j, kind in ((0, "w"), (1, "b"))}
    weights.update(head_w=params[-2], head_b=params[-1])
    offsets = [params[4 * i + 3] for i in range(4)]
    tasks = episode_to_tasks(images, hide_query_labels(labels), SHOTS)
    losses = []
    for b in range(images.shape[0]):
        fast = dict(weights)
        for _ in range(steps):
            per_image = F.cross_entropy(published_forward(model, fast, offsets, tasks.support_x[b]),
                                        tasks.support_y[b], reduction="none")
            # their xent: the per-image losses / K; tf.gradients differentiates their sum
            grads = torch.autograd.grad((per_image / SHOTS).sum(), list(fast.values()), create_graph=True)
            fast = {k: v - UPDATE_LR * g for (k, v), g in zip(fast.items(), grads)}
        query_y = labels[b, SHOTS:].argmax(dim=-1).reshape(-1)
        losses.append(F.cross_entropy(published_forward(model, fast, offsets, tasks.query_x[b]), query_y))
    return torch.stack(losses).mean()


def learned(module) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.requires_grad]


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("model", ["maml-cnn", "maml-fc"])
def test_meta_gradient_is_the_published_codes_at_n_times_its_step(model, steps):
    # fast_lr here acts on the mean support loss; theirs on N x it, whatever K.
    ours = BatchedGradientLearner(model, WAYS, UPDATE_LR * WAYS, steps, 3, False, torch.Generator().manual_seed(0),
                                  shots=SHOTS, published=True)
    ours.module.to(torch.float64)
    with torch.no_grad():  # offsets away from zero, so that leaving them out of the inner loop shows
        for p in ours.module.module.parameters():
            if p.dim() == 1 and p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()),
                                         dtype=torch.float64))
    images, labels = random_episodes(TASKS, WAYS, SHOTS, seed=steps, dtype=torch.float64)
    logits = ours.scores(images, hide_query_labels(labels), training=True)
    a = torch.autograd.grad(query_loss(logits, labels), learned(ours.module))
    b = torch.autograd.grad(published_meta_loss(model, ours.module.module, images, labels, steps),
                            learned(ours.module))
    assert largest_difference(b, a) < 1e-10
    # The same weights without the published inner loop (offsets adapted too) give another gradient.
    default = BatchedGradientLearner(model, WAYS, UPDATE_LR * WAYS, steps, 3, False, torch.Generator().manual_seed(0),
                                     shots=SHOTS)
    default.module.to(torch.float64)
    default.module.load_state_dict(ours.module.state_dict())
    default.features = ours.features  # the same epsilon: only the inner loop differs
    names = {name for name, p in ours.module.named_parameters() if p.requires_grad}
    c = torch.autograd.grad(query_loss(default.scores(images, hide_query_labels(labels), training=True), labels),
                            [p for name, p in default.module.named_parameters() if name in names])
    assert largest_difference(b, c) > 1e-6


def test_batch_norm_has_no_scale_and_the_published_initialisation():
    cnn = BatchedGradientLearner("maml-cnn", 20, 0.1, 1, 1, False, torch.Generator().manual_seed(0), published=True)
    fc = BatchedGradientLearner("maml-fc", 5, 0.4, 1, 1, False, torch.Generator().manual_seed(0), published=True)
    for learner in (cnn, fc):
        norms = [m for m in learner.module.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
        assert len(norms) == 4 and all(m.eps == 1e-3 and not m.weight.requires_grad for m in norms)
        assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)
    head = cnn.module.module.classifier.weight  # tf.random_normal: N(0, 1)
    assert 0.85 < float(head.detach().std()) < 1.15
    fc_weights = [m.weight for m in fc.module.modules() if isinstance(m, torch.nn.Linear)]
    assert len(fc_weights) == 5  # truncated normal, sd 0.01, cut at two sd
    assert all(float(w.detach().abs().max()) <= 0.02 and 0.007 < float(w.detach().std()) < 0.0095 for w in fc_weights)
    # The default learners keep theirs.
    default = BatchedGradientLearner("maml-cnn", 20, 0.1, 1, 1, False, torch.Generator().manual_seed(0))
    assert float(default.module.module.classifier.weight.detach().std()) < 0.5


def test_a_meta_update_moves_the_offsets_and_never_the_frozen_scales():
    config = make_config("maml-cnn", WAYS, batch_size=TASKS, published_learner=True)
    learner = build_learner(config)
    before = {k: v.clone() for k, v in learner.module.state_dict().items()}
    optimizer = torch.optim.Adam(learner.module.parameters(), lr=1e-3)
    images, labels = random_episodes(TASKS, WAYS, 1, seed=0)
    query_loss(learner.scores(images, hide_query_labels(labels), training=True), labels).backward()
    optimizer.step()
    after = learner.module.state_dict()
    scales = [k for k in before if k.endswith(".weight") and before[k].dim() == 1]
    offsets = [k[: -len("weight")] + "bias" for k in scales]
    assert len(scales) == 4
    assert all(torch.equal(after[k], before[k]) for k in scales)
    assert all(not torch.equal(after[k], before[k]) for k in offsets)


def test_the_setting_is_checked_before_any_work_and_old_runs_read_as_the_default_learner():
    assert make_config("maml-cnn", 20).published_learner is False
    assert make_config("mann", 5).published_learner is None
    with pytest.raises(UsageError, match="--published-learner .*applies to gradient models only"):
        make_config("protonet", 5, published_learner=True)
    with pytest.raises(UsageError, match="--maml-impl learn2learn: .*vectorized implementation only"):
        make_config("maml-cnn", 5, published_learner=True, maml_impl="learn2learn")
    with pytest.raises(UsageError, match="--model metasgd-cnn: .*use maml-cnn, maml-fc or anil-cnn"):
        make_config("metasgd-cnn", 5, published_learner=True)
    old = {k: v for k, v in make_config("maml-cnn", 5).to_dict().items() if k != "published_learner"}
    assert TrainConfig.from_dict(old).published_learner is False
    assert legacy_identity(old)["published_learner"] is False
    old_mann = {k: v for k, v in make_config("mann", 5).to_dict().items() if k != "published_learner"}
    assert legacy_identity(old_mann)["published_learner"] is None


def test_runs_from_before_the_setting_resume_and_count_as_finished(store, tmp_path):
    # A checkpoint or summary written before published_learner existed is a run of this project's learner.
    config = make_config("maml-fc", 2, steps=4, batch_size=2, eval_every=2, val_episodes=4, test_episodes=10,
                         checkpoint_every=2, checkpoint_minutes=0, device="cpu", split="lake")
    train_cut_at(config, store, tmp_path / "cut", 3)
    checkpoint = tmp_path / "cut" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    del state["config"]["published_learner"]
    torch.save(state, checkpoint)
    resumed = train_on(config, store, tmp_path / "cut", resume=True, progress=False)
    assert resumed["resumed_from_step"] == 2
    summary = tmp_path / "cut" / "summary.json"
    old = {k: v for k, v in json.loads(summary.read_text()).items() if k != "published_learner"}
    summary.write_text(json.dumps(old))
    again = train_on(config, store, tmp_path / "cut", resume=True, progress=False)
    assert again == old  # recognised as finished, not trained again
