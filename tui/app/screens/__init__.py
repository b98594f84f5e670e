"""Screens of the facepair TUI, one module each; they read state through `core` and start detached jobs."""
