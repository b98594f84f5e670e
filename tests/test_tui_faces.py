"""The faces screen (tui/app/screens/faces.py): Pilot tests of marking, removing, undoing, sorting,
filtering, paging through a large side and opening a face's frame, and snapshots of the screen.

Real faces come from the extracted fixture project (real dlib on the fixture's portrait clips);
the large side and the snapshot's side are synthetic: alignments stores written with
core.faces.alignments.Writer (landmarks of a crude 3-D face turned to known poses, one descriptor
a face) and crops cut from the public-domain portraits, so they need no detector and never change.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.faces import align, curation, trash
from core.faces import alignments as al
from core.project.projects import Consent, Project, Source, load_project
from tests.fixtures.tui import make_app, notifications, screen_text, wait_for

# Its snapshots render from one fixed folder, rebuilt by each test: keep them on one test worker.
pytestmark = pytest.mark.xdist_group("tui-faces-snapshots")

SNAP_HOME = Path("/tmp/facepair-tui-faces-snapshots/home")  # fixed: paths are part of the rendering
SNAP_CREATED = "2025-01-01T12:00:00+00:00"
SIZE = (80, 24)


# ---- a synthetic side ------------------------------------------------------------------------------

def _landmarks(yaw: float, pitch: float, scale: float = 120.0, offset=(200.0, 150.0)) -> np.ndarray:
    """68 landmarks of a crude 3-D face (the mean face, a jaw, the nose standing out) at this pose."""
    t = np.linspace(0, math.pi, 17)
    jaw = np.stack([0.49 - 0.56 * np.cos(t), 0.3 + 0.82 * np.sin(t)], axis=1)
    xy = np.concatenate([jaw, align.MEAN_FACE])
    z = np.zeros(68)
    z[27:36] = [-0.1, -0.17, -0.24, -0.32, -0.2, -0.22, -0.24, -0.22, -0.2]
    z[0:17] = 0.25 * np.abs(np.cos(t))
    z[48:68] = -0.06
    pts = np.concatenate([xy - (0.49, 0.6), z[:, None]], axis=1)
    y, p = math.radians(yaw), math.radians(pitch)
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    return (pts @ (ry @ rx).T)[:, :2] * scale + offset


def add_synthetic_source(p: Project, side: str, name: str, faces: int, picture: np.ndarray, seed: int,
                         yaw_span: float = 40.0, crop: int = 48) -> Source:
    """A source of `faces` frames with one face each: a store and a crop per face (cut from
    `picture` at a moving window, so neighbours look alike and far faces differ)."""
    src = Source(side, str(p.root.parent.parent / "media" / name), "video", 1000, 0.0, SNAP_CREATED)
    p.sources.append(src)
    p.save()
    rng = np.random.default_rng(seed)
    writer = al.Writer(al.store_path(p, src.id), al.meta_for(src, {"size": crop, "coverage": align.COVERAGE}))
    person = rng.normal(size=128).astype(np.float32) * 0.05
    h, w = picture.shape[:2]
    folder = p.faces_dir(side)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(faces):
        phase = f / max(1, faces - 1)
        yaw = yaw_span * math.sin(6.28 * phase * 3)
        pitch = 0.6 * yaw_span * math.cos(6.28 * phase * 2)
        lms = _landmarks(yaw, pitch).astype(np.float32)
        stranger = f % 37 == 7  # another person now and then: the identity outliers
        desc = person + rng.normal(size=128).astype(np.float32) * (0.1 if stranger else 0.02)
        writer.add(f, [al.Face(box=np.array([140, 80, 260, 220], np.float32), score=1.0, landmarks=lms,
                               landmarks_raw=lms, matrix=align.crop_matrix(lms, crop), size=crop,
                               coverage=align.COVERAGE, blur=float(20 + (f * 53) % 400), track=0,
                               descriptor=desc)])
        y0 = int((h - 200) * (0.5 + 0.5 * math.sin(phase * 9)))
        x0 = int((w - 200) * (0.5 + 0.5 * math.cos(phase * 7)))
        Image.fromarray(np.ascontiguousarray(picture[y0:y0 + 200, x0:x0 + 200])).resize((crop, crop)).save(
            folder / al.crop_name(src.id, f, 0))
    writer.flush()
    return src


def synthetic_project(home: Path, a_faces: int, b_faces: int, astronaut, hopper) -> Project:
    root = home / "studio"
    for sub in ("faces/a", "faces/b", "alignments", "runs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    p = Project(root=root, name="studio", label_a="Ann", label_b="Ben", created=SNAP_CREATED,
                consent=Consent("Ann and Ben agreed in writing (synthetic test faces)", ("Ann", "Ben"),
                                SNAP_CREATED, "tests"))
    p.save()
    add_synthetic_source(p, "a", "interview.mp4", a_faces, astronaut, seed=1, yaw_span=45)
    add_synthetic_source(p, "b", "ben-clip.mp4", b_faces, hopper, seed=2, yaw_span=20)
    return load_project(home, "studio")


def run(coro):
    return asyncio.run(coro)


async def open_faces(pilot, app, side_key: str | None = None):
    """From the projects screen: the (first) project, then F; waits for the first page."""
    from tui.app.screens.faces import FacesScreen

    await wait_for(pilot, lambda: len(getattr(app.screen, "rows", [])) >= 1, what="the projects table")
    await pilot.press("enter")
    await wait_for(pilot, lambda: "sources" in screen_text(app) or "source" in screen_text(app), what="the project")
    if side_key == "b":
        app.screen.query_one("#sources-b").focus()
    await pilot.press("F")
    await wait_for(pilot, lambda: isinstance(app.screen, FacesScreen) and app.screen.state == "ready",
                   timeout=60, what="the faces screen")
    await app.workers.wait_for_complete()
    await pilot.pause()
    return app.screen


def shown(screen) -> list[str]:
    return [screen.faces.name(i) for i in range(len(screen.faces))]


# ---- Pilot tests on real faces ---------------------------------------------------------------------

def test_mark_remove_and_undo(extracted_project_copy):
    p = extracted_project_copy
    before = p.face_count("a")

    async def flow():
        app = make_app(p.home)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_faces(pilot, app)
            assert screen.side == "a" and len(screen.faces) == before
            first, second, third = shown(screen)[:3]
            await pilot.press("space", "space")  # marks the face and moves on: two faces marked
            assert screen.marks == {first, second} and "2 marked" in screen_text(app)
            await pilot.press("x")
            await pilot.pause()
            assert not (p.faces_dir("a") / first).exists() and (trash.trash_dir(p, "a") / first).is_file()
            assert first not in shown(screen) and len(screen.faces) == before - 2 and not screen.marks
            assert f"{before - 2} faces, 2 in the trash" in screen_text(app)
            assert any("removed 2 faces to the trash" in m for m in notifications(app))
            assert screen.faces.name(screen.grid.cursor) == third  # the next face slid in
            await pilot.press("x")  # nothing marked: the selected face goes
            await pilot.pause()
            assert curation.side_counts(p, "a") == {"faces": before - 3, "trash": 3}
            await pilot.press("u")
            await pilot.pause()
            assert (p.faces_dir("a") / third).is_file() and screen.faces.name(screen.grid.cursor) == third
            await pilot.press("u")
            await pilot.pause()
            assert curation.side_counts(p, "a") == {"faces": before, "trash": 0}
            assert shown(screen)[:3] == [first, second, third]
            await pilot.press("u")
            await pilot.pause()
            assert any("nothing to undo" in m for m in notifications(app))
            await pilot.press("escape")
            await wait_for(pilot, lambda: f"{before} faces" in screen_text(app), what="the project screen's count")

    run(flow())


def test_shift_arrows_mark_a_run(extracted_project_copy):
    p = extracted_project_copy

    async def flow():
        app = make_app(p.home)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_faces(pilot, app)
            names = shown(screen)
            cols = screen.grid.cols
            await pilot.press("right", "shift+right", "shift+right", "shift+down")
            assert screen.marks == set(names[1:4 + cols])
            await pilot.press("m")  # every face shown
            assert screen.marks == set(names)
            await pilot.press("m")
            assert screen.marks == set()
            from tui.app.screens.help import keys_table

            await pilot.press("question_mark")  # every key of the screen, the grid's included
            await wait_for(pilot, lambda: "Help — Faces" in screen_text(app), what="the help")
            actions = {str(c) for c in keys_table(screen).columns[1]._cells}
            assert {"Mark a run", "Remove", "Undo", "Sort", "Reverse the sort", "Filter", "Frame", "Page down",
                    "Side B", "Mark all shown"} <= actions, actions

    run(flow())


def test_sort_and_filter(extracted_project_copy):
    p = extracted_project_copy

    async def flow():
        app = make_app(p.home)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_faces(pilot, app)
            await pilot.press("o")
            await wait_for(pilot, lambda: "Sort the faces by" in screen_text(app), what="the sort chooser")
            keys = list(curation.SORT_KEYS)
            await pilot.press(*["down"] * (keys.index("blur") - keys.index("order")), "enter")
            await pilot.pause()
            blurs = [screen.faces.face(i)["scores"]["blur"] for i in range(len(screen.faces))]
            assert blurs == sorted(blurs) and "sort blur ↑" in screen_text(app)
            expected = [r.name for r in curation.list_faces(p, "a", sort="blur")]
            assert shown(screen) == expected
            await pilot.press("r")
            assert shown(screen) == [r.name for r in curation.list_faces(p, "a", sort="blur", descending=True)]
            cut = sorted(blurs)[len(blurs) // 2]
            await pilot.press("slash")
            await wait_for(pilot, lambda: "Filter the faces" in screen_text(app), what="the filter dialog")
            await pilot.press(*"blurry<3", "enter")  # a bad key: said, not raised, the dialog stays
            await wait_for(pilot, lambda: "unknown key 'blurry'" in screen_text(app), what="the error")
            field = app.screen.query_one("#filter-text")
            field.value = f"blur<{cut}"
            await pilot.press("enter")
            await pilot.pause()
            assert {screen.faces.name(i) for i in range(len(screen.faces))} == \
                {r.name for r in curation.list_faces(p, "a", where=f"blur<{cut}")}
            assert f"filter blur<{cut:g}" in screen_text(app)
            source = p.sources_of("a")[0].id
            await pilot.press("slash")
            await wait_for(pilot, lambda: "Filter the faces" in screen_text(app), what="the filter dialog")
            app.screen.query_one("#filter-text").value = source[:5]  # the start of a source id
            await pilot.press("enter")
            await pilot.pause()
            assert len(screen.faces) == p.face_count("a") and str(screen.where) == f"source={source}"

    run(flow())


def test_detail_pane_and_the_frame_in_its_source(extracted_project_copy):
    from tui.app.screens.faces_dialogs import FrameScreen

    p = extracted_project_copy

    async def flow():
        app = make_app(p.home)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_faces(pilot, app)
            await pilot.press("right", "right")
            await pilot.pause()
            face = screen.faces.face(2)
            text = screen_text(app)
            assert face["name"].removesuffix(".png") in text and f"frame {face['frame']}" in text
            assert "identity" in text and "yaw" in text and "B has" in text
            assert screen.query_one("#face-crop").image is not None
            await pilot.press("enter")
            assert isinstance(app.screen, FrameScreen)
            await wait_for(pilot, lambda: app.screen.loaded, timeout=20, what="the source frame")
            assert app.screen.query_one("#frame-picture").image.size[0] == 320  # the clip's frame
            assert f"frame {face['frame']}" in screen_text(app)
            await pilot.press("escape")
            assert app.screen is screen

    run(flow())


def test_the_other_side_and_removals_from_the_command_line(extracted_project_copy):
    p = extracted_project_copy

    async def flow():
        app = make_app(p.home)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_faces(pilot, app)
            await pilot.press("b")
            await wait_for(pilot, lambda: app.screen is not screen and app.screen.state == "ready", what="side B")
            b = app.screen
            assert b.side == "b" and len(b.faces) == p.face_count("b")
            gone = shown(b)[:2]
            curation.remove_faces(p, "b", gone)  # as `facepair faces remove` would, from another terminal
            await wait_for(pilot, lambda: len(b.faces) == p.face_count("b") and gone[0] not in shown(b),
                           what="the screen to see the removal")
            await pilot.press("escape")  # the project screen counts the side's trash
            await wait_for(pilot, lambda: f"{p.face_count('b')} faces, 2 in trash" in screen_text(app),
                           what="side B's trash count on the project screen")
            assert "in trash" not in screen_text(app).split("B · ")[0]  # side A has none

    run(flow())


# ---- a large synthetic side --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def large_home(tmp_path_factory, astronaut, hopper):
    home = tmp_path_factory.mktemp("faces_large") / "home"
    synthetic_project(home, 2000, 100, astronaut, hopper)
    return home


def test_pages_through_thousands_without_loading_them(large_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(large_home, home)

    async def flow():
        app = make_app(home)
        async with app.run_test(size=(100, 30)) as pilot:
            t0 = time.perf_counter()
            screen = await open_faces(pilot, app)
            assert len(screen.faces) == 2000
            grid = screen.grid
            asked = []
            real_thumb = screen.faces.thumb
            screen.faces.thumb = lambda i: asked.append(i) or real_thumb(i)
            grid.redraw(thumbs=True)
            grid._cells.clear()
            await pilot.pause()
            assert 0 < len(asked) <= grid.page_size  # only the faces on screen are read
            await pilot.press("pagedown", "pagedown")
            assert grid.cursor == 2 * grid.page_size and grid.cursor in grid.visible()
            await pilot.press("end")
            await pilot.pause()
            assert grid.cursor == 1999 and 1999 in grid.visible()
            assert len(set(asked)) <= 4 * grid.page_size  # the four pages shown, no more
            assert screen.faces.name(1999) in screen_text(app).replace("\n", "") or \
                screen.faces.face(1999)["name"].removesuffix(".png") in screen_text(app)
            await pilot.press("home")
            assert grid.cursor == 0 and grid.top == 0
            assert all(screen.cache.has(n) for n in shown(screen))  # built once, all of them
            assert time.perf_counter() - t0 < 60

    run(flow())


# ---- snapshots ---------------------------------------------------------------------------------------

@pytest.fixture
def snap_studio(astronaut, hopper):
    shutil.rmtree(SNAP_HOME.parent, ignore_errors=True)
    synthetic_project(SNAP_HOME, 60, 24, astronaut, hopper)
    return SNAP_HOME


def _snap_app(home):
    return make_app(home, clock=lambda: 1735732800.0, poll_interval=0.05, list_interval=0.1)


async def _settle(pilot):
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.3)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_faces_screen_snapshot(snap_studio, snap_compare):
    async def run_before(pilot):
        await open_faces(pilot, pilot.app)
        await pilot.press("space", "space", "right")
        await _settle(pilot)

    assert snap_compare(_snap_app(snap_studio), terminal_size=SIZE, run_before=run_before)


def test_faces_screen_side_b_sorted_by_identity_snapshot(snap_studio, snap_compare):
    async def run_before(pilot):
        await open_faces(pilot, pilot.app, side_key="b")
        await pilot.press("o")
        await wait_for(pilot, lambda: "Sort the faces by" in screen_text(pilot.app), what="the sort chooser")
        keys = list(curation.SORT_KEYS)
        await pilot.press(*["down"] * keys.index("identity"), "enter", "r")
        await _settle(pilot)

    assert snap_compare(_snap_app(snap_studio), terminal_size=SIZE, run_before=run_before)


# ---- the benchmark's side ----------------------------------------------------------------------------

def test_bench_faces_times_a_side_of_copied_real_crops(synth_clips, tmp_path):
    from core.bench import faces as bench
    from core.bench.report import faces_row
    from tui.app.bench import first_page_seconds

    result = bench.run(faces=70, clips=[str(synth_clips["astronaut"])], screen=first_page_seconds,
                       keep=str(tmp_path / "side"))["faces"]
    p = load_project(tmp_path / "side" / "home", "bench-faces")
    assert result["faces"] >= 70 and result["faces"] == p.face_count("a") == len(curation.face_table(p, "a"))
    assert result["real_faces"] < result["faces"] and result["sources"] == len(p.sources_of("a")) >= 3
    copy = p.sources_of("a")[1]
    assert Path(copy.path).resolve() == Path(synth_clips["astronaut"]).resolve()  # a copy is the clip again
    assert result["thumbs_faces_per_s"] > 0 and result["thumbs_unreadable"] == 0
    assert 0 < result["first_page_s"] and 0 < result["screen_first_page_s"] < 60
    assert 0 < result["screen_first_page_cpu_s"] and result["thumbs_cpu_ms_per_face"] > 0
    assert set(result["sort_ms"]) == set(curation.SORT_KEYS) and result["sort_max_ms"] == max(result["sort_ms"].values())
    row = faces_row(result)
    assert row[0].startswith(f"faces ({result['faces']:,} faces") and row[-1] in ("yes", "no")
