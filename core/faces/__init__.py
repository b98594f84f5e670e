"""Faces: detection and landmarks (dlib), alignment to the head crop, the alignments store, face sets,
and what a source's store says about it (`sources`: extracted, changed, partial…).

May import `core.project` and the layers below it.
"""
