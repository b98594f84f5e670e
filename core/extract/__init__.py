"""Extraction: sources → detected, aligned, filtered face crops and the alignments store; the `extract` job.

May import `core.jobs`, `core.faces` and the layers below them.
"""
