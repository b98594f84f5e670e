"""`core` is a headless library: importing every module under it never imports Textual or `tui`.

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
import importlib, json, pkgutil, sys
import core
names = sorted(m.name for m in pkgutil.walk_packages(core.__path__, "core."))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as e:  # reported, not hidden: a module that cannot import is a failure too
        failed[name] = f"{type(e).__name__}: {e}"
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "tui", "textual_plot", "textual_image"))
print(json.dumps({"modules": names, "failed": failed, "ui": ui}))
"""


def test_importing_every_core_module_never_imports_textual_or_tui():
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "core.jobs.control" in report["modules"] and "core.project.projects" in report["modules"]
    assert report["failed"] == {}, report["failed"]
    assert report["ui"] == [], f"core imported UI modules: {report['ui']}"


def test_the_probe_would_notice_a_ui_import(tmp_path):
    """The check is real: a module that imports textual is reported."""
    pkg = tmp_path / "core"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "leaky.py").write_text("import textual\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "textual" in report["ui"]
