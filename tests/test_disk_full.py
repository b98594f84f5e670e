"""A full disk: every command says so in one line (where, and that nothing was lost), leaves no
empty job folder, and a job that runs out of space ends `failed` with the reason "disk full: …".

The disk is a real one when this process may mount: a small tmpfs filled to its last byte (we
run as root here and in CI). Where mounting is not permitted, the same tests run with ENOSPC
injected at the two places those commands write (fsync of an atomic write, a copy), so they
never skip entirely.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from core.jobs import control as jobs
from core.jobs import kinds as jobkinds
from core.project.projects import add_sources, create_project, load_project
from tui.cli.main import main

NO_SPACE = "No space left on device"


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                         capture_output=True, text=True)
    return res.returncode == 0


def _fill(folder: Path) -> None:
    """Write until the filesystem has not one byte left."""
    with open(folder / "filler", "ab", buffering=0) as f:
        for block in (1 << 16, 1 << 10, 1):
            try:
                while f.write(b"\0" * block):
                    pass
            except OSError as e:
                assert e.errno == errno.ENOSPC
    assert shutil.disk_usage(folder).free == 0


def _inject_enospc(monkeypatch, root: Path) -> None:
    """Every fsync of a file under `root` and every copy into it fails with ENOSPC (a copy
    cut short leaves its partial file, as a real one does)."""
    real_fsync, real_copy2 = os.fsync, shutil.copy2

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(root)):
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real_fsync(fd)

    def copy2(src, dst, **kw):
        if str(dst).startswith(str(root)):
            dest = Path(dst) / Path(src).name if Path(dst).is_dir() else Path(dst)
            dest.write_bytes(b"half a copy")
            raise OSError(errno.ENOSPC, NO_SPACE, str(src), None, str(dest))
        return real_copy2(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(shutil, "copy2", copy2)


@pytest.fixture(params=["tmpfs", "injected"])
def full_disk(request, tmp_path, monkeypatch, astronaut):
    """(home, project, a photo outside the disk, mount point) with the home's disk full."""
    from PIL import Image

    mnt = tmp_path / "disk"
    mnt.mkdir()
    photo = tmp_path / "photo.png"
    Image.fromarray(astronaut).save(photo)
    mounted = request.param == "tmpfs" and _mount_tmpfs(mnt, "3m")
    if request.param == "tmpfs" and not mounted:
        pytest.skip("mounting a tmpfs is not permitted here (the injected variant covers the same cases)")
    try:
        home = mnt / "home"
        home.mkdir()
        monkeypatch.setenv("FACEPAIR_HOME", str(home))
        project = create_project(home, "pair", "Alice", "Bob", "Alice and Bob agreed in writing to this test.")
        add_sources(project, "b", [photo])
        if mounted:
            _fill(mnt)
        else:
            _inject_enospc(monkeypatch, mnt)
        yield home, load_project(home, "pair"), photo, mnt
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


COMMANDS = [
    ("new", "other", "--a", "Cy", "--b", "Di", "--consent", "Cy and Di agreed."),
    ("add-source", "pair", "a", "{photo}"),
    ("add-source", "pair", "a", "{photo}", "--copy"),
    ("train", "pair", "--steps", "1"),
    ("extract", "pair"),
    ("convert", "pair", "-i", "{photo}"),
    ("selftest", "pair"),
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:1] + a[-1:]))
def test_every_command_says_disk_full_in_one_line_and_changes_nothing(full_disk, capsys, argv):
    home, project, photo, mnt = full_disk
    before = project.file.read_bytes()
    code = main([a.format(photo=photo) for a in argv])
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, out + err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: disk full") and str(mnt) in lines[0], err
    assert "nothing was" in lines[0], err
    # Nothing was lost or left: the same project.toml, no job folder, no partial copy, no new project.
    assert project.file.read_bytes() == before
    assert not (home / "other").exists()
    # (a lock's flock guard, `runs/.NAME.lock.guard`, is an empty file kept for good: not a job)
    assert [p for p in project.runs_dir.iterdir() if not p.name.endswith(".guard")] == []
    assert list(project.sources_dir("a").iterdir()) == []
    assert load_project(home, "pair").sources == project.sources


def fill_disk_job(ctx, how: str = "write", path: str | None = None):
    """A job kind for these tests: runs out of space the way a stage does."""
    ctx.progress(1, 10, stage="writing")
    if how == "write":  # a stage writing its output until the disk is full (a real ENOSPC)
        with open(Path(path or ctx.project.root) / "big.bin", "ab", buffering=0) as f:
            while True:
                f.write(b"\0" * (1 << 16))
    if how == "oserror":
        raise OSError(errno.ENOSPC, NO_SPACE, str(ctx.project.model_dir / "status.json"))
    if how == "orbax":  # a training checkpoint that does not fit (the real orbax/tensorstore save)
        import numpy as np

        from core.train import model_io

        manager = model_io.checkpoint_manager(ctx.project.model_dir / "checkpoints")
        weights = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)  # 4 MiB, incompressible
        model_io.save_checkpoint(manager, 1, {"w": weights}, {"preset": "tiny", "step": 1})
    # What orbax/tensorstore raise then (as captured on a full tmpfs).
    tmp = f"{ctx.project.model_dir}/checkpoints/40.orbax-checkpoint-tmp/state.orbax-checkpoint-tmp/ocdbt.process_0"
    raise ValueError(f'RESOURCE_EXHAUSTED: Error writing "w/0.0" in OCDBT database at local file "{tmp}/": '
                     f'Failed writing: "{tmp}/d/0ccb198e": Failed to write 2704801 bytes to file 14: '
                     f"{NO_SPACE} [os_error_code='28']")


@pytest.fixture
def fill_kind(monkeypatch):
    monkeypatch.setitem(jobkinds.KINDS, "fill-disk", "tests.test_disk_full:fill_disk_job")


def _one_line_disk_full(job, mnt) -> None:
    assert job.state == "failed"
    assert job.reason.startswith("disk full: no space left on ") and "\n" not in job.reason
    assert str(mnt) in job.reason and "what it saved before is kept" in job.reason
    assert "RESOURCE_EXHAUSTED" not in job.reason and "ValueError" not in job.reason


@pytest.mark.parametrize("how", ["oserror", "tensorstore"])
def test_a_job_that_runs_out_of_space_fails_with_disk_full(project, fill_kind, how):
    job = jobs.run_inline(project, "fill-disk", {"how": how})
    _one_line_disk_full(job, "/")
    assert str(project.model_dir) in job.reason  # where it was writing
    assert jobs.load_job(job.dir).reason == job.reason


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A home on a 2 MiB tmpfs (skipped where mounting is not permitted)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        home = mnt / "home"
        home.mkdir()
        monkeypatch.setenv("FACEPAIR_HOME", str(home))
        yield home, mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_training_checkpoint_that_does_not_fit_fails_with_disk_full(small_disk, fill_kind):
    home, mnt = small_disk
    project = create_project(home, "pair", "Alice", "Bob", "Alice and Bob agreed in writing to this test.")
    job = jobs.run_inline(project, "fill-disk", {"how": "orbax"})
    _one_line_disk_full(job, mnt)
    assert f"writing {project.model_dir}/checkpoints/" in job.reason
    assert jobs.load_job(job.dir).state == "failed"


def test_a_job_that_fills_a_real_disk_still_records_failed(small_disk, fill_kind):
    """The disk fills mid-run: job.json still ends `failed` with the reason (rewritten in place,
    as there is no room for a temp file), and `facepair jobs` shows it."""
    home, mnt = small_disk
    project = create_project(home, "pair", "Alice", "Bob", "Alice and Bob agreed in writing to this test.")
    job = jobs.run_inline(project, "fill-disk", {"how": "write"})
    assert shutil.disk_usage(mnt).free == 0
    _one_line_disk_full(job, mnt)
    assert job.reason.startswith(f"disk full: no space left on {mnt} (0 B free); ")  # a bare write names no file
    final = jobs.load_job(job.dir)
    assert (final.state, final.reason) == ("failed", job.reason)
    (listed,) = jobs.all_jobs(home)
    assert listed.state == "failed"


def test_the_tui_says_disk_full_when_a_job_cannot_start(full_disk):
    import asyncio

    from tests.fixtures.tui import make_app, notifications

    home, project, photo, mnt = full_disk

    async def flow():
        app = make_app(home)
        async with app.run_test(size=(100, 30)) as pilot:
            assert app.start_job(project, "selftest", {"seconds": 0, "steps": 1}) is None
            await pilot.pause(0.1)
            (note,) = [n for n in notifications(app) if "disk full" in n]
            assert str(mnt) in note and "nothing was lost" in note
        assert list(project.runs_dir.iterdir()) == []

    asyncio.run(flow())


@pytest.mark.parametrize("fails", ["log", "launch"])
def test_a_start_that_runs_out_of_space_leaves_no_job_and_no_process(project, monkeypatch, fails):
    """The disk fills after job.json: opening the log, or recording the runner's pid in
    launch.json once it runs. The start fails with disk full; no half-made job is left (one stuck
    'queued' forever) and no runner runs on unrecorded."""
    started = []
    real_popen, real_write, real_open = subprocess.Popen, jobs.atomic_write_json, open

    def popen(*a, **kw):
        started.append(real_popen(*a, **kw))
        return started[-1]

    def write(path, data):
        if Path(path).name == jobs.LAUNCH_FILE:
            raise OSError(errno.ENOSPC, NO_SPACE, str(path))
        return real_write(path, data)

    def opener(path, *a, **kw):
        if fails == "log" and Path(path).name == "log.txt":
            raise OSError(errno.ENOSPC, NO_SPACE, str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(jobs.subprocess, "Popen", popen)
    monkeypatch.setattr(jobs, "atomic_write_json", write)
    monkeypatch.setattr("builtins.open", opener)
    with pytest.raises(OSError) as err:
        jobs.start_job(project, "selftest", {"seconds": 30})
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert not [d for d in project.runs_dir.iterdir() if d.is_dir()], "a half-made job folder is left"
    assert (len(started) == 1) == (fails == "launch")
    for proc in started:
        assert proc.poll() is not None, "the runner runs on though nobody recorded it"
