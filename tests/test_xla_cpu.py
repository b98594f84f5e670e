"""core.jaxmodels.xla_cpu: the XLA:CPU flag is added only where it can take effect and is known, by
the job runner before a kind starts JAX, never by importing the models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.jaxmodels import xla_cpu


@pytest.fixture
def fresh(monkeypatch):
    """A jaxlib that knows the flag, a backend not started yet; the module's state restored after."""
    monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: "0.10.2")
    monkeypatch.setattr(xla_cpu, "_backends_started", lambda: False)
    monkeypatch.setattr(xla_cpu, "_state", {})


def test_the_flag_is_added_once_and_reported(fresh):
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert xla_cpu.configure(env) and xla_cpu.eigen_convs()
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4 " + xla_cpu.CONV_FLAG
    assert xla_cpu.configure(env)  # a child process inherits it: not added twice
    assert env["XLA_FLAGS"].count("ynn_fusion_type") == 1


@pytest.mark.parametrize("env, why", [
    ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=+eltwise"}, "the user's own setting"),
    ({"FACEPAIR_XLA_CPU": "default"}, "opted out"),
])
def test_the_users_choice_is_kept(fresh, env, why):
    before = dict(env)
    assert not xla_cpu.configure(env), why
    assert env == before and not xla_cpu.eigen_convs()


def test_nothing_is_set_for_an_unknown_jaxlib_or_a_started_backend(fresh, monkeypatch):
    monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: "0.11.0")  # the flag may not exist: abort
    env = {}
    assert not xla_cpu.configure(env) and env == {}
    monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: "0.10.2")
    monkeypatch.setattr(xla_cpu, "_backends_started", lambda: True)  # too late: XLA read its flags
    assert not xla_cpu.configure(env) and env == {}


ROOT = Path(__file__).resolve().parent.parent


def _fresh_python(code: str, *args: str, **env: str):
    """The last line `code` prints as JSON, run in a fresh interpreter without this process's XLA settings."""
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "FACEPAIR_XLA_CPU")}
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                         env=base | {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"} | env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize("flags", [None, "--xla_force_host_platform_device_count=2"])
def test_importing_the_models_changes_no_environment(flags):
    """No side effect at import: every module of core.jaxmodels imported, XLA_FLAGS as it was."""
    code = ("import os, pkgutil, importlib, json, core.jaxmodels as m\n"
            "for i in pkgutil.iter_modules(m.__path__): importlib.import_module('core.jaxmodels.' + i.name)\n"
            "print(json.dumps(os.environ.get('XLA_FLAGS')))")
    assert _fresh_python(code, **({"XLA_FLAGS": flags} if flags else {})) == flags


def probe_job(ctx) -> dict:
    """A job kind for the test below: starts JAX's backend and says what it runs with."""
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()
    return {"eigen": xla_cpu.eigen_convs(), "flags": os.environ.get("XLA_FLAGS", "")}


def test_a_job_runs_with_the_flag_set_before_jax_starts(tmp_path):
    """In a fresh interpreter, as a job's process starts: the runner sets the flag before the kind
    starts JAX, so JAX runs with it (where the jaxlib knows it)."""
    code = ("import json, sys\n"
            "from core.jobs import control as jobs, kinds\n"
            "from core.project.projects import create_project\n"
            "kinds.register('probe', 'tests.test_xla_cpu:probe_job')\n"
            "p = create_project(sys.argv[1], 'pair', 'A', 'B', 'both agreed in this test')\n"
            "job = jobs.run_inline(p, 'probe')\n"
            "print(json.dumps([job.state, job.reason, job.result]))")
    state, reason, result = _fresh_python(code, str(tmp_path / "home"))
    assert state == "succeeded", reason
    on = xla_cpu._jaxlib_version().startswith(xla_cpu.TESTED)
    assert result["eigen"] == on
    assert (xla_cpu.CONV_FLAG in result["flags"]) == on
