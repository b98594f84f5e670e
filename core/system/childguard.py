"""Make the worker processes of a job die with it, whatever kills the job (SIGKILL, the OOM killer).

Worker pools use multiprocessing's fork server: the job process starts the fork server, and the
fork server forks every worker. The fork server exits when the pipe end its clients hold (the
"alive" fd) closes in every one of them, but each worker gets a copy of that fd too, so
without help a SIGKILLed job leaves the fork server and every worker behind, the workers waiting
on their task queue forever, reparented to init.

This module is preloaded by the fork server (`FacePool` adds it to the preload list and sets
`OWNER_ENV` to its own pid while the fork server starts); imported anywhere else (outside the
fork server's preload) it does nothing. In the fork server it registers an at-fork hook, so that every
process the server forks (the workers) asks Linux, before any other code runs in it, for SIGKILL
when the fork server dies. Each worker then calls `worker_started()` first thing: it closes its
copy of the alive fd and exits if the job is already gone. So: job dies → the fork server sees
its alive pipe close and exits → every worker is killed, within milliseconds.

(The fork server itself asks for no parent-death signal: Linux sends that when the *thread*
that forked a process ends, and a pool may be started from a short-lived thread.)
"""

from __future__ import annotations

import os
import signal
import sys

from core.system import procs

OWNER_ENV = "FACEPAIR_POOL_OWNER"

SERVER_PID = os.getpid()


def _guard_child() -> None:
    procs.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != SERVER_PID:  # the fork server died between the fork and the prctl
        os._exit(1)


def worker_started() -> None:
    """In a pool worker: drop the fork server's alive fd (only the job may keep the fork server
    up), then leave at once if the job has already died."""
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
        fd = getattr(server, "_forkserver_alive_fd", None)
        if fd is not None:
            server._forkserver_alive_fd = None
            os.close(fd)
    except (ImportError, AttributeError, OSError):  # pragma: no cover - another multiprocessing
        pass
    owner = os.environ.get(OWNER_ENV, "")
    if owner.isdigit() and not procs.is_alive(int(owner)):
        os._exit(1)


def _in_fork_server() -> bool:
    """Is this import the fork server's preload (inside multiprocessing.forkserver.main)?"""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "main" and frame.f_globals.get("__name__") == "multiprocessing.forkserver":
            return True
        frame = frame.f_back
    return False


if os.environ.get(OWNER_ENV) and _in_fork_server():
    os.register_at_fork(after_in_child=_guard_child)
    # `facepair job cancel` sends SIGTERM to the job's whole process group. The job stops
    # cooperatively (it may save) and shuts its pool down; a fork server or worker that died of
    # that SIGTERM would break the pool under it and turn a cancel into a failure. So they
    # ignore SIGTERM and SIGINT (the workers inherit this) and go with the job as above, or
    # with the SIGKILL that follows the grace period.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
