"""A side's thumbnail cache: a small JPEG of every crop (kept or in the trash) packed in one file,
so the faces screen pages through thousands of faces reading a few kilobytes a page instead of
decoding 256-px PNGs.

Layout: `faces/SIDE/.thumbs/` (hidden inside the side's faces folder, like the trash: nothing
that reads `faces/SIDE/*.png` sees it, and `extract --fresh` deletes it with the crops):
- `thumbs-G.bin`: THUMB_PX-square JPEGs, appended one after the other (G, the generation, moves
  on when the file is compacted);
- `index.npz`: per crop name its offset and length in that file (length 0: the crop could not be
  read) and the crop file's size and mtime_ns it was made from; `blob` names the file.
A thumbnail is made again when its crop's size or mtime differ from the index (a re-extracted
face). Removing and restoring move a crop with os.replace, which keeps both: they cost nothing.
Names whose crop is in neither faces/SIDE nor the trash leave the index at the next build, and
when dead bytes outweigh live ones the build rewrites the file as the next generation.

Building decodes, shrinks and encodes with OpenCV in threads (its calls release the GIL: two
cores, two threads), under an flock (`lock`) so two processes never append at once, and saves
the index every CHUNK faces: a reader in another screen or process sees the cache grow.

API: `ThumbCache(project, side)`: `get(name) -> (THUMB_PX, THUMB_PX, 3) uint8 RGB | None`,
`unreadable(name)`, `stale(names=None) -> names to build`, `build(first=None, progress=,
cancelled=) -> Built`, `refresh()` (re-read the index another process wrote).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.faces import trash
from core.project.projects import validate_side

THUMB_PX = 64
QUALITY = 90
CHUNK = 256
DIR = ".thumbs"
INDEX = "index.npz"
LOCK = "lock"
COMPACT_MIN_BYTES = 1 << 20  # never rewrite for less dead weight than this


@dataclass
class Built:
    """What a build did: thumbnails made, crops that could not be read, seconds, faces in the cache."""

    built: int = 0
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0
    total: int = 0
    cancelled: bool = False

    @property
    def faces_per_s(self) -> float | None:
        return self.built / self.seconds if self.built and self.seconds > 0 else None


def _stat_key(st: os.stat_result) -> tuple[int, int]:
    return int(st.st_size), int(st.st_mtime_ns)


def scan_crops(folders: Iterable[Path]) -> dict[str, tuple[Path, tuple[int, int]]]:
    """Crop name → (path, (size, mtime_ns)) over these folders (the first folder wins a name)."""
    out: dict[str, tuple[Path, tuple[int, int]]] = {}
    for d in folders:
        try:
            entries = list(os.scandir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            if e.name.endswith(".png") and not e.name.startswith(".") and e.name not in out:
                try:
                    out[e.name] = (Path(e.path), _stat_key(e.stat()))
                except FileNotFoundError:  # moved while we listed
                    continue
    return out


def make_thumbnail(path: Path) -> bytes:
    """The JPEG thumbnail of one crop file; b"" when it cannot be read as an image."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return b""
    h, w = image.shape[:2]
    if (h, w) != (THUMB_PX, THUMB_PX):
        image = cv2.resize(image, (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return data.tobytes() if ok else b""


def _workers() -> int:
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:
        return max(1, min(4, os.cpu_count() or 1))


class ThumbCache:
    """The thumbnails of one side (module notes). Safe to read from one thread while another builds."""

    def __init__(self, project, side: str):
        self.side = validate_side(side)
        self.folders = (project.faces_dir(side), trash.trash_dir(project, side))
        self.dir = project.faces_dir(side) / DIR
        self._lock = threading.RLock()
        self._index: dict[str, tuple[int, int, int, int]] = {}  # name → offset, length, size, mtime_ns
        self._blob: str | None = None
        self._fd: int | None = None
        self._stamp: tuple[int, int] | None = None
        try:  # now, not at the first build: making it changes faces/SIDE's mtime, which watchers read
            self.dir.mkdir(exist_ok=True)
        except OSError:
            pass  # a read-only or missing faces folder: build says so
        self.refresh()

    def __len__(self) -> int:
        return len(self._index)

    # ---- reading ---------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read the index when another writer changed it; True when it did."""
        try:
            st = (self.dir / INDEX).stat()
        except FileNotFoundError:
            return False
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        try:
            with np.load(self.dir / INDEX, allow_pickle=False) as z:
                names, cols, blob = z["names"].tolist(), [z[k].tolist() for k in ("offset", "length", "size",
                                                                                  "mtime")], str(z["blob"])
        except (OSError, ValueError, KeyError, EOFError):
            return False  # half-written by a writer of an older version, or damaged: the next build rewrites it
        with self._lock:
            self._index = dict(zip(names, zip(*cols, strict=True), strict=True))
            self._stamp = stamp
            self._open(blob)
            if self._fd is None:  # its file is gone (deleted by hand): every thumbnail is to make again
                self._index = {}
        return True

    def _open(self, blob: str) -> None:
        if blob == self._blob and self._fd is not None:
            return
        self.close()
        try:
            self._fd = os.open(self.dir / blob, os.O_RDONLY)
            self._blob = blob
        except FileNotFoundError:
            self._fd, self._blob = None, None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._blob = None, None

    def __del__(self):
        try:
            self.close()
        except (OSError, AttributeError, TypeError):
            pass

    def has(self, name: str) -> bool:
        return name in self._index

    def unreadable(self, name: str) -> bool:
        """True when the crop was tried and is no image (its thumbnail is then a placeholder)."""
        entry = self._index.get(name)
        return entry is not None and entry[1] == 0

    def get(self, name: str) -> np.ndarray | None:
        """The thumbnail (RGB uint8), or None when it is not built yet or its crop is unreadable."""
        import cv2

        with self._lock:
            entry = self._index.get(name)
            if entry is None or entry[1] == 0 or self._fd is None:
                return None
            data = os.pread(self._fd, entry[1], entry[0])
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return None if image is None else np.ascontiguousarray(image[:, :, ::-1])

    def stale(self, names: Iterable[str] | None = None,
              crops: dict[str, tuple[Path, tuple[int, int]]] | None = None) -> list[str]:
        """Names (of `names`, else every crop of the side) whose thumbnail is missing or older than the crop."""
        crops = scan_crops(self.folders) if crops is None else crops
        wanted = sorted(crops) if names is None else [n for n in names if n in crops]
        return [n for n in wanted if self._index.get(n, (0, 0, -1, -1))[2:] != crops[n][1]]

    # ---- building --------------------------------------------------------------------------------
    @contextmanager
    def _exclusive(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / LOCK, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def build(self, first: Iterable[str] | None = None, progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None, workers: int | None = None) -> Built:
        """Make every stale thumbnail of the side, the names in `first` before the others (the
        screen's current order: its first page comes first). `progress(done, total)` after each
        chunk; `cancelled()` stops between chunks (what was made is kept)."""
        t0 = time.perf_counter()
        result = Built()
        with self._exclusive():
            self._stamp = None
            self.refresh()  # another process may have built meanwhile
            crops = scan_crops(self.folders)
            todo = list(dict.fromkeys([*self.stale(first, crops), *self.stale(None, crops)]))
            with self._lock:
                before = len(self._index)
                self._index = {n: e for n, e in self._index.items() if n in crops}
                pruned = before - len(self._index)
            self._compact_if_worth_it()
            if not todo and self._blob is not None:
                if pruned:
                    self._save()
                result.total, result.seconds = len(self._index), time.perf_counter() - t0
                return result
            with open(self.dir / (self._blob or self._next_blob()), "ab") as out, \
                    ThreadPoolExecutor(workers or _workers()) as pool:
                self._open(Path(out.name).name)
                for start in range(0, len(todo), CHUNK):
                    if cancelled is not None and cancelled():
                        result.cancelled = True
                        break
                    chunk = todo[start:start + CHUNK]
                    self._append(out, chunk, list(pool.map(lambda n: (crops[n][1], make_thumbnail(crops[n][0])),
                                                           chunk)), result)
                    if progress is not None:
                        progress(min(start + CHUNK, len(todo)), len(todo))
            if not todo:
                self._save()
        result.seconds = time.perf_counter() - t0
        result.total = len(self._index)
        return result

    def _append(self, out, names: list[str], made: list[tuple[tuple[int, int], bytes]], result: Built) -> None:
        """Write one chunk's JPEGs, then the index that points at them."""
        offset = out.seek(0, os.SEEK_END)
        entries = {}
        for name, (key, data) in zip(names, made, strict=True):
            out.write(data)
            entries[name] = (offset, len(data), *key)
            offset += len(data)
            if data:
                result.built += 1
            else:
                result.unreadable.append(name)
        out.flush()
        with self._lock:
            self._index.update(entries)
        self._save()

    def _save(self) -> None:
        import io

        from core.system.atomic import atomic_write_bytes

        with self._lock:
            names = list(self._index)
            cols = np.array(list(self._index.values()), np.int64).reshape(-1, 4)
            blob = self._blob
        buf = io.BytesIO()
        np.savez(buf, names=np.array(names, dtype=str), offset=cols[:, 0], length=cols[:, 1], size=cols[:, 2],
                 mtime=cols[:, 3], blob=np.array(blob))
        atomic_write_bytes(self.dir / INDEX, buf.getvalue())
        st = (self.dir / INDEX).stat()
        self._stamp = (st.st_mtime_ns, st.st_size)

    def _next_blob(self) -> str:
        """A fresh generation's file name (and the other generations' files removed)."""
        gens = [int(p.stem.split("-")[1]) for p in self.dir.glob("thumbs-*.bin") if p.stem.split("-")[1].isdigit()]
        name = f"thumbs-{max(gens, default=-1) + 1}.bin"
        for p in self.dir.glob("thumbs-*.bin"):
            if p.name != name:
                p.unlink(missing_ok=True)
        return name

    def _compact_if_worth_it(self) -> None:
        """Rewrite the file with live thumbnails only, when dead ones outweigh them."""
        if self._blob is None or self._fd is None:
            return
        size = os.fstat(self._fd).st_size
        live = sum(e[1] for e in self._index.values())
        if size - live < max(live, COMPACT_MIN_BYTES):
            return
        old, name = self._blob, self._next_blob_after(self._blob)
        entries, offset = {}, 0
        with open(self.dir / name, "wb") as out:
            for n, (off, length, *key) in self._index.items():
                out.write(os.pread(self._fd, length, off) if length else b"")
                entries[n] = (offset, length, *key)
                offset += length
        with self._lock:
            self._index = entries
            self.close()
            self._open(name)
        self._save()
        (self.dir / old).unlink(missing_ok=True)

    @staticmethod
    def _next_blob_after(blob: str) -> str:
        return f"thumbs-{int(Path(blob).stem.split('-')[1]) + 1}.bin"
