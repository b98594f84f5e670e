"""A path input that completes file and folder names as you type (Tab or → accepts)."""

from __future__ import annotations

import os
from pathlib import Path

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input

MAX_LISTED = 2000  # a huge folder is not worth listing on every keystroke


def complete_path(value: str, only_dirs: bool = False) -> str | None:
    """`value` extended by the longest unambiguous completion of its last path component.

    Keeps what the user typed (`~`, relative paths) and appends `/` to a unique folder. Hidden
    entries are offered only when the typed name starts with a dot. None when nothing matches.
    """
    if not value:
        return None
    expanded = os.path.expanduser(value)
    folder, _, prefix = expanded.rpartition(os.sep)
    base = Path(folder or ("/" if expanded.startswith(os.sep) else "."))
    if expanded.startswith(os.sep) and not folder:
        base = Path("/")
    try:
        entries = []
        with os.scandir(base) as it:
            for i, e in enumerate(it):
                if i >= MAX_LISTED:
                    break
                if not e.name.startswith(prefix) or (e.name.startswith(".") and not prefix.startswith(".")):
                    continue
                try:
                    is_dir = e.is_dir()
                except OSError:
                    is_dir = False
                if only_dirs and not is_dir:
                    continue
                entries.append((e.name, is_dir))
    except OSError:
        return None
    if not entries:
        return None
    names = sorted(n for n, _ in entries)
    common = os.path.commonprefix(names)
    if len(entries) == 1:
        name, is_dir = entries[0]
        completed = value + name[len(prefix):] + (os.sep if is_dir else "")
    else:
        completed = value + common[len(prefix):]
    return completed if completed != value else None


class PathSuggester(Suggester):
    def __init__(self, only_dirs: bool = False):
        super().__init__(use_cache=False, case_sensitive=True)
        self.only_dirs = only_dirs

    async def get_suggestion(self, value: str) -> str | None:
        return complete_path(value, self.only_dirs)


class PathInput(Input):
    """An Input with filesystem completion; Tab accepts the suggestion (or moves on when none)."""

    BINDINGS = [Binding("tab", "complete", "Complete path", id="path.complete", show=True)]

    def __init__(self, value: str = "", *, placeholder: str = "path (Tab completes)", only_dirs: bool = False,
                 id: str | None = None, classes: str | None = None):
        super().__init__(value, placeholder=placeholder, suggester=PathSuggester(only_dirs), id=id, classes=classes)

    def action_complete(self) -> None:
        suggestion = self._suggestion
        if suggestion and len(suggestion) > len(self.value) and suggestion.startswith(self.value):
            self.value = suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()
