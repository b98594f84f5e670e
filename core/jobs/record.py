"""The job record: `job.json` (kind, args, pid, state, times, reason, result) read, checked and
saved, the `Job` it holds and the names of the files beside it.

`job.json` is checked field by field when it is read (valid JSON with a wrongly typed field is as
unreadable as a torn file): `load_job` raises JobError naming the file and the field. A job whose
process has gone while it still says queued/running becomes failed ("process vanished") when it is
loaded. Imported by `control` (which starts jobs) and `runner` (the job's own process) alike.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.errors import JobError
from core.project.projects import now_iso
from core.system import diskfull, procs
from core.system.atomic import atomic_write_json, read_json

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")
UNREADABLE = "unreadable"  # a listing's stand-in for a folder whose job.json cannot be read
JOB_FILE = "job.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "log.txt"
LAUNCH_FILE = "launch.json"
VANISHED = "process vanished"


@dataclass
class Job:
    dir: Path
    id: str
    kind: str
    project: str
    args: dict
    state: str
    created: str
    pid: int | None = None
    pid_start: int | None = None
    started: str | None = None
    ended: str | None = None
    reason: str | None = None
    result: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def events_path(self) -> Path:
        return self.dir / EVENTS_FILE

    @property
    def log_path(self) -> Path:
        return self.dir / LOG_FILE

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def to_json(self) -> dict:
        d = {
            "id": self.id, "kind": self.kind, "project": self.project, "args": self.args,
            "state": self.state, "created": self.created, "pid": self.pid, "pid_start": self.pid_start,
            "started": self.started, "ended": self.ended, "reason": self.reason, "result": self.result,
        }
        d.update(self.extra)
        return d

    @property
    def readable(self) -> bool:
        return self.state != UNREADABLE

    @classmethod
    def from_json(cls, dir: Path, d: dict) -> Job:
        """A job from its job.json content; ValueError naming the field when a field has the wrong type."""
        _check_fields(d)
        known = set(_FIELDS)
        return cls(
            dir=dir, id=d["id"], kind=d["kind"], project=d.get("project", ""), args=d.get("args", {}),
            state=d["state"], created=d.get("created", ""), pid=d.get("pid"), pid_start=d.get("pid_start"),
            started=d.get("started"), ended=d.get("ended"), reason=d.get("reason"), result=d.get("result"),
            extra={k: v for k, v in d.items() if k not in known},
        )

    @classmethod
    def unreadable(cls, dir: Path, reason: str) -> Job:
        """What a listing shows for a job folder whose job.json cannot be read."""
        try:
            created = datetime.fromtimestamp((dir / JOB_FILE).stat().st_mtime).astimezone().isoformat(timespec="seconds")
        except OSError:
            created = ""
        reason = reason.replace(f"{dir}{os.sep}", "")  # the folder is shown beside it
        return cls(dir=dir, id=dir.name, kind="?", project=dir.parent.parent.name, args={}, state=UNREADABLE,
                   created=created, reason=reason)

    def save(self) -> None:
        path = self.dir / JOB_FILE
        try:
            atomic_write_json(path, self.to_json())
        except OSError as e:
            # A full disk has no room for the temp file; the existing job.json's own blocks
            # still take the new state (it is small), so a job that fails for want of space
            # still says so. Not atomic: only when there is no other way.
            if not (diskfull.is_disk_full(e) and path.is_file()):
                raise
            _rewrite_in_place(path, (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode())

    def age_s(self) -> float:
        try:
            return time.time() - datetime.fromisoformat(self.created).timestamp()
        except ValueError:
            return 0.0


# job.json's fields: (allowed types, required). None means JSON null. bool is not a number here.
_FIELDS: dict[str, tuple[tuple, bool]] = {
    "id": ((str,), True), "kind": ((str,), True), "project": ((str,), False), "args": ((dict,), False),
    "state": ((str,), True), "created": ((str,), False), "pid": ((int, None), False),
    "pid_start": ((int, None), False), "started": ((str, None), False), "ended": ((str, None), False),
    "reason": ((str, None), False), "result": ((dict, None), False),
}
_TYPE_WORDS = {str: "a string", int: "a whole number", dict: "an object", None: "null"}


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {str: "a string", int: "a whole number", float: "a number", dict: "an object",
            list: "a list"}.get(type(value), type(value).__name__)


def _check_fields(d) -> None:
    """ValueError saying which field of job.json is missing or of the wrong type."""
    if not isinstance(d, dict):
        raise ValueError(f"it holds {_json_type(d)}, not a JSON object")
    for name, (types, required) in _FIELDS.items():
        if name not in d:
            if required:
                raise ValueError(f"field {name!r} is missing")
            continue
        value = d[name]
        ok = (value is None and None in types) or (
            value is not None and not isinstance(value, bool) and isinstance(value, tuple(t for t in types if t)))
        if not ok:
            want = " or ".join(_TYPE_WORDS[t] for t in types)
            raise ValueError(f"field {name!r} is {value!r:.60} ({_json_type(value)}), not {want}")
    if d["state"] not in ACTIVE + FINAL:
        raise ValueError(f"field 'state' is {d['state']!r:.60}, not one of {', '.join(ACTIVE + FINAL)}")


def _rewrite_in_place(path: Path, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def load_job(job_dir: Path, check: bool = True) -> Job:
    """Read a job's state; with `check`, a queued/running job whose process is gone becomes failed."""
    job = _read_job(job_dir)
    if check and job.active and job.pid is None:
        try:
            launch = read_json(job_dir / LAUNCH_FILE)
        except (OSError, ValueError):
            launch = None
        if isinstance(launch, dict) and _is_int(launch.get("pid")) and _is_int(launch.get("pid_start"), none=True):
            job.pid, job.pid_start = launch["pid"], launch.get("pid_start")
    if check and job.active and job.pid and not procs.is_alive(job.pid, job.pid_start):
        # Re-read: the process may have written its final state just before exiting.
        job = _read_job(job_dir)
        if job.active:
            job.state, job.reason, job.ended = "failed", VANISHED, now_iso()
            job.save()
    return job


def _is_int(value, none: bool = False) -> bool:
    return (none and value is None) or (isinstance(value, int) and not isinstance(value, bool))


def _read_job(job_dir: Path) -> Job:
    path = job_dir / JOB_FILE
    try:
        return Job.from_json(job_dir, read_json(path))
    except FileNotFoundError:
        raise JobError(f"{job_dir} is not a job (no {JOB_FILE})") from None
    except UnicodeDecodeError:
        raise JobError(f"{path} is unreadable: it is not UTF-8 text") from None
    except ValueError as e:  # not JSON, or a field of the wrong type
        raise JobError(f"{path} is unreadable: {e}") from None
    except OSError as e:
        raise JobError(f"{path} is unreadable: {e.strerror or e}") from None
