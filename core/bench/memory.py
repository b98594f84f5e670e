"""The memory of a process and its descendants, sampled while it runs (for `facepair bench scale`).

A job is several processes: the runner, its fork server and worker processes, an ffmpeg it pipes
to. `TreeSampler(pid)` polls them all from a thread: each sample sums the resident set (RSS) of
every live process of the tree, and their proportional set (PSS: pages shared between the
processes, such as the dlib models the workers inherit from the fork server, counted once across
them, so the PSS sum is what the tree costs the machine; RSS summed counts shared pages once per
process). The peak of each sum, of the root alone, and the samples over time are kept, so a
reader can tell memory that grows with the input (it climbs through the run) from a fixed cost.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil


@dataclass
class Sample:
    t: float  # seconds since the sampler started
    rss: int  # bytes, summed over the tree
    pss: int | None  # bytes, summed over the tree (None where the system does not report it)
    root_rss: int
    processes: int


@dataclass
class TreeSampler:
    """Samples the tree under `pid` every `interval` seconds from `start()` until `stop()`."""

    pid: int
    interval: float = 0.25
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self):
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._procs: dict[int, psutil.Process] = {}

    def start(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, name=f"rss:{self.pid}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> TreeSampler:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self

    def _tree(self) -> list[psutil.Process]:
        """The root and its live descendants (Process objects kept, so a pid reused is not mistaken)."""
        try:
            root = self._procs.setdefault(self.pid, psutil.Process(self.pid))
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        out = []
        for p in found:
            out.append(self._procs.setdefault(p.pid, p))
        return out

    def sample(self) -> Sample | None:
        rss = pss = root_rss = 0
        have_pss = True
        tree = self._tree()
        for p in tree:
            try:
                if have_pss:
                    try:
                        info = p.memory_full_info()
                        pss += int(getattr(info, "pss", 0))
                        have_pss = hasattr(info, "pss")
                    except psutil.AccessDenied:
                        info, have_pss = p.memory_info(), False
                else:
                    info = p.memory_info()
            except psutil.Error:  # ended between the listing and the read
                continue
            rss += int(info.rss)
            if p.pid == self.pid:
                root_rss = int(info.rss)
        if not tree:
            return None
        s = Sample(time.monotonic() - self._t0, rss, pss if have_pss else None, root_rss, len(tree))
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def summary(self) -> dict:
        """Peaks (MiB), and the tree's RSS in the second and the last quarter of the run (medians; the
        first holds the start, models loading), so memory that climbs with the input shows as a late
        figure above the early one."""
        s = self.samples
        if not s:
            return {"samples": 0}
        mib = 2**20

        def median(xs: list[int]) -> float:
            xs = sorted(xs)
            return round(xs[len(xs) // 2] / mib, 1) if xs else None

        quarter = max(1, len(s) // 4)
        pss = [x.pss for x in s if x.pss is not None]
        return {
            "samples": len(s),
            "peak_rss_mib": round(max(x.rss for x in s) / mib, 1),
            "peak_pss_mib": round(max(pss) / mib, 1) if pss else None,
            "peak_root_rss_mib": round(max(x.root_rss for x in s) / mib, 1),
            "processes": max(x.processes for x in s),
            "rss_second_quarter_mib": median([x.rss for x in s[quarter:2 * quarter]]),
            "rss_last_quarter_mib": median([x.rss for x in s[-quarter:]]),
        }
