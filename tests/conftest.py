"""Shared fixtures. Area fixtures live in tests/fixtures/<area>.py and are loaded here.

Expensive artefacts (an extracted project, a trained tiny model) are session-scoped so the whole
suite compiles and extracts once.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests run on the CPU (a GPU box runs them the same way); set before anything imports jax.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pytest_configure(config):
    """XLA:CPU's own convolutions, as a job or a benchmark runs with (core.jaxmodels.xla_cpu), set
    before any test module starts JAX's backend; subprocesses inherit it."""
    from core.jaxmodels import xla_cpu
    from core.train import devices

    xla_cpu.configure()
    # The session's compile cache (tests/fixtures/train.py) in this process too, not only in the jobs
    # it spawns: a program one worker compiled (a micro trainer, a plan) is read by the other.
    devices.enable_compile_cache()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (xdist/remote.py)
def pytest_collection_modifyitems(config, items):
    """With --dist loadgroup, the tests of a module that shares a module-scoped fixture (a conversion,
    the demo) run on one worker, so the fixture is built once, not once per worker."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        defs = [d for ds in (info.name2fixturedefs.values() if info else ()) for d in ds]
        if any(d.scope == "module" for d in defs):
            item.add_marker(pytest.mark.xdist_group(f"module:{item.module.__name__}"))


pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh projects home, also exported as FACEPAIR_HOME for subprocesses."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("FACEPAIR_HOME", str(h))
    return h


@pytest.fixture
def project(home):
    from core.project.projects import create_project

    return create_project(home, "pair", "Alice", "Bob", "Alice and Bob agreed in writing to this test.")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real photos and a real video); tests that need it skip when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"../shared/data is absent ({SHARED_DATA}); this test reads real media from it")
    return SHARED_DATA


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's public-domain astronaut portrait, RGB uint8 (512×512)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    """matplotlib's sample-data portrait of Grace Hopper, RGB uint8."""
    import matplotlib.cbook as cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB")).copy()


