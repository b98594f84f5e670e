"""Pixels in and out: probing and reading images and videos, writing them (with audio and metadata),
the synthetic-media label, file fingerprints, and the synthetic clips of the demo and the tests.

May import `core.errors` and `core.system`.
"""
