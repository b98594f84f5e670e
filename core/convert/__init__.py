"""Conversion: the swap pipeline (decode → find → match → swap → merge → label → encode), merging, the jobs.

May import `core.train` (the model on disk), `core.extract` (the face finder) and the layers below.
"""
