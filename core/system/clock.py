"""The wall clock as facepair records it: local time with its UTC offset, to the second.

One definition, so every record (projects, jobs, models, labels) writes time the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """Now as ISO 8601 in local time with the offset, e.g. 2025-01-31T14:05:09+01:00."""
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")
