"""The papers' recipes shipped as presets: a changed value fails here, naming the paper's."""

from __future__ import annotations

import pytest

from mann.sweep.grid import expand, preset_mapping, spec_from_mapping

# (key path, the value of the paper's public code, where it is set there)
PROTONETS = [
    (("split",), ["vinyals"], "run_train.py --data.split vinyals"),
    (("resize",), "nearest", "protonets/data/omniglot.py: PIL resize of the 1-bit PNGs"),
    (("ways",), [5], "--data.test_way 5"),
    (("shots",), [1, 5], "--data.shot 1 / 5 (the test shot is the training shot)"),
    (("eval_every",), 100, "--data.train_episodes 100 per epoch"),
    (("patience",), 200, "--train.patience 200"),
    (("refit",), True, "trainval.py: retrain on trainval"),
    (("test_episodes",), 1000, "run_eval.py --data.test_episodes 1000"),
    (("val_episodes",), 100, "--data.test_episodes 100 validation episodes per epoch"),
    (("params", "protonet", "val_queries"), 15, "--data.test_query 15"),
    (("params", "protonet", "train_ways"), 60, "--data.way 60"),
    (("params", "protonet", "train_queries"), 5, "--data.query 5"),
    (("params", "protonet", "batch_size"), 1, "one episode per step"),
    (("params", "protonet", "lr"), 0.001, "--train.learning_rate 0.001"),
    (("params", "protonet", "lr_halve_every"), 2000, "--train.decay_every 20 epochs x 100 episodes, gamma 0.5"),
    (("params", "protonet", "steps"), 1_000_000, "--train.epochs 10000 x 100 episodes"),
    (("params", "protonet", "also_test_ways"), [20], "the 20-way tests of the same models"),
]


def lookup(mapping, path):
    for key in path:
        mapping = mapping[key]
    return mapping


@pytest.mark.parametrize("path, paper, where", PROTONETS, ids=[".".join(p) for p, _, _ in PROTONETS])
def test_protonets_preset_is_snell_et_als_recipe(path, paper, where):
    value = lookup(preset_mapping("protonets-omniglot"), path)
    assert value == paper, f"{'.'.join(path)} = {value!r}, but Snell et al. (2017) use {paper!r} ({where})"


def test_protonets_preset_is_one_cell_per_shot_tested_at_5_and_20_ways():
    cells = expand(spec_from_mapping(preset_mapping("protonets-omniglot"), "preset protonets-omniglot"))
    assert [(c.config.ways, c.config.shots, c.config.also_test_ways) for c in cells] == [(5, 1, (20,)), (5, 5, (20,))]
    for cell in cells:
        c = cell.config
        assert (c.model, c.split, c.train_ways, c.train_queries, c.patience, c.refit) == \
            ("protonet", "vinyals", 60, 5, 200, True)


def test_the_mann_preset_shares_the_papers_test_episodes():
    # Same split, images and test episodes as protonets-omniglot: only then is the table a comparison.
    mann = expand(spec_from_mapping(preset_mapping("mann-omniglot"), "preset mann-omniglot"))
    proto = expand(spec_from_mapping(preset_mapping("protonets-omniglot"), "preset protonets-omniglot"))
    key = lambda c: (c.split, c.resize, c.split_seed, c.ways, c.shots, c.test_episodes, c.eval_seed)  # noqa: E731
    assert sorted(key(c.config) for c in mann) == sorted(key(c.config) for c in proto)
    assert {(c.config.steps, c.config.batch_size, c.config.lr, c.config.hidden) for c in mann} == {(25000, 128, 1e-3, 128)}


def test_maml_preset_is_finn_et_als_recipe():
    spec = spec_from_mapping(preset_mapping("maml-omniglot"), "preset maml-omniglot")
    assert spec.options["order"] == "grid", "the cells start in the issue's order, 5-way first"
    cells = expand(spec)
    got = {(c.config.model, c.config.ways, c.config.shots): (c.config.batch_size, c.config.fast_lr,
                                                             c.config.adapt_steps, c.config.train_queries)
           for c in cells}
    # main.py's Omniglot commands: 5-way meta-batch 32, one step of 0.4; 20-way 16, five of 0.1; K queries per
    # class; the FC learner (--conv=False, Table 1's "MAML (no conv)") with the 5-way 1-shot command.
    assert got == {("maml-cnn", 5, 1): (32, 0.4, 1, 1), ("maml-cnn", 5, 5): (32, 0.4, 1, 5),
                   ("maml-fc", 5, 1): (32, 0.4, 1, 1),
                   ("maml-cnn", 20, 1): (16, 0.1, 5, 1), ("maml-cnn", 20, 5): (16, 0.1, 5, 5)}
    assert [c.config.model for c in cells][:3] == ["maml-cnn", "maml-cnn", "maml-fc"], \
        "the issue's order: MAML-CNN 5-way, then MAML-FC 5-way 1-shot, then 20-way"
    for cell in cells:
        c = cell.config
        assert (c.steps, c.lr, c.first_order, c.test_adapt_steps) == (60000, 0.001, False, 10), \
            "Finn et al.: 60,000 meta-iterations, meta_lr 0.001, second order, 10 inner steps at test"
        assert (c.split, c.resize, c.test_episodes, c.eval_every) == ("vinyals", "nearest", 1000, 500)
