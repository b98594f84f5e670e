"""Conversion: the swap pipeline (decode → find → match → swap → merge → label → encode), merging, the jobs.

plan (checks, the output), sources (frames and their faces), identity (`--faces match`), converter
(the model and the threaded stages), merge, sinks (video, still, folder), pipeline (the `convert`
and `preview` jobs).

May import `core.train` (the model on disk), `core.extract` (the face finder) and the layers below.
"""
