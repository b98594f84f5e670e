"""The one job follower (`core.jobs.follow`): every event and the whole log, and an early stop."""

from __future__ import annotations

import time

from core.jobs import control as jobs
from core.jobs import follow


def test_events_end_with_the_final_state_and_miss_nothing(project):
    job = jobs.start_job(project, "selftest", {"seconds": 0.3, "steps": 3})
    seen = list(follow.events(job, poll=0.05))
    assert not jobs.load_job(job.dir).active
    assert [e["step"] for e in seen if e["type"] == "metrics"] == [1, 2, 3]
    assert seen[-1]["type"] == "state" and seen[-1]["state"] == "succeeded"


def test_from_the_end_skips_what_was_written_before(project):
    job = jobs.wait(jobs.start_job(project, "selftest", {"seconds": 0.1, "steps": 2}), timeout=30)
    assert list(follow.events(job, from_start=False)) == []


def test_a_tick_that_says_stop_ends_following_while_the_job_goes_on(project):
    job = jobs.start_job(project, "selftest", {"seconds": 30, "steps": 60})
    try:
        ticks = []
        list(follow.events(job, poll=0.05, tick=lambda current: ticks.append(current.state) or len(ticks) >= 3))
        assert len(ticks) == 3 and jobs.load_job(job.dir).active
    finally:
        jobs.cancel_job(job, grace=5)


def test_log_follows_to_the_final_traceback(project):
    job = jobs.start_job(project, "selftest", {"seconds": 0.2, "steps": 2, "fail": True})
    text = "".join(follow.log(job, poll=0.05))
    assert jobs.load_job(job.dir).state == "failed"
    assert "selftest asked to fail" in text


def test_log_without_follow_reads_once(project):
    job = jobs.start_job(project, "selftest", {"seconds": 30, "steps": 60})
    try:
        t0 = time.monotonic()
        list(follow.log(job, follow=False))
        assert time.monotonic() - t0 < 5 and jobs.load_job(job.dir).active
    finally:
        jobs.cancel_job(job, grace=5)
