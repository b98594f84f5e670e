"""A job folder with a damaged job.json or events.jsonl: every command still works, the bad job is
shown as unreadable (never hiding the others), and lines that are not events are skipped and counted."""

from __future__ import annotations

import json

import pytest

from core.jobs import control as jobs
from core.jobs.events import EventReader, last_event, read_events
from core.project.projects import create_project
from tui.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _damage(job, **fields):
    path = job.dir / jobs.JOB_FILE
    d = json.loads(path.read_text())
    d.update(fields)
    path.write_text(json.dumps(d))


@pytest.fixture
def two_projects(home, project):
    """`pair` with a good job and a damaged one, `other` with a good job."""
    other = create_project(home, "other", "Cy", "Di", "Cy and Di agreed in writing to this test.")
    good = jobs.run_inline(project, "selftest", {"seconds": 0, "steps": 1})
    bad = jobs.run_inline(project, "selftest", {"seconds": 0, "steps": 1})
    elsewhere = jobs.run_inline(other, "selftest", {"seconds": 0, "steps": 1})
    return good, bad, elsewhere


def _listed_states(out: str, ids: set[str]) -> dict[str, str]:
    """Each job's state as `facepair jobs` prints it: a table row (id, project, kind, state, …)
    or, on a narrow terminal, the id alone on a line and (project, kind, state, …) below it."""
    lines = [ln.split() for ln in out.splitlines()]
    states = {}
    for i, toks in enumerate(lines):
        if toks and toks[0] in ids:
            rest = toks[1:] if len(toks) > 1 else (lines[i + 1] if i + 1 < len(lines) else [])
            states[toks[0]] = rest[2] if len(rest) > 2 else None
    return states


@pytest.mark.parametrize("damage, field", [
    ({"pid": "abc", "state": "running"}, "pid"),
    ({"pid_start": [1]}, "pid_start"),
    ({"created": 5}, "created"),
    ({"args": ["x"]}, "args"),
    ({"state": "exploded"}, "state"),
    ({"result": "done"}, "result"),
    ({"id": None}, "id"),
])
def test_wrongly_typed_job_json_is_listed_unreadable_and_hides_nothing(two_projects, capsys, home, damage, field):
    good, bad, elsewhere = two_projects
    _damage(bad, **damage)

    code, out, err = run(capsys, "jobs", "--json")
    assert code == 0, err
    rows = {r["id"]: r for r in json.loads(out)}
    assert set(rows) == {good.id, bad.id, elsewhere.id}
    assert rows[good.id]["state"] == rows[elsewhere.id]["state"] == "succeeded"
    assert rows[bad.id]["state"] == "unreadable"
    assert f"field {field!r}" in rows[bad.id]["reason"] and "job.json is unreadable" in rows[bad.id]["reason"]

    code, out, err = run(capsys, "jobs")
    assert code == 0, err
    states = _listed_states(out, {good.id, bad.id, elsewhere.id})
    assert states == {good.id: "succeeded", bad.id: "unreadable", elsewhere.id: "succeeded"}  # the others are still listed

    code, out, err = run(capsys, "job", "show", bad.id)
    assert code == 0, err
    assert "[unreadable]" in out and f"field {field!r}" in " ".join(out.split())
    code, out, err = run(capsys, "job", "show", good.id)
    assert code == 0 and "[succeeded]" in out

    code, out, err = run(capsys, "job", "cancel", bad.id)
    assert code == 2 and "cannot be cancelled" in err and "Traceback" not in err

    code, out, err = run(capsys, "show", "pair")
    assert code == 0, err
    code, out, err = run(capsys, "delete", "pair", "--yes")
    assert code == 0 and "deleted" in out
    assert not (home / "pair").exists()


def test_job_json_that_is_not_an_object_is_unreadable(project):
    job = jobs.run_inline(project, "selftest", {"seconds": 0, "steps": 1})
    (job.dir / jobs.JOB_FILE).write_text("[1, 2]\n")
    with pytest.raises(jobs.JobError, match="not a JSON object"):
        jobs.load_job(job.dir)
    (listed,) = jobs.project_jobs(project)
    assert (listed.id, listed.state, listed.active) == (job.id, "unreadable", False)
    assert jobs.project_jobs(project, unreadable=False) == []


def test_launch_file_with_wrong_types_is_ignored(project):
    job = jobs.create_job(project, "selftest", {})
    (job.dir / jobs.LAUNCH_FILE).write_text(json.dumps({"pid": "abc", "pid_start": 1}))
    assert jobs.load_job(job.dir).state == "queued"
    (job.dir / jobs.LAUNCH_FILE).write_text("[]")
    assert jobs.load_job(job.dir).state == "queued"


def test_event_lines_that_are_not_objects_are_skipped_and_counted(project, home, capsys):
    job = jobs.run_inline(project, "selftest", {"seconds": 0, "steps": 2})
    with open(job.events_path, "a") as f:
        f.write('[]\n"str"\n3\nnull\n{"t": 1, "type": "progress", "done": 7, "total": 9}\n[1]\n')
    events = read_events(job.events_path)
    assert all(isinstance(ev, dict) for ev in events)
    assert sum(ev["type"] == "corrupt" for ev in events) == 5
    assert last_event(job.events_path, "progress")["done"] == 7
    reader = EventReader(job.events_path)
    assert all(isinstance(ev, dict) for ev in reader.read_new())

    code, out, err = run(capsys, "jobs")
    assert code == 0 and "7/9" in out, err
    code, out, err = run(capsys, "job", "show", job.id)
    assert code == 0, err
    assert "5 line(s) of events.jsonl are not events; skipped" in out
    code, out, err = run(capsys, "job", "show", job.id, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["corrupt_lines"] == 5
    assert all(ev["type"] != "corrupt" for ev in shown["events"])


def test_tui_jobs_screen_lists_an_unreadable_job_beside_the_others(two_projects, home):
    import asyncio

    from tests.fixtures.tui import make_app, notifications, screen_text, wait_for

    good, bad, elsewhere = two_projects
    _damage(bad, pid="abc", state="running")

    async def flow():
        app = make_app(home)
        async with app.run_test(size=(160, 30)) as pilot:
            await pilot.press("j")
            await wait_for(pilot, lambda: "unreadable" in screen_text(app), what="the unreadable row")
            text = screen_text(app)
            assert good.id in text and elsewhere.id in text and bad.id in text
            screen = app.screen
            row = [j.id for j in screen.jobs].index(bad.id)
            screen.query_one("#jobs").move_cursor(row=row)
            await pilot.press("c")
            await wait_for(pilot, lambda: any("cannot be cancelled" in n for n in notifications(app)),
                           what="the refusal")

    asyncio.run(flow())
