"""Exporting from the TUI: `o` on the project screen opens the export options; the job runs detached
and writes the file (the same `export` job as `facepair export`)."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from core.jobs import control as jobs
from core.project.projects import load_project
from tests.fixtures.tui import make_app, screen_text, wait_for

pytest.importorskip("onnxruntime")
pytest.importorskip("jax2onnx")


def test_export_from_the_project_screen(trained_project, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    project = load_project(home, trained_project.name)
    out = tmp_path / "model.onnx"

    async def flow():
        app = make_app(home)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter")
            await wait_for(pilot, lambda: "synthpair" in screen_text(app), what="the project screen")
            await pilot.press("o")
            await wait_for(pilot, lambda: "Export the model" in screen_text(app), what="the export dialog")
            app.screen.query_one("#opt-format").value = "onnx"
            app.screen.query_one("#opt-output").value = str(out)
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: jobs.project_jobs(project), what="the export job")
            job = jobs.project_jobs(project)[0]
            assert job.kind == "export" and job.args["format"] == "onnx"
            await wait_for(pilot, lambda: not jobs.load_job(job.dir).active, timeout=120, what="the export")
            done = jobs.load_job(job.dir)
            assert done.state == "succeeded", done.reason
            assert out.is_file() and done.result["path"] == str(out)
            assert max(done.result["max_abs_diff"].values()) <= 1e-3

    try:
        asyncio.run(flow())
    finally:
        for job in jobs.project_jobs(project):
            if job.active:
                jobs.cancel_job(job, grace=2)
