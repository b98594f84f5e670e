"""`core` is a headless library: importing every module under it never imports Textual or `tui`, and
sets none of facepair's or JAX's environment variables (XLA_FLAGS is set where a job starts).

Checked in a fresh interpreter (this test process has Textual loaded already), over every module
found on disk, so a new core module is covered the day it lands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import importlib, json, os, pkgutil, sys
before = dict(os.environ)
import core
names = sorted(m.name for m in pkgutil.walk_packages(core.__path__, "core."))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as e:  # reported, not hidden: a module that cannot import is a failure too
        failed[name] = f"{type(e).__name__}: {e}"
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "tui", "textual_plot", "textual_image"))
# facepair's own settings and JAX's (libraries set others, such as TF_CPP_MIN_LOG_LEVEL, at their import)
env = sorted(k for k in set(before) | set(os.environ) if k.startswith(("XLA_", "JAX_", "FACEPAIR_"))
             and before.get(k) != os.environ.get(k))
print(json.dumps({"modules": names, "failed": failed, "ui": ui, "env": env}))
"""


def test_importing_every_core_module_never_imports_textual_or_tui():
    # Without this session's XLA_FLAGS (tests/conftest.py sets the flag a job would): an import that
    # added it would change nothing here.
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "core.jobs.control" in report["modules"] and "core.project.projects" in report["modules"]
    assert report["failed"] == {}, report["failed"]
    assert report["ui"] == [], f"core imported UI modules: {report['ui']}"
    assert report["env"] == [], f"importing core changed the environment: {report['env']}"


def test_the_probe_would_notice_a_ui_import(tmp_path):
    """The check is real: a module that imports textual is reported."""
    pkg = tmp_path / "core"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "leaky.py").write_text("import os, textual\nos.environ['XLA_FLAGS'] = '--an-import-side-effect'\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "textual" in report["ui"] and report["env"] == ["XLA_FLAGS"]
