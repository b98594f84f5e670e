"""Where `convert` writes: never over a source of the project, over another existing file only when
asked (`--overwrite`, a yes at the prompt, the TUI's confirm), and an .mkv output said to carry no
C2PA manifest before the job starts. None of this needs a trained model: the refusals come first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

from core.convert import plan as convert
from core.convert.plan import ConvertError
from core.jobs import control as jobs
from core.project import projects as P
from tests.fixtures.tui import make_app, notifications, screen_text, wait_for
from tui.cli.main import main


@pytest.fixture
def media(home, astronaut):
    d = home.parent / "media"
    d.mkdir()
    Image.fromarray(astronaut).save(d / "astronaut.png")
    (d / "clip.mp4").write_bytes(b"only its name is read before the job starts")
    return d


@pytest.fixture
def with_source(project, media):
    """`project` with an image source on side B: the file convert must never write over."""
    src = media / "ben.png"
    Image.new("RGB", (64, 64), (200, 120, 90)).save(src)
    P.add_sources(project, "b", [src])
    return project, src


@pytest.fixture
def started(monkeypatch):
    """Job starts captured instead of run: [(kind, args)]."""
    calls = []
    monkeypatch.setattr("tui.cli.commands.convert.run_job",
                        lambda args, project, kind, job_args, **kw: calls.append((kind, job_args)) or 0)
    return calls


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), " ".join(err.split())


# ---- a source is never written over --------------------------------------------------------------

def test_convert_refuses_to_write_over_a_source_even_with_overwrite(home, with_source, media, capsys, started):
    project, src = with_source
    before = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, err = run(capsys, "convert", "pair", "-i", str(media / "astronaut.png"), "-o", str(src), *extra)
        assert code == 2 and "never overwrites a source" in err and str(src) in err
    assert started == [] and src.read_bytes() == before


def test_the_convert_job_refuses_a_source_too(home, with_source, media):
    """The job checks again: a script or another front end cannot write over a source either."""
    project, src = with_source
    before = src.read_bytes()
    job = jobs.run_inline(project, "convert", {"input": str(media / "astronaut.png"), "output": str(src),
                                               "overwrite": True})
    assert job.state == "failed" and "never overwrites a source" in job.reason
    assert src.read_bytes() == before


def test_a_folder_source_is_not_written_into(project, media):
    folder = media / "photos"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "1.png")
    P.add_sources(project, "b", [folder])
    with pytest.raises(ConvertError, match="never overwrites a source"):
        convert.resolve_output(project, media / "astronaut.png", "image", "a-to-b", str(folder / "new.png"),
                               overwrite=True)


# ---- another existing file: only when asked ------------------------------------------------------------

def test_an_existing_output_is_refused_without_overwrite_when_nobody_can_be_asked(home, project, media, capsys,
                                                                                  started):
    out = media / "old.png"
    out.write_bytes(b"an earlier result")
    code, _, err = run(capsys, "convert", "pair", "-i", str(media / "astronaut.png"), "-o", str(out))
    assert code == 2 and "exists" in err and "--overwrite" in err
    assert started == [] and out.read_bytes() == b"an earlier result"
    code, _, _ = run(capsys, "convert", "pair", "-i", str(media / "astronaut.png"), "-o", str(out), "--overwrite")
    assert code == 0 and started[-1][1]["overwrite"] is True and started[-1][1]["output"] == str(out)


def test_an_existing_output_is_replaced_only_after_a_yes(home, project, media, capsys, started, monkeypatch):
    out = media / "old.png"
    out.write_bytes(b"an earlier result")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked = []
    monkeypatch.setattr("builtins.input", lambda q: asked.append(q) or "n")
    code, _, err = run(capsys, "convert", "pair", "-i", str(media / "astronaut.png"), "-o", str(out))
    assert code == 2 and started == [] and str(out) in asked[0] and "Replace" in asked[0]
    monkeypatch.setattr("builtins.input", lambda q: "y")
    code, _, _ = run(capsys, "convert", "pair", "-i", str(media / "astronaut.png"), "-o", str(out))
    assert code == 0 and started[-1][1]["overwrite"] is True


def test_the_convert_job_refuses_an_existing_output_without_overwrite(home, project, media):
    out = media / "old.png"
    out.write_bytes(b"an earlier result")
    job = jobs.run_inline(project, "convert", {"input": str(media / "astronaut.png"), "output": str(out)})
    assert job.state == "failed" and "--overwrite" in job.reason
    assert out.read_bytes() == b"an earlier result"


def test_the_default_output_is_still_replaced_by_a_rerun(project, media):
    default = convert.default_output(project, media / "astronaut.png", "image", "a-to-b")
    default.parent.mkdir(parents=True, exist_ok=True)
    default.write_bytes(b"the previous run")
    assert convert.resolve_output(project, media / "astronaut.png", "image", "a-to-b", None) == default


def test_the_tui_convert_screen_asks_before_replacing_and_never_writes_over_a_source(home, with_source, media):
    project, src = with_source
    out = media / "old.png"
    out.write_bytes(b"an earlier result")

    async def flow():
        app = make_app(home)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter", "c")
            app.screen.query_one("#convert-input").value = str(media / "astronaut.png")
            app.screen.query_one("#opt-output").value = str(out)
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: "exists" in screen_text(app), what="the replace question")
            assert "Replace" in screen_text(app)
            await pilot.press("n")
            await pilot.pause(0.2)
            assert jobs.project_jobs(project) == [] and out.read_bytes() == b"an earlier result"

            app.screen.query_one("#opt-output").value = str(src)
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: any("never overwrites a source" in m for m in notifications(app)),
                           what="the refusal")
            assert jobs.project_jobs(project) == []

    asyncio.run(flow())


# ---- .mkv: no C2PA, said before the job starts ------------------------------------------------------------

def test_no_label_mkv_says_before_the_job_that_there_is_no_c2pa(home, project, media, capsys, started):
    out = media / "out.mkv"
    code, text, _ = run(capsys, "convert", "pair", "-i", str(media / "clip.mp4"), "-o", str(out), "--no-label")
    assert code == 0 and len(started) == 1
    assert "C2PA cannot sign .mkv" in text and "no C2PA manifest" in text and "metadata alone" in text
    assert "(metadata only)" in text and "C2PA)" not in text
    code, text, _ = run(capsys, "convert", "pair", "-i", str(media / "clip.mp4"), "-o", str(media / "out.mp4"),
                        "--no-label")
    assert code == 0 and "C2PA cannot sign" not in text and "(metadata, C2PA)" in text


def test_convert_help_says_mkv_gets_no_c2pa(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "C2PA cannot sign .mkv" in text
    assert "C2PA labels are always written" not in text
    assert "--overwrite" in text


def test_c2pa_possible():
    assert convert.c2pa_possible(Path("a.mp4"), "video") and convert.c2pa_possible(Path("a.png"), "image")
    assert not convert.c2pa_possible(Path("a.mkv"), "video")
    assert convert.c2pa_possible(Path("out"), "folder")
