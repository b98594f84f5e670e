"""Measuring swaps: identity, expression, pose, detail and seam figures; the `eval` job.

May import `core.convert` and the layers below it.
"""
