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
# what torch and numpy read of /proc when the test cannot have a /proc of its own
PROC_FILES = ("/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/sys/kernel", "/proc/sys/vm")
# Third-party modules the assignment's code commonly imports (imageio alone takes ~0.5 s).
WARM_MODULES = ("numpy.random", "imageio.v2", "imageio", "PIL.Image", "torch.nn.functional", "torch.utils.data")


def main() -> int:
    settings = json.loads(sys.argv[1])
    sys.path.extend(settings["site"])
    import numpy  # noqa: F401 - loaded once here, shared by every forked test
    import torch

    import confine
    import probe  # noqa: F401
    import tree  # noqa: F401

    torch.set_num_threads(1)
    for name in WARM_MODULES:  # imported once here instead of once per test
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional; a submission that needs one gets the error itself
            pass
    subreaper = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    reply({"ready": True, "torch": torch.__version__, "landlock": confine.landlock_abi(),
           "subreaper": subreaper, "pid": os.getpid(), "test_namespaces": test_namespaces_work()})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        reply(run_test(request))
    return 0


def test_namespaces_work() -> bool:
    """Whether a test can have a PID namespace of its own here (tried in a child)."""
    import confine

    pid = os.fork()
    if pid == 0:
        os._exit(0 if confine.enter_test_namespace() else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def run_test(request: dict) -> dict:
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        os._exit(test_leader(request, report_w))
    os.close(report_w)
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
    report = read_report(report_r)
    leftovers = reap_orphans() + int(report.get("leftovers", 0))
    if "status" in report:  # the test's own process, run as PID 1's child in its namespace
        status = report["status"]
    answer = {"id": request["id"], "wall_s": round(wall, 3), "leftovers": leftovers,
              "namespace": bool(report.get("namespace")),
              "cpu_s": round(rusage.ru_utime + rusage.ru_stime, 3) if rusage else None,
              "max_rss_mb": round(rusage.ru_maxrss / 1024, 1) if rusage else None}
    if timed_out:
        answer["status"] = "timeout"
    elif os.WIFSIGNALED(status):
        answer.update(status="signaled", signal=os.WTERMSIG(status))
    else:
        answer.update(status="exited", code=os.WEXITSTATUS(status))
    return answer


def read_report(fd: int) -> dict:
    """What the test's PID 1 wrote (at most a line), {} when it wrote nothing."""
    try:
        data = os.read(fd, 4096)
    except OSError:
        data = b""
    finally:
        os.close(fd)
    try:
        report = json.loads(data.decode()) if data else {}
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def test_leader(request: dict, report_w: int) -> int:
    """The forked child that owns one test: a new session, then, where the kernel
    allows, a PID namespace whose first process runs the test in a child and
    reports its wait status (the submission's code never holds ``report_w``)."""
    import confine

    try:
        os.setsid()
        if not (request.get("test_namespace") and confine.enter_test_namespace()):
            os.close(report_w)
            return run_confined(request, private_proc=False)
        init = os.fork()
        if init == 0:
            os._exit(namespace_init(request, report_w))
        os.close(report_w)
        while True:
            try:
                _, status = os.waitpid(init, 0)
                break
            except ChildProcessError:
                return SETUP_FAILED
        return os.WEXITSTATUS(status) if os.WIFEXITED(status) else SETUP_FAILED
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        traceback.print_exc()
        return SETUP_FAILED


def namespace_init(request: dict, report_w: int) -> int:
    """PID 1 of the test's namespace: mount its /proc, run the test as its child,
    reap every process reparented to it, and report the test's status with the
    number of processes still alive when it ended. When this returns, the kernel
    kills whatever is left in the namespace."""
    import confine

    confine.die_with_parent()
    private_proc = confine.mount_private_proc()
    test = os.fork()
    if test == 0:
        os.close(report_w)
        os._exit(run_confined(request, private_proc))
    status = None
    while status is None:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        if pid == test:
            status = raw
    alive = [e for e in os.listdir("/proc") if e.isdigit() and e != "1"] if private_proc else []
    report = {"status": status if status is not None else 0, "leftovers": len(alive), "namespace": True}
    os.write(report_w, json.dumps(report).encode())
    os.close(report_w)
    return 0


def run_confined(request: dict, private_proc: bool) -> int:
    """Confine this process, then run the probe; returns the exit status."""
    try:
        child(request, private_proc)
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        try:  # stderr is the test's output log by now (or still the server's)
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        return SETUP_FAILED
    return 0


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap_orphans() -> int:
    """Kill and reap every remaining process below this server (a child
    subreaper, so escaped processes are reparented to it). Returns how many."""
    import tree

    me = os.getpid()
    killed = tree.stop_and_kill(me)
    end = time.monotonic() + 5
    while killed:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if not tree.descendants(me) or time.monotonic() > end:
                break
            time.sleep(POLL_S)  # killed processes not yet reparented to us
    return len(killed)


def child(request: dict, private_proc: bool = False) -> None:
    """Set up the confinement, then run the probe (runs in the test's process)."""
    import confine
    import probe

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
    confine.drop_capabilities()
    confine.install_syscall_filter(unix_sockets=request.get("unix_sockets", True))
    if request["landlock"]:
        # a /proc of its own shows only this test's processes; otherwise only its own entry
        proc = ["/proc"] if private_proc else [f"/proc/{os.getpid()}", *PROC_FILES]
        confine.landlock_restrict(request["read"] + proc, request["write"],
                                  {path: int(rights) for path, rights in request["devices"].items()})
    sys.path[:] = request["import_paths"] + [p for p in sys.path if p != _HERE]
    probe.run(request["kind"], request["job"], request["inputs"], outdir)


if __name__ == "__main__":
    sys.exit(main())
