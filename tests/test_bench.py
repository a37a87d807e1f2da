"""Benchmark plumbing and its baselines (no timings are asserted: speed lives in scripts/bench)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch

from episodes import make_split
from episodes.omniglot import OmniglotStore
from PIL import Image

from episodes.png_tree import png_path, write_png_tree
from mann.bench.starter_sampler import StarterStyleGenerator
from mann.bench.benchmarks import BenchPlan, format_tables, machine, model_step_times, run_benchmarks, sampler_rates


@pytest.fixture(scope="module")
def small_store(store):
    keep = np.r_[0:40, 1000:1030]  # 40 background + 30 evaluation characters
    return OmniglotStore(store.images[keep], tuple(store.characters[i] for i in keep), store.background[keep], "small")


@pytest.fixture(scope="module")
def tree(small_store, tmp_path_factory):
    return write_png_tree(small_store, tmp_path_factory.mktemp("resized") / "omniglot_resized")


def test_png_tree_round_trips_with_ink_dark(small_store, tree):
    pixels = np.asarray(Image.open(png_path(tree, small_store, 3, 4)))
    np.testing.assert_array_equal(pixels, 255 - small_store.images[3, 4])
    assert len(list((tree / small_store.characters[3]).iterdir())) == 20


def test_starter_style_generator_makes_valid_episodes(small_store, tree):
    folders = [tree / n for n in small_store.characters]
    for cache in (True, False):
        images, labels = StarterStyleGenerator(folders, 4, 2, cache=cache, seed=0).sample()
        assert images.shape == (3, 4, 784) and labels.shape == (3, 4, 4)
        np.testing.assert_array_equal(labels[:2], np.tile(np.eye(4), (2, 1, 1)))
        assert sorted(labels[2].argmax(1)) == [0, 1, 2, 3]
        # 1 - x / max, as in the assignment: the white background becomes 0
        assert (images[..., 100:] == 0).all() and (images[..., :3] > 0).any()


def test_benchmark_tables_have_every_baseline(small_store, tree):
    plan = BenchPlan(sampler_shapes=((2, 1),), model_shapes=((2, 1),), batch_size=4, hidden=8, seconds=0.01)
    split = make_split(small_store, "lake", "test")
    sampler = sampler_rates(split, tree, plan)
    assert {"mann-bench EpisodeSampler", "starter-style, cached", "starter-style, uncached"} <= set(sampler.sampler)
    assert (sampler["episodes/s"] > 0).all()
    model = model_step_times(plan)
    assert set(model.path) == {"stock nn.LSTM (reference)", "mann-bench fast path"}
    text = format_tables({"sampler": sampler, "model": model}, machine(), "mann bench")
    assert "speed-up vs stock" in text and "Sampling share" in text and torch.__version__ in text


def _report_peak(queue) -> None:
    from mann.bench.benchmarks import peak_rss_mib

    queue.put(peak_rss_mib())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the parent's size")
def test_a_spawned_loops_peak_memory_is_its_own_not_its_parents():
    # The end-to-end benchmark reports each loop's peak from a spawned child;
    # a parent made 1 GiB larger must not change the child's figure.
    ballast = b"\x01" * (1 << 30)
    parent_mib = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                          if line.startswith("VmRSS:")).split()[1]) / 1024
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_report_peak, args=(queue,))
    child.start()
    child_mib = queue.get(timeout=120)
    child.join()
    del ballast
    assert 0 < child_mib < parent_mib - 900


@pytest.mark.slow
def test_the_model_benchmark_runs_without_omniglot(tmp_path):
    # The model step times random tensors: a machine without the data set can still measure it.
    plan = BenchPlan(model_shapes=((2, 1),), batch_size=4, hidden=8, seconds=0.01)
    tables = run_benchmarks(str(tmp_path / "no-omniglot-here"), plan, {"model"}, progress=lambda message: None)
    assert list(tables) == ["model"] and (tables["model"]["ms/step"] > 0).all()
    assert not (tmp_path / "no-omniglot-here").exists()  # nothing was downloaded or made


def test_the_maml_benchmark_times_both_implementations_without_omniglot(tmp_path):
    plan = BenchPlan(maml_shapes=((3, 2, 1, 0.4),), seconds=0.01)
    table = run_benchmarks(str(tmp_path / "no-omniglot-here"), plan, {"maml"}, progress=lambda message: None)["maml"]
    assert (table["ms/update"] > 0).all() and (table["compute floor (ms)"] > 0).all()
    assert "mann-bench vectorized (all tasks at once)" in set(table.path)
    text = format_tables({"maml": table}, machine(), "mann bench --only maml")
    assert "MAML-CNN meta-update" in text


def test_the_micro_batch_benchmark_times_each_size_against_the_whole_meta_batch(tmp_path):
    plan = BenchPlan(micro_batch_shapes=((3, 2, 4, 2, 0.4),), micro_batches=(3, 1), seconds=0.01)
    tables = run_benchmarks(str(tmp_path / "no-omniglot-here"), plan, {"micro-batch"}, progress=lambda message: None)
    table = tables["micro-batch"]
    assert list(table["micro-batch"]) == ["whole meta-batch", "3 tasks", "1 task"]
    assert (table["s/update"] > 0).all() and table["speed-up vs whole"].iloc[0] == 1.0
    assert "whole meta-batch vs micro-batches" in format_tables(tables, machine(), "mann bench --only micro-batch")


def test_meta_update_flops_count_the_cnns_multiply_adds():
    from mann.bench.benchmarks import cnn_learner_macs, meta_update_flops

    # 28 → 14 → 7 → 4 → 2 positions; 1, then 64 input channels; a 64 → 5 head.
    assert cnn_learner_macs(5) == 9 * 64 * (14 * 14 + 64 * (7 * 7 + 4 * 4 + 2 * 2)) + 64 * 5
    # 5-way 1-shot, 32 tasks, 1 step: 9 forward passes' worth per support image, 3 per query.
    assert meta_update_flops(5, 1, 32, 1) == 2 * cnn_learner_macs(5) * (9 * 5 + 3 * 5) * 32


def test_mann_bench_no_download_stops_before_any_timing_when_the_data_is_absent(tmp_path, capsys):
    from mann.commands import main

    missing = tmp_path / "no-omniglot-here"
    assert main(["bench", "--only", "sampler", "e2e", "--quick", "--no-download", "--data-root", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"no Omniglot in {missing}" in err and "timing" not in err
    assert not missing.exists()


def test_the_grading_benchmark_times_a_class_serial_and_in_parallel_with_one_gradebook(grading_reference):
    from grading_variants import rubric_for_tests
    from mann.bench.grading import grading_times

    rubric = rubric_for_tests(["data_shapes", "mann_output"], {"wall_s": 8, "cpu_s": 8},
                              data_shapes={"episodes": 1})
    by_kind, totals = grading_times(grading_reference, rubric, size=4, jobs=2)
    assert sorted(by_kind.kind) == ["buggy", "correct", "hostile"]
    assert by_kind.set_index("kind").loc["hostile", "submissions"] == 2
    assert by_kind.set_index("kind").loc["hostile", "max_s"] >= 8  # the forward that never returns: one limit
    assert list(totals.run) == ["serial (--jobs 1)", "--jobs 2"]
    assert totals.gradebook.iloc[1] == "same as serial"
    assert (totals.wall_s > 0).all() and totals.speedup.iloc[0] == 1.0
