"""The convert screen offers the project's likely inputs: recent convert/preview inputs first, then
side A's sources (issue 17, item 6)."""

from __future__ import annotations

import asyncio

from PIL import Image

from core.project import projects
from core.studio.inputs import convert_inputs
from tests.fixtures.tui import make_app, screen_text, wait_for, write_job


def _media(home, astronaut, hopper):
    media = home.parent / "media"
    media.mkdir()
    a, b, old = media / "alice.png", media / "bob.png", media / "earlier.png"
    Image.fromarray(astronaut).save(a)
    Image.fromarray(hopper).save(b)
    Image.fromarray(astronaut[::2, ::2]).save(old)
    return a, b, old


def test_recent_inputs_come_first_then_sources_each_once(project, home, astronaut, hopper):
    a, b, old = _media(home, astronaut, hopper)
    projects.add_sources(project, "a", [a])
    projects.add_sources(project, "b", [b])
    project = projects.load_project(home, "pair")
    write_job(project, "convert-1", "convert", [], args={"input": str(old)}, created="2025-01-01T12:00:00+00:00")
    write_job(project, "preview-2", "preview", [], args={"input": str(a)}, created="2025-01-02T12:00:00+00:00")
    write_job(project, "convert-3", "convert", [], args={"input": str(home / "gone.mp4")},
              created="2025-01-03T12:00:00+00:00")
    choices = convert_inputs(project)
    assert [(c.path, c.origin) for c in choices] == [
        (str(a), "recent"), (str(old), "recent"), (str(b), "side B")]  # a deleted input is not offered
    assert choices[0].label == "alice.png  (recent)"


def test_the_convert_screen_starts_on_side_a_and_lists_the_choices(project, home, astronaut, hopper):
    a, b, old = _media(home, astronaut, hopper)
    projects.add_sources(project, "a", [a])
    projects.add_sources(project, "b", [b])

    async def flow():
        app = make_app(home)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter", "c")
            field = app.screen.query_one("#convert-input")
            await wait_for(pilot, lambda: field.value == str(a), what="side A's source in the input field")
            select = app.screen.query_one("#convert-choices")
            assert [v for _, v in select._options if isinstance(v, str)] == [str(a), str(b)]
            select.value = str(b)
            await wait_for(pilot, lambda: field.value == str(b), what="the chosen input in the field")
            assert "bob.png  (side B)" in screen_text(app)

    asyncio.run(flow())


def test_a_project_with_no_inputs_hides_the_choice(project, home):
    async def flow():
        app = make_app(home)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter", "c")
            await pilot.pause(0.3)
            assert not app.screen.query_one("#convert-choices").display
            assert app.screen.query_one("#convert-input").value == ""

    asyncio.run(flow())
