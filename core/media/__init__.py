"""Pixels in and out: probing (probe), reading images and videos (read), writing them with audio and
metadata (write), the synthetic-media label (label), file fingerprints, and the synthetic clips of
the demo and the tests (synth).

May import `core.errors` and `core.system`.
"""
