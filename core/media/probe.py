"""What a media file is, before its pixels are read: `probe` and `describe`.

- `probe(path) -> MediaInfo` (kind, width, height, frames, fps, duration, has_audio, codec): what
  every stage asks of a source. For a folder: the first readable image's size, `frames` = number
  of image files. MediaError (core.media.read) for anything facepair cannot read.
- `describe(path, count_frames=True) -> dict`: everything ffmpeg reports of a file (duration, start
  times, streams, metadata and, on request, the exact frame count): the reading back of outputs.
- `ffmpeg_exe()`: the ffmpeg binary (imageio-ffmpeg's), for every module that runs ffmpeg.

Both read ffmpeg's header through one parser (`parse_header`). May import core.media.read and
core.media.types.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.media import types as mediatypes
from core.media.read import MediaError, image_size, open_video, source_kind


@dataclass(frozen=True)
class MediaInfo:
    path: str
    kind: str  # video | image | folder
    width: int
    height: int
    frames: int | None
    fps: float | None = None
    duration: float | None = None
    has_audio: bool = False
    codec: str | None = None


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# ---- ffmpeg's header -----------------------------------------------------------------------------

def _header(path: Path, timeout: float | None = None) -> str:
    """What `ffmpeg -i PATH` prints about the file (its stderr)."""
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                          text=True, errors="replace", timeout=timeout).stderr


def _stream(line: str, out: dict) -> dict:
    """One `Stream #…` line as {kind, codec, start}; a video stream's size, rate and start, and the
    first audio stream's start, go into `out` too."""
    kind = "video" if ": Video:" in line else "audio" if ": Audio:" in line else "other"
    codec = re.search(r": (?:Video|Audio): (\w+)", line)
    start = re.search(r"start (-?\d+\.\d+)", line)
    if kind == "video":
        dims = re.search(r", (\d{2,5})x(\d{2,5})", line)
        fps = re.search(r", (\d+(?:\.\d+)?) fps", line)
        if dims:
            out["width"], out["height"] = int(dims.group(1)), int(dims.group(2))
        if fps:
            out["fps"] = float(fps.group(1))
        if start and out["video_start"] is None:
            out["video_start"] = float(start.group(1))
    if kind == "audio" and start and out["audio_start"] is None:
        out["audio_start"] = float(start.group(1))
    return {"kind": kind, "codec": codec.group(1) if codec else None,
            "start": float(start.group(1)) if start else None}


def parse_header(text: str) -> dict:
    """ffmpeg's description of its input (the stderr of `ffmpeg -i`) as a dict: duration, start,
    streams [{kind, codec, start}], metadata, fps, width, height, video_start, audio_start (None
    where the text does not say)."""
    out: dict = {"duration": None, "start": None, "streams": [], "metadata": {}, "fps": None, "width": None,
                 "height": None, "video_start": None, "audio_start": None}
    m = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", text)
    if m:
        out["duration"] = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    m = re.search(r"Duration: .*?, start: (-?\d+\.\d+)", text)
    if m:
        out["start"] = float(m.group(1))
    section = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Input #"):
            section = "input"
        elif s.startswith("Stream #"):
            section = "stream"
            out["streams"].append(_stream(s, out))
        elif section == "input" and ":" in s and not s.startswith(("Metadata:", "Duration:")):
            key, _, value = s.partition(":")
            out["metadata"].setdefault(key.strip(), value.strip())
    return out


def _count_frames(path: Path) -> int | None:
    """A video's exact frame count, by remuxing its first video stream to nowhere (no decoding)."""
    count = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                            "-f", "null", "-"], capture_output=True, text=True, errors="replace").stderr
    frames = re.findall(r"frame=\s*(\d+)", count)
    return int(frames[-1]) if frames else None


def describe(path: str | os.PathLike, count_frames: bool = True) -> dict:
    """What ffmpeg sees in a media file: `parse_header`'s keys, its path and, with `count_frames`,
    the video's exact frame count (`frames`, else None)."""
    path = Path(path)
    out = {"path": str(path), **parse_header(_header(path)), "frames": None}
    if count_frames and any(st["kind"] == "video" for st in out["streams"]):
        out["frames"] = _count_frames(path)
    return out


# ---- facepair's view of a source -----------------------------------------------------------------

def _streams(path: Path) -> tuple[bool, str | None]:
    """(has_audio, video codec) from ffmpeg's header (an empty answer when ffmpeg is unavailable)."""
    try:
        streams = parse_header(_header(path, timeout=30))["streams"]
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return False, None
    codec = next((st["codec"] for st in streams if st["kind"] == "video"), None)
    return any(st["kind"] == "audio" for st in streams), codec


def _probe_folder(path: Path) -> MediaInfo:
    files = mediatypes.images_in(path)
    if not files:
        raise MediaError(f"{path}: folder holds no images")
    w = h = 0
    for f in files:
        try:
            w, h = image_size(f)
            break
        except MediaError:
            continue
    return MediaInfo(str(path), "folder", w, h, len(files))


def _probe_video(path: Path) -> MediaInfo:
    import cv2

    cap = open_video(path)
    try:
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok = cap.grab()
    finally:
        cap.release()
    if not ok or w <= 0 or h <= 0:
        raise MediaError(f"{path}: the video opens but no frame can be decoded (corrupt or unsupported codec)")
    has_audio, codec = _streams(path)
    frames = n if n > 0 else None
    duration = frames / fps if frames and fps else None
    return MediaInfo(str(path), "video", w, h, frames, fps, duration, has_audio, codec)


def probe(path: str | os.PathLike) -> MediaInfo:
    """What a source is and its size; MediaError for anything facepair cannot read."""
    path = Path(path)
    kind = source_kind(path)
    if kind == "image":
        w, h = image_size(path)
        return MediaInfo(str(path), "image", w, h, 1)
    if kind == "folder":
        return _probe_folder(path)
    return _probe_video(path)
