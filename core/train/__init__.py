"""Training: the `train` job around `core.jaxmodels`, devices, checkpoints and the model on disk.

May import `core.jobs`, `core.faces`, `core.jaxmodels` and the layers below them (not `core.extract`).
"""
