"""The `selftest` job kind: sleeps in small steps, writing progress and metrics events.

It exists to prove the job machinery (detach, SIGHUP, cancel, vanish, locks) without a model or
media, and to give the TUI a cheap job to watch. Options for tests: `fail` (raise at the end: a
traceback in log.txt), `ignore_term` (ignore SIGTERM: only SIGKILL stops it), `model_lock` (the
job takes the project's model lock, as training does; see `SPEC.model_lock_option`),
`leave_child` (start a `sleep` and return without waiting for it: the runner must reap it).
"""

from __future__ import annotations

import math
import signal
import time

from core.jobs.spec import KindSpec, Option

SPEC = KindSpec(
    kind="selftest",
    model_lock_option="model_lock",
    options=(
        Option("seconds", float, 5.0, min=0),
        Option("steps", int, 20),
        Option("fail", bool, False, flag=None),
        Option("ignore_term", bool, False, flag=None),
        Option("model_lock", bool, False, flag=None),
        Option("leave_child", bool, False, flag=None),
    ),
)


def run(ctx, seconds: float = 5.0, steps: int = 20, fail: bool = False, ignore_term: bool = False,
        model_lock: bool = False, leave_child: bool = False) -> dict:
    steps = max(1, int(steps))
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.message(f"selftest: {steps} steps over {seconds:g} s" + (" (ignoring SIGTERM)" if ignore_term else ""))
    for i in range(1, steps + 1):
        deadline = time.monotonic() + seconds / steps
        while time.monotonic() < deadline:
            ctx.check_cancelled()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        loss = math.exp(-i / steps * 3)
        ctx.metrics(step=i, loss_a=loss, loss_b=loss * 1.1)
        ctx.progress(i, steps, stage="selftest", unit="steps")
    result = {"steps": steps}
    if leave_child:
        import subprocess

        result["child"] = subprocess.Popen(["sleep", "300"]).pid
    if fail:
        raise RuntimeError("selftest asked to fail")
    return result
