"""core.jaxmodels.xla_cpu: the XLA:CPU flag is added only where it can take effect and is known."""

from __future__ import annotations

import os
import subprocess
import sys

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


def test_importing_the_models_sets_it_before_jax_starts():
    """In a fresh interpreter, as `facepair train` starts: the flag is in effect, JAX runs with it."""
    code = ("import os, core.jaxmodels, jax.numpy as jnp; from core.jaxmodels import xla_cpu;"
            "jnp.zeros(1).block_until_ready(); print(xla_cpu.eigen_convs(), os.environ.get('XLA_FLAGS', ''))")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "FACEPAIR_XLA_CPU")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    on = xla_cpu._jaxlib_version().startswith(xla_cpu.TESTED)
    assert out.split()[0] == str(on)
    assert (xla_cpu.CONV_FLAG in out) == on
