"""Detached jobs: survive SIGHUP, cancel cleanly, report vanished processes, recover stale locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from core.errors import JobError, LockHeld
from core.jobs import control as jobs
from core.jobs import kinds as jobkinds
from core.jobs import locks
from core.jobs.events import EventReader, EventWriter, read_events
from tests.waiting import wait_for

FACEPAIR = [sys.executable, "-m", "tui.cli.main"]


def running_job(job):
    return wait_for(lambda: (j := jobs.load_job(job.dir)).state == "running" and j)


def test_selftest_runs_detached_and_succeeds(project):
    job = jobs.start_job(project, "selftest", {"seconds": 0.3, "steps": 3})
    done = jobs.wait(job, timeout=30)
    assert done.state == "succeeded" and done.result == {"steps": 3}
    assert done.pid and done.started and done.ended
    events = read_events(done.events_path)
    assert [e["type"] for e in events][0] == "state"
    assert [e["step"] for e in events if e["type"] == "metrics"] == [1, 2, 3]
    assert events[-1] == events[-1] | {"type": "state", "state": "succeeded"}
    assert (done.dir / "log.txt").exists()


def test_job_survives_sighup_to_the_group_that_started_it(project, tmp_path):
    idfile = tmp_path / "id.txt"
    # A shell in its own session stands in for an SSH login: it starts the job, then gets SIGHUP.
    shell = subprocess.Popen(
        ["bash", "-c", " ".join(FACEPAIR) + f" selftest pair --detach --seconds 30 --steps 60 > {idfile}; sleep 60"],
        start_new_session=True, env=os.environ | {"PYTHONPATH": os.getcwd()},
        # A login shell dies of SIGHUP; under `nohup make test` this process ignores SIGHUP and a
        # child would inherit that, so the shell gets the default disposition back.
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        job_id = wait_for(lambda: idfile.exists() and idfile.read_text().strip())
        job = running_job(jobs.find_job(project.home, job_id))
        os.killpg(shell.pid, signal.SIGHUP)
        shell.wait(timeout=10)
        time.sleep(1.0)
        alive = jobs.load_job(job.dir)
        assert alive.state == "running", alive.reason
        assert os.getsid(alive.pid) == alive.pid != shell.pid  # it leads its own session: no terminal
        final = jobs.cancel_job(alive, grace=5)
        assert final.state == "cancelled"
        assert final.reason == "cancelled on request"  # it stopped on SIGTERM, no SIGKILL needed
    finally:
        if shell.poll() is None:
            shell.kill()


def test_cancel_records_cancelled(project):
    job = running_job(jobs.start_job(project, "selftest", {"seconds": 60, "steps": 600}))
    final = jobs.cancel_job(job, grace=5)
    assert final.state == "cancelled"
    events = read_events(final.events_path)
    assert any(e["type"] == "message" and "cancel requested" in e["text"] for e in events)
    assert events[-1]["state"] == "cancelled"


def test_sigkilled_job_is_reported_vanished(project):
    job = running_job(jobs.start_job(project, "selftest", {"seconds": 60, "steps": 600}))
    os.kill(job.pid, signal.SIGKILL)
    final = wait_for(lambda: (j := jobs.load_job(job.dir)).state != "running" and j)
    assert final.state == "failed"
    assert final.reason == "process vanished"
    # the verdict is persisted, not just computed
    assert json.loads((job.dir / "job.json").read_text())["reason"] == "process vanished"


def test_failed_job_keeps_reason_and_traceback(project):
    job = jobs.wait(jobs.start_job(project, "selftest", {"seconds": 0.1, "steps": 1, "fail": True}), timeout=30)
    assert job.state == "failed"
    assert "selftest asked to fail" in job.reason
    assert "Traceback" in job.log_path.read_text()


def test_unknown_kind_refused_before_anything_is_written(project):
    with pytest.raises(JobError, match="unknown job kind"):
        jobs.start_job(project, "no-such-kind", {})
    assert list(project.runs_dir.iterdir()) == []


def test_model_lock_live_holder_refused_and_stale_recovered(project, monkeypatch):
    monkeypatch.setitem(jobkinds.KINDS, "writer", "core.jobs.selftest:run")
    monkeypatch.setattr(jobkinds, "MODEL_WRITERS", jobkinds.MODEL_WRITERS | {"writer"})
    # A live holder (this test process) is named in the refusal.
    locks.acquire(project, "model", "train-live", os.getpid())
    with pytest.raises(LockHeld, match=rf"held by job train-live \(pid {os.getpid()}\)"):
        jobs.start_job(project, "writer", {})
    locks.release(project, "model", "train-live")
    # A stale lock: its holder has exited.
    dead = subprocess.Popen(["true"])
    dead.wait()
    locks.lock_path(project, "model").write_text(json.dumps({"pid": dead.pid, "job": "train-dead"}))
    job = jobs.run_inline(project, "writer", {"seconds": 0.05, "steps": 1})
    assert job.state == "succeeded"
    texts = [e.get("text", "") for e in read_events(job.events_path)]
    assert any("recovered a stale model lock" in t for t in texts)
    assert not locks.lock_path(project, "model").exists()  # released at the end


def test_list_find_and_ambiguous_ids(project, home):
    a = jobs.run_inline(project, "selftest", {"seconds": 0, "steps": 1})
    b = jobs.run_inline(project, "selftest", {"seconds": 0, "steps": 1})
    assert {j.id for j in jobs.all_jobs(home)} == {a.id, b.id}
    assert jobs.find_job(home, a.id).id == a.id
    with pytest.raises(JobError, match="ambiguous"):
        jobs.find_job(home, "selftest-")
    with pytest.raises(JobError, match="no job"):
        jobs.find_job(home, "nope")


def test_event_reader_is_incremental_and_never_returns_half_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    r = EventReader(path)
    assert r.read_new() == []
    w.write("metrics", step=1, loss_a=float("nan"))
    with open(path, "a") as f:
        f.write('{"t": 1, "type": "metr')  # a writer caught mid-line
    got = r.read_new()
    assert [(e["type"], e["step"], e["loss_a"]) for e in got] == [("metrics", 1, None)]
    with open(path, "a") as f:
        f.write('ics", "step": 2}\n')
    assert [e["step"] for e in r.read_new()] == [2]
    assert r.read_new() == []
