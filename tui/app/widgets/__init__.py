"""Widgets of the facepair TUI: each renders state it is handed; none starts work or reads jobs itself."""
