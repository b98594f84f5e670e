"""Faces: detection and landmarks (dlib), alignment to the head crop, the alignments store, face sets.

May import `core.project` and the layers below it.
"""
