"""What `facepair list/show` and the TUI's projects table say about a project, as plain data.

Reads only small files: project.toml, the face folders and their trash (`faces` counts each side's
crops after removals, `trash` the removed ones: core.faces.curation), `model/status.json` (written
by the training job: preset, step, last losses) and the jobs' state files; and each source's state
(`core.faces.sources.source_state`: its store's meta and markers, ~2 MiB of the file, cached).
"""

from __future__ import annotations

from pathlib import Path

from core.errors import FacepairError
from core.faces.curation import side_counts
from core.faces.sources import source_state
from core.jobs import control as jobs
from core.project.projects import Project, load_project, project_names
from core.system.atomic import read_json

MODEL_STATUS = "status.json"


def model_status(project: Project) -> dict | None:
    """The training job's last word on the model (preset, step, loss_a, loss_b, updated), or None."""
    try:
        return read_json(project.model_dir / MODEL_STATUS)
    except (FileNotFoundError, ValueError):
        return None


def last_output(project: Project) -> Path | None:
    d = project.output_dir
    if not d.is_dir():
        return None
    files = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")]
    return max(files, key=lambda p: p.stat().st_mtime) if files else None


def summarize(project: Project, source_states: bool = True) -> dict:
    """`facepair show`'s data. `source_states`: each source's state too (core.media.fingerprint: reads
    ~2 MiB of each file once per process; `summarize_all`, for list and the projects table, skips it)."""
    status = model_status(project) or {}
    active = [j for j in jobs.project_jobs(project) if j.active]
    out = last_output(project)
    return {
        "name": project.name,
        "path": str(project.root),
        "labels": {"a": project.label_a, "b": project.label_b},
        "created": project.created,
        "consent": {
            "statement": project.consent.statement,
            "by": list(project.consent.by),
            "recorded": project.consent.recorded,
            "recorded_by": project.consent.recorded_by,
        },
        "sources": {
            side: [{"id": s.id, "path": s.path, "kind": s.kind, "size": s.size, **(source_state(project, s) if source_states else {})}
                   for s in project.sources_of(side)]
            for side in ("a", "b")
        },
        "faces": {side: project.face_count(side) for side in ("a", "b")},
        "trash": {side: side_counts(project, side)["trash"] for side in ("a", "b")},
        "training": {
            "preset": status.get("preset"),
            "step": status.get("step", 0),
            "loss_a": status.get("loss_a"),
            "loss_b": status.get("loss_b"),
            "updated": status.get("updated"),
        },
        "running_jobs": [{"id": j.id, "kind": j.kind, "state": j.state, "pid": j.pid} for j in active],
        "last_output": str(out) if out else None,
    }


def training_job(project: Project) -> str | None:
    """The id of the job holding the project's model lock (a training run), or None. Curation tells
    the user that such a run keeps the faces it loaded until it is resumed."""
    from core.jobs import locks

    info = locks.holder(project, "model")
    return str(info.get("job") or "?") if info is not None else None


def summarize_all(home: Path) -> list[dict]:
    """One summary per project; a project that cannot be read appears with its error."""
    rows = []
    for name in project_names(home):
        try:
            rows.append(summarize(load_project(home, name), source_states=False))
        except FacepairError as e:
            rows.append({"name": name, "path": str(Path(home) / name), "error": str(e)})
    return rows
