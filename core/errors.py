"""Errors a user can act on. The CLI prints `str(err)` and exits 2; the TUI shows the same words."""


class FacepairError(Exception):
    """Base for every error whose message is meant for the user, not a traceback."""


class ProjectError(FacepairError):
    """A project is missing, malformed, or a request about it breaks a rule."""


class JobError(FacepairError):
    """A job cannot be started, found, or controlled."""


class LockHeld(JobError):
    """Another live job holds the lock this job needs."""


class JobCancelled(Exception):
    """Raised inside a job when a cancel was requested; the runner records `cancelled`.

    Not a FacepairError: it is control flow, not a user-facing failure.
    """
