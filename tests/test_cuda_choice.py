"""The CUDA build `make install` picks from the NVIDIA driver (core/system/cuda.py), with stand-in
`nvidia-smi` outputs, through the Makefile itself; and the one line when JAX finds no usable GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.system import cuda

ROOT = Path(__file__).resolve().parents[1]

HEADER = """Wed Dec  2 06:00:00 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 570.86.10              Driver Version: 570.86.10      CUDA Version: {v}     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
|   0  NVIDIA H200                    On  |   00000000:19:00.0 Off |                    0 |
+-----------------------------------------+------------------------+----------------------+
"""


@pytest.mark.parametrize("version,extra", [("12.4", "gpu12"), ("12.0", "gpu12"), ("13.0", "gpu13"),
                                           ("13.1", "gpu13"), ("14.2", "gpu13"), ("11.8", None)])
def test_the_driver_s_cuda_version_picks_the_build(version, extra):
    parsed = cuda.driver_cuda(HEADER.format(v=version))
    assert parsed == tuple(int(x) for x in version.split("."))
    chosen, why = cuda.choose(parsed)
    assert chosen == extra
    assert version in why and ("CPU build" in why) == (extra is None)


@pytest.mark.parametrize("output", ["", "NVIDIA-SMI has failed because it couldn't communicate with the driver",
                                    "GPU 0: NVIDIA H200 (UUID: GPU-1234)"])
def test_no_driver_or_no_version_installs_the_cpu_build(output):
    assert cuda.driver_cuda(output) is None
    chosen, why = cuda.choose(None)
    assert chosen is None and "CPU build" in why


def _stand_in(tmp_path: Path, output: str, code: int = 0) -> Path:
    exe = tmp_path / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {code}\n")
    exe.chmod(0o755)
    return exe


@pytest.mark.parametrize("output,code,extras", [(HEADER.format(v="12.6"), 0, "dev,export,gpu12"),
                                                (HEADER.format(v="13.0"), 0, "dev,export,gpu13"),
                                                (HEADER.format(v="11.4"), 0, "dev,export"),
                                                ("", 9, "dev,export")])
def test_the_makefile_installs_the_chosen_extra(tmp_path, output, code, extras):
    """`make -n install` in a copy of the Makefile's view of the tree, with a stand-in nvidia-smi first
    on PATH: the pip line names the extra the driver can run."""
    _stand_in(tmp_path, output, code)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    env.pop("FACEPAIR_NVIDIA_SMI", None)
    venv = tmp_path / "venv"  # a venv path that does not exist: -n prints what it would do
    done = subprocess.run(["make", "-n", "install", f"VENV={venv}", f"PYTHON={sys.executable}"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f'install --quiet -e ".[{extras}]"' in done.stdout
    assert ("cuda.py --check" in done.stdout) == ("gpu" in extras)


def test_the_script_prints_the_extra_and_says_why(tmp_path):
    exe = _stand_in(tmp_path, HEADER.format(v="12.2"))
    done = subprocess.run([sys.executable, str(ROOT / "core/system/cuda.py")], capture_output=True, text=True,
                          env={**os.environ, "FACEPAIR_NVIDIA_SMI": str(exe)}, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "gpu12"
    assert done.stderr.strip() == "the NVIDIA driver supports CUDA 12.2: installing JAX's CUDA 12 build"


def test_a_jax_without_a_usable_gpu_is_one_line_not_a_traceback():
    """This machine's JAX is the CPU build: what a CUDA build without a usable device says."""
    pytest.importorskip("jax")
    import jax

    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("this machine has a usable GPU")
    problem = cuda.gpu_problem()
    assert problem is not None and "\n" not in problem and "Traceback" not in problem
    assert "train on the CPU" in problem and "make clean install" in problem
    done = subprocess.run([sys.executable, str(ROOT / "core/system/cuda.py"), "--check"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stderr.count("\n") == 1 and "train on the CPU" in done.stderr
