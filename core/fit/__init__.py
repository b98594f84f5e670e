"""The pair finder: how well person B's face fits the people in candidate footage; the `fit` job.

May import `core.extract` and the layers below it.
"""
