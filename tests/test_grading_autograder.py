"""`mann grade --make-autograder`: the zip Gradescope takes, run the way Gradescope runs it.

Each step of the README's "As a Gradescope autograder" is run here: build the zip
(a quick rubric, the synthetic Omniglot zips), unpack it as /autograder/source
(a temporary folder stands in for /autograder), run setup.sh with a Python that
has the dependencies but not mann-bench, then run_autograder on a correct, a
buggy and a hostile upload. Every results.json must follow Gradescope's schema,
score what the upload deserves, and be written with nothing of the upload alive.
Offline: setup.sh is told never to reach an index.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from conftest import REPO
from grading_variants import BROKEN, make_variant
from mann import __version__
from mann.commands import main
from mann.grading.rubric import DEFAULT_RUBRIC

RUBRIC = """
[grading]
seed = 0
stdout_visibility = "visible"

[limits]
wall_s = 40              # generous: the machine may be busy; the endless loop hits the CPU limit
cpu_s = 6
file_mb = 2
output_kb = 8

[tests.data_shapes]
name = "shapes"
points = 5
episodes = 2

[tests.query_shuffled]
name = "query shuffled"
points = 10
episodes = 20
visibility = "after_due_date"

[tests.mann_output]
name = "output"
points = 5
"""
DAEMON = "86399.25"  # sleep's argument: how the test finds the hostile upload's daemon
# The hostile upload: at import, a daemon in a new session (double fork), and a forward that never returns.
HOSTILE_PREFIX = f'''
import os as _os, sys as _sys
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        _os.execv("/bin/sleep", ["sleep", "{DAEMON}"])
    _os._exit(0)
print("DAEMON STARTED", flush=True)
'''
HOSTILE = {"mann.py": {"sequence": "while True: pass"}}

TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
             "visibility", "extra_data"}
VISIBILITIES = {"visible", "hidden", "after_due_date", "after_published"}


def schema_errors(payload) -> list[str]:
    """What in ``payload`` breaks Gradescope's results.json specification (and what this
    project promises: every test has name, number, score, max_score, output and visibility)."""
    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if not isinstance(payload, dict):
        return ["not a JSON object"]
    errors = [f"unknown top-level key {k!r}" for k in set(payload) - TOP_KEYS]
    for key, check in {"score": number, "execution_time": number, "output": lambda x: isinstance(x, str),
                       "visibility": VISIBILITIES.__contains__, "stdout_visibility": VISIBILITIES.__contains__,
                       "tests": lambda x: isinstance(x, list)}.items():
        if key not in payload or not check(payload[key]):
            errors.append(f"{key} missing or invalid: {payload.get(key)!r}")
    for i, test in enumerate(payload.get("tests") or []):
        if not isinstance(test, dict):
            errors.append(f"tests[{i}] is not an object")
            continue
        errors += [f"tests[{i}]: unknown key {k!r}" for k in set(test) - TEST_KEYS]
        missing = {"name", "number", "score", "max_score", "output", "visibility"} - set(test)
        errors += [f"tests[{i}]: no {k!r}" for k in sorted(missing)]
        if missing:
            continue
        if not (number(test["score"]) and number(test["max_score"]) and 0 <= test["score"] <= test["max_score"]):
            errors.append(f"tests[{i}]: score {test['score']!r} not within [0, max_score {test['max_score']!r}]")
        if not all(isinstance(test[k], str) for k in ("name", "number", "output")):
            errors.append(f"tests[{i}]: name, number and output must be strings")
        if test["visibility"] not in VISIBILITIES:
            errors.append(f"tests[{i}]: visibility {test['visibility']!r}")
    if number(payload.get("score")) and payload.get("tests") and all(isinstance(t, dict) for t in payload["tests"]):
        if abs(payload["score"] - sum(t.get("score", 0) for t in payload["tests"])) > 1e-6:
            errors.append("score is not the sum of the tests' scores")
    board = payload.get("leaderboard", [])
    if not isinstance(board, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and (number(e.get("value")) or isinstance(e.get("value"), str))
            and e.get("order", "desc") in ("asc", "desc") for e in board):
        errors.append("leaderboard must be a list of {name, value[, order]}")
    return errors


def unzip(archive: Path, dest: Path) -> None:
    """Unpack as `unzip` does, file modes included (zipfile.extractall drops them)."""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            path = Path(z.extract(info, dest))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                path.chmod(stat.S_IMODE(mode))


def deps_python(folder: Path) -> Path:
    """A Python that imports the grader's dependencies but not mann-bench, as on a
    Gradescope image with torch installed: a fresh venv whose site-packages gets a
    .pth file naming a folder of links to this interpreter's packages (all but
    mann-bench's: its editable install, dist-info, .pth files) and adding this
    interpreter's prefixes to site.PREFIXES, so that the sandbox's view of
    site-packages (site.getsitepackages()) finds them where they really are."""
    venv = folder / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    python = venv / "bin" / "python"
    own_site = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                              capture_output=True, text=True).stdout.strip()
    links = folder / "deps"
    links.mkdir()
    for directory in map(Path, site.getsitepackages()):
        for entry in sorted(directory.iterdir()):
            name = entry.name.lower()
            if (name.endswith(".pth") or "mann_bench" in name or name in ("mann", "episodes", "__pycache__")
                    or (links / entry.name).exists()):
                continue
            (links / entry.name).symlink_to(entry)
    prefixes = sorted({sys.prefix, sys.exec_prefix})
    (Path(own_site) / "deps.pth").write_text(f"{links}\nimport site; site.PREFIXES.extend({prefixes!r})\n")
    return python


def clean_env(root: Path, python: Path, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MANN_CACHE", "OMNIGLOT_ROOT", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(AUTOGRADER_ROOT=str(root), MANN_PYTHON=str(python), TMPDIR=str(tmp),
               MANN_PIP_ARGS="--no-index",  # were a dependency missing: fail here, never download
               MANN_APT="0", PIP_NO_CACHE_DIR="1",  # no apt-get, even as root
               # this Python and the tree lie in folders only their owner can read: no --sandbox-user
               # nobody, even as root (on Gradescope the system's Python is readable by everyone)
               MANN_SANDBOX_USER="")
    return env


def imports(python: Path, code: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)


def daemons() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if Path(f"/proc/{entry}/cmdline").read_bytes() == f"sleep\0{DAEMON}\0".encode():
                found.append(int(entry))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def autograder(tmp_path_factory, synthetic_root):
    """The zip built, unpacked into <root>/source and set up: (root, env, python, setup's output, timings)."""
    folder = tmp_path_factory.mktemp("gradescope")
    rubric = folder / "rubric.toml"
    rubric.write_text(RUBRIC)
    timings = {}
    start = time.monotonic()
    # 1. on the staff's machine: build the zip
    assert main(["grade", "--make-autograder", str(folder / "autograder.zip"), "--rubric", str(rubric),
                 "--data-root", str(synthetic_root)]) == 0
    timings["make-autograder"] = time.monotonic() - start
    # 2. Gradescope: unpack it into /autograder/source, run setup.sh there once
    root = folder / "autograder"
    unzip(folder / "autograder.zip", root / "source")
    python = deps_python(folder)
    (folder / "tmp").mkdir()
    env = clean_env(root, python, folder / "tmp")
    assert imports(python, "import torch, numpy", env, folder).returncode == 0
    before = imports(python, "import mann", env, folder)
    assert before.returncode != 0 and "No module named 'mann'" in before.stderr
    start = time.monotonic()
    setup = subprocess.run(["bash", "setup.sh"], cwd=root / "source", env=env, capture_output=True, text=True,
                           timeout=1200)
    timings["setup.sh"] = time.monotonic() - start
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")  # as Gradescope does
    yield root, env, python, setup, timings
    print("wall times (s):", {k: round(v, 1) for k, v in timings.items()})


def grade(root: Path, env: dict, upload: Path) -> tuple[subprocess.CompletedProcess, dict | None]:
    """One Gradescope run: the upload's files in <root>/submission, an empty <root>/results."""
    for name in ("submission", "results"):
        shutil.rmtree(root / name, ignore_errors=True)
    shutil.copytree(upload, root / "submission")
    (root / "results").mkdir()
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=900)
    results = root / "results" / "results.json"
    return done, (json.loads(results.read_text()) if results.is_file() else None)


@pytest.mark.slow
def test_setup_installs_the_wheel_offline_decodes_the_data_and_checks_itself(autograder, tmp_path):
    root, env, python, setup, _ = autograder
    assert sorted(p.name for p in (root / "source").iterdir()) == [
        f"mann_bench-{__version__}-py3-none-any.whl", "omniglot", "rubric.toml", "run_autograder", "setup.sh"]
    assert os.access(root / "source" / "run_autograder", os.X_OK)
    assert "dependencies already installed: nothing downloaded" in setup.stdout
    assert "self-test: the shipped correct submission scored 20 / 20" in setup.stdout, setup.stdout
    assert "outlived the grading" not in setup.stderr
    where = imports(python, "import mann, torch; print(mann.__file__)", env, tmp_path)
    assert where.returncode == 0, where.stderr
    installed = Path(where.stdout.strip())
    assert str(python.parent.parent) in str(installed) and REPO not in installed.parents  # the wheel, not the repo
    assert (root / "omniglot_resized.complete").is_file()  # the PNG tree, written once, here
    assert list((root / "mann-cache").glob("omniglot-28px-*.npz"))  # decoded once, here


@pytest.mark.slow
@pytest.mark.parametrize("upload, score, lost, isolation", [
    ("correct", 20, set(), "auto"),
    ("unshuffled_query", 10, {"query shuffled"}, "auto"),
    ("hostile", 15, {"output"}, "auto"),
    ("hostile", 15, {"output"}, "fallback"),  # no namespaces, as in many containers
])
def test_run_autograder_grades_an_upload_and_leaves_nothing_running(autograder, tmp_path, upload, score, lost,
                                                                      isolation):
    root, env, _, _, timings = autograder
    env = {**env, "MANN_ISOLATION": isolation}
    if upload == "hostile":
        make_variant(tmp_path / upload, HOSTILE, {"mann.py": HOSTILE_PREFIX}, layout="flat")
    else:
        make_variant(tmp_path / upload, BROKEN.get(upload, {}), layout="flat")  # files at the top, as uploaded
    start = time.monotonic()
    done, payload = grade(root, env, tmp_path / upload)
    timings[f"run_autograder {upload} ({isolation})"] = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "outlived the grading" not in done.stderr  # the sandbox itself killed them
    assert payload is not None and schema_errors(payload) == [], schema_errors(payload)
    assert payload["score"] == score, json.dumps(payload, indent=1)[:4000]
    assert {t["name"] for t in payload["tests"] if t["score"] < t["max_score"]} == lost
    assert [t["visibility"] for t in payload["tests"]] == ["visible", "after_due_date", "visible"]
    assert payload["stdout_visibility"] == "visible"
    assert f"mann autograder: {score} points" in done.stderr
    if upload == "hostile":
        output = {t["name"]: t["output"] for t in payload["tests"]}
        assert "CPU limit of 6 s" in output["output"], output["output"]
        assert "DAEMON STARTED" in output["output"]  # the daemon was started...
    assert daemons() == []  # ... and nothing it started is alive
    assert not list(Path(env["TMPDIR"]).iterdir())  # the grading's temporary folder is gone


CONTAIN = textwrap.dedent(f"""
    import json, sys
    from mann.grading.autograder import contain
    done = contain(["sh", "-c", "setsid sleep {DAEMON} & setsid sh -c 'sleep {DAEMON} & sleep {DAEMON} & wait' & "
                    "sleep 1; echo spawned"])
    print(json.dumps(done.__dict__))
""")


def test_contain_kills_what_a_command_leaves_in_other_sessions():
    """The check run_autograder makes before it writes results.json, on its own:
    processes that left the command's session are found below the subreaper and killed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CONTAIN], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["returncode"] == 0 and len(result["killed"]) >= 2 and result["alive"] == [], result
    assert daemons() == []


def test_make_autograder_refuses_what_it_cannot_pack(tmp_path, capsys):
    (tmp_path / "images_background").mkdir()
    assert main(["grade", "--make-autograder", str(tmp_path / "a.zip"), "--data-root", str(tmp_path)]) == 2
    assert "images_background.zip is a folder" in capsys.readouterr().err
    assert main(["grade", "--make-autograder", str(tmp_path / "a.tar"), "--data-root", str(tmp_path)]) == 2
    assert "*.zip" in capsys.readouterr().err
    assert main(["grade", "sub", "--make-autograder", str(tmp_path / "a.zip")]) == 2
    assert "leave out the PATHs" in capsys.readouterr().err
    assert main(["grade", "--autograder-download"]) == 2
    assert main(["grade"]) == 2
    assert "name the submissions" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[tests.nonsense]\npoints = 1\n")
    assert main(["grade", "--make-autograder", str(tmp_path / "a.zip"), "--rubric", str(bad)]) == 2
    assert "unknown test" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".a.zip*"))


@pytest.mark.slow
def test_make_autograder_with_download_packs_no_data_and_setup_installs_missing_dependencies(tmp_path):
    assert main(["grade", "--make-autograder", str(tmp_path / "autograder.zip"), "--autograder-download"]) == 0
    with zipfile.ZipFile(tmp_path / "autograder.zip") as z:
        names = z.namelist()
        setup = z.read("setup.sh").decode()
        packed = z.read("rubric.toml").decode()
    assert sorted(names) == [f"mann_bench-{__version__}-py3-none-any.whl", "rubric.toml", "run_autograder", "setup.sh"]
    assert "DATA=download " in setup and "@DATA@" not in setup and "@VERSION@" not in setup
    assert packed == DEFAULT_RUBRIC.read_text()
    # a Python with pip but none of the dependencies: setup.sh says what is missing and goes to pip
    # for them (told --no-index here, so it fails instead of downloading)
    root = tmp_path / "autograder"
    unzip(tmp_path / "autograder.zip", root / "source")
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip",
                    str(tmp_path / "bare")], check=True)
    python = tmp_path / "bare" / "bin" / "python"
    own_site = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                              capture_output=True, text=True).stdout.strip()
    (tmp_path / "pip-only").mkdir()
    import pip

    (tmp_path / "pip-only" / "pip").symlink_to(Path(pip.__file__).parent)
    (Path(own_site) / "pip-only.pth").write_text(f"{tmp_path / 'pip-only'}\n")
    (tmp_path / "tmp").mkdir()
    env = clean_env(root, python, tmp_path / "tmp")
    done = subprocess.run(["bash", "setup.sh"], cwd=root / "source", env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0
    assert "torch: not installed (mann-bench needs torch==2.14.1)" in done.stdout, done.stdout + done.stderr
    assert "imageio: not installed" in done.stdout  # the grading extra
    assert "installing the dependencies with pip" in done.stdout
    assert "autograder ready" not in done.stdout
