"""Extraction: sources → detected, aligned, filtered face crops and the alignments store; the `extract` job.

finder (`find_faces`, which conversion, fit and evaluation use too), identity (the identity filter),
source (one source: its store, resume, crops), pipeline (the `extract` job), missing (frames with no
face or a lost track), redo (`--redo-missing`: re-detecting them).

May import `core.jobs`, `core.faces` and the layers below them.
"""
