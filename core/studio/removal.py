"""Deleting a project: refused while a job of it runs, and only what looks like a project folder.

Here, above `core.jobs`, because the refusal reads the project's jobs; `core.project` knows the
folder and its files, not the jobs that run in it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from core.errors import ProjectError
from core.jobs.record import LAUNCH_FILE, load_job
from core.project.projects import PROJECT_FILE, load_project, not_a_project_folder, project_root
from core.system import procs
from core.system.atomic import read_json


def live_jobs(root: Path) -> list[str]:
    """The jobs in ROOT/runs that still run: job.json says queued or running and its process lives,
    or job.json cannot be read and launch.json names a live process (an unreadable job counts as
    running while its process does)."""
    runs = Path(root) / "runs"
    out = []
    if not runs.is_dir():
        return out
    for d in sorted(runs.iterdir()):
        if not d.is_dir():
            continue
        try:
            if load_job(d).active:
                out.append(d.name)
            continue
        except Exception:  # unreadable or missing job.json: its launcher's record decides
            pass
        try:
            launch = read_json(d / LAUNCH_FILE)
            if procs.is_alive(launch.get("pid"), launch.get("pid_start")):
                out.append(f"{d.name} (job.json unreadable, pid {launch.get('pid')} alive)")
        except (OSError, ValueError, AttributeError):
            continue
    return out


def delete_project(home: Path, name: str, unreadable_ok: bool = False) -> Path:
    """Delete HOME/NAME. Refused while a job of it runs. A project whose project.toml cannot be read
    is deleted only with `unreadable_ok` (the caller asked the user) and only when the folder looks
    like a facepair project folder (`not_a_project_folder`)."""
    root = project_root(home, name)
    if not (root / PROJECT_FILE).is_file():
        raise ProjectError(f"no project named {name!r} in {home}")
    try:
        load_project(home, name)
    except ProjectError as e:
        if not unreadable_ok:
            raise
        why = not_a_project_folder(root)
        if why:
            raise ProjectError(f"not deleting {root}: its {PROJECT_FILE} cannot be read ({e}) and {why}; "
                               f"delete it by hand if it is yours to delete") from e
    active = live_jobs(root)
    if active:
        raise ProjectError(f"project {name!r} has running jobs ({', '.join(active)}); cancel them first")
    shutil.rmtree(root)
    return root
