"""Jobs under hard endings: SIGKILL leaves no worker behind, cancel escalates, Ctrl-C cancels,
`job log -f` sees the last lines, starts are exclusive; and the CLI's job commands keep their word
(ids never cut, an empty id is refused, `delete` refuses while jobs run, `jobs --all`)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import LockHeld
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.media import write as video_out
from core.system import procs
from tests.waiting import wait_for

FACEPAIR = [sys.executable, "-m", "tui.cli.main"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def running_job(job, timeout=60.0):
    return wait_for(lambda: (j := jobs.load_job(job.dir)).state == "running" and j, timeout, what="job running")


def cli(*args, timeout=60, env=None, **kw):
    return subprocess.run([*FACEPAIR, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=os.environ | {"PYTHONPATH": ROOT} | (env or {}), **kw)


def stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def workers_of(job_pid: int) -> list[int]:
    """Processes in the job's process group that the job did not start itself: the pool's workers
    (children of the multiprocessing fork server)."""
    out = []
    for pid in procs.group_members(job_pid):
        f = stat_fields(pid)
        if f and pid != job_pid and int(f[1]) != job_pid:
            out.append(pid)
    return out


# ---- SIGKILL / OOM: nothing of the job survives it -------------------------------------------------

def test_sigkilled_extract_leaves_no_worker_behind(project, tmp_path):
    from core.media import synth
    from core.project.projects import add_sources

    clip = synth.portrait_clip("astronaut", tmp_path / "long.mp4", frames=160, seed=3)
    add_sources(project, "a", [clip])
    job = jobs.start_job(project, "extract", {"side": "a", "size": 64, "workers": 2, "pool_min_frames": 1})
    job = running_job(job)
    # The fork server and both workers are up (and busy) before the job is killed.
    workers = wait_for(lambda: len(w := workers_of(job.pid)) >= 2 and w, timeout=120, every=0.1,
                       what="two extraction workers")
    group_before = procs.group_members(job.pid)
    assert len(group_before) >= 4  # the job, the fork server, 2 workers (and the resource tracker)
    os.kill(job.pid, signal.SIGKILL)  # what `kill -9` or the OOM killer does

    # Within a bounded time nothing of it is left: not the workers, not the fork server, not
    # anything else in its process group.
    wait_for(lambda: not procs.group_members(job.pid), timeout=30, every=0.1,
             what=f"every process of the killed job gone (left: {procs.group_members(job.pid)})")
    assert not any(procs.is_alive(p) for p in workers + group_before)
    final = jobs.load_job(job.dir)
    assert (final.state, final.reason) == ("failed", jobs.VANISHED)


def test_cancel_of_an_extract_with_workers_is_a_clean_cancel(project, tmp_path):
    """`job cancel` signals the whole group: the workers must not die of that SIGTERM under the
    job (a broken pool made the cancel a 'failed: BrokenProcessPool'); they go when it ends."""
    from core.media import synth
    from core.project.projects import add_sources

    clip = synth.portrait_clip("astronaut", tmp_path / "long.mp4", frames=200, seed=4)
    add_sources(project, "a", [clip])
    job = running_job(jobs.start_job(project, "extract", {"side": "a", "size": 64, "workers": 2,
                                                          "pool_min_frames": 1}))
    wait_for(lambda: len(workers_of(job.pid)) >= 2, timeout=120, every=0.1, what="two extraction workers")
    time.sleep(0.5)  # the workers are on their first segments: the job waits on them
    final = jobs.cancel_job(job, grace=60)
    assert (final.state, final.reason) == ("cancelled", "cancelled on request")
    wait_for(lambda: not procs.group_members(job.pid), timeout=30, what="the job's processes gone")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


@pytest.mark.slow
def test_sigkilled_convert_leaves_no_worker_nor_ffmpeg_and_the_next_job_removes_its_partial(
        trained_project, tmp_path):
    import shutil

    from core.media import synth
    from core.project.projects import load_project

    home = tmp_path / "conv_home"
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    p = load_project(home, trained_project.name)
    # A clip the project never extracted: its faces are found on the fly, by 2 workers.
    clip = synth.portrait_clip("astronaut", tmp_path / "fresh.mp4", frames=240, seed=5)
    out = p.output_dir / "fresh_a-to-b.mp4"
    job = running_job(jobs.start_job(p, "convert", {"input": str(clip), "output": str(out), "workers": 2,
                                                    "faces": "all"}))

    def busy():
        members = procs.group_members(job.pid)
        return (len(workers_of(job.pid)) >= 2 and any("ffmpeg" in _cmdline(m) for m in members)
                and video_out.partial_path(out, job.pid).exists() and members)

    members = wait_for(busy, timeout=240, every=0.1, what="two workers and the ffmpeg writer at work")
    os.kill(job.pid, signal.SIGKILL)
    wait_for(lambda: not procs.group_members(job.pid), timeout=30, every=0.1,
             what=f"every process of the killed conversion gone (left: {procs.group_members(job.pid)})")
    assert not any(procs.is_alive(m) for m in members)
    assert jobs.load_job(job.dir).reason == jobs.VANISHED
    partial = video_out.partial_path(out, job.pid)
    assert partial.exists() and not out.exists()  # what the killed run left: never a finished-looking file
    nxt = jobs.wait(jobs.start_job(p, "selftest", {"seconds": 0.1, "steps": 1}), timeout=60)
    assert nxt.state == "succeeded", nxt.reason
    assert not partial.exists()


def test_runner_reaps_what_its_job_left_running(project):
    job = jobs.wait(jobs.start_job(project, "selftest", {"seconds": 0.1, "steps": 1, "leave_child": True}),
                    timeout=60)
    assert job.state == "succeeded", job.reason
    child = job.result["child"]
    wait_for(lambda: not procs.is_alive(child), timeout=30, what=f"the job's leftover child {child} gone")
    wait_for(lambda: not procs.group_members(job.pid), timeout=30, what="the job's process group empty")


def test_forkserver_pool_dies_with_a_sigkilled_owner(tmp_path):
    """The same guarantee for any process that owns a FacePool (not only a job runner)."""
    code = (
        "import sys, time\n"
        "from core.extract.finder import FacePool\n"
        "pool = FacePool(2)\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env=os.environ | {"PYTHONPATH": ROOT}, start_new_session=True)
    try:
        assert owner.stdout.readline().strip() == "ready"
        wait_for(lambda: len(workers_of(owner.pid)) >= 2, timeout=120, every=0.1, what="two pool workers")
        members = procs.group_members(owner.pid)
        owner.kill()
        owner.wait(timeout=10)
        wait_for(lambda: not procs.group_members(owner.pid), timeout=30, every=0.1,
                 what=f"the pool gone with its owner (left: {procs.group_members(owner.pid)})")
        assert not any(procs.is_alive(p) for p in members)
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in procs.group_members(owner.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_pool_started_by_a_thread_that_ended_keeps_working():
    """The guard must not tie the pool to the thread that started it (Linux's parent-death
    signal follows the forking thread): conversion starts its pool in a pipeline thread."""
    code = (
        "import threading\n"
        "from core.extract import finder as extract\n"
        "if __name__ == '__main__':\n"
        "    box = []\n"
        "    t = threading.Thread(target=lambda: box.append(extract.FacePool(2)))\n"
        "    t.start(); t.join()\n"
        "    futures = [box[0].submit(([], extract.FindOptions(), 0, 0, 0)) for _ in range(4)]\n"
        "    print([f.result(timeout=120) for f in futures])\n"
        "    box[0].close()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env=os.environ | {"PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[[], [], [], []]"


def test_next_job_removes_partial_outputs_of_killed_jobs_only(project, tmp_path):
    job = running_job(jobs.start_job(project, "selftest", {"seconds": 120, "steps": 1200}))
    os.kill(job.pid, signal.SIGKILL)
    wait_for(lambda: not procs.is_alive(job.pid), what="the job dead")
    # A killed conversion leaves `.NAME.partial-PID.mp4` beside its output; the next job of the
    # project removes it, and never a live process's partial (another job still writing).
    project.output_dir.mkdir(parents=True, exist_ok=True)
    dead_partial = video_out.partial_path(project.output_dir / "clip_a-to-b.mp4", pid=job.pid)
    dead_partial.write_bytes(b"\0" * 1000)
    dead_folder = project.output_dir / f".frames_a-to-b.partial-{job.pid}"  # a still sequence's
    dead_folder.mkdir()
    (dead_folder / "000001.png").write_bytes(b"x")
    elsewhere = tmp_path / "elsewhere"  # an --output outside the project
    elsewhere.mkdir()
    dead_elsewhere = video_out.partial_path(elsewhere / "mine.mp4", pid=job.pid)
    dead_elsewhere.write_bytes(b"x")
    (job.dir / "job.json").write_text(json.dumps(json.loads((job.dir / "job.json").read_text())
                                                 | {"args": {"output": str(elsewhere / "mine.mp4")}}))
    live = subprocess.Popen(["sleep", "120"])
    try:
        live_partial = video_out.partial_path(project.output_dir / "other_a-to-b.mp4", pid=live.pid)
        live_partial.write_bytes(b"x")
        nxt = jobs.wait(jobs.start_job(project, "selftest", {"seconds": 0.1, "steps": 1}), timeout=60)
        assert nxt.state == "succeeded", nxt.reason
        assert not dead_partial.exists() and not dead_folder.exists() and not dead_elsewhere.exists()
        assert live_partial.exists()
        texts = [e.get("text", "") for e in read_events(nxt.events_path)]
        assert any("partial output" in t and "killed jobs" in t for t in texts)
    finally:
        live.kill()
        live.wait()


# ---- cancel, Ctrl-C, logs ------------------------------------------------------------------------

def test_cancel_escalates_to_sigkill_after_the_grace_period(project):
    job = running_job(jobs.start_job(project, "selftest", {"seconds": 120, "steps": 1200, "ignore_term": True}))
    # The job has installed its SIG_IGN once it says so.
    wait_for(lambda: any("ignoring SIGTERM" in e.get("text", "") for e in read_events(job.events_path)),
             what="selftest ignoring SIGTERM")
    t0 = time.monotonic()
    r = cli("job", "cancel", job.id, "--grace", "1.5")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "killed after a 1.5 s grace period" in r.stdout
    assert took >= 1.5
    final = jobs.load_job(job.dir)
    assert final.state == "cancelled"
    assert final.reason == "killed after a 1.5 s grace period"
    assert not procs.is_alive(job.pid)
    shown = cli("job", "show", job.id, "--json")
    assert json.loads(shown.stdout)["reason"] == "killed after a 1.5 s grace period"


def test_ctrl_c_while_following_cancels_the_job(project, home):
    follower = subprocess.Popen(
        [*FACEPAIR, "selftest", "pair", "--seconds", "120", "--steps", "1200"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env=os.environ | {"PYTHONPATH": ROOT}, start_new_session=True,
        # A background test run may ignore SIGINT; a terminal's foreground command does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        job = wait_for(lambda: next((j for j in jobs.all_jobs(home) if j.state == "running"), None), timeout=60,
                       what="the followed job running")
        # The follower is following (its first event printed) before Ctrl-C.
        wait_for(lambda: any(e["type"] == "metrics" for e in read_events(job.events_path)), what="first metrics")
        os.kill(follower.pid, signal.SIGINT)  # Ctrl-C in the terminal that follows the job
        out, _ = follower.communicate(timeout=60)
        assert follower.returncode == 130, out
        assert "cancelling" in out
        final = jobs.wait(job, timeout=30)
        assert final.state == "cancelled"
        assert final.reason == "cancelled on request"  # it stopped on SIGTERM, in time
    finally:
        if follower.poll() is None:
            follower.kill()
        for j in jobs.all_jobs(home):
            if j.active:
                jobs.cancel_job(j, grace=2)


def test_cancel_right_after_start_is_a_request_the_job_sees(project):
    """A cancel that comes the moment a job says "running" stops it cleanly (SIGTERM handled,
    'cancel requested' recorded), not by SIGTERM's default death."""
    for _round in range(5):
        job = jobs.start_job(project, "selftest", {"seconds": 120, "steps": 1200})
        wait_for(lambda j=job: jobs.load_job(j.dir).state == "running", every=0.002, what="job running")
        final = jobs.cancel_job(job, grace=30)
        assert (final.state, final.reason) == ("cancelled", "cancelled on request")
        texts = [e.get("text", "") for e in read_events(final.events_path)]
        assert any("cancel requested (SIGTERM)" in t for t in texts)


def _log_args(job_id: str) -> argparse.Namespace:
    return argparse.Namespace(job_id=job_id, follow=True, home=None)


def test_job_log_follow_prints_the_final_traceback(project, home, monkeypatch, capsys):
    from tui.cli.commands import jobs as job_commands

    # End to end: `facepair job log -f` started while the job runs prints its traceback.
    job = running_job(jobs.start_job(project, "selftest", {"seconds": 2, "steps": 4, "fail": True}))
    r = cli("job", "log", job.id, "-f")
    assert r.returncode == 0, r.stderr
    assert "Traceback (most recent call last)" in r.stdout
    assert "RuntimeError: selftest asked to fail" in r.stdout
    assert "-- job failed --" in r.stdout

    # The race, made certain: the job writes its traceback and ends between the follower's read
    # of the log and its look at the job's state. The follower must still print it.
    job = running_job(jobs.start_job(project, "selftest", {"seconds": 2, "steps": 4, "fail": True}))
    real_load = jobs.load_job

    def load_after_the_end(job_dir, check=True):
        wait_for(lambda: not real_load(job_dir).active, timeout=60, what="job ended")
        return real_load(job_dir, check)

    monkeypatch.setattr(jobs, "find_job", lambda home, job_id: job)
    monkeypatch.setattr(jobs, "load_job", load_after_the_end)
    assert job_commands.cmd_job_log(_log_args(job.id)) == 0
    out = capsys.readouterr().out
    assert "RuntimeError: selftest asked to fail" in out
    assert out.rstrip().endswith("-- job failed --")


# ---- starting ------------------------------------------------------------------------------------

def test_two_concurrent_model_writer_starts_exactly_one_succeeds(project):
    """Of two starts racing for the model lock, one starts and the other is refused as busy
    before it reports anything; the winner runs to the end (never 'started', then failed)."""
    args = {"seconds": 0.3, "steps": 2, "model_lock": True}

    def start(barrier: threading.Barrier, outcomes: list, i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = jobs.start_job(project, "selftest", args)
        except LockHeld as e:
            outcomes[i] = e

    for _round in range(12):
        barrier = threading.Barrier(2)
        outcomes: list = [None, None]
        threads = [threading.Thread(target=start, args=(barrier, outcomes, i)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        started = [o for o in outcomes if isinstance(o, jobs.Job)]
        refused = [o for o in outcomes if isinstance(o, LockHeld)]
        assert len(started) == 1 and len(refused) == 1, outcomes
        assert "is busy: model lock held by job " + started[0].id in str(refused[0])
        done = jobs.wait(started[0], timeout=60)
        assert done.state == "succeeded", done.reason
    assert not (project.runs_dir / ".model.lock").exists()


def test_two_concurrent_model_writer_starts_from_two_processes(project, tmp_path):
    """The same across processes (two terminals), through the CLI's own error path."""
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from core.jobs import control as jobs\n"
        "from core.errors import LockHeld\n"
        "from core.project.projects import load_project\n"
        "p = load_project(Path(sys.argv[1]), 'pair')\n"
        "while not os.path.exists(sys.argv[2]): time.sleep(0.005)\n"
        "try:\n"
        "    print('started', jobs.start_job(p, 'selftest', {'seconds': 0.3, 'steps': 2, 'model_lock': True}).id)\n"
        "except LockHeld as e:\n"
        "    print('busy', e)\n"
    )
    for _round in range(4):
        go.unlink(missing_ok=True)
        procs_ = [subprocess.Popen([sys.executable, "-c", code, str(project.home), str(go)], stdout=subprocess.PIPE,
                                   text=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": ROOT}) for _ in range(2)]
        time.sleep(1.0)  # both are past their imports and spinning on the go file
        go.touch()
        outs = [p.communicate(timeout=120)[0].strip() for p in procs_]
        assert sorted(o.split()[0] for o in outs) == ["busy", "started"], outs
        winner = next(o.split()[1] for o in outs if o.startswith("started"))
        assert f"held by job {winner}" in next(o for o in outs if o.startswith("busy"))
        done = jobs.wait(jobs.find_job(project.home, winner), timeout=60)
        assert done.state == "succeeded", done.reason


@pytest.mark.slow
def test_two_train_detach_at_once_one_starts_the_other_is_busy(extracted_project_copy):
    p = extracted_project_copy
    cmd = [*FACEPAIR, "train", p.name, "--detach", "--preset", "tiny", "--batch", "4", "--steps", "100000"]
    env = os.environ | {"PYTHONPATH": ROOT, "FACEPAIR_HOME": str(p.home)}
    both = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
            for _ in range(2)]
    try:
        results = [(c.wait(timeout=180), *c.communicate()) for c in both]
        codes = sorted(r[0] for r in results)
        assert codes == [0, 2], results
        (_, out, err), = [r for r in results if r[0] == 0]
        (_, _, busy), = [r for r in results if r[0] == 2]
        job_id = out.strip()
        assert "started train job" in err
        assert f"is busy: model lock held by job {job_id}" in " ".join(busy.split())
        assert "started" not in busy
        assert [j.id for j in jobs.project_jobs(p) if j.kind == "train"] == [job_id]  # the refused one left none
    finally:
        for j in jobs.project_jobs(p):
            if j.active:
                jobs.cancel_job(j, grace=10)


# ---- the CLI's job commands ----------------------------------------------------------------------

def test_empty_job_id_is_an_error_not_the_only_job(project):
    job = running_job(jobs.start_job(project, "selftest", {"seconds": 120, "steps": 1200}))
    try:
        for action in ("cancel", "show", "log"):
            r = cli("job", action, "")
            assert r.returncode == 2, (action, r.stdout, r.stderr)
            assert "no job id given" in r.stderr + r.stdout
        assert jobs.load_job(job.dir).state == "running"  # nothing was cancelled
        r = cli("job", "cancel", "  ")
        assert r.returncode == 2 and jobs.load_job(job.dir).state == "running"
    finally:
        jobs.cancel_job(job, grace=2)


@pytest.mark.parametrize("columns", [80, 60, 40])
def test_jobs_never_cut_job_ids(project, columns):
    jobs.run_inline(project, "selftest", {"seconds": 0, "steps": 1})
    jobs.run_inline(project, "selftest", {"seconds": 0, "steps": 1, "fail": True})  # a long reason
    ids = [j.id for j in jobs.project_jobs(project)]
    r = cli("jobs", env={"COLUMNS": str(columns)})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for job_id in ids:
        # Every id whole on one line, so it can be copied into `facepair job cancel`.
        assert any(job_id in line for line in lines), (job_id, r.stdout)
        assert cli("job", "show", job_id).returncode == 0
    assert "…" not in r.stdout
    if columns >= 80:
        assert "failed" in r.stdout and "succeeded" in r.stdout


def test_delete_refuses_while_a_job_runs(project, home):
    job = running_job(jobs.start_job(project, "selftest", {"seconds": 120, "steps": 1200}))
    try:
        r = cli("delete", "pair", "--yes")
        assert r.returncode == 2
        assert f"has running jobs ({job.id}); cancel them first" in r.stderr + r.stdout
        assert (home / "pair" / "project.toml").is_file()
        assert jobs.load_job(job.dir).state == "running"
    finally:
        jobs.cancel_job(job, grace=5)
    r = cli("delete", "pair", "--yes")
    assert r.returncode == 0, r.stderr
    assert not (home / "pair").exists()


def test_jobs_all_shows_old_finished_jobs(project):
    from tests.fixtures.tui import write_job

    now = datetime.now(UTC)
    recent = (now - timedelta(hours=2)).isoformat()
    old = (now - timedelta(days=3)).isoformat()
    write_job(project, "selftest-recent-done", "selftest", [], state="succeeded", created=recent)
    write_job(project, "selftest-old-done", "selftest", [], state="failed", created=old, reason="boom")
    write_job(project, "selftest-old-running", "selftest", [], state="running", created=old)  # this pid: alive
    default = {j["id"] for j in json.loads(cli("jobs", "--json").stdout)}
    assert default == {"selftest-recent-done", "selftest-old-running"}
    every = {j["id"] for j in json.loads(cli("jobs", "--all", "--json").stdout)}
    assert every == {"selftest-recent-done", "selftest-old-running", "selftest-old-done"}
    table = cli("jobs", env={"COLUMNS": "120"}).stdout
    assert "selftest-old-done" not in table and "selftest-old-running" in table
    assert "selftest-old-done" in cli("jobs", "--all", env={"COLUMNS": "120"}).stdout


def test_a_cancel_signal_during_an_event_write_is_still_said(tmp_path):
    """The signal handler writes 'cancel requested'; when the signal lands while the main thread is
    writing an event, the file refuses the reentrant write: the message is said afterwards instead
    of being lost (this made test_cancel_right_after_start_… flaky under load)."""
    import types

    from core.errors import JobCancelled
    from core.jobs.runner import JobContext, on_cancel_signal

    written = []

    class Busy:
        refuse = True

        def write(self, type, **fields):
            if self.refuse:
                self.refuse = False
                raise RuntimeError("reentrant call inside <_io.BufferedWriter name='events.jsonl'>")
            written.append(fields.get("text"))
            return {"type": type, **fields}

    ctx = JobContext(types.SimpleNamespace(dir=tmp_path), None, Busy())
    on_cancel_signal(ctx, signal.SIGTERM)
    assert ctx.cancelled and written == []
    with pytest.raises(JobCancelled):
        ctx.check_cancelled()
    assert written == ["cancel requested (SIGTERM)"]
    with pytest.raises(JobCancelled):
        on_cancel_signal(ctx, signal.SIGTERM)  # a second signal stops the job where it is
