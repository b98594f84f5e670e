"""Whole-project views and operations that read its jobs too: the overview behind `facepair list/show`
and deleting a project (refused while a job of it runs).

May import `core.evaluate` and the layers below it; used by `tui`, `core.demo` and `core.bench`.
"""
