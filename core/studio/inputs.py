"""What a conversion's input is likely to be: the project's recent convert and preview inputs, then
side A's sources (the footage B's face goes onto). The convert screen offers these instead of an
empty path; plain data, newest first, each path once, only paths that still exist."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.jobs import control as jobs
from core.project.projects import Project

INPUT_KINDS = ("convert", "preview")


@dataclass(frozen=True)
class InputChoice:
    path: str
    origin: str  # "recent" (a past convert/preview job's input) or "side A" / "side B" (a source)

    @property
    def label(self) -> str:
        return f"{Path(self.path).name}  ({self.origin})"


def recent_inputs(project: Project) -> list[str]:
    """Inputs of the project's convert and preview jobs, newest first, each once."""
    seen: dict[str, None] = {}
    for job in jobs.project_jobs(project, unreadable=False):
        path = job.args.get("input") if job.kind in INPUT_KINDS and isinstance(job.args, dict) else None
        if isinstance(path, str) and path:
            seen.setdefault(path, None)
    return list(seen)


def convert_inputs(project: Project, limit: int = 12) -> list[InputChoice]:
    """Recent inputs, then side A's sources (a b-to-a swap converts B's: they come last)."""
    choices: dict[str, InputChoice] = {}
    for path in recent_inputs(project):
        choices.setdefault(path, InputChoice(path, "recent"))
    for side in ("a", "b"):
        for src in project.sources_of(side):
            choices.setdefault(src.path, InputChoice(src.path, f"side {side.upper()}"))
    return [c for c in choices.values() if Path(c.path).exists()][:limit]
