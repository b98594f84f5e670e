"""Snapshots of every screen at 80×24 on a fixed studio (tests/fixtures/tui.py): fixed paths, times,
numbers and a pinned clock, so the pictures change only when the rendering does. The job kinds
are the build's real ones (`core.jobs.kinds`): every stage shows as it does for a user.

Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update` and
look at the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input

from tests.fixtures.tui import SNAP_T0, build_snapshot_home, make_app, wait_for

# Its snapshots render from one fixed folder, rebuilt by each test: keep them on one test worker.
pytestmark = pytest.mark.xdist_group("tui-snapshots")

SIZE = (80, 24)


@pytest.fixture
def studio(astronaut, hopper, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    home = build_snapshot_home(astronaut, hopper)
    yield home
    monkeypatch.undo()
    time.tzset()


def app_for(home, **kw):
    return make_app(home, clock=lambda: SNAP_T0 + 3 * 3600, poll_interval=0.05, list_interval=0.1, **kw)


async def settle(pilot, condition=lambda: True, what="the screen"):
    await wait_for(pilot, condition, what=what)
    await pilot.pause(0.3)
    await pilot.app.workers.wait_for_complete()
    # A blinking cursor is on or off depending on how busy the machine is: hold it on.
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_projects_screen(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "both rows")

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_projects_screen_light_theme(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "both rows")

    assert snap_compare(app_for(studio, theme="light"), terminal_size=SIZE, run_before=run_before)


def test_new_project_screen(studio, snap_compare):
    async def run_before(pilot):
        await pilot.press("n")
        await settle(pilot)

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_project_screen(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "rows")
        await pilot.press("enter")
        await settle(pilot, lambda: pilot.app.screen.query_one("#thumbs-b").image is not None, "thumbnails")

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_unreadable_project_screen(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "rows")
        await pilot.press("down", "enter")
        await settle(pilot)

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_training_screen(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "rows")
        await pilot.press("enter", "t")
        await settle(pilot, lambda: pilot.app.screen.query_one("#preview").image is not None, "the preview")

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_training_screen_log_scale_smoothed(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "rows")
        await pilot.press("enter", "t")
        await settle(pilot, lambda: pilot.app.screen.query_one("#preview").image is not None, "the preview")
        await pilot.press("l", "v")
        await settle(pilot)

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_convert_screen(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "rows")
        await pilot.press("enter", "c")
        await settle(pilot)

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_jobs_screen(studio, snap_compare):
    async def run_before(pilot):
        await pilot.press("j")
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 3, "three jobs")

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_job_screen(studio, snap_compare):
    async def run_before(pilot):
        await pilot.press("j")
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 3, "three jobs")
        await pilot.press("down", "enter")
        await settle(pilot, lambda: pilot.app.screen.watch.digest.events > 100, "the events")

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_help_screen(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "rows")
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_delete_confirmation(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "rows")
        await pilot.press("d")
        await settle(pilot)

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)


def test_export_dialog(studio, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: len(pilot.app.screen.rows) == 2, "rows")
        await pilot.press("enter")
        await settle(pilot, lambda: pilot.app.screen.query_one("#thumbs-b").image is not None, "thumbnails")
        await pilot.press("o")
        await settle(pilot, lambda: "Export the model" in str(pilot.app.screen.query_one(".dialog-title").render()),
                     "the export dialog")

    assert snap_compare(app_for(studio), terminal_size=SIZE, run_before=run_before)
