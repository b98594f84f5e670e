"""The command line as a user types it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

from tui.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_commands():
    exe = shutil.which("facepair") or None
    cmd = [exe] if exe else [sys.executable, "-m", "tui.cli.main"]
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("new", "add-source", "list", "show", "delete", "jobs", "job", "selftest"):
        assert f"    {command}" in out, command


def test_new_list_show_delete(home, capsys, tmp_path):
    code, out, err = run(capsys, "new", "duo", "--a", "Ann", "--b", "Ben")
    assert code == 2 and "without consent" in err
    code, out, _ = run(capsys, "new", "duo", "--a", "Ann", "--b", "Ben", "--consent", "both agreed")
    assert code == 0 and "created project duo" in out

    photo = tmp_path / "b.jpg"
    photo.write_bytes(b"jpeg")
    code, _, err = run(capsys, "add-source", "duo", "b", str(photo), str(tmp_path / "gone.png"))
    assert code == 2 and "gone.png: no such file" in err
    code, out, _ = run(capsys, "add-source", "duo", "b", str(photo))
    assert code == 0 and "added image" in out

    code, out, _ = run(capsys, "list", "--json")
    (row,) = json.loads(out)
    assert row["name"] == "duo" and row["labels"] == {"a": "Ann", "b": "Ben"}
    assert row["faces"] == {"a": 0, "b": 0} and row["running_jobs"] == []

    code, out, _ = run(capsys, "show", "duo", "--json")
    shown = json.loads(out)
    assert shown["sources"]["b"][0]["path"] == str(photo)
    assert shown["consent"]["statement"] == "both agreed"
    assert shown["training"]["step"] == 0

    code, out, err = run(capsys, "show", "nope")
    assert code == 2 and "no project named 'nope'" in err

    code, out, _ = run(capsys, "delete", "duo", "--yes")
    assert code == 0 and not (home / "duo").exists()


def test_bad_name_states_the_rule(home, capsys):
    code, _, err = run(capsys, "new", "a/b", "--a", "A", "--b", "B", "--consent", "ok")
    assert code == 2 and "contains a slash" in err and "1–64 characters" in " ".join(err.split())


def test_foreground_job_and_jobs_listing(home, capsys, project):
    code, out, _ = run(capsys, "selftest", "pair", "--seconds", "0.2", "--steps", "2")
    assert code == 0 and "selftest succeeded" in out
    code, out, _ = run(capsys, "jobs", "--json")
    (job,) = json.loads(out)
    assert job["kind"] == "selftest" and job["state"] == "succeeded" and job["project"] == "pair"
    code, out, _ = run(capsys, "job", "show", job["id"], "--json")
    assert json.loads(out)["events"][-1]["state"] == "succeeded"


def test_job_cancel_without_grace_gives_the_kinds(home, capsys, project, monkeypatch):
    """`facepair job cancel` waits the job kind's grace period (here made 1 s) before SIGKILL."""
    import dataclasses

    from core.jobs import control as jobs
    from core.jobs import kinds as jobkinds

    quick = dataclasses.replace(jobkinds.spec("selftest"), grace_s=1.0)
    monkeypatch.setitem(jobkinds.SPECS, "selftest", quick)
    job = jobs.start_job(project, "selftest", {"seconds": 60, "steps": 600, "ignore_term": True})
    try:
        deadline = time.monotonic() + 30
        while not (job.events_path.exists() and '"metrics"' in job.events_path.read_text()):
            assert time.monotonic() < deadline, "the selftest job never started its steps"
            time.sleep(0.05)  # after its first step the job ignores SIGTERM
        code, out, _ = run(capsys, "job", "cancel", job.id)
        assert code == 0 and "up to 1 s to save" in out
        assert jobs.load_job(job.dir).reason == "killed after a 1 s grace period"
    finally:
        jobs.cancel_job(job, grace=0)
