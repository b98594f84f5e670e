"""A side's crops decoded once: the packed face cache beside the PNGs, `faces/SIDE/.cache/`.

Decoding PNGs is what loading a large face set costs (10,000 crops of 256 px: about a minute on
two cores). The cache keeps each crop's pixels as decoded (RGB uint8, the crop's own size) in raw
chunk files, `crops-ID.rgb` (rows of S×S×3 bytes; ID random, so loads running at once never pick
one name), and `index.json` says which crop is where:
`{"version": 1, "chunks": {FILE: [rows, S]}, "entries": {NAME: [FILE, row, bytes, mtime_ns]}}`.
A crop is taken from the cache only while its PNG has the size and modification time recorded
(to the nanosecond), so a crop rewritten by a new extraction is decoded again; pixels are the
PNG's exactly. The chunks are mapped, not read, so only the rows used leave the disk.

Rebuilt as faces change, by `read_crops` (load_faceset's reader): crops not in the cache (added,
or changed) are decoded and written as one new chunk; entries of crops that are gone from both
faces/SIDE and its trash are dropped, and a chunk left with no entry is deleted. A crop moved to
the trash keeps its entry (a restore moves it back unchanged: the same size and time), and since
`load_faceset` never asks for a crop that is not in faces/SIDE or that curation removed, the cache
never brings a removed face back. It costs disk: about three times the PNGs (raw pixels); deleting
`.cache` is always safe. A cache that cannot be written (a full disk) is left as it is and the
crops come from their PNGs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.system.atomic import atomic_file, atomic_write_json

CACHE = ".cache"
INDEX = "index.json"
VERSION = 1
CHUNK_RE = re.compile(r"^crops-[0-9a-f]{12}\.rgb$")
BLOCK = 256  # crops decoded (in parallel) and handed on at a time


def cache_dir(project, side: str) -> Path:
    return project.faces_dir(side) / CACHE


def stamp(path: Path) -> tuple[int, int] | None:
    """(bytes, mtime in ns) of a crop file, or None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return int(st.st_size), int(st.st_mtime_ns)


class CropCache:
    """One side's cache as one load sees it: look crops up, add decoded ones, then `finish`."""

    def __init__(self, project, side: str):
        self.project, self.side = project, side
        self.dir = cache_dir(project, side)
        self.index = _read_index(self.dir)
        self._maps: dict[str, np.ndarray | None] = {}
        self._new: dict[str, list] = {}  # name -> [row, bytes, mtime_ns] in the chunk being written
        self._writer = None  # (context manager, file, chunk name, crop size)
        self.hits = self.added = 0

    def _chunk(self, name: str) -> np.ndarray | None:
        if name not in self._maps:
            rows, size = self.index["chunks"].get(name, (0, 0))
            arr = None
            try:
                if rows and (self.dir / name).stat().st_size == rows * size * size * 3:
                    arr = np.memmap(self.dir / name, np.uint8, "r", shape=(rows, size, size, 3))
            except (OSError, ValueError):
                arr = None
            self._maps[name] = arr
        return self._maps[name]

    def get(self, path: Path, mark: tuple[int, int] | None) -> np.ndarray | None:
        """The crop's pixels (a read-only view of the cache) when its entry matches the file, else None."""
        e = self.index["entries"].get(path.name)
        if mark is None or e is None or (int(e[2]), int(e[3])) != mark:
            return None
        arr = self._chunk(e[0])
        if arr is None or not 0 <= int(e[1]) < len(arr):
            return None
        self.hits += 1
        return arr[int(e[1])]

    def add(self, path: Path, mark: tuple[int, int] | None, image: np.ndarray) -> None:
        """Write a decoded crop into this load's new chunk (only square crops of the chunk's size)."""
        if mark is None or image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 3:
            return
        try:
            if self._writer is None:
                self.dir.mkdir(parents=True, exist_ok=True)
                name = f"crops-{secrets.token_hex(6)}.rgb"
                ctx = atomic_file(self.dir / name)
                self._writer = (ctx, ctx.__enter__(), name, image.shape[0])
            ctx, f, name, size = self._writer
            if image.shape[0] != size:
                return
            f.write(np.ascontiguousarray(image, np.uint8).tobytes())
            self._new[path.name] = [len(self._new), *mark]
            self.added += 1
        except OSError:
            self._abandon()

    def _abandon(self) -> None:
        """A chunk that cannot be written (a full disk): dropped, the cache left as it was."""
        if self._writer is not None:
            ctx = self._writer[0]
            self._writer = None
            with contextlib.suppress(BaseException):
                ctx.__exit__(OSError, OSError("cache not written"), None)
        self._new = {}

    def finish(self) -> None:
        """Close the new chunk and bring the index up to date (under a lock: loads may run at once)."""
        self._maps.clear()
        chunk = None
        if self._writer is not None:
            ctx, _, name, size = self._writer
            self._writer = None
            try:
                ctx.__exit__(None, None, None)
                chunk = (name, [len(self._new), size])
            except OSError:
                self._new = {}
        live = _live_names(self.project, self.side)
        if chunk is None and not any(n not in live for n in self.index["entries"]):
            return  # nothing new, nothing gone
        try:
            with _locked(self.dir):
                _update_index(self.dir, chunk, self._new, live)
        except OSError:
            pass


def _read_index(d: Path) -> dict:
    try:
        data = json.loads((d / INDEX).read_text())
        if data.get("version") == VERSION and isinstance(data.get("entries"), dict):
            return {"chunks": dict(data.get("chunks") or {}), "entries": data["entries"]}
    except (OSError, ValueError, AttributeError):
        pass
    return {"chunks": {}, "entries": {}}


def _live_names(project, side: str) -> set[str]:
    """Crop names in faces/SIDE or its trash (an entry of any other crop is dead)."""
    from core.faces import trash

    names = set()
    for d in (project.faces_dir(side), trash.trash_dir(project, side)):
        if d.is_dir():
            names.update(p.name for p in d.iterdir() if p.suffix == ".png" and not p.name.startswith("."))
    return names


@contextlib.contextmanager
def _locked(d: Path):
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _update_index(d: Path, chunk: tuple[str, list] | None, new: dict[str, list], live: set[str]) -> None:
    """The index as it is on disk now, with this load's chunk added, dead entries dropped, and the
    chunk files no entry points to deleted."""
    index = _read_index(d)
    if chunk is not None:
        name, shape = chunk
        index["chunks"][name] = shape
        for crop, (row, size, mtime) in new.items():
            index["entries"][crop] = [name, row, size, mtime]
    index["entries"] = {k: v for k, v in index["entries"].items() if k in live}
    used = {v[0] for v in index["entries"].values()}
    index["chunks"] = {k: v for k, v in index["chunks"].items() if k in used}
    atomic_write_json(d / INDEX, {"version": VERSION, **index})
    for p in d.iterdir():
        if CHUNK_RE.match(p.name) and p.name not in used:
            p.unlink(missing_ok=True)


def read_crops(project, side: str, paths: list[Path], read: Callable[[Path], np.ndarray | None],
               workers: int = 4, use_cache: bool = True) -> Iterator[tuple[Path, np.ndarray | None]]:
    """(path, RGB pixels or None when unreadable) for every crop, in order: from the cache where it
    holds the crop as it is, else `read` from the PNG (BLOCK at a time, in `workers` threads) and
    added to the cache. A cached crop is a read-only view: copy what you keep."""
    cache = CropCache(project, side) if use_cache else None
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for lo in range(0, len(paths), BLOCK):
                block = paths[lo:lo + BLOCK]
                marks = [stamp(p) for p in block] if cache is not None else [None] * len(block)
                images = [cache.get(p, m) if cache is not None else None for p, m in zip(block, marks, strict=True)]
                misses = [i for i, im in enumerate(images) if im is None]
                for i, im in zip(misses, pool.map(read, [block[i] for i in misses]), strict=True):
                    images[i] = im
                    if cache is not None and im is not None:
                        cache.add(block[i], marks[i], im)
                yield from zip(block, images, strict=True)
    finally:
        if cache is not None:
            cache.finish()
