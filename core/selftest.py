"""The `selftest` job kind: sleeps in small steps, writing progress and metrics events.

It exists to prove the job machinery (detach, SIGHUP, cancel, vanish) without a model or media,
and to give the TUI a cheap job to watch.
"""

from __future__ import annotations

import math
import time


def run(ctx, seconds: float = 5.0, steps: int = 20, fail: bool = False) -> dict:
    steps = max(1, int(steps))
    ctx.message(f"selftest: {steps} steps over {seconds:g} s")
    for i in range(1, steps + 1):
        deadline = time.monotonic() + seconds / steps
        while time.monotonic() < deadline:
            ctx.check_cancelled()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        loss = math.exp(-i / steps * 3)
        ctx.metrics(step=i, loss_a=loss, loss_b=loss * 1.1)
        ctx.progress(i, steps, stage="selftest", unit="steps")
    if fail:
        raise RuntimeError("selftest asked to fail")
    return {"steps": steps}
