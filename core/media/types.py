"""Which files facepair treats as videos and as images, by extension (content is checked later)."""

from __future__ import annotations

from pathlib import Path

VIDEO_EXTS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def images_in(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, in a stable (sorted by name) order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_image(p))


def classify(path: Path) -> str | None:
    """'video', 'image' or 'folder' for a path facepair can read, else None."""
    if path.is_dir():
        return "folder"
    if path.is_file():
        if is_video(path):
            return "video"
        if is_image(path):
            return "image"
    return None
