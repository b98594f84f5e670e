"""Through a real terminal: tmux runs `facepair`, we send keys and read the screen with
`capture-pane`. Skips (saying why) where tmux is not installed (`apt-get install -y tmux`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.jobs import control as jobs
from core.project import projects
from core.system import procs

ROOT = Path(__file__).resolve().parent.parent
BRAILLE = re.compile("[\u2801-\u28ff]")

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install -y tmux); this test drives a real terminal")


class Tmux:
    """One private tmux server (its own socket), so the test never touches a user's sessions."""

    def __init__(self, tmp: Path):
        self.socket = str(tmp / "tmux.sock")

    def __call__(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["tmux", "-u", "-S", self.socket, *args], capture_output=True, text=True, timeout=30)
        if check and out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {out.stderr}")
        return out.stdout

    def start(self, name: str, command: str, env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={v!r}" for k, v in env.items())
        self("new-session", "-d", "-s", name, "-x", "100", "-y", "30", f"env {exports} {command}")

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-J", "-t", name, check=False)

    def keys(self, name: str, *keys: str) -> None:
        for k in keys:
            self("send-keys", "-t", name, k)
            time.sleep(0.3)

    def wait(self, name: str, condition, timeout: float = 30.0, what: str = "the screen") -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen(name)
            if condition(text):
                return text
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; the terminal shows:\n{text}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.kill()


def test_facepair_in_a_real_terminal(tmux, home, no_stray_jobs):
    projects.create_project(home, "pair", "Alice", "Bob", "Alice and Bob agreed in writing")
    env = {"FACEPAIR_HOME": str(home), "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", "TERM": "xterm-256color",
           "FACEPAIR_PICTURE": "halfcell"}
    app = f"{sys.executable} -m tui.cli.main"

    tmux.start("one", app, env)
    text = tmux.wait("one", lambda s: "Alice" in s and "faces A" in s, what="the projects table")
    assert "pair" in text and "Bob" in text

    tmux.keys("one", "Enter")
    tmux.wait("one", lambda s: "extraction:" in s, what="the project screen")
    tmux.keys("one", "s", "t")  # a self-test job, then the training screen
    text = tmux.wait("one", lambda s: "loss A" in s and len(BRAILLE.findall(s)) > 10, what="the loss chart")
    assert "selftest" in text and "running" in text

    tmux.keys("one", "q")
    tmux.wait("one", lambda s: "loss A" not in s, what="the app to quit")
    (job,) = jobs.all_jobs(home)
    assert jobs.load_job(job.dir).state == "running" and procs.is_alive(job.pid), "quitting stopped the job"

    tmux.start("two", app, env)  # another terminal, later
    tmux.wait("two", lambda s: "selftest" in s, what="the running job in the projects table")
    tmux.keys("two", "j")
    text = tmux.wait("two", lambda s: job.id in s, what="the job in the jobs screen")
    assert "running" in text
    tmux.keys("two", "Enter")
    tmux.wait("two", lambda s: "loss A" in s and len(BRAILLE.findall(s)) > 10, what="the job's chart")
    tmux.keys("two", "q")

