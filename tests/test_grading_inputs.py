"""Bad input to `mann grade` is refused before any grading, with a clear message;
the PNG tree, image identification, Gradescope payload and gradebook, without
running any submission."""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile

import imageio.v2 as imageio
import numpy as np
import pytest

from episodes.errors import UsageError
from episodes.png_tree import write_png_tree
from grading_variants import make_variant, rubric_error
from mann.commands import main
from mann.grading.feedback import report_markdown
from mann.grading.grade import Grader
from mann.grading.image_index import UNKNOWN
from mann.grading.rubric import DEFAULT_RUBRIC, load_rubric
from mann.grading.submission import find_submissions, stage


def test_the_default_rubric_loads_and_sums_to_100():
    rubric = load_rubric()
    assert rubric.max_score == 100
    assert "results_files" not in {t.id for t in rubric.tests}  # optional, off by default
    training = {t.id: t for t in rubric.tests}["training"]
    assert training.params["steps"] == 400 and training.limits.wall_s == 600
    assert training.visibility == "after_due_date"


def test_bad_rubrics_are_refused_with_the_reason(tmp_path):
    assert "unknown test [tests.nonsense]" in rubric_error(tmp_path, "[tests.nonsense]\npoints = 1\n")
    assert "known tests: data_shapes" in rubric_error(tmp_path, "[tests.nonsense]\npoints = 1\n")
    assert "points = -5 is negative" in rubric_error(tmp_path, "[tests.mann_layers]\npoints = -5\n")
    assert "visibility" in rubric_error(tmp_path, "[tests.mann_layers]\npoints = 1\nvisibility = 'secret'\n")
    assert "unknown key 'stepz'" in rubric_error(tmp_path, "[tests.training]\npoints = 1\nstepz = 3\n")
    assert "steps = 'many'" in rubric_error(tmp_path, "[tests.training]\npoints = 1\nsteps = 'many'\n")
    assert "unknown limit 'wall'" in rubric_error(tmp_path, "[limits]\nwall = 3\n[tests.mann_layers]\npoints = 1\n")
    assert "not valid TOML" in rubric_error(tmp_path, "[tests.mann_layers\n")
    with pytest.raises(UsageError, match="no such file"):
        load_rubric(tmp_path / "missing.toml")


def test_every_path_that_exists_is_a_student_with_what_is_wrong(tmp_path):
    """`mann grade class/*`: a folder without the files, a stray file and a corrupt
    zip are each graded zero with the reason; only a missing path stops the command."""
    (tmp_path / "homework").mkdir()
    (tmp_path / "homework" / "notes.txt").write_text("hi")
    bad = tmp_path / "bob.zip"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    make_variant(tmp_path / "alice", {})
    subs = {s.name: s for s in find_submissions([tmp_path / "homework", tmp_path / "homework" / "notes.txt", bad,
                                                  tmp_path / "alice"])}
    assert set(subs) == {"homework", "notes", "bob", "alice"} and subs["alice"].gradable
    assert "not a submission: expected load_data.py and mann.py in submission/" in subs["homework"].problem
    assert "notes.txt is a file, not a submission" in subs["notes"].problem
    assert "bob.zip is not a readable zip" in subs["bob"].problem
    assert not any(subs[name].gradable for name in ("homework", "notes", "bob"))
    with pytest.raises(UsageError, match="does not exist"):
        find_submissions([tmp_path / "alice", tmp_path / "nowhere"])


def test_unreadable_zips(tmp_path):
    bad = tmp_path / "bob.zip"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    # inside a class folder the corrupt zip is one student's zero, not the class's stop
    make_variant(tmp_path / "class" / "alice", {})
    shutil.copy(bad, tmp_path / "class" / "bob.zip")
    (tmp_path / "class" / "carol").mkdir()
    subs = {s.name: s for s in find_submissions([tmp_path / "class"])}
    assert subs["alice"].gradable
    assert not subs["bob"].gradable and "not a readable zip" in subs["bob"].problem
    assert not subs["carol"].gradable and "expected load_data.py and mann.py" in subs["carol"].problem


def zip_folder(folder, dest):
    """dest.zip of everything below ``folder`` (paths relative to it), the way a student zips a repository."""
    with zipfile.ZipFile(dest, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())
    return dest


def test_a_submission_below_course_folders_is_found_and_its_place_named(tmp_path):
    from mann.grading.gradescope import results_payload
    from mann.grading.grade import SubmissionResult
    from mann.grading.feedback import report_markdown

    repo = make_variant(tmp_path / "alice", {}, layout="hw1/submission")
    (repo / "hw0").mkdir()
    (repo / "hw0" / "notes.md").write_text("other homework")
    (repo / "README.md").write_text("my coursework")
    xcs = make_variant(tmp_path / "xcs", {}, layout="XCS330-PS2/src/submission", package=True)
    deep = make_variant(tmp_path / "carol", {}, layout="assignment1/code/submission")
    expected = {"alice": "hw1/submission/", "xcs": "XCS330-PS2/src/submission/",
                "carol": "assignment1/code/submission/"}
    for folder in (repo, xcs, deep):
        # a repository given as a folder (one student, not a class of hw0 and hw1), and the same zipped
        for path in (folder, zip_folder(folder, tmp_path / f"{folder.name}.zip")):
            (sub,) = find_submissions([path])
            assert sub.gradable and sub.code == expected[folder.name], (path, sub)
    result = SubmissionResult(find_submissions([repo])[0], [])
    assert "Graded the code in hw1/submission/ of the upload." in results_payload(result, load_rubric())["output"]
    assert "code found in `hw1/submission/`" in report_markdown(result)
    # Gradescope unzips the upload: --results-json grades the folder as one submission
    (sub,) = find_submissions([repo], single=True)
    assert sub.code == "hw1/submission/"


def test_two_candidate_folders_are_that_students_zero_with_both_named(tmp_path):
    repo = make_variant(tmp_path / "dan", {}, layout="hw1/submission")
    make_variant(repo, {}, layout="hw1/old/submission")
    for path in (repo, zip_folder(repo, tmp_path / "dan.zip")):
        (sub,) = find_submissions([path], single=True)
        assert not sub.gradable
        assert "ambiguous submission: hw1/submission/ and hw1/old/submission/ each hold" in sub.problem
    make_variant(tmp_path / "class" / "erin", {})
    make_variant(tmp_path / "class" / "dan", {}, layout="hw1/submission")
    make_variant(tmp_path / "class" / "dan", {}, layout="backup/submission")
    subs = {s.name: s for s in find_submissions([tmp_path / "class"])}
    assert subs["erin"].gradable and not subs["dan"].gradable
    assert "backup/submission/ and hw1/submission/" in subs["dan"].problem


def test_the_2022_layout_is_refused_with_what_to_rename(tmp_path):
    old = make_variant(tmp_path / "frank", {}, layout="hw1/submission")
    (old / "hw1" / "submission" / "mann.py").rename(old / "hw1" / "submission" / "hw1.py")
    for path in (old, zip_folder(old, tmp_path / "frank.zip")):
        (sub,) = find_submissions([path])
        assert not sub.gradable
        assert "the 2021/2022 homework's layout (MANN in hw1.py)" in sub.problem
        assert "rename hw1/submission/hw1.py to hw1/submission/mann.py" in sub.problem


def test_a_copy_of_the_data_tree_in_a_repository_hides_nothing(tmp_path, monkeypatch):
    import mann.grading.submission as submission

    monkeypatch.setattr(submission, "MAX_FILES", 50)
    repo = make_variant(tmp_path / "gina", {}, layout="hw1/submission")
    for i in range(60):  # more files than the cap, beside and below the code
        (repo / "hw1" / "omniglot_resized" / "A" / f"c{i}").mkdir(parents=True)
        (repo / "hw1" / "omniglot_resized" / "A" / f"c{i}" / "1.png").write_bytes(b"")
        (repo / "aaa" / "deep" / "deeper" / "deepest").mkdir(parents=True, exist_ok=True)
        (repo / "aaa" / "deep" / "deeper" / "deepest" / f"{i}.txt").write_text("")
    (sub,) = find_submissions([repo])
    assert sub.code == "hw1/submission/"
    code, _ = stage(sub, tmp_path / "staged")
    assert (code / "mann.py").is_file() and not (code.parent / "omniglot_resized").exists()


def test_unsafe_zip_members_are_refused(tmp_path):
    path = tmp_path / "mallory.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("submission/load_data.py", "")
        z.writestr("submission/mann.py", "")
        z.writestr("../../outside.py", "print('escaped')")
    sub = find_submissions([path])[0]
    with pytest.raises(UsageError, match="points outside the zip"):
        stage(sub, tmp_path / "staged")
    assert not (tmp_path / "outside.py").exists()


def homework_zip(path, **members):
    """A zip holding the two homework files and ``members`` ({name: bytes}), deflated."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("submission/load_data.py", "")
        z.writestr("submission/mann.py", "")
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_zips_over_the_limits_are_refused_before_any_member_is_read(tmp_path, monkeypatch):
    """Declared sizes, file and entry counts and compression ratios are checked
    from the zip's directory alone; each refused zip is its student's zero
    naming the limit and the value, and the class goes on."""
    import mann.grading.submission as submission
    import mann.grading.zips as zips

    monkeypatch.setattr(submission, "MAX_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(submission, "MAX_TOTAL_BYTES", 2 << 20)
    monkeypatch.setattr(submission, "MAX_FILES", 6)
    monkeypatch.setattr(zips, "MAX_ENTRIES", 10)
    monkeypatch.setattr(zips, "RATIO_FLOOR_BYTES", 256 << 10)
    folder = tmp_path / "class"
    folder.mkdir()
    noise = np.random.default_rng(0).bytes
    homework_zip(folder / "alice.zip", **{"submission/rnn.py": noise(900 << 10)})
    homework_zip(folder / "bomb.zip", **{"submission/weights.npy": bytes(1 << 20)})  # 1 MB of zeros: ~1 KB
    homework_zip(folder / "big.zip", **{"submission/data.bin": noise((1 << 20) + 1)})
    homework_zip(folder / "many.zip", **{f"submission/f{i}.py": b"" for i in range(5)})
    homework_zip(folder / "bulky.zip", **{f"submission/d{i}.bin": noise(800 << 10) for i in range(3)})
    homework_zip(folder / "sprawl.zip", **{f".git/objects/{i}": b"" for i in range(9)})
    read = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *args, **kwargs: read.append(args) or 1 / 0)
    subs = {s.name: s for s in find_submissions([folder])}
    assert read == []  # not one member opened, let alone decompressed
    assert subs["alice"].gradable
    expected = {
        "bomb": "member 'submission/weights.npy' declares 1,048,576 bytes (1.0 MB) from 1,",
        "big": "member 'submission/data.bin' declares 1,048,577 bytes (1.0 MB) uncompressed, over the cap of "
               "1,048,576 bytes (1.0 MB) a file",
        "many": "holds 7 files, more than the cap of 6",
        "bulky": "its members declare 2,457,600 bytes (2.3 MB) uncompressed in all, over the cap of 2,097,152",
        "sprawl": "lists 11 entries, more than the 10 the grader reads",
    }
    for name, message in expected.items():
        assert not subs[name].gradable and message in subs[name].problem, (name, subs[name].problem)
    assert "over the 200:1 allowed above 262,144 bytes" in subs["bomb"].problem


def declare_size(path, name: str, size: int) -> None:
    """Make the zip's headers (local and central) claim ``size`` bytes for member ``name``."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
        central = z.start_dir
    data = bytearray(path.read_bytes())
    data[info.header_offset + 22:info.header_offset + 26] = size.to_bytes(4, "little")
    at = central
    while data[at:at + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = (int.from_bytes(data[at + i:at + i + 2], "little") for i in (28, 30, 32))
        if data[at + 46:at + 46 + name_len].decode() == name:
            data[at + 24:at + 28] = size.to_bytes(4, "little")
        at += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def test_a_zip_member_larger_than_its_header_says_is_refused_while_extracting(tmp_path):
    path = homework_zip(tmp_path / "liar.zip", **{"submission/data.bin": bytes(4 << 20)})
    declare_size(path, "submission/data.bin", 1000)  # 4 MB of zeros said to be 1000 bytes: no limit objects
    subs = {s.name: s for s in find_submissions([path])}
    assert subs["liar"].gradable
    with pytest.raises(UsageError, match=r"member 'submission/data.bin' cannot be read \(Bad CRC-32"):
        stage(subs["liar"], tmp_path / "staged")
    assert (tmp_path / "staged" / "submission" / "data.bin").stat().st_size <= 1000


def test_name_collisions_in_a_class_folder(tmp_path):
    make_variant(tmp_path / "class" / "alice", {})
    shutil.make_archive(str(tmp_path / "class" / "alice"), "zip", tmp_path / "class" / "alice")
    with pytest.raises(UsageError, match="two submissions are named 'alice'"):
        find_submissions([tmp_path / "class"])


def link_entry(z: zipfile.ZipFile, name: str, target: str) -> None:
    """A symbolic link member, as `zip -y` stores one (unzip recreates the link)."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z.writestr(info, target)


def test_links_in_a_submission_are_its_zero_naming_them(tmp_path, grading_reference):
    """A symbolic link (even to a sibling file), a hard link (another user's file
    under a student's name) or a zip's link entry is never copied: that student
    gets zero and the report names the link; the rest of the class is graded."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the answers")
    folder = tmp_path / "class"
    make_variant(folder / "alice", {})
    (make_variant(folder / "eve", {}) / "submission" / "answers.txt").symlink_to(secret)
    (make_variant(folder / "sid", {}) / "submission" / "rnn.py").symlink_to("mann.py")
    os.link(secret, make_variant(folder / "hal", {}) / "submission" / "notes.txt")
    with zipfile.ZipFile(folder / "zed.zip", "w") as z:
        z.writestr("submission/load_data.py", "")
        z.writestr("submission/mann.py", "")
        link_entry(z, "submission/answers.txt", str(secret))
    subs = {s.name: s for s in find_submissions([folder])}
    assert subs["alice"].gradable
    named = {"eve": "'submission/answers.txt' is a symbolic link", "sid": "'submission/rnn.py' is a symbolic link",
             "hal": "'submission/notes.txt' is a hard link (its file has 2 names)",
             "zed": "'submission/answers.txt' is a symbolic link"}
    grader = Grader(grading_reference, load_rubric())  # never started: nothing here reaches the sandbox
    try:
        for name, phrase in named.items():
            result = grader.grade(subs[name])
            assert result.score == 0 and phrase in result.problem, result.problem
            assert "links are not graded" in report_markdown(result)
            with pytest.raises(UsageError, match="symbolic link|hard link"):
                stage(subs[name], tmp_path / "staged" / name)
            assert "the answers" not in {p.read_text() for p in (tmp_path / "staged").rglob("*") if p.is_file()}
    finally:
        grader.close()


def test_a_link_put_in_after_the_submission_was_found_is_refused_when_staged(tmp_path):
    folder = make_variant(tmp_path / "eve", {})
    (sub,) = find_submissions([folder])
    assert sub.gradable
    os.link(folder / "submission" / "mann.py", folder / "submission" / "copy.py")
    with pytest.raises(UsageError, match="'submission/copy.py' is a hard link"):
        stage(sub, tmp_path / "staged")
    (folder / "submission" / "copy.py").unlink()
    (folder / "submission" / "data").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(UsageError, match="'submission/data' is a symbolic link"):
        stage(sub, tmp_path / "staged2")


def test_cli_refuses_bad_input_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["grade", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "mann: error:" in capsys.readouterr().err
    assert not out.exists()
    bad_rubric = tmp_path / "r.toml"
    bad_rubric.write_text("[tests.mann_layers]\npoints = -1\n")
    make_variant(tmp_path / "alice", {})
    assert main(["grade", str(tmp_path / "alice"), "--rubric", str(bad_rubric), "--out", str(out)]) == 2
    assert "negative" in capsys.readouterr().err and not out.exists()
    make_variant(tmp_path / "class" / "a", {})
    make_variant(tmp_path / "class" / "b", {})
    assert main(["grade", str(tmp_path / "class" / "a"), str(tmp_path / "class" / "b"), "--results-json",
                 str(tmp_path / "r.json"), "--out", str(out)]) == 2
    assert "--results-json names one file but 2 submissions" in capsys.readouterr().err


def test_png_tree_reads_back_as_the_assignment_expects(easy_store, grading_reference):
    tree = grading_reference.tree
    alphabets = sorted(p.name for p in tree.iterdir())
    assert all((tree / a).is_dir() for a in alphabets)  # nothing but alphabet folders
    first = sorted((tree / easy_store.characters[0]).iterdir())
    assert [p.name for p in first] == ["0001_01.png", "0001_02.png", "0001_03.png", "0001_04.png"]
    png = imageio.imread(first[1])
    assert png.shape == (28, 28) and png.dtype == np.uint8
    assert np.array_equal(png, 255 - easy_store.images[0, 1])  # dark ink on white
    assert not first[1].stat().st_mode & stat.S_IWUSR  # handed over read-only
    student = 1.0 - png.reshape(784).astype(np.float32) / png.max()
    chars, drawers = grading_reference.index.identify(np.stack([student, 1.0 - student]))
    assert chars.tolist() == [0, UNKNOWN] and drawers[0] == 1
    # a tree is written once: the same call reuses it, a different drawer count is refused
    assert write_png_tree(easy_store, tree, drawers=4) == tree
    with pytest.raises(UsageError, match="another drawer count"):
        write_png_tree(easy_store, tree, drawers=5)


def test_results_files_check_reads_the_deliverables(grading_reference, tmp_path):
    from mann.grading.checks_files import results_judge

    rng = np.random.default_rng(0)
    for shots, ways, right in ((1, 2, 0.95), (2, 2, 0.5)):
        labels = rng.integers(0, ways, size=(100, ways))
        preds = np.where(rng.random((100, ways)) < right, labels, (labels + 1) % ways)
        with open(tmp_path / f"mann_results_{shots}_{ways}.npy", "wb") as f:
            np.save(f, np.eye(ways)[labels])  # one-hot labels, then predicted classes
            np.save(f, preds)
    params = {"runs": [[1, 2, 0.9], [2, 2, 0.9], [1, 3, 0.75]]}
    verdict = results_judge(grading_reference, params, tmp_path)
    assert not verdict.passed
    assert "mann_results_1_2.npy: 9" in verdict.message and "(>= 90% needed)" in verdict.message
    assert "% query accuracy (< 90% needed)" in verdict.message and "mann_results_1_3.npy: missing" in verdict.message
    assert results_judge(grading_reference, {"runs": [[1, 2, 0.9]]}, tmp_path).passed


def test_default_rubric_file_documents_every_test():
    text = DEFAULT_RUBRIC.read_text()
    from mann.grading.battery import CHECKS

    for test_id in CHECKS:
        assert f"[tests.{test_id}]" in text


def test_gradebook_and_gradescope_payload(tmp_path):
    from mann.grading.grade import SubmissionResult, TestOutcome
    from mann.grading.gradebook import write_gradebook
    from mann.grading.gradescope import check_payload, results_payload
    from pathlib import Path

    from mann.grading.submission import Submission

    rubric = load_rubric()
    results = []
    for name, passing in (("a", 13), ("b", 6), ("c", 0)):
        tests = [TestOutcome(spec, i < passing, "m") for i, spec in enumerate(rubric.tests)]
        results.append(SubmissionResult(Submission(name, tmp_path, "submission/"), tests, seconds=1.5,
                                        isolation="fallback"))
    csv_path, md_path = write_gradebook(results, tmp_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",")[:2] == ["submission", "data_shapes"]
    assert lines[0].endswith("total,max_score,problem,isolation") and lines[1].endswith(",fallback")
    assert "Sandbox isolation: fallback." in results_payload(results[0], rubric)["output"]
    assert [line.split(",")[0] for line in lines[1:]] == ["a", "b", "c"]
    summary = md_path.read_text()
    assert "## Score distribution" in summary and "90-100%" in summary and "## Tests passed" in summary
    payload = results_payload(results[1], rubric)
    check_payload(payload)
    json.dumps(payload)
    assert payload["score"] == sum(t["score"] for t in payload["tests"])
    assert {t["visibility"] for t in payload["tests"]} == {"visible", "after_due_date"}
    with pytest.raises(ValueError):
        check_payload({**payload, "tests": [{**payload["tests"][0], "score": 99}]})


def test_a_passed_test_worth_zero_points_counts_as_passed(tmp_path):
    from dataclasses import replace

    from mann.grading.grade import SubmissionResult, TestOutcome
    from mann.grading.gradebook import pass_rates, write_gradebook
    from pathlib import Path

    from mann.grading.submission import Submission

    free = replace(load_rubric().tests[0], points=0.0)  # a practice test: feedback only
    results = [SubmissionResult(Submission(name, tmp_path, "submission/"), [TestOutcome(free, passed, "m")])
               for name, passed in (("a", True), ("b", False))]
    rates = pass_rates(results)
    assert rates.to_dict("records") == [{"test": free.id, "passed": 1, "of": 2, "rate": 0.5}]
    _, md_path = write_gradebook(results, tmp_path)
    assert "0.50" in md_path.read_text().split("## Tests passed")[1]


def test_split_size_statistics_are_exact_and_tell_800_from_1100():
    import random

    from mann.grading.coverage import FALSE_FAIL, acceptance, distinct_distribution, estimate_size, pass_probability

    draws = (50,) * 30  # the default rubric's split_disjoint
    p = distinct_distribution(1100, draws)
    counts = np.arange(len(p))
    assert abs(p.sum() - 1) < 1e-8
    assert abs((p * counts).sum() - 1100 * (1 - (1 - 50 / 1100) ** 30)) < 1e-6
    rng = random.Random(0)  # the loader's way of drawing: random.sample per episode
    simulated = [len(set().union(*(rng.sample(range(1100), 50) for _ in draws))) for _ in range(300)]
    assert abs(np.mean(simulated) - (p * counts).sum()) < 2.0
    low, high = acceptance(1100, draws)
    assert (low, high) == (778, 877) and p[:low].sum() <= FALSE_FAIL and p[high + 1:].sum() <= FALSE_FAIL
    assert pass_probability(800, draws, low, high) < 1e-30 and pass_probability(1523, draws, low, high) < 1e-9
    assert acceptance(100, draws) == (100, 100)  # val: every one of its 100 characters is seen
    assert pass_probability(723, draws, *acceptance(423, draws)) < 1e-100
    assert abs(estimate_size(int(round(800 * (1 - (1 - 50 / 800) ** 30))), draws) - 800) < 2
    # episodes showing another number of characters (a buggy query row) take their own count
    assert acceptance(1100, (100,) * 30) != acceptance(1100, draws)


def test_a_rubric_whose_split_episodes_cannot_come_from_val_is_refused(tmp_path):
    message = rubric_error(tmp_path, "[tests.split_disjoint]\npoints = 1\nways = 101\n")
    assert "ways = 101: the val split holds 100 characters; use 1 to 100" in message


def test_text_from_a_submission_cannot_add_markdown_or_html_to_its_report():
    from mann.grading.feedback import report_markdown
    from mann.grading.grade import SubmissionResult, TestOutcome
    from pathlib import Path

    from mann.grading.submission import Submission

    raised = ("MANN.forward(images, labels) raised ValueError: x |\n| fake | row | 10 / 10 | pass |\n"
              "<script>alert(1)</script> [click](http://evil.example) **bold** `code`")
    specs = load_rubric().tests
    sub = Submission("mallory<b>", Path("/class/mallory`s.zip"), "hw1/submission/", "")
    result = SubmissionResult(sub, [TestOutcome(specs[0], False, raised, "Output of the submission:\n```\n<i>x</i>"),
                                    TestOutcome(specs[1], True, "ok")], problem="| not | graded |")
    report = report_markdown(result)
    assert "<script>" not in report and "<b>" not in report and "&lt;script&gt;" in report
    assert "| fake | row |" not in report and "\\| fake \\| row \\|" in report
    assert "[click](" not in report and "**bold**" not in report
    # the only table rows are the header, its rule and one row per test
    rows = [line for line in report.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(result.tests), rows
    assert "``/class/mallory`s.zip``" in report  # a code span no backtick of the name can close
    # printed output stays verbatim inside its fence, which no line of it can close
    fence = report.index("```\nOutput of the submission:")
    assert report.count("```", fence) == 2 and "<i>x</i>" in report[fence:]
