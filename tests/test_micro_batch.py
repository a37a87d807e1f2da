"""``--micro-batch``: a step's gradient computed a few episodes at a time is the whole batch's
(up to float rounding), a run may change it when it resumes, and models whose episodes share
a batch norm refuse it."""

from __future__ import annotations

import pytest
import torch

from conftest import largest_difference, random_episodes, train_cut_at, train_on
from episodes import UsageError
from mann.commands import build_parser
from mann.commands.sweep import spec_from_args
from mann.models.protocol import hide_query_labels, query_loss
from mann.models.registry import build_learner
from mann.sweep.grid import expand
from mann.training.config import make_config
from mann.training.micro_batches import backward_in_micro_batches, micro_batch_slices

WAYS, SHOTS, TASKS = 3, 2, 5


def gradient_of(config, images, labels, micro_batch):
    learner = build_learner(config)
    loss, logits = backward_in_micro_batches(learner, images, labels, config.queries, micro_batch)
    return loss, logits, [p.grad.clone() for p in learner.module.parameters()]


@pytest.mark.parametrize("model, extra", [
    ("maml-cnn", dict(adapt_steps=2, first_order=False)),  # second order through two inner steps
    ("maml-fc", dict(adapt_steps=1, first_order=False)),
    ("mann", dict(hidden=16)),
])
def test_a_step_in_micro_batches_is_the_whole_batchs_step(model, extra):
    config = make_config(model, WAYS, shots=SHOTS, batch_size=TASKS, device="cpu", **extra)
    images, labels = random_episodes(TASKS, WAYS, SHOTS, seed=3)
    loss, logits, grads = gradient_of(config, images, labels, None)
    for micro_batch in (1, 2, 4):  # 2 and 4 leave a shorter last micro-batch
        part_loss, part_logits, part_grads = gradient_of(config, images, labels, micro_batch)
        assert float((part_loss - loss).abs()) < 1e-6
        assert torch.allclose(part_logits, logits, atol=1e-5)
        assert largest_difference(grads, part_grads) < 1e-5, micro_batch


def test_the_whole_batch_is_the_plain_step_to_the_bit():
    # Runs trained before --micro-batch existed must resume to the same numbers.
    config = make_config("maml-cnn", WAYS, shots=SHOTS, batch_size=TASKS, adapt_steps=2, device="cpu")
    images, labels = random_episodes(TASKS, WAYS, SHOTS, seed=4)
    plain = build_learner(config)
    logits = plain.scores(images, hide_query_labels(labels), training=True)
    loss = query_loss(logits, labels)
    loss.backward()
    got_loss, got_logits, got_grads = gradient_of(config, images, labels, None)
    assert torch.equal(got_loss, loss.detach()) and torch.equal(got_logits, logits.detach())
    assert all(torch.equal(p.grad, g) for p, g in zip(plain.module.parameters(), got_grads))


def test_the_slices_cover_the_batch_once():
    assert micro_batch_slices(5, None) == [slice(0, 5)]
    assert micro_batch_slices(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert micro_batch_slices(4, 4) == [slice(0, 4)]


def test_a_run_may_change_it_on_resuming_and_trains_as_the_whole_batch_does(store, tmp_path):
    common = dict(shots=1, steps=6, batch_size=4, adapt_steps=1, eval_every=3, val_episodes=6, test_episodes=20,
                  checkpoint_every=3, checkpoint_minutes=0, device="cpu", split="lake")
    whole = train_on(make_config("maml-fc", 3, **common), store, tmp_path / "whole", progress=False)
    cut = make_config("maml-fc", 3, micro_batch=1, **common)
    train_cut_at(cut, store, tmp_path / "parts", 5)
    resumed = train_on(make_config("maml-fc", 3, micro_batch=3, **common), store, tmp_path / "parts", resume=True,
                       progress=False)
    assert resumed["resumed_from_step"] == 3 and resumed["micro_batch"] == 3
    # Float rounding apart, the same training: the losses agree far below their own step-to-step change.
    assert abs(resumed["final_train_loss"] - whole["final_train_loss"]) < 1e-4
    assert abs(resumed["test_accuracy"] - whole["test_accuracy"]) <= 1 / (20 * 3)


def test_the_setting_is_checked_before_any_work_and_is_not_part_of_a_cell():
    assert make_config("maml-cnn", 5).micro_batch is None
    with pytest.raises(UsageError, match="--micro-batch 0: use 1 or more"):
        make_config("maml-cnn", 5, micro_batch=0)
    with pytest.raises(UsageError, match="--micro-batch 40: more than the 32 episodes .*use 32 or fewer"):
        make_config("maml-cnn", 5, batch_size=32, micro_batch=40)
    with pytest.raises(UsageError, match="--micro-batch 2 with --model protonet: its batch norm pools"):
        make_config("protonet", 5, micro_batch=2)
    with pytest.raises(UsageError, match="--micro-batch 2 with --model GRUModel: a user's model may"):
        make_config("tests/plugins/gru_model.py:GRUModel", 5, micro_batch=2)


def test_a_sweep_cell_keeps_its_id_with_or_without_it(tmp_path):
    base = 'seeds = [0]\n\n[[grid]]\nways = [5]\nshots = [1]\nmodels = ["maml-cnn"]\n'
    plain, parted = tmp_path / "plain.toml", tmp_path / "parted.toml"
    plain.write_text(base)
    parted.write_text(base + '[grid.params.maml-cnn]\nmicro_batch = 8\n')
    cells = {name: expand(spec_from_args(build_parser().parse_args(["sweep", "--config", str(path)])))
             for name, path in (("plain", plain), ("parted", parted))}
    assert [c.id for c in cells["plain"]] == [c.id for c in cells["parted"]]
    assert [c.config.micro_batch for c in cells["parted"]] == [8]
