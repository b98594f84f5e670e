"""Uncompressed .npz archives read without loading them, and written one piece at a time.

`np.savez` stores each array uncompressed in a zip file, so an array's bytes sit in the file as they
are in memory. `map_npz` maps such a file (copy-on-write: writing to an array changes this
process's copy, never the file) and gives every array as a view of the mapping: opening is
instant whatever the size, and only the pages used are read. `write_npz` writes an archive from
chunks (each array's pieces in order, e.g. the same column of several files), so merging large
archives never holds more than one chunk in memory. Both refuse what needs pickle.

Files are written through `core.system.atomic.atomic_file` (temp file, fsync, rename): a mapped
file is never changed in place, only replaced, so a mapping stays valid after its file is replaced
or deleted.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from core.system.atomic import atomic_file

_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field


class NpzError(ValueError):
    """A file that is not a readable .npz archive (damaged, truncated, or not one at all)."""


def _npy_header(mm: mmap.mmap, start: int, end: int) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, offset of the data) of the .npy member at [start, end)."""
    head = io.BytesIO(mm[start:min(end, start + 12)])
    try:
        major, _minor = np.lib.format.read_magic(head)
    except ValueError as e:
        raise NpzError(str(e)) from None
    size_len = 2 if major == 1 else 4
    if major not in (1, 2, 3) or end - start < 8 + size_len:
        raise NpzError(f"unknown .npy format version {major}")
    (hlen,) = struct.unpack("<H" if size_len == 2 else "<I", mm[start + 8:start + 8 + size_len])
    data_at = start + 8 + size_len + hlen
    if data_at > end:
        raise NpzError("truncated .npy header")
    fp = io.BytesIO(mm[start:data_at])
    np.lib.format.read_magic(fp)
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    if major == 3:  # utf-8 header: same layout as version 2
        read = np.lib.format.read_array_header_2_0
    try:
        shape, fortran, dtype = read(fp)
    except ValueError as e:
        raise NpzError(str(e)) from None
    return tuple(shape), bool(fortran), np.dtype(dtype), data_at


def map_npz(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Every array of an uncompressed .npz as a view of one copy-on-write mapping of the file; None
    when an array is compressed, in Fortran order or holds objects (read it with `np.load`).
    NpzError for a damaged file."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            with zipfile.ZipFile(f) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, EOFError) as e:
            raise NpzError(f"not a zip archive ({e})") from None
        if not infos or any(i.compress_type != zipfile.ZIP_STORED or not i.filename.endswith(".npy") for i in infos):
            return None
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    out = {}
    for info in infos:
        at = info.header_offset
        local = mm[at:at + _LOCAL_HEADER]
        if len(local) < _LOCAL_HEADER or local[:4] != b"PK\x03\x04":
            raise NpzError(f"{info.filename}: damaged zip entry")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = at + _LOCAL_HEADER + name_len + extra_len
        end = start + info.file_size
        if end > len(mm):
            raise NpzError(f"{info.filename}: truncated")
        shape, fortran, dtype, data_at = _npy_header(mm, start, end)
        if fortran or dtype.hasobject:
            return None
        count = int(np.prod(shape, dtype=np.int64))
        if data_at + count * dtype.itemsize > end:
            raise NpzError(f"{info.filename}: truncated")
        arr = np.frombuffer(mm, dtype, count, data_at) if count else np.zeros(0, dtype)
        out[info.filename[:-4]] = arr.reshape(shape)
    return out


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a .npz: mapped when it can be (`map_npz`), else read (never unpickled).
    NpzError for a damaged file."""
    mapped = map_npz(path)
    if mapped is not None:
        return mapped
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, EOFError, zipfile.BadZipFile) as e:
        raise NpzError(str(e)) from None


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez` into `path`, atomically, straight to the file (no copy of the archive in memory)."""
    with atomic_file(path) as f:
        np.savez(f, **arrays)


def write_npz(path: str | os.PathLike, columns: dict[str, tuple[np.dtype, tuple[int, ...], Iterable[np.ndarray]]]) -> None:
    """Write an uncompressed .npz atomically from chunks: `columns[name] = (dtype, shape, chunks)`,
    the chunks laid end to end along the first axis making exactly `shape` (checked)."""
    with atomic_file(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, (dtype, shape, chunks) in columns.items():
            dtype = np.dtype(dtype)
            want = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            wrote = 0
            with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array_header_2_0(
                    out, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)})
                for chunk in chunks:
                    chunk = np.ascontiguousarray(chunk, dtype=dtype)
                    if chunk.shape[1:] != tuple(shape[1:]):
                        raise ValueError(f"{name}: a chunk of shape {chunk.shape} does not fit {tuple(shape)}")
                    if chunk.nbytes:
                        out.write(memoryview(chunk.reshape(-1)).cast("B"))
                    wrote += chunk.nbytes
            if wrote != want:
                raise ValueError(f"{name}: chunks hold {wrote} bytes, the shape {tuple(shape)} needs {want}")
