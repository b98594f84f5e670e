"""Whole-project views and operations that read its jobs too: the overview behind `facepair list/show`.

Above `core.jobs`; used by `tui`.
"""
