"""Jobs: detached processes that write their state and events into the project.

The record (job.json), control (start, list, cancel, follow), the runner (the process itself), the
kinds registry, the event log, the project locks and the `selftest` kind. May import `core.project`
and the layers below it; pipelines are reached only by name, through `core.jobs.kinds`.
"""
