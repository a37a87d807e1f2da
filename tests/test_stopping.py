"""The papers' training protocol: several queries per class, early stopping on the validation
loss, a refit on train + val for the length it chose, and one model tested at several N."""

from __future__ import annotations

import csv

import pytest
import torch

from conftest import corner_store, train_on
from episodes import UsageError, fixed_episodes, make_split
from mann.models.protocol import hide_query_labels, query_loss
from mann.models.protonet import ProtoNetLearner
from mann.training import evaluate, load_run
from mann.training.config import make_config

QUICK = dict(val_episodes=10, test_episodes=30, device="cpu", split="lake", train_ways=5, lr=3e-3)


@pytest.fixture(scope="module")
def hard_store():
    return corner_store()


def log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_q_query_rows_score_like_q_episodes_with_the_same_support(hard_store):
    # Snell et al.'s training episode (K support + Q queries per class) is Q one-query
    # episodes sharing their support: the same prototypes, so the same logits.
    split = make_split(hard_store, "lake", "train")
    images, labels = fixed_episodes(split, 5, 6, 2, seed=3)[0]  # 7 rows: K=2 support, Q=5 queries
    learner = ProtoNetLearner(torch.Generator().manual_seed(0), shots=2)
    logits = learner.scores(images, hide_query_labels(labels, 5), training=False)
    assert logits.shape == (2, 25, 5)
    for q in range(5):
        one = torch.cat([images[:, :2], images[:, 2 + q:3 + q]], dim=1)
        one_labels = torch.cat([labels[:, :2], labels[:, 2 + q:3 + q]], dim=1)
        alone = learner.scores(one, hide_query_labels(one_labels), training=False)
        assert torch.allclose(logits[:, 5 * q:5 * q + 5], alone, atol=1e-4)
    assert torch.isclose(query_loss(logits, labels),
                         torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels[:, 2:].argmax(-1).flatten()))


def test_too_many_queries_for_the_drawers_is_refused_before_work():
    with pytest.raises(UsageError, match="--train-queries 19: K \\+ queries = 21 .* use --train-queries 18"):
        make_config("protonet", 5, shots=2, train_queries=19)
    with pytest.raises(UsageError, match="--train-queries"):
        make_config("mann", 5, train_queries=5)
    with pytest.raises(UsageError, match="--refit needs --patience"):
        make_config("protonet", 5, refit=True)


def test_early_stopping_stops_after_the_patience_and_tests_the_best_weights(hard_store, tmp_path):
    # lr 0.3 makes the validation loss wander, so it stops long before 400 steps.
    config = make_config("protonet", 5, steps=400, eval_every=2, patience=3, batch_size=2, **{**QUICK, "lr": 0.3})
    summary = train_on(config, hard_store, tmp_path, progress=False)
    rows = log(tmp_path / "log.csv")
    losses = [float(r["val_loss"]) for r in rows]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert summary["best_step"] == int(rows[best]["step"]) and summary["best_val_loss"] == losses[best]
    assert len(rows) == best + 1 + 4 and summary["stopped_step"] == int(rows[-1]["step"]) < 400
    run = load_run(tmp_path)  # model.pt holds the best evaluation's weights, not the last ones
    splits_val = make_split(hard_store, "lake", "val")
    q = config.validation_queries  # 15, Snell et al.'s validation episodes
    _, val_loss = evaluate(run.learner, fixed_episodes(splits_val, 5, q, 10, config.eval_seed), queries=q)
    assert val_loss == pytest.approx(losses[best], rel=1e-5)


def test_refit_trains_on_train_and_val_for_the_chosen_length(hard_store, tmp_path):
    config = make_config("protonet", 5, steps=400, eval_every=2, patience=3, refit=True, batch_size=2,
                         **{**QUICK, "lr": 0.3})
    summary = train_on(config, hard_store, tmp_path, progress=False)
    refit = log(tmp_path / "log_refit.csv")
    assert summary["refit_steps"] == summary["best_step"] + 3 * 2 == int(refit[-1]["step"])
    assert all(r["val_loss"] == "" for r in refit)  # val is part of the refit's training data
    assert summary["trainval_fingerprint"] == make_split(hard_store, "lake", "trainval").fingerprint


@pytest.mark.parametrize("cut_at", ["first phase", "refit"])
def test_an_interrupted_refit_run_resumes_to_the_same_numbers(hard_store, tmp_path, cut_at):
    config = make_config("protonet", 5, steps=400, eval_every=2, patience=3, refit=True, batch_size=2,
                         checkpoint_every=3, **{**QUICK, "lr": 0.3})
    straight = train_on(config, hard_store, tmp_path / "straight", progress=False)
    starts = []  # on_step is called with step 0 as each phase starts

    def kill(step, steps):
        if step == 0:
            starts.append(steps)
        if (cut_at == "first phase" and len(starts) == 1 and step == 7) or \
                (cut_at == "refit" and len(starts) == 2 and step == 5):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_on(config, hard_store, tmp_path / "cut", progress=False, on_step=kill)
    trained_before = float(log(tmp_path / "cut" / "log.csv")[-1]["wall_s"])  # phase 1's time when cut
    resumed = train_on(config, hard_store, tmp_path / "cut", resume=True, progress=False)
    # The cell's hours count the interrupted invocation's training, whichever phase it stopped in.
    assert resumed["resumed_train_time_s"] >= trained_before > 0
    assert resumed["train_time_s"] > resumed["resumed_train_time_s"]
    for key in ("test_accuracy", "test_loss", "final_train_loss", "best_step", "refit_steps", "stopped_step"):
        assert resumed[key] == straight[key], key
    for name in ("log.csv", "log_refit.csv"):
        def numbers(folder):
            return [{k: v for k, v in r.items() if k != "wall_s"} for r in log(folder / name)]
        assert numbers(tmp_path / "straight") == numbers(tmp_path / "cut"), name
    a, b = torch.load(tmp_path / "straight" / "model.pt"), torch.load(tmp_path / "cut" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_one_model_is_tested_at_several_n_on_the_fixed_episodes(hard_store, tmp_path):
    config = make_config("protonet", 5, steps=6, eval_every=3, batch_size=2, also_test_ways=(10,), **QUICK)
    summary = train_on(config, hard_store, tmp_path, progress=False)
    run = load_run(tmp_path)
    test = make_split(hard_store, "lake", "test")
    accuracy, loss = evaluate(run.learner, fixed_episodes(test, 10, 1, 30, config.eval_seed))
    assert summary["test_accuracy_N10"] == pytest.approx(float(accuracy.mean()))
    assert summary["test_loss_N10"] == pytest.approx(loss)
    assert summary["also_test_ways"] == [10]


def test_validation_with_several_queries_per_class_scores_every_query(hard_store, tmp_path):
    config = make_config("protonet", 5, steps=4, eval_every=2, batch_size=2, val_queries=3, **QUICK)
    train_on(config, hard_store, tmp_path, progress=False)
    run = load_run(tmp_path)
    val = make_split(hard_store, "lake", "val")
    batches = fixed_episodes(val, 5, 1 + 3 - 1, 10, config.eval_seed)  # K + 3 rows per episode
    accuracy, loss = evaluate(run.learner, batches, queries=3)
    last = log(tmp_path / "log.csv")[-1]
    assert float(last["val_loss"]) == pytest.approx(loss) and float(last["val_acc"]) == pytest.approx(accuracy.mean())
