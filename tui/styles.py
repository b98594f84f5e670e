"""The colours the command line and the app share, so a job state or a message level looks the
same on every screen and in every command.

Plain Rich style strings: nothing here imports Textual, so the command line can use it.
"""

from __future__ import annotations

from core.jobs.control import UNREADABLE

JOB_STATE_STYLE = {
    "queued": "cyan",
    "running": "bold cyan",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    UNREADABLE: "bold red",
}

LEVEL_STYLE = {"info": "", "warning": "yellow", "error": "bold red"}


def job_state_style(state: str | None) -> str:
    """The style of a job state; unstyled for anything else."""
    return JOB_STATE_STYLE.get(state or "", "")
