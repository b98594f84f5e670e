"""Make the worker processes of a job die with it, whatever kills the job (SIGKILL, the OOM killer).

Worker pools use multiprocessing's fork server: the job process starts the fork server, and the
fork server forks every worker. Without help, a SIGKILLed job leaves both behind: each worker
holds the fork server's "alive" pipe open (so the server never sees its client go) and waits on
its task queue forever, reparented to init.

This module is preloaded by the fork server (`FacePool` adds it to the preload list and sets
`OWNER_ENV` to its own pid while the fork server starts). Imported anywhere else (without
`OWNER_ENV`), it does nothing. On import, in the fork server:

- the fork server asks for SIGKILL when its parent (the job process) dies, and exits at once
  when that parent is already gone (`OWNER_ENV` names the pid it expects);
- every process it forks from then on (the workers) asks for SIGKILL when the fork server dies
  (an at-fork hook, before any other code runs in the child), and exits when the server is
  already gone.

So: job dies → fork server killed → workers killed, within milliseconds.
"""

from __future__ import annotations

import os
import signal

from core import procs

OWNER_ENV = "FACEPAIR_POOL_OWNER"

SERVER_PID = os.getpid()


def _guard_child() -> None:
    procs.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != SERVER_PID:  # the fork server died between the fork and the prctl
        os._exit(1)


def _guard_server(owner: str) -> None:
    procs.set_parent_death_signal(signal.SIGKILL)
    if owner.isdigit() and os.getppid() != int(owner):
        os._exit(1)  # the job died before the fork server got here
    os.register_at_fork(after_in_child=_guard_child)


if os.environ.get(OWNER_ENV):
    _guard_server(os.environ[OWNER_ENV])
