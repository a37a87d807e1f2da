"""Run probes on a submission in the sandbox and bring back its raw outputs.

The grader side of the isolation (the sandbox side is ``sandbox/server.py``):

* one fork server per grading session, started with ``python -I -S``, a
  scrubbed environment and a ``sys.path`` of the submission copy plus a view of
  site-packages without the grader's own packages (``mann``, ``episodes``),
  inside bubblewrap's namespaces where the machine allows (isolation.py says
  which level, and why);
* one fresh child per test, in a fresh copy of the submission and a PID
  namespace of its own, with no capability, under the test's wall-clock, CPU,
  memory and file-size limits, confined by Landlock to reading the system,
  Python, the data tree and its inputs, and writing its own folder;
* the server is restarted when a test kills it; a server that stops answering
  is killed with its whole process group.

Outputs come back as files the grader reads as untrusted (raw.py: bounded
size, JSON depth and types, array headers checked before any data), then
checks against the request (``check_info``); the grader, not the submission,
decides every verdict and writes every result file.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from episodes.errors import UsageError
from mann.grading import isolation as levels
from mann.grading.raw import RawOutputError, read_head, read_json, read_npz
from mann.grading.sandbox import confine, tree

SERVER = Path(__file__).resolve().parent / "sandbox" / "server.py"
START_TIMEOUT_S = 180.0
REPLY_SLACK_S = 30.0
INFO_CAP = 1 << 20
SETUP_FAILED = 70  # sandbox/server.py's exit status when a test's set-up fails
# Landlock's view of the system (the test adds its /proc); /etc only its few harmless files
SYSTEM_READ = (*levels.SYSTEM_DIRS, "/sys", *levels.ETC_FILES)
DEVICES = {
    "/dev/null": confine.READ_FILE | confine.WRITE_FILE,
    "/dev/zero": confine.READ_FILE,
    "/dev/urandom": confine.READ_FILE,
    "/dev/random": confine.READ_FILE,
}
SIGNAL_NAMES = {
    signal.SIGSEGV: "SIGSEGV (segmentation fault)",
    signal.SIGBUS: "SIGBUS (bus error)",
    signal.SIGABRT: "SIGABRT (abort)",
    signal.SIGILL: "SIGILL (illegal instruction)",
    signal.SIGFPE: "SIGFPE (arithmetic error)",
}


@dataclass(frozen=True)
class TestLimits:
    """Limits of one test's process. memory_mb bounds the address space, which
    includes the ~3.3 GB that importing torch reserves."""

    wall_s: float = 60.0
    cpu_s: int = 60
    memory_mb: int = 6144
    file_mb: int = 64
    output_kb: int = 32


@dataclass
class RunResult:
    """What one test's process left behind.

    ok: the probe finished and reported no error of the submission.
    problem: a one-line explanation when not ok (timeout, crash, exception...).
    info: the probe's JSON report; arrays: its raw outputs (numpy).
    output: the first ``output_kb`` of what the submission printed.
    leftovers: processes the test left running (killed after it).
    failure: "timeout", "cpu" or "slow" when the test ran out of time (or
    stopped itself, projecting it would), else "".
    part: the part of the submission the test was running when it ended
    (``PARTS``; "" when unknown).
    """

    ok: bool
    problem: str = ""
    info: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    output: str = ""
    traceback: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    leftovers: int = 0
    failure: str = ""
    part: str = ""


# The parts of a submission a probe runs (sandbox/probe.py's part_of names them).
LOADER = ("import load_data.py", "DataGenerator")
MODEL = ("import mann.py", "MANN.__init__")
PARTS = (*LOADER, *MODEL, "MANN.forward", "loss_function", "training step")
PART_NAMES = {"import load_data.py": "importing load_data.py", "DataGenerator": "the DataGenerator",
              "import mann.py": "importing mann.py", "MANN.__init__": "building the MANN",
              "MANN.forward": "MANN.forward", "loss_function": "the loss function",
              "training step": "the training step (backward and optimizer)"}
# what each model operation of the probe runs besides importing and building the MANN
_MODEL_OPS = {"layers": (), "init": (), "loss": ("loss_function",)}


@dataclass(frozen=True)
class Probe:
    """One request: which probe to run, its job (JSON) and input arrays.

    answers: what the judge needs that the submission must not see (the test
    episodes' query labels); never sent into the sandbox.
    data: whether the test needs the PNG tree; a test that sends its images
    as arrays runs without it, so a submission cannot look its images up
    there (which character, hence which label).
    """

    kind: str
    job: dict
    arrays: dict
    answers: dict = field(default_factory=dict)
    data: bool = True

    @property
    def needs(self) -> tuple[str, ...]:
        """The parts of the submission this probe runs (PARTS): when one of them
        ran out of time in an earlier test, this one is not run."""
        if self.kind == "episodes":
            return LOADER
        if self.kind == "train":
            return (*MODEL, "MANN.forward", "loss_function", "training step")
        return (*MODEL, *_MODEL_OPS.get(self.job.get("op"), ("MANN.forward",)))


def grader_paths() -> list[Path]:
    """The grader's own code: hidden from (and not importable by) submissions."""
    import episodes
    import mann

    paths = [Path(mann.__file__).resolve().parent, Path(episodes.__file__).resolve().parent]
    root = paths[0].parent
    if (root / "pyproject.toml").is_file():
        paths.append(root)
    return paths


def site_dirs() -> list[Path]:
    dirs = [Path(p) for p in site.getsitepackages()]
    return [d for d in dirs if d.is_dir()]


def _is_grader_entry(entry: Path, hidden: list[Path]) -> bool:
    name = entry.name.lower()
    if name.endswith(".pth") or name == "__pycache__":
        return True
    if name.startswith(("mann_bench", "__editable__")) and "mann_bench" in name:
        return True
    if name in ("mann", "episodes"):  # a non-editable install of the grader
        return True
    real = entry.resolve()
    if real.parent == entry.parent.resolve():
        # A package installed in this site-packages: not the grader's, even when
        # the virtualenv itself lives inside the grader's repository (.venv).
        return False
    return any(real == h or h in real.parents for h in hidden)


def build_site_view(folder: Path, hidden: list[Path]) -> Path:
    """A folder of symlinks to every site-packages entry except the grader's.

    Submissions import torch, numpy, imageio... through it; ``mann`` and
    ``episodes`` of the grader are not there (the student's own ``mann.py``
    comes first on ``sys.path``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for directory in site_dirs():
        for entry in sorted(directory.iterdir()):
            link = folder / entry.name
            if link.exists() or link.is_symlink() or _is_grader_entry(entry, hidden):
                continue
            link.symlink_to(entry.resolve())
    return folder


def python_read_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(sys.executable).resolve().parent)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        roots.add(sysconfig.get_paths()[key])
    roots.update(str(d) for d in site_dirs())
    return sorted(roots)


class Sandbox:
    """The fork server and the per-test folders of one grading session.

    >>> with Sandbox(tree, exclude=[rubric, out]) as box:
    ...     result = box.run(code_folder, Probe("model", job, arrays), TestLimits())
    """

    def __init__(self, data_tree: Path, exclude: list[Path] = (), user: str | None = None,
                 landlock: bool = True, workdir: Path | None = None, isolation: str = "auto") -> None:
        self.data_tree = Path(data_tree).resolve()
        self.isolation = levels.choose(isolation)
        self.root = Path(tempfile.mkdtemp(prefix="mann-grade-", dir=workdir))
        try:
            self._prepare(exclude, user, landlock)
        except BaseException:  # e.g. --sandbox-user refused: the folder is not left behind
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _prepare(self, exclude: list[Path], user: str | None, landlock: bool) -> None:
        self.hidden = grader_paths()
        self.site_view = build_site_view(self.root / "site", self.hidden)
        # a copy, so that no folder of the grader's is mounted into the namespaces
        self.server_dir = Path(shutil.copytree(SERVER.parent, self.root / "server",
                                               ignore=shutil.ignore_patterns("__pycache__")))
        excluded = [str(p) for p in [*self.hidden, *exclude, self.root]]
        self.read_roots = confine.with_exclusions(list(SYSTEM_READ) + python_read_roots(), excluded)
        self.python_roots = confine.with_exclusions(python_read_roots(), excluded)
        # in namespaces the sandbox's root is powerless outside them: no other user needed
        self.user = None if self.isolation.namespaced else user
        self.uid, self.gid = _lookup_user(user) if self.user else (None, None)
        if self.user:
            _check_world_readable([self.data_tree, *map(Path, python_read_roots())], user)
        self.landlock_abi = confine.landlock_abi() if landlock else 0
        self.process: subprocess.Popen | None = None
        self.server_info: dict = {}
        self.counter = 0
        self.restarts = 0
        self._buffer = b""
        (self.root / "tests").mkdir()
        if self.uid is not None:
            for path in (self.root, self.site_view, self.server_dir):
                os.chmod(path, 0o755)

    # -- lifecycle --------------------------------------------------------
    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def protections(self) -> str:
        """One line saying which isolation level and layers are active."""
        own_namespace = self.isolation.namespaced and self.server_info.get("test_namespaces")
        parts = [self.isolation.describe(), "own PID namespace per test" if own_namespace
                 else "subreaper stops and kills every process a test leaves", "no capabilities",
                 "seccomp filter (sockets, file metadata)", "rlimits"]
        parts.append(f"Landlock ABI {self.landlock_abi}" if self.landlock_abi else "NO Landlock (files readable)")
        if self.uid is not None:
            parts.append(f"uid {self.uid}")
        return ", ".join(parts)

    def server_command(self) -> list[str]:
        """The fork server's command line: under bubblewrap where namespaces are
        available, seeing only Python, the data, the site view and the tests."""
        settings = json.dumps({"site": [str(self.site_view)]})
        command = [sys.executable, "-I", "-S", str(self.server_dir / SERVER.name), settings]
        if not self.isolation.namespaced:
            return command
        read = [*self.python_roots, str(Path(sys.executable).parent), str(self.server_dir),
                str(self.site_view), str(self.data_tree)]
        return [*levels.base_command(self.isolation.bwrap), *levels.mounts(read, [str(self.root / "tests")]),
                "--chdir", str(self.root / "tests"), *command]

    def start(self) -> None:
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        env = scrubbed_env(home, self.root)
        self._buffer = b""
        self.process = subprocess.Popen(
            self.server_command(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.root / "server.log", "ab"),
            cwd=self.root, env=env, start_new_session=True, close_fds=True,
        )
        line = self._read_line(START_TIMEOUT_S)
        if line is None or not line.get("ready"):
            log, _ = read_head(self.root / "server.log", 4000)
            self._kill()
            raise UsageError(
                f"the grading sandbox could not start ({sys.executable} -I -S {SERVER.name}, isolation: "
                f"{self.isolation.describe()}); check that torch and numpy import in this Python; "
                f"its log says: {log.strip()[-800:]}"
            )
        self.server_info = line

    def close(self) -> None:
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def reset(self) -> None:
        """Kill the server (the next test starts a fresh one): after a test was
        interrupted, its late answer must not be read as the next test's."""
        self._kill()

    def _kill(self) -> None:
        """Kill the server and everything below it: a running test (in a session
        of its own, out of reach of the server's process group) and what it started."""
        if self.process is None:
            return
        tree.stop_and_kill(self.process.pid)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.process = None

    def _read_line(self, timeout: float) -> dict | None:
        """The server's next JSON line, or None when it died or timed out."""
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return None

    # -- one test -------------------------------------------------------------
    def run(self, submission: Path, probe: Probe, limits: TestLimits) -> RunResult:
        """Run ``probe`` on a fresh copy of ``submission`` under ``limits``."""
        if self.process is None or self.process.poll() is not None:
            self.restarts += 1
            self.start()
        self.counter += 1
        test_dir = self.root / "tests" / f"{self.counter:05d}"
        work, inputs, outdir = test_dir / "work", test_dir / "in", test_dir / "out"
        code = work / "submission"
        shutil.copytree(submission, code, symlinks=False)
        # The assignment's default data_folder, for loaders that ignore config.
        data_link = code / "omniglot_resized"
        if data_link.is_dir() and not data_link.is_symlink():
            shutil.rmtree(data_link)
        elif data_link.exists() or data_link.is_symlink():
            data_link.unlink()
        if probe.data:
            data_link.symlink_to(self.data_tree)
        data = [str(self.data_tree)] if probe.data else []
        for folder in (work / "tmp", work / "home", inputs, outdir):
            folder.mkdir(parents=True, exist_ok=True)
        np.savez(inputs / "inputs.npz", **probe.arrays)
        if self.uid is not None:
            _hand_over(test_dir, work, outdir, self.uid, self.gid)
        request = {
            "id": self.counter,
            "kind": probe.kind,
            "job": {**probe.job, "time_limit_s": min(limits.wall_s, limits.cpu_s),
                    **({"data_folder": str(self.data_tree)} if probe.data else {})},
            "inputs": str(inputs / "inputs.npz"),
            "outdir": str(outdir),
            "cwd": str(code),
            # work first: ``submission`` is always the copied code folder, never a
            # folder of that name inside it; then the folder itself (``import rnn``)
            "import_paths": [str(work), str(code)],
            "env": {"HOME": str(work / "home"), "TMPDIR": str(work / "tmp")},
            "limits": {"wall_s": limits.wall_s, "cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb,
                       "file_mb": limits.file_mb, "processes": 256 if self.uid is not None else 0},
            "uid": self.uid, "gid": self.gid,
            "landlock": bool(self.landlock_abi),
            "read": [*self.read_roots, str(self.site_view), *data, str(inputs)],
            "write": [str(work), str(outdir)],
            "devices": DEVICES,
            # the fallback has no namespaces: no unix socket either (one could reach a listener by its path)
            "test_namespace": self.isolation.namespaced,
            "unix_sockets": self.isolation.namespaced,
        }
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            answer = self._read_line(limits.wall_s + REPLY_SLACK_S)
        except (BrokenPipeError, OSError):
            answer = None
        if answer is None:
            self._kill()
            result = RunResult(ok=False, problem="the sandbox stopped during this test (did the submission "
                               "kill its parent process?); the test was not completed")
        else:
            result = interpret(answer, outdir, limits, probe.job)
        shutil.rmtree(test_dir, ignore_errors=True)
        return result


def interpret(answer: dict, outdir: Path, limits: TestLimits, job: dict | None = None) -> RunResult:
    """Turn the server's answer and the files in ``outdir`` into a RunResult.

    Whatever the files hold, this returns: an unusable one is the test's
    failure with the reason (the submission shares the probe's process, so it
    can rewrite them)."""
    output, size = read_head(outdir / "output.log", limits.output_kb * 1024)
    if size > limits.output_kb * 1024:
        output += f"\n[... output cut: {size} bytes printed, the first {limits.output_kb} KB shown]"
    result = RunResult(ok=False, output=output, wall_s=answer.get("wall_s") or 0.0, cpu_s=answer.get("cpu_s") or 0.0,
                       leftovers=int(answer.get("leftovers") or 0), part=read_part(outdir))
    info, unusable = None, ""
    try:
        info = read_json(outdir / "info.json", INFO_CAP)
        if info is not None:
            info = check_info(info, job or {})
    except RawOutputError as err:
        info, unusable = None, str(err)
    status = answer.get("status")
    if status == "timeout":
        result.failure = "timeout"
        result.problem = (f"did not finish within the wall-clock limit of {limits.wall_s:g} s "
                          f"(an endless loop, or waiting on something?)")
    elif status == "signaled":
        result.problem = signal_problem(answer["signal"], limits, result.cpu_s)
        if "CPU limit" in result.problem:
            result.failure = "cpu"
    elif unusable:
        result.problem = (f"the test's report could not be used: {unusable} (the probe writes info.json itself: "
                          f"does the submission write into its output folder?)")
    elif not isinstance(info, dict) and answer.get("code") == SETUP_FAILED and "Traceback" in output:
        result.problem = ("the sandbox failed to set up or finish this test (not necessarily the submission's "
                          "fault); the output below says why; tell the course staff")
    elif not isinstance(info, dict):
        code = answer.get("code")
        result.problem = (f"the process ended (exit status {code}) before returning a result: does the "
                          f"submission call sys.exit / os._exit / quit at import or in its methods?")
    elif "too_slow" in info:
        slow = info["too_slow"]
        result.failure, result.part = "slow", slow["part"]
        result.problem = (f"stopped after {slow['done']} of {slow['total']} {slow['unit']}s: at "
                          f"{slow['per_item_s']:.2f} s per {slow['unit']} the test would take about "
                          f"{slow['projected_s']:.0f} s, over its limit of {slow['limit_s']:g} s")
    elif "probe_error" in info:
        result.problem = "internal error of the grader (not the submission's fault); tell the course staff"
        result.traceback = str(info["probe_error"])
    elif "error" in info:
        result.traceback = str(info["error"].get("traceback", ""))
        result.problem = error_message(info["error"], limits)
    else:
        result.ok = True
    if isinstance(info, dict):
        result.traceback = "\n\n".join(x for x in [result.traceback, *nested_errors(info, limits)] if x)
        result.info = info
        try:
            result.arrays = read_npz(outdir / "result.npz", limits.file_mb << 20)
        except RawOutputError as err:
            result.ok = False
            result.problem = result.problem or f"its result file could not be used: {err}"
    return result


def read_part(outdir: Path) -> str:
    """The part of the submission the probe last entered (its ``stage`` file), "" when unknown."""
    try:
        text, _ = read_head(outdir / "stage", 64)
    except (OSError, RawOutputError):
        return ""
    part = text.strip("\x00 \n")
    return part if part in PARTS else ""


def check_info(info, job: dict) -> dict:
    """``info`` when it has the types the probe writes and agrees with the
    request ``job``; else RawOutputError saying what differs. The judges may
    then index it without meeting a list where a dict belongs."""
    if not isinstance(info, dict):
        raise RawOutputError(f"info.json holds a JSON {json_type(info)}, not an object")
    if "probe_error" in info and not isinstance(info["probe_error"], str):
        raise RawOutputError("info.json: 'probe_error' is not a string")
    if "too_slow" in info:
        check_too_slow(info["too_slow"])
    if "error" in info:
        check_error(info["error"], "info.json 'error'")
    for key in ("output", "layers", "parameters"):
        if key in info and not isinstance(info[key], dict):
            raise RawOutputError(f"info.json: {key!r} is a JSON {json_type(info[key])}, not an object")
    for name, layer in info.get("layers", {}).items():
        if not isinstance(layer, dict):
            raise RawOutputError(f"info.json: layer {name[:40]!r} is a JSON {json_type(layer)}, not an object")
    if "unsaved" in info and not (isinstance(info["unsaved"], list) and all(isinstance(x, str) for x in info["unsaved"])):
        raise RawOutputError("info.json: 'unsaved' is not a list of names")
    wanted = {"configs": job.get("configs"), "cases": job.get("cases")}
    for key, asked in wanted.items():
        if key not in info:
            continue
        records = info[key]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RawOutputError(f"info.json: {key!r} is not a list of objects")
        if asked is not None and len(records) > len(asked):
            raise RawOutputError(f"info.json: {len(records)} {key} recorded for the {len(asked)} requested")
        for i, record in enumerate(records):
            if "error" in record:
                check_error(record["error"], f"info.json {key}[{i}] 'error'")
            for part in ("images", "labels", "returned", "value"):
                if part in record and not isinstance(record[part], dict):
                    raise RawOutputError(f"info.json {key}[{i}]: {part!r} is not an object")
            lists = record.get("folder_lists", [])
            if not (isinstance(lists, list) and all(isinstance(x, str) for x in lists)):
                raise RawOutputError(f"info.json {key}[{i}]: 'folder_lists' is not a list of names")
            if key == "configs" and asked is not None:
                # the judges read N, K, the split and the episode count from these records: they must be the request's
                request = {f: asked[i].get(f) for f in ("ways", "shots", "split", "episodes")}
                if {f: record.get(f) for f in request} != request:
                    raise RawOutputError(f"info.json configs[{i}] says {({f: record.get(f) for f in request})}, "
                                         f"but {request} was requested")
    return info


def check_too_slow(record) -> None:
    numbers = ("done", "total", "per_item_s", "projected_s", "limit_s")
    if not (isinstance(record, dict) and record.get("part") in PARTS and isinstance(record.get("unit"), str)
            and len(record["unit"]) <= 40 and all(isinstance(record.get(k), (int, float))
                                                   and not isinstance(record.get(k), bool) for k in numbers)):
        raise RawOutputError("info.json: 'too_slow' is not the record the probe writes")


def check_error(error, where: str) -> None:
    if not isinstance(error, dict):
        raise RawOutputError(f"{where} is a JSON {json_type(error)}, not an object")
    for key in ("stage", "traceback"):
        if key in error and not isinstance(error[key], str):
            raise RawOutputError(f"{where}: {key!r} is not a string")


def json_type(value) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def error_message(error: dict, limits: TestLimits) -> str:
    """'<stage> raised <the traceback's last line>', plus the memory limit when memory ran out."""
    text = str(error.get("traceback", ""))
    message = f"{error.get('stage', 'the submission')} raised {last_line(text)}"
    if "MemoryError" in text or "allocate memory" in text:
        message += f" (the memory limit is {limits.memory_mb} MB of address space)"
    return message


def nested_errors(info: dict, limits: TestLimits) -> list[str]:
    """Errors a probe recorded per episode config or per case (the others still
    ran): each gets its ``message`` for the judge; their tracebacks are returned."""
    tracebacks = []
    for key in ("configs", "cases"):
        records = info.get(key)
        for i, record in enumerate(records if isinstance(records, list) else []):
            error = record.get("error") if isinstance(record, dict) else None
            if isinstance(error, dict):
                error["message"] = error_message(error, limits)
                tracebacks.append(f"[{key[:-1]} {i + 1}] {str(error.get('traceback', '')).strip()}")
    return tracebacks


def signal_problem(number: int, limits: TestLimits, cpu_s: float) -> str:
    if number == signal.SIGXCPU or (number == signal.SIGKILL and cpu_s >= limits.cpu_s):
        return f"used more than the CPU limit of {limits.cpu_s} s (an endless loop?)"
    if number == signal.SIGXFSZ:
        return f"wrote more than {limits.file_mb} MB to a file or the output (printing without end?)"
    name = SIGNAL_NAMES.get(number)
    if name:
        return f"crashed the Python interpreter with {name}"
    try:
        label = signal.Signals(number).name
    except ValueError:
        label = str(number)
    return f"was killed by signal {label}"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "an exception"


def scrubbed_env(home: Path, tmp: Path) -> dict[str, str]:
    """The only environment a submission sees: no secrets, no grader paths."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
    }


def _lookup_user(name: str) -> tuple[int, int]:
    import pwd

    if os.geteuid() != 0:
        raise UsageError(f"--sandbox-user {name}: only root can run submissions as another user; "
                         f"run the grader as root (as on Gradescope) or leave the option out")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"--sandbox-user {name}: no such user; use e.g. nobody") from None
    return entry.pw_uid, entry.pw_gid


def _check_world_readable(paths: list[Path], user: str) -> None:
    """UsageError unless another user can reach and read every path (checked before grading)."""
    for path in paths:
        path = Path(path).resolve()
        for folder in [*reversed(path.parents), path]:
            mode = folder.stat().st_mode
            if not mode & 0o001 or (folder == path and not mode & 0o004):
                raise UsageError(
                    f"--sandbox-user {user}: {folder} is not readable by other users, so submissions running as "
                    f"{user} cannot use {path}; install Python and its packages (and --tree) where every user "
                    f"can read them, as on Gradescope's image, or leave the option out"
                )


def _hand_over(test_dir: Path, work: Path, outdir: Path, uid: int, gid: int) -> None:
    """Let the sandbox user read its test folder and write its work and output folders."""
    for dirpath, dirnames, filenames in os.walk(test_dir):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    for folder in (work, outdir):
        for dirpath, dirnames, filenames in os.walk(folder):
            os.chown(dirpath, uid, gid)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), uid, gid)
    for parent in (test_dir.parent, test_dir.parent.parent):
        os.chmod(parent, 0o755)
