"""`mann grade` on a folder of mixed submissions: correct, buggy, hostile,
not a submission, corrupt zip, zip bomb, and entries that are no submission.
Every student gets a valid results.json and a report, the class a gradebook
and a summary listing what was not graded, and the run never stops early."""

from __future__ import annotations

import json
import zipfile

import pytest

import mann.commands.grade
import mann.grading.reference
from grading_variants import BROKEN, make_variant, pry_code
from mann.commands import main
from mann.grading.gradescope import check_payload

RUBRIC = """
[grading]
seed = 3

[limits]
wall_s = 8
cpu_s = 3
file_mb = 2

[tests.data_shapes]
name = "shapes"
points = 2
episodes = 2

[tests.query_shuffled]
name = "query shuffled"
points = 3
episodes = 20

[tests.mann_output]
name = "output"
points = 5
visibility = "hidden"
"""


@pytest.fixture
def class_folder(tmp_path):
    folder = tmp_path / "class"
    make_variant(folder / "alice", {})
    make_variant(folder / "bob", BROKEN["unshuffled_query"])
    hostile = {"write-results": str(tmp_path / "out" / "mallory" / "results.json"),
               "read-reference": mann.grading.reference.__file__, "read-rubric": str(tmp_path / "rubric.toml"),
               "read-other-student": str(folder / "alice" / "submission" / "mann.py")}
    make_variant(folder / "mallory", {"mann.py": {"sequence": "__import__('ctypes').string_at(0)"}},
                 {"mann.py": pry_code(hostile)})
    (folder / "dave").mkdir(parents=True)
    (folder / "dave" / "hw1.py").write_text("print('wrong files')")
    (folder / "erin.zip").write_bytes(b"not a zip at all")
    with zipfile.ZipFile(folder / "zed.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("submission/load_data.py", "")
        z.writestr("submission/mann.py", "")
        z.writestr("submission/weights.npy", bytes(8 << 20))  # 8 MB of zeros in 8 KB
    (folder / "frank").symlink_to(folder / "alice", target_is_directory=True)
    (folder / "notes.txt").write_text("grading notes")
    (tmp_path / "rubric.toml").write_text(RUBRIC)
    return folder


@pytest.fixture
def synthetic_data(grading_reference, easy_store, monkeypatch):
    """`mann grade` reads the synthetic store and its 4-drawer tree instead of Omniglot."""
    monkeypatch.setattr(mann.commands.grade, "load_store", lambda args: easy_store)
    monkeypatch.setattr(mann.grading.reference, "build_reference", lambda *args, **kwargs: grading_reference)


def test_grading_a_mixed_class(class_folder, synthetic_data, capsys):
    out = class_folder.parent / "out"
    code = main(["grade", str(class_folder), "--out", str(out), "--rubric", str(class_folder.parent / "rubric.toml"),
                 "--quiet", "--jobs", "2"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    scores = {}
    for name in ("alice", "bob", "mallory", "dave", "erin", "zed"):
        payload = json.loads((out / name / "results.json").read_text())
        check_payload(payload)
        scores[name] = payload["score"]
        assert (out / name / "report.md").is_file()
    assert scores == {"alice": 10, "bob": 7, "mallory": 5, "dave": 0, "erin": 0, "zed": 0}
    mallory = json.loads((out / "mallory" / "results.json").read_text())
    output = {t["name"]: t for t in mallory["tests"]}["output"]
    assert "SIGSEGV" in output["output"] and output["visibility"] == "hidden"
    assert "SUCCEEDED" not in (out / "mallory" / "report.md").read_text()
    dave = json.loads((out / "dave" / "results.json").read_text())
    assert "expected load_data.py and mann.py" in dave["output"]
    assert "not a readable zip" in json.loads((out / "erin" / "results.json").read_text())["output"]
    assert "over the 200:1 allowed" in json.loads((out / "zed" / "results.json").read_text())["output"]
    book = (out / "gradebook.csv").read_text().splitlines()
    assert book[0] == "submission,data_shapes,query_shuffled,mann_output,total,max_score,problem,isolation"
    assert len(book) == 7
    assert "## Score distribution" in printed.out and (out / "summary.md").is_file()
    # what is not graded is said, not dropped: the link to alice's folder and the stray file
    assert not (out / "frank").exists()
    summary = (out / "summary.md").read_text()
    assert "## Not graded: 2 class folder entries" in summary
    assert "| frank | a symbolic link, not followed" in summary and "| notes.txt | neither a folder nor a .zip" in summary
    assert f"mann: not graded: {class_folder / 'frank'}: a symbolic link" in printed.err


def test_one_submission_for_gradescope(class_folder, synthetic_data, tmp_path):
    target = tmp_path / "autograder" / "results" / "results.json"
    code = main(["grade", str(class_folder / "bob"), "--results-json", str(target), "--out", str(tmp_path / "g"),
                 "--rubric", str(class_folder.parent / "rubric.toml"), "--quiet"])
    assert code == 0
    payload = json.loads(target.read_text())
    check_payload(payload)
    assert payload["score"] == 7 and payload["stdout_visibility"] == "hidden"


def test_a_grader_error_on_one_student_is_their_zero_and_the_class_goes_on(tmp_path, synthetic_data, monkeypatch):
    """Whatever breaks while grading bob (here the sandbox raises on his second test,
    with a test half run) is bob's zero with the reason; the students after him get
    their normal scores from a fresh sandbox and the class gets its gradebook."""
    import mann.grading.grade
    from mann.grading.runner import Sandbox

    folder = tmp_path / "class"
    for name in ("alice", "bob", "carol"):
        make_variant(folder / name, {})
    (tmp_path / "rubric.toml").write_text(RUBRIC)
    current = {"name": "", "runs": 0}
    real_stage, real_run = mann.grading.grade.stage, Sandbox.run

    def stage(submission, target):
        current.update(name=submission.name, runs=0)
        return real_stage(submission, target)

    def run(self, code, probe, limits):
        current["runs"] += 1
        if current["name"] == "bob" and current["runs"] == 2:
            raise RuntimeError("the grader broke | on purpose")
        return real_run(self, code, probe, limits)

    monkeypatch.setattr(mann.grading.grade, "stage", stage)
    monkeypatch.setattr(Sandbox, "run", run)
    out = tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out), "--rubric", str(tmp_path / "rubric.toml"), "--quiet",
                 "--jobs", "1"]) == 0  # one sandbox: "bob's second test" is then well defined
    scores = {name: json.loads((out / name / "results.json").read_text())["score"] for name in ("alice", "bob", "carol")}
    assert scores == {"alice": 10, "bob": 0, "carol": 10}
    bob = json.loads((out / "bob" / "results.json").read_text())
    assert "internal error: RuntimeError: the grader broke" in bob["output"]
    assert all("internal error: RuntimeError" in t["output"] for t in bob["tests"])
    assert "internal error: RuntimeError" in (out / "bob" / "report.md").read_text()
    book = (out / "gradebook.csv").read_text().splitlines()
    assert len(book) == 4 and any(line.startswith("bob,0") and "internal error" in line for line in book)


def test_a_class_on_two_sandboxes_gets_the_gradebook_of_a_serial_run(class_folder, synthetic_data, capsys):
    rubric = str(class_folder.parent / "rubric.toml")
    books, results = {}, {}
    for jobs in ("1", "2"):
        out = class_folder.parent / f"out-{jobs}"
        assert main(["grade", str(class_folder), "--out", str(out), "--rubric", rubric, "--quiet", "--jobs", jobs]) == 0
        assert f"on {jobs} sandbox(es) at once" in capsys.readouterr().err
        books[jobs] = (out / "gradebook.csv").read_text()
        results[jobs] = {p.parent.name: {k: v for k, v in json.loads(p.read_text()).items() if k != "execution_time"}
                         for p in out.glob("*/results.json")}
    assert books["1"] == books["2"]
    assert results["1"] == results["2"] and len(results["1"]) == 6
