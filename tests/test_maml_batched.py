"""The vectorized MAML, Meta-SGD and ANIL (mann.models.maml_batched) against learn2learn's per-task
loop (mann.models.gradient) on the same weights and tasks: the same parameter names, the same
meta-gradient (second and first order, 1 and 5 inner steps), the same test-time logits; and the
settings that choose between them, old runs and stores reading as the learn2learn loop."""

from __future__ import annotations

import sys

import pytest
import torch

from conftest import largest_difference, random_episodes
from episodes import UsageError
from mann.models.gradient import GradientLearner
from mann.models.hyperparameters import GRADIENT_MODELS
from mann.models.maml_batched import BatchedGradientLearner
from mann.models.protocol import hide_query_labels, query_loss
from mann.models.registry import build_learner
from mann.sweep.store import legacy_identity
from mann.training.config import TrainConfig, make_config

WAYS, TASKS = 5, 3


def pair(model: str, steps: int, first_order: bool = False, dtype=torch.float32):
    """(learn2learn loop, vectorized) on the same initial weights."""
    args = (model, WAYS, 0.4, steps, 3, first_order, torch.Generator().manual_seed(0))
    reference, ours = GradientLearner(*args), BatchedGradientLearner(*args)
    ours.module.load_state_dict(reference.module.state_dict())
    reference.module.to(dtype), ours.module.to(dtype)
    return reference, ours


def meta_gradient(learner, images, labels) -> list[torch.Tensor]:
    """The gradient of the query loss w.r.t. every meta-parameter, in ``module.parameters()`` order."""
    logits = learner.scores(images, hide_query_labels(labels), training=True)
    return list(torch.autograd.grad(query_loss(logits, labels), list(learner.module.parameters())))


@pytest.mark.parametrize("model", GRADIENT_MODELS)
def test_parameters_have_learn2learns_names_order_and_initial_values(learn2learn, model):
    reference, ours = pair(model, 1)
    ours_fresh = BatchedGradientLearner(model, WAYS, 0.4, 1, 3, False, torch.Generator().manual_seed(0))
    assert [n for n, _ in ours_fresh.module.named_parameters()] == [n for n, _ in reference.module.named_parameters()]
    theirs = reference.module.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in ours_fresh.module.state_dict().items())
    assert ours_fresh.module.state_dict().keys() == theirs.keys()


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("model", GRADIENT_MODELS)
def test_second_order_meta_gradient_equals_learn2learns_loop(learn2learn, model, steps):
    # float64, so the comparison is tight: the two differ only in the order of float additions.
    reference, ours = pair(model, steps, dtype=torch.float64)
    images, labels = random_episodes(TASKS, WAYS, 1, seed=steps, dtype=torch.float64)
    a, b = meta_gradient(reference, images, labels), meta_gradient(ours, images, labels)
    assert [x.shape for x in a] == [x.shape for x in b]
    assert largest_difference(a, b) < 1e-12
    # Second order: the terms first order drops are there (they are not small after 5 steps).
    reference_fo, _ = pair(model, steps, first_order=True, dtype=torch.float64)
    if model != "anil-cnn" or steps > 1:  # ANIL's one head step is linear in the head: nothing dropped
        assert largest_difference(a, meta_gradient(reference_fo, images, labels)) > 1e-6


def test_first_order_meta_gradient_equals_learn2learns_loop(learn2learn):
    reference, ours = pair("maml-cnn", 5, first_order=True, dtype=torch.float64)
    images, labels = random_episodes(TASKS, WAYS, 1, seed=7, dtype=torch.float64)
    assert largest_difference(meta_gradient(reference, images, labels), meta_gradient(ours, images, labels)) < 1e-12


@pytest.mark.parametrize("model", GRADIENT_MODELS)
def test_float32_meta_gradient_is_within_1e_4_of_learn2learns(learn2learn, model):
    # The 5-way recipe (one step of 0.4). Five steps of 0.4 amplify float32 rounding to ~1e-2 in
    # both implementations alike; in float64 (above) they agree to ~1e-14 there too.
    reference, ours = pair(model, 1)
    images, labels = random_episodes(TASKS, WAYS, 2, seed=3)
    assert largest_difference(meta_gradient(reference, images, labels), meta_gradient(ours, images, labels)) < 1e-4


@pytest.mark.parametrize("model", GRADIENT_MODELS)
def test_test_time_logits_equal_learn2learns(learn2learn, model):
    reference, ours = pair(model, 1, dtype=torch.float64)  # test_adapt_steps = 3, first order
    images, labels = random_episodes(TASKS, WAYS, 1, seed=11, dtype=torch.float64)
    hidden = hide_query_labels(labels)
    with torch.no_grad():  # as the evaluation calls it
        a, b = reference.scores(images, hidden, training=False), ours.scores(images, hidden, training=False)
    assert not b.requires_grad and b.shape == (TASKS, WAYS, WAYS)
    assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_the_vectorized_default_trains_without_learn2learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "learn2learn", None)  # makes `import learn2learn` fail
    config = make_config("maml-cnn", WAYS, seed=0)
    assert config.maml_impl == "vectorized"
    learner = build_learner(config)
    images, labels = random_episodes(2, WAYS, 1, seed=0)
    meta_gradient(learner, images, labels)
    with pytest.raises(UsageError, match="learn2learn"):
        build_learner(make_config("maml-cnn", WAYS, maml_impl="learn2learn"))


def test_maml_impl_is_a_gradient_setting_and_old_runs_read_as_learn2learn():
    assert make_config("anil-cnn", 20).maml_impl == "vectorized"
    assert make_config("mann", 5).maml_impl is None and make_config("protonet", 5).maml_impl is None
    with pytest.raises(UsageError, match="--maml-impl vectorized: applies to gradient models only"):
        make_config("mann", 5, maml_impl="vectorized")
    with pytest.raises(UsageError, match="--maml-impl 'fast': choose vectorized or learn2learn"):
        make_config("maml-cnn", 5, maml_impl="fast")
    old = {k: v for k, v in make_config("maml-fc", 5).to_dict().items() if k != "maml_impl"}
    assert TrainConfig.from_dict(old).maml_impl == "learn2learn"
    old_mann = {k: v for k, v in make_config("mann", 5).to_dict().items() if k != "maml_impl"}
    assert TrainConfig.from_dict(old_mann).maml_impl is None
    assert legacy_identity(old)["maml_impl"] == "learn2learn" and legacy_identity(old_mann)["maml_impl"] is None


@pytest.mark.parametrize("model", ["maml-cnn", "anil-cnn"])
def test_several_query_rows_give_learn2learns_meta_gradient(learn2learn, model):
    # Finn et al.'s K-shot episodes train on K queries per class: K support rows, then Q query rows.
    args = (model, WAYS, 0.4, 1, 3, False, torch.Generator().manual_seed(0))
    reference, ours = GradientLearner(*args, shots=2), BatchedGradientLearner(*args, shots=2)
    ours.module.load_state_dict(reference.module.state_dict())
    for learner in (reference, ours):
        learner.module.double()
    images, labels = random_episodes(4, WAYS, 4, seed=5, dtype=torch.float64)  # 5 rows: K=2 support, Q=3 queries

    def gradient(learner):
        logits = learner.scores(images, hide_query_labels(labels, 3), training=True)
        assert logits.shape == (4, 3 * WAYS, WAYS)
        return list(torch.autograd.grad(query_loss(logits, labels), list(learner.module.parameters())))

    assert largest_difference(gradient(reference), gradient(ours)) < 1e-10
