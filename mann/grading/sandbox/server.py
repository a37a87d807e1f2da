"""The sandbox's fork server: imports torch once, then runs each test in a fresh child.

Started by the grader as ``python -I -S server.py`` (isolated mode: no
PYTHONPATH, no user site, no ``.pth`` files) with a scrubbed environment and
the grader's packages absent from ``sys.path``. It reads one JSON request per
line on stdin and answers one JSON line on stdout per request.

For each request it forks a child that, before touching the submission,
starts a new session, sends its output to ``outdir/output.log``, closes every
other file, applies the resource limits, optionally becomes an unprivileged
user and confines itself with Landlock, then runs the probe. The server
enforces the wall-clock limit (killing the child's whole process group), and,
being a child subreaper, also kills any process the child left behind, even
one that escaped into a new session.

The server never imports the submission's code, so a test can crash, hang or
poison its interpreter without affecting the next one.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys
import time
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
_PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.02
SETUP_FAILED = 70  # the child could not set up the sandbox (or the probe broke)
# Third-party modules the assignment's code commonly imports (imageio alone takes ~0.5 s).
WARM_MODULES = ("numpy.random", "imageio.v2", "imageio", "PIL.Image", "torch.nn.functional", "torch.utils.data")


def main() -> int:
    settings = json.loads(sys.argv[1])
    sys.path.extend(settings["site"])
    import numpy  # noqa: F401 - loaded once here, shared by every forked test
    import torch

    import confine
    import probe  # noqa: F401

    torch.set_num_threads(1)
    for name in WARM_MODULES:  # imported once here instead of once per test
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional; a submission that needs one gets the error itself
            pass
    subreaper = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    reply({"ready": True, "torch": torch.__version__, "landlock": confine.landlock_abi(),
           "subreaper": subreaper, "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        reply(run_test(request))
    return 0


def reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def run_test(request: dict) -> dict:
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            child(request)
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            code = SETUP_FAILED
            try:  # stderr is the test's output log by now (or still the server's)
                traceback.print_exc()
                sys.stderr.flush()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(code)
    deadline = started + request["limits"]["wall_s"]
    status, rusage, timed_out = None, None, False
    while status is None:
        done, raw, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            status, rusage = raw, usage
            break
        if time.monotonic() > deadline:
            timed_out = True
            kill_group(pid)
            _, status, rusage = os.wait4(pid, 0)
            break
        time.sleep(POLL_S)
    wall = time.monotonic() - started
    kill_group(pid)
    leftovers = reap_orphans()
    answer = {"id": request["id"], "wall_s": round(wall, 3), "leftovers": leftovers,
              "cpu_s": round(rusage.ru_utime + rusage.ru_stime, 3) if rusage else None,
              "max_rss_mb": round(rusage.ru_maxrss / 1024, 1) if rusage else None}
    if timed_out:
        answer["status"] = "timeout"
    elif os.WIFSIGNALED(status):
        answer.update(status="signaled", signal=os.WTERMSIG(status))
    else:
        answer.update(status="exited", code=os.WEXITSTATUS(status))
    return answer


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap_orphans() -> int:
    """Kill and reap every remaining child: processes a test left behind that
    were reparented to this server (a subreaper). Returns how many."""
    killed = 0
    me = os.getpid()
    for _ in range(50):  # killing a parent may reparent its own children to us
        found = [pid for pid in _children(me)]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        for pid in found:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return killed


def _children(parent: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == parent:
            out.append(int(entry))
    return out


def child(request: dict) -> None:
    """Set up the confinement, then run the probe (runs in the forked child)."""
    import confine
    import probe

    os.setsid()
    outdir = request["outdir"]
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(os.path.join(outdir, "output.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, 65536)
    # Python ignores both; restored so that a broken pipe or a file (or output)
    # over the size limit ends the process instead of raising in the probe.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.update(request["env"])
    limits = request["limits"]
    confine.set_limits(confine.Limits(memory_mb=limits["memory_mb"], cpu_s=limits["cpu_s"],
                                      file_mb=limits["file_mb"], processes=limits.get("processes", 0)))
    if request.get("uid") is not None:
        confine.drop_privileges(request["uid"], request["gid"])
    if request["landlock"]:
        confine.landlock_restrict(request["read"], request["write"],
                                  {path: int(rights) for path, rights in request["devices"].items()})
    sys.path[:] = request["import_paths"] + [p for p in sys.path if p != _HERE]
    probe.run(request["kind"], request["job"], request["inputs"], outdir)


if __name__ == "__main__":
    sys.exit(main())
