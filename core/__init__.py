"""facepair's domain library: projects, jobs, media, alignment, training, conversion.

Headless by contract: nothing under `core` imports Textual or `tui` (tests/test_headless.py).
Heavy dependencies (jax, dlib, cv2) are imported by the modules that need them, never here.
"""

__version__ = "0.1.0"
