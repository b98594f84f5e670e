"""Which JAX CUDA build this machine's NVIDIA driver can run, for `make install`; and whether the
installed JAX then sees a GPU.

`nvidia-smi` prints the newest CUDA version its driver supports ("CUDA Version: 12.4"): 12.x runs
`jax[cuda12]`, 13.x and newer `jax[cuda13]`; older drivers, or no driver, get the CPU build. The
Makefile runs this file with the system Python before any virtualenv exists, so the choice needs
nothing but the standard library:

    python3 core/system/cuda.py            prints the extra to install (gpu12, gpu13, or nothing);
                                           why, as one line, on stderr
    python3 core/system/cuda.py --check    after installing a CUDA build: one line when JAX finds
                                           no usable GPU (facepair then trains on the CPU)

`$FACEPAIR_NVIDIA_SMI` names another `nvidia-smi` (tests use stand-ins).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

EXTRAS = {12: "gpu12", 13: "gpu13"}  # pyproject.toml's extras: jax[cuda12], jax[cuda13]
NEWEST = max(EXTRAS)
FIX = "check `nvidia-smi` (a driver for CUDA 12 or newer), then `make clean install`"


def driver_cuda(smi_output: str) -> tuple[int, int] | None:
    """(major, minor) of the 'CUDA Version: X.Y' in nvidia-smi's header, or None."""
    m = re.search(r"CUDA Version\s*:\s*(\d+)\.(\d+)", smi_output or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def choose(version: tuple[int, int] | None) -> tuple[str | None, str]:
    """(the extra to install or None for the CPU build, why in words)."""
    if version is None:
        return None, "no NVIDIA driver answered `nvidia-smi`: installing JAX's CPU build"
    major, minor = version
    if major < min(EXTRAS):
        return None, (f"the NVIDIA driver supports CUDA {major}.{minor}, and JAX's CUDA builds need 12 or newer: "
                      f"installing the CPU build (update the driver to train on the GPU)")
    extra = EXTRAS.get(major, EXTRAS[NEWEST])
    return extra, f"the NVIDIA driver supports CUDA {major}.{minor}: installing JAX's CUDA {min(major, NEWEST)} build"


def read_smi(exe: str | None = None) -> str:
    """nvidia-smi's output, or '' when it is missing or fails."""
    exe = exe or os.environ.get("FACEPAIR_NVIDIA_SMI") or "nvidia-smi"
    try:
        done = subprocess.run([exe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def gpu_problem() -> str | None:
    """None when the installed JAX sees a GPU; else one line saying why not and how to fix it."""
    try:
        import jax

        devices = jax.devices("gpu")
    except Exception as e:  # a missing plugin, an old driver, no visible device: all one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return f"JAX's CUDA build found no usable GPU ({first[:200]}): facepair will train on the CPU; {FIX}"
    if not devices:
        return f"JAX's CUDA build sees no GPU: facepair will train on the CPU; {FIX}"
    return None


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--check"]:
        problem = gpu_problem()
        if problem:
            print(problem, file=sys.stderr)
        return 0
    extra, why = choose(driver_cuda(read_smi()))
    print(why, file=sys.stderr)
    print(extra or "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
