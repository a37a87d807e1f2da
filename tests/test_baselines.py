"""Baselines through the one trainer: the episode → task conversion, learning on synthetic data,
the very same test episodes as the MANN, exact resume, result rows a MANN table can hold, and
every refusal of bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import mann.training.scoring as scoring
from conftest import corner_store, decode_identity, train_cut_at, train_on
from episodes import EpisodeSampler, UsageError, fixed_episodes, make_split
from episodes.omniglot import OmniglotStore
from mann.commands import main
from mann.models.hyperparameters import GRADIENT_MODELS
from mann.models.tasks import episode_to_tasks
from mann.reporting.tables import collect, model_table
from mann.training import evaluate, load_run
from mann.training.config import make_config

QUICK = dict(eval_every=1000, val_episodes=10, test_episodes=60, device="cpu", split="lake")


@pytest.fixture(scope="module")
def hard_store() -> OmniglotStore:
    return corner_store()


def test_episode_to_tasks_keeps_every_image_and_label_in_place(store):
    split = make_split(store, "lake", "train")
    images, labels = EpisodeSampler(split, 4, 3, batch_size=6, seed=2).sample()
    tasks = episode_to_tasks(images, labels)
    assert tasks.support_x.shape == (6, 12, 1, 28, 28) and tasks.query_x.shape == (6, 4, 1, 28, 28)
    assert tasks.support_y.dtype == torch.int64
    # Support image k·N + n is row k, column n, with class n.
    assert torch.equal(tasks.support_y, torch.arange(4).repeat(3).expand(6, 12))
    assert torch.equal(tasks.support_x.reshape(6, 3, 4, 784), images[:, :3])
    assert torch.equal(tasks.query_x.reshape(6, 4, 784), images[:, 3])
    # Each query's label names the class of the support images it was drawn with.
    support_chars, _ = decode_identity(images[:, :3].numpy())
    query_chars, _ = decode_identity(images[:, 3].numpy())
    query_y = labels[:, 3].argmax(dim=-1)
    for b in range(6):
        assert [support_chars[b, 0, c] for c in query_y[b].tolist()] == query_chars[b].tolist()


@pytest.fixture(scope="module")
def mann_and_protonet_runs(store, tmp_path_factory):
    """A MANN and a ProtoNet trained for the same N, K and split, and the test batches each was scored on."""
    seen = {}

    def recorder(name):
        def record(split, ways, shots, episodes, seed, device="cpu", distinct_characters=False):
            batches = fixed_episodes(split, ways, shots, episodes, seed, device, distinct_characters)
            if split.part == "test":
                seen[name] = batches
            return batches

        return record

    folder = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scoring, "fixed_episodes", recorder("mann"))  # where the loop draws its test episodes
        mann = train_on(make_config("mann", 3, shots=2, hidden=8, steps=3, batch_size=4, split="lake", val_episodes=10,
                                    test_episodes=260, device="cpu"), store, folder / "mann", progress=False)
        mp.setattr(scoring, "fixed_episodes", recorder("protonet"))
        proto = train_on(make_config("protonet", 3, shots=2, steps=3, batch_size=2, train_ways=5,
                                     **{**QUICK, "test_episodes": 260}), store, folder / "protonet", progress=False)
    return folder, seen, mann, proto


def test_baselines_and_mann_see_identical_test_episodes(mann_and_protonet_runs, store):
    _, seen, _, _ = mann_and_protonet_runs
    mann_batches, proto_batches = seen["mann"], seen["protonet"]
    assert sum(b[0].shape[0] for b in mann_batches) == 260  # two batches of fixed_episodes
    assert len(mann_batches) == len(proto_batches)
    for (mi, ml), (pi, pl) in zip(mann_batches, proto_batches):
        assert torch.equal(mi, pi) and torch.equal(ml, pl)
    # ... and they are the test split's characters (the evaluation set under "lake").
    chars, _ = decode_identity(torch.cat([b[0] for b in mann_batches]).numpy())
    assert not store.background[np.unique(chars)].any()


def test_baseline_row_has_every_mann_field_and_one_table_holds_both(mann_and_protonet_runs, tmp_path):
    folder, _, mann, proto = mann_and_protonet_runs
    assert set(mann) == set(proto)
    assert proto["model"] == "protonet" and proto["parameters"] == 111_936
    assert proto["test_fingerprint"] == mann["test_fingerprint"] and proto["test_episodes"] == 260
    assert mann["parameters"] == sum(p.numel() for p in load_run(folder / "mann").learner.module.parameters())
    for name in ("summary.json", "summary.csv", "log.csv", "model.pt", "checkpoint.pt"):
        assert (folder / "protonet" / name).exists()
    table = model_table(collect(folder))
    assert len(table) == 1 and table.loc[0, "N"] == 3 and table.loc[0, "K"] == 2
    assert table.loc[0, "ProtoNets"].startswith(f"{100 * proto['test_accuracy']:.1f} ± ")
    # The MANN column is for hidden size 128; this one has 8.
    assert "MANN (H=128)" not in table.columns
    assert model_table(collect(folder), mann_hidden=8).loc[0, "MANN (H=128)"].startswith(f"{100 * mann['test_accuracy']:.1f}")


def test_protonet_accuracy_rises_well_above_chance(hard_store, tmp_path):
    config = dict(batch_size=4, train_ways=5, seed=0, **QUICK)
    before = train_on(make_config("protonet", 5, steps=0, **config), hard_store, tmp_path / "a", progress=False)
    after = train_on(make_config("protonet", 5, steps=40, **config), hard_store, tmp_path / "b", progress=False)
    assert after["test_accuracy"] > 0.4  # chance is 1/5
    assert after["test_accuracy"] > before["test_accuracy"] + 0.1


def test_same_seed_same_numbers(hard_store, tmp_path):
    config = dict(steps=3, batch_size=2, train_ways=5, **{**QUICK, "test_episodes": 20})
    a = train_on(make_config("protonet", 5, **config), hard_store, tmp_path / "a", progress=False)
    b = train_on(make_config("protonet", 5, **config), hard_store, tmp_path / "b", progress=False)
    c = train_on(make_config("protonet", 5, seed=1, **config), hard_store, tmp_path / "c", progress=False)
    assert a["test_accuracy"] == b["test_accuracy"] and a["final_train_loss"] == b["final_train_loss"]
    assert a["final_train_loss"] != c["final_train_loss"]


def test_maml_cnn_accuracy_rises_with_meta_training(learn2learn, hard_store, tmp_path):
    config = dict(batch_size=4, seed=0, **QUICK)
    before = train_on(make_config("maml-cnn", 5, steps=0, **config), hard_store, tmp_path / "a", progress=False)
    after = train_on(make_config("maml-cnn", 5, steps=15, **config), hard_store, tmp_path / "b", progress=False)
    assert after["test_accuracy"] > max(0.5, before["test_accuracy"] + 0.05)


@pytest.mark.parametrize("model", GRADIENT_MODELS)
def test_gradient_baseline_reloads_and_scores_the_same(learn2learn, model, easy_store, tmp_path):
    summary = train_on(make_config(model, 3, steps=2, batch_size=2, **{**QUICK, "test_episodes": 20}),
                       easy_store, tmp_path, progress=False)
    loaded = load_run(tmp_path)
    assert loaded.config.model == model
    batches = fixed_episodes(make_split(easy_store, "lake", "test"), 3, 1, 20, 1234)
    accuracy, _ = evaluate(loaded.learner, batches)
    assert accuracy.mean() == pytest.approx(summary["test_accuracy"], abs=1e-12)


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_missing_learn2learn_names_the_install_script(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "learn2learn", None)  # makes `import learn2learn` fail
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--model", "maml-cnn", "--maml-impl", "learn2learn", "--out", str(out),
                            "--data-root", str(tmp_path), "--no-download"], capsys)
    assert code == 2 and err.startswith("mann: error:") and len(err.strip().splitlines()) == 1
    assert "learn2learn" in err and "scripts/install-learn2learn" in err
    assert not out.exists()  # refused before any work


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--model", "reptile"], "--model 'reptile': unknown model; choose one of mann, maml-fc, maml-cnn"),
        (["--model", "protonet"], "--out is required"),
        (["--model", "maml-fc", "--train-ways", "20"], "--train-ways 20: applies to metric models only, not maml-fc"),
        (["--model", "protonet", "--fast-lr", "0.4"], "--fast-lr 0.4: applies to gradient models only"),
        (["--model", "mann", "--adapt-steps", "3"], "--adapt-steps 3: applies to gradient models only, not mann"),
        (["--model", "protonet", "--hidden", "64"], "--hidden 64: applies to black-box models only"),
        (["--model", "maml-cnn", "--fast-lr", "0"], "--fast-lr 0"),
        (["--model", "protonet", "-N", "1"], "--ways 1"),
        (["--model", "protonet", "--train-ways", "1"], "--train-ways 1: use 2 or more"),
        (["--model", "protonet", "--split", "omniglot"], "--split 'omniglot': choose one of cs330, lake, vinyals"),
        (["--model", "protonet", "--split", "vinyals", "--rotations"], "--rotations does not apply to --split vinyals"),
        (["--model", "mann", "--train-queries", "5"], "--train-queries 5: applies to gradient, metric models only, not mann"),
    ],
)
def test_bad_baseline_arguments_are_one_clear_line(argv, match, tmp_path, capsys):
    argv = ["train", *argv, "--data-root", str(tmp_path), "--no-download"]
    if "--out" not in argv and match != "--out is required":
        argv += ["--out", str(tmp_path / "run")]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and match in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_list_describes_models_with_published_defaults(capsys):
    code, out, _ = run_cli(["train", "--list-models", "-N", "20"], capsys)
    assert code == 0
    assert "maml-cnn" in out and "fast_lr=0.1" in out and "batch_size=16" in out and "train_ways=60" in out
    assert "FILE.py:Class" in out


def fake_row(folder, model, ways, shots, acc, steps, hidden=None, split="lake"):
    folder.mkdir(parents=True)
    row = {"ways": ways, "shots": shots, "hidden": hidden, "seed": 0, "steps": steps, "split": split,
           "test_accuracy": acc, "test_ci95": 0.01, "test_episodes": 1000, "train_time_s": 60.0 * steps / 100,
           "steps_per_s": 1.0, "device": "cpu", "finished_at": "2025-01-01T00:00:00+00:00"}
    if model != "mann":
        row.update(model=model, parameters=1000)
    (folder / "summary.json").write_text(json.dumps(row))


def test_by_model_report_pivots_models_beside_published_figures(tmp_path, capsys):
    runs = tmp_path / "runs"
    fake_row(runs / "m", "mann", 5, 1, 0.70, 100, hidden=128)
    fake_row(runs / "m8", "mann", 5, 1, 0.50, 100, hidden=8)
    fake_row(runs / "p_short", "protonet", 5, 1, 0.90, 100)
    fake_row(runs / "p_long", "protonet", 5, 1, 0.95, 200)
    fake_row(runs / "q", "maml-cnn", 2, 1, 0.99, 100, split="cs330")
    code, out, _ = run_cli(["report", str(runs), "--out", str(tmp_path / "out"), "--by-model", "--command", "do it"], capsys)
    assert code == 0
    table = (tmp_path / "out" / "by_model.csv").read_text()
    md = (tmp_path / "out" / "by_model.md").read_text()
    assert "70.0 ± 1.0 (100 steps, 1.0 min)" in md and "95.0 ± 1.0 (200 steps, 2.0 min)" in md
    assert "90.0" not in md and "50.0" not in md  # the longer ProtoNet run and the H=128 MANN only
    assert "ProtoNets 98.8" in md and "> 90%" in md and "do it" in md
    assert table.count("\n") == 3  # header + (cs330, 2, 1) + (lake, 5, 1)
    # runs.csv keeps every run, the MANN's with its parameter count.
    assert (tmp_path / "out" / "runs.csv").read_text().count("\n") == 6


RESUMABLE = {"protonet": dict(train_ways=5), "maml-cnn": {}, "maml-fc": {}}


@pytest.mark.parametrize("model", sorted(RESUMABLE))
def test_an_interrupted_baseline_resumes_to_the_same_numbers(model, learn2learn, hard_store, tmp_path):
    # The checkpoint (every 3 steps) falls inside a log window (every 4) and mid-way through a
    # halving of the learning rate (every 2): the resumed run must carry all of them over.
    base = {**QUICK, "test_episodes": 20, "batch_size": 2, "lr_halve_every": 2, "eval_every": 4,
            "checkpoint_every": 3, **RESUMABLE[model]}
    config = make_config(model, 5, steps=8, **base)
    assert config.maml_impl == (None if model == "protonet" else "vectorized")  # the default is what resumes
    straight = train_on(config, hard_store, tmp_path / "straight", progress=False)
    train_cut_at(config, hard_store, tmp_path / "cut", 5)
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = train_on(config, hard_store, tmp_path / "cut", resume=True, progress=False)
    assert resumed["resumed_from_step"] == 3
    for key in ("test_accuracy", "test_loss", "final_train_loss", "val_accuracy"):
        assert resumed[key] == straight[key], key

    def numbers(folder):  # the log without its wall times
        return [line.split(",")[:5] for line in (folder / "log.csv").read_text().splitlines()]

    assert numbers(tmp_path / "straight") == numbers(tmp_path / "cut")
    a, b = torch.load(tmp_path / "straight" / "model.pt"), torch.load(tmp_path / "cut" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_a_baseline_with_other_hyperparameters_is_refused(hard_store, tmp_path):
    base = dict(batch_size=2, train_ways=5, **{**QUICK, "test_episodes": 20})
    train_on(make_config("protonet", 5, steps=2, **base), hard_store, tmp_path, progress=False)
    (tmp_path / "summary.json").unlink()
    with pytest.raises(UsageError, match="another config.*train_ways=5 there vs 6 now"):
        train_on(make_config("protonet", 5, steps=4, **{**base, "train_ways": 6}), hard_store, tmp_path,
                 resume=True, progress=False)


def test_mann_train_trains_a_baseline_and_resumes_it(synthetic_root, tmp_path, capsys):
    out = tmp_path / "proto"

    def argv(steps):
        return ["train", "--model", "protonet", "-N", "3", "--train-ways", "4", "--steps", str(steps), "-B", "2",
                "--eval-every", "2", "--val-episodes", "5", "--test-episodes", "10", "--split", "lake",
                "--out", str(out), "--data-root", str(synthetic_root), "--quiet", "--device", "cpu"]

    code, stdout, _ = run_cli(argv(4), capsys)
    assert code == 0 and "protonet N=3 K=1: test accuracy" in stdout and "parameters" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "protonet" and summary["train_ways"] == 4 and summary["hidden"] is None
    code, _, err = run_cli(argv(4), capsys)
    assert code == 2 and "already holds a finished run" in err
    code, _, _ = run_cli([*argv(6), "--resume"], capsys)
    assert code == 0 and json.loads((out / "summary.json").read_text())["resumed_from_step"] == 4


def test_protonet_embedding_computes_the_papers_values_in_its_faster_order():
    # Max-pooling before the ReLU (and channels-last weights) is an optimisation, not a new model:
    # the paper's order with the same weights gives the same embeddings and gradients.
    from mann.models.nets import conv4_embedding

    ours = conv4_embedding(torch.Generator().manual_seed(0))
    paper = conv4_embedding(torch.Generator().manual_seed(0), as_published=True)
    assert ours.state_dict().keys() == paper.state_dict().keys()
    x = torch.rand(12, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    for net in (ours, paper):
        net.train()
    a, b = ours(x.contiguous(memory_format=torch.channels_last)), paper(x)
    assert torch.allclose(a, b, atol=1e-5)
    a.pow(2).sum().backward()
    b.pow(2).sum().backward()
    # float32 rounding differs between the orders: compare against the largest gradient
    # (conv biases before BN have a true gradient of 0, so only noise to compare there).
    scale = max(q.grad.abs().max().item() for q in paper.parameters())
    for (name, p), q in zip(ours.named_parameters(), paper.parameters()):
        assert (p.grad - q.grad).abs().max().item() <= 1e-5 * scale, name
