"""Grade a class on several sandboxes at once (``mann grade --jobs N``).

Each job is one Grader (its own sandbox, fork server and staging folder) in a
thread of the grading process: the work happens in the sandboxes' processes,
so threads are enough. Every submission is graded by exactly one job with the
same rubric and seed, so the results, returned in the submissions' order,
are those of a serial run. The caller's ``done`` runs for each result as it
arrives, one at a time, in the job's thread.

A stop (SIGTERM or Ctrl-C raised as Stopped in the main thread, or any
other exception there) closes every Grader at once, which kills the tests
running in them, and is raised again once the jobs have ended.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable

from mann.grading.grade import Grader, SubmissionResult
from mann.grading.submission import Submission

JOIN_S = 0.2  # the main thread wakes this often, so that a stop signal is handled at once


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def grade_class(submissions: list[Submission], open_grader: Callable[[], Grader], jobs: int,
                done: Callable[[Submission, SubmissionResult, Grader], SubmissionResult]) -> list[SubmissionResult]:
    """Grade ``submissions`` on ``jobs`` Graders made by ``open_grader``; the results
    ``done`` returned, in the submissions' order."""
    jobs = max(1, min(jobs, len(submissions)))
    if jobs == 1:
        with open_grader() as grader:
            return [done(s, grader.grade(s), grader) for s in submissions]
    results: list[SubmissionResult | None] = [None] * len(submissions)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(submissions)):
        todo.put(i)
    lock, stop = threading.Lock(), threading.Event()
    graders: list[Grader] = []
    errors: list[BaseException] = []

    def job() -> None:
        try:
            grader = open_grader()
            with lock:
                graders.append(grader)
            with grader:
                while not stop.is_set():
                    try:
                        i = todo.get_nowait()
                    except queue.Empty:
                        return
                    result = grader.grade(submissions[i])  # never raises for a submission's sake
                    with lock:
                        if stop.is_set():
                            return
                        results[i] = done(submissions[i], result, grader)
        except BaseException as err:  # noqa: BLE001 - e.g. a sandbox that cannot start: raised in the main thread
            stop.set()
            errors.append(err)

    threads = [threading.Thread(target=job, name=f"grading-job-{n}", daemon=True) for n in range(jobs)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(JOIN_S)
    except BaseException:
        stop.set()
        with lock:
            for grader in graders:
                grader.close()  # kills the running tests: their jobs see the stop and end
        for thread in threads:
            thread.join(30)
        raise
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]
