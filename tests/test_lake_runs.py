"""The 20 official one-shot runs: reading all_runs.zip, refusing a damaged one, and `mann lake`."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import png_bytes, train_on
from episodes import UsageError
from episodes.lake_runs import lake_episodes, read_lake_runs
from episodes.omniglot import decode_png
from mann.commands import main
from mann.training.config import make_config


def build_all_runs(side: int = 105, seed: int = 0) -> tuple[dict[str, bytes], list[np.ndarray]]:
    """The files of a synthetic all_runs.zip in the original layout, and each run's item → class map.

    Class KK of a run is a random blot; its test item is the same blot with a
    few pixels flipped, so the runs can be solved (and checked) by matching.
    """
    rng = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    answers = []
    for r in range(1, 21):
        run = f"run{r:02d}"
        blots = rng.random((20, side, side)) < 0.1
        item_class = rng.permutation(20)  # item i shows class item_class[i]
        answers.append(item_class)
        lines = []
        for k in range(20):
            files[f"{run}/training/class{k + 1:02d}.png"] = png_bytes(~blots[k])
        for i, k in enumerate(item_class):
            noisy = blots[k] ^ (rng.random((side, side)) < 0.01)
            files[f"{run}/test/item{i + 1:02d}.png"] = png_bytes(~noisy)
            lines.append(f"{run}/test/item{i + 1:02d}.png {run}/training/class{k + 1:02d}.png")
        files[f"{run}/class_labels.txt"] = ("\n".join(lines) + "\n").encode()
    return files, answers


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory):
    files, answers = build_all_runs()
    return write_zip(tmp_path_factory.mktemp("lake") / "all_runs.zip", files), files, answers


def test_reader_reproduces_the_20_by_20_pairs(synthetic_runs):
    path, files, answers = synthetic_runs
    runs = read_lake_runs(path)
    assert [r.name for r in runs] == [f"run{r:02d}" for r in range(1, 21)]
    for run, answer in zip(runs, answers):
        assert np.array_equal(run.labels, answer)
        assert run.training.shape == run.test.shape == (20, 28, 28) and run.training.dtype == np.uint8
        written = files[f"{run.name}/class_labels.txt"].decode().split("\n")[:20]
        assert [f"{t} {c}" for t, c in run.pairs()] == written
    # The store's own preprocessing: greyscale, Lanczos to 28x28, ink = 255.
    assert np.array_equal(runs[3].test[7], decode_png(files["run04/test/item08.png"], 28))


def test_each_run_is_one_episode_in_the_sampler_layout(synthetic_runs):
    path, _, answers = synthetic_runs
    runs = read_lake_runs(path)
    images, labels = lake_episodes(runs)
    assert images.shape == (20, 2, 20, 784) and labels.shape == (20, 2, 20, 20)
    assert images.dtype == torch.float32 and 0.0 <= images.min() and images.max() <= 1.0
    assert torch.equal(labels[:, 0], torch.eye(20).expand(20, 20, 20))
    assert torch.equal(labels[:, 1].argmax(-1), torch.from_numpy(np.stack(answers)))
    assert all(sorted(row.tolist()) == list(range(20)) for row in labels[:, 1].argmax(-1))
    assert torch.equal(images[5, 1, 2], torch.from_numpy(runs[5].test[2].reshape(-1)).float() / 255)
    # Matching each test item to its nearest training image solves these synthetic runs.
    nearest = torch.cdist(images[:, 1], images[:, 0]).argmin(-1)
    assert torch.equal(nearest, labels[:, 1].argmax(-1))


def damage(files: dict[str, bytes], how: str) -> dict[str, bytes]:
    files = dict(files)
    if how == "missing run":
        files = {k: v for k, v in files.items() if not k.startswith("run17/")}
    elif how == "missing labels":
        del files["run02/class_labels.txt"]
    elif how == "missing image":
        del files["run05/training/class11.png"]
    elif how == "malformed line":
        files["run03/class_labels.txt"] = files["run03/class_labels.txt"].replace(b".png run03", b".png,run03", 1)
    elif how == "class twice":
        lines = files["run04/class_labels.txt"].decode().splitlines()
        lines[1] = lines[1].split()[0] + " " + lines[0].split()[1]
        files["run04/class_labels.txt"] = "\n".join(lines).encode()
    elif how == "nineteen lines":
        files["run06/class_labels.txt"] = b"\n".join(files["run06/class_labels.txt"].splitlines()[:19])
    elif how == "broken png":
        files["run07/test/item01.png"] = files["run07/test/item01.png"][:40]
    return files


@pytest.mark.parametrize(
    "how,match",
    [
        ("missing run", "run17/class_labels.txt is missing"),
        ("missing labels", "run02/class_labels.txt is missing"),
        ("missing image", "run05/training/class11.png is missing"),
        ("malformed line", "malformed line"),
        ("class twice", "one test item"),
        ("nineteen lines", "19 lines"),
        ("broken png", "run07/test/item01.png is not a readable PNG"),
    ],
)
def test_damaged_content_is_refused_with_the_file_named(how, match, synthetic_runs, tmp_path):
    _, files, _ = synthetic_runs
    path = write_zip(tmp_path / "all_runs.zip", damage(files, how))
    with pytest.raises(UsageError, match=match) as err:
        read_lake_runs(path)
    assert str(path) in str(err.value) and "download all_runs.zip again" in str(err.value)


def test_truncated_or_missing_archive_is_refused(synthetic_runs, tmp_path):
    path, _, _ = synthetic_runs
    cut = tmp_path / "cut.zip"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UsageError, match="not a readable zip"):
        read_lake_runs(cut)
    with pytest.raises(UsageError, match="no such file"):
        read_lake_runs(tmp_path / "none.zip")


@pytest.mark.integration
def test_real_archive_holds_20_runs_of_20_pairs(real_data_root):
    runs = read_lake_runs(real_data_root / "all_runs.zip")
    assert len(runs) == 20
    for run in runs:
        assert len(run.pairs()) == 20 and sorted(run.labels.tolist()) == list(range(20))
        assert run.labels.tolist() != list(range(20))  # Lake's items are not in class order
    assert runs[0].pairs()[0] == ("run01/test/item01.png", "run01/training/class08.png")
    images, _ = lake_episodes(runs)
    assert 0.03 < images.mean() < 0.2  # ink ≈ 1 on a background of 0, as in the store


def mann_run(store, folder, ways=20, split="lake"):
    config = make_config("mann", ways, shots=1, hidden=8, steps=2, batch_size=2, split=split, val_episodes=4,
                         test_episodes=4, device="cpu")
    train_on(config, store, folder, progress=False)
    return folder


def test_mann_lake_reports_error_per_run_and_overall(store, synthetic_runs, tmp_path, capsys):
    path, _, _ = synthetic_runs
    folder = mann_run(store, tmp_path / "mann20")
    out = tmp_path / "report"
    code = main(["lake", "--run-folder", str(folder), "--archive", str(path), "--out", str(out), "--command", "cmd"])
    stdout = capsys.readouterr().out
    assert code == 0
    md = (out / "lake.md").read_text()
    assert md.startswith(stdout.strip()[:40]) and "cmd" in md
    for needle in ("run01", "run20", "overall (mean ± 95% CI over runs)", "people (Lake et al. 2015): 4.5",
                   "Bayesian program learning (Lake et al. 2015): 3.3", "mann H=8 (mann20): error %"):
        assert needle in md
    errors = [int(line.split(",")[1]) for line in (out / "lake.csv").read_text().splitlines()[1:21]]
    assert all(0 <= e <= 100 and e % 5 == 0 for e in errors)


@pytest.mark.parametrize(
    "ways,split,match",
    [(5, "lake", "checkpoint is for N=5, but the Lake runs are 20-way"), (20, "cs330", "trained on the 'cs330' split")],
)
def test_mann_lake_refuses_an_unsuitable_run(ways, split, match, store, synthetic_runs, tmp_path, capsys):
    path, _, _ = synthetic_runs
    folder = mann_run(store, tmp_path / "run", ways=ways, split=split)
    code = main(["lake", "--run-folder", str(folder), "--archive", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "lake.md").exists()


def test_mann_lake_refuses_a_damaged_archive_before_writing(store, synthetic_runs, tmp_path, capsys):
    path, files, _ = synthetic_runs
    folder = mann_run(store, tmp_path / "mann20")
    broken = write_zip(tmp_path / "all_runs.zip", damage(files, "missing labels"))
    code = main(["lake", "--run-folder", str(folder), "--archive", str(broken), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "run02/class_labels.txt is missing" in err
    assert not (tmp_path / "out" / "lake.md").exists()


def test_mann_lake_scores_a_protonet_run(easy_store, synthetic_runs, tmp_path, capsys):
    path, _, _ = synthetic_runs
    config = make_config("protonet", 5, shots=1, steps=2, batch_size=2, train_ways=5, val_episodes=4,
                         test_episodes=4, device="cpu", split="lake")
    train_on(config, easy_store, tmp_path / "proto", progress=False)
    code = main(["lake", "--run-folder", str(tmp_path / "proto"), "--archive", str(path)])
    captured = capsys.readouterr()
    assert code == 0 and "protonet (proto): error %" in captured.out
    assert "tested at N=5" in captured.err  # said, not hidden: it was trained for another N


def test_lake_error_rate_matches_the_model_accuracy(store, synthetic_runs, tmp_path):
    from mann.reporting.lake import lake_error_table, score_lake_runs

    path, _, _ = synthetic_runs
    folder = mann_run(store, tmp_path / "mann20")
    runs, accuracies = score_lake_runs([folder], path)
    (label, accuracy), = accuracies.items()
    table = lake_error_table(runs, accuracies)
    errors = table[f"{label}: error %"][:20].astype(int).to_numpy() // 5  # items wrong out of 20
    assert np.array_equal(errors, np.rint(20 * (1 - accuracy)).astype(int))
    mean = float(table[f"{label}: error %"][20].split(" ± ")[0])
    assert mean == pytest.approx(100 * errors.sum() / 400, abs=0.05)


def test_each_model_is_scored_on_runs_decoded_with_its_own_resize(store, synthetic_runs, tmp_path, monkeypatch):
    import json

    import mann.reporting.lake as lake

    path, _, _ = synthetic_runs
    lanczos = mann_run(store, tmp_path / "lanczos")
    nearest = mann_run(store, tmp_path / "nearest")
    summary = json.loads((nearest / "summary.json").read_text())
    (nearest / "summary.json").write_text(json.dumps({**summary, "resize": "nearest"}))
    decoded = []
    monkeypatch.setattr(lake, "read_lake_runs", lambda archive, resize: decoded.append(resize) or read_lake_runs(archive, resize=resize))
    _, accuracies = lake.score_lake_runs([lanczos, nearest], path)
    assert decoded == ["lanczos", "nearest"] and len(accuracies) == 2


def test_nearest_runs_are_0_or_255(synthetic_runs):
    path, _, _ = synthetic_runs
    runs = read_lake_runs(path, resize="nearest")
    assert set(np.unique(np.stack([r.training for r in runs]))) <= {0, 255}
