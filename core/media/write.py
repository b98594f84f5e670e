"""Writing converted media: H.264 video through imageio-ffmpeg's bundled ffmpeg, and still images.

Every output is written to a hidden temporary name next to the final one
(`.NAME.partial-PID.EXT`) and renamed over the final name only when it is complete, so a failed,
cancelled or killed run never leaves a file that looks finished. A later run removes partial files
whose process is gone.

Video: RGB frames are piped to ffmpeg as raw video; the encoder is libx264 (yuv420p, CRF), the frame
rate is the input's (as an exact rational), every frame written is a frame in the output (no drops,
no duplicates), and the input's audio is copied (re-encoded to AAC only when the container cannot
hold it). The video track can start later than the audio, as it did in the input, so lips stay in
sync. `VideoWriter` is the one video writer; `write_video(path, frames, fps, audio_from)` writes a
whole clip through it (synthetic clips, tests).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.media.probe import describe, ffmpeg_exe
from core.system import procs

MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
# Audio codecs an MP4/MOV can carry as they are; anything else is re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
MIN_FREE_BYTES = 1 << 20
DISK_FULL_PATTERNS = ("No space left on device", "Disk quota exceeded")


class OutputError(FacepairError):
    """The output cannot be written (unwritable place, full disk, encoder failure)."""


def exact_rate(fps: float | Fraction | str) -> Fraction:
    """The input's frame rate as a fraction: 29.97… → 30000/1001, '25/1' → 25."""
    if isinstance(fps, str):
        fps = Fraction(fps)
    f = Fraction(fps)
    if f <= 0:
        raise OutputError(f"invalid frame rate {fps!r}")
    for den in (1001, 1):  # NTSC-style rates and whole numbers, which is nearly every video
        num = round(float(f) * den)
        if num > 0 and abs(float(f) - num / den) < 5e-4:
            return Fraction(num, den)
    return f.limit_denominator(100000)


# ---- temporary names -----------------------------------------------------------------------------

def partial_path(final: Path, pid: int | None = None) -> Path:
    final = Path(final)
    return final.with_name(f".{final.name}.partial-{pid or os.getpid()}{final.suffix}")


_PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)(?P<suffix>\.[^.]*)?$")


def clean_stale_partials(final: Path) -> list[Path]:
    """Remove partial files of `final` left by processes that are gone (a killed earlier run)."""
    final = Path(final)
    removed = []
    if not final.parent.is_dir():
        return removed
    for p in final.parent.iterdir():
        m = _PARTIAL.match(p.name)
        if not m or m.group("name") != final.name:
            continue
        pid = int(m.group("pid"))
        if pid != os.getpid() and procs.is_alive(pid):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def clean_dead_partials_in(folder: Path) -> list[Path]:
    """Remove every partial output in `folder` (files, and the partial folders of still
    sequences) whose process is gone; partials of live processes stay."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return removed
    for p in entries:
        m = _PARTIAL.match(p.name)
        if not m:
            continue
        pid = int(m.group("pid"))
        if pid == os.getpid() or procs.is_alive(pid):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def check_writable(final: Path) -> None:
    """Fail before any work when `final` cannot be written: missing or read-only folder, a folder
    in the way, a full disk."""
    final = Path(final)
    parent = final.parent
    if final.is_dir():
        raise OutputError(f"output {final} is a folder; give a file name (e.g. {final / 'out.mp4'})")
    blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise OutputError(f"cannot write {final}: {blocker} is a file, not a folder; choose another --output")
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the output folder {parent}: {e.strerror}; choose another --output") from e
    probe = partial_path(final)
    try:
        with open(probe, "wb"):
            pass
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise OutputError(f"disk full: no space left in {parent}; nothing was written; free some space or "
                              f"choose another --output") from e
        raise OutputError(f"output {final} is not writable ({e.strerror}); choose another --output "
                          f"or fix the folder's permissions") from e
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    if final.exists() and not os.access(final, os.W_OK) and not os.access(parent, os.W_OK):
        raise OutputError(f"output {final} exists and cannot be replaced; choose another --output")
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        free = None
    if free is not None and free < MIN_FREE_BYTES:
        raise OutputError(f"disk full: only {free} bytes free in {parent}; nothing was written; free some space "
                          f"or choose another --output")


def _finish(tmp: Path, final: Path, before_rename: list[Callable[[Path], None]]) -> Path:
    for hook in before_rename:
        hook(tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    try:
        dfd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return final


def _disk_full(text: str) -> bool:
    return any(p in text for p in DISK_FULL_PATTERNS)


# ---- video ---------------------------------------------------------------------------------------

def _input_args(width: int, height: int, rate: Fraction, video_delay: float, audio: tuple | None) -> list[str]:
    """ffmpeg's inputs: raw RGB frames on stdin at the exact rate (delayed by `video_delay`), and
    the audio file (from `audio_start`, for `audio_duration`) when there is one."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
           "-framerate", f"{rate.numerator}/{rate.denominator}"]
    if video_delay and abs(video_delay) > 1e-4:
        cmd += ["-itsoffset", f"{video_delay:.6f}"]
    cmd += ["-i", "pipe:0"]
    if audio is not None:
        path, audio_start, audio_duration, _ = audio
        if audio_start:
            cmd += ["-ss", f"{audio_start:.6f}"]
        if audio_duration is not None:
            cmd += ["-t", f"{audio_duration:.6f}"]
        cmd += ["-i", path]
    return cmd


def _output_args(muxer: str, width: int, height: int, crf: int, preset: str, audio: tuple | None,
                 shortest: bool, faststart: bool, metadata: dict[str, str] | None) -> list[str]:
    """ffmpeg's output options: H.264 yuv420p (padded to even sides), every frame kept, the audio
    copied when the container holds it (else AAC), only the given metadata."""
    cmd = ["-map", "0:v:0"]
    if audio is not None:
        cmd += ["-map", "1:a:0?"]
    if width % 2 or height % 2:  # yuv420p needs even sides: pad by one pixel
        cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-fps_mode", "passthrough"]
    if audio is not None:
        _, audio_start, audio_duration, audio_codec = audio
        trimmed = bool(audio_start) or audio_duration is not None
        if muxer == "matroska":
            # Matroska cannot hold the pre-roll packets a trimmed stream copy starts with (it
            # shifts the whole file instead): re-encode trimmed audio there.
            copy = not trimmed
        else:
            copy = (audio_codec or "aac") in MP4_AUDIO
        cmd += ["-c:a", "copy"] if copy else ["-c:a", "aac", "-b:a", "192k"]
        if shortest:
            cmd += ["-shortest"]
    cmd += ["-map_metadata", "-1"]
    for k, v in (metadata or {}).items():
        cmd += ["-metadata", f"{k}={v}"]
    if muxer in ("mp4", "mov"):
        cmd += ["-movflags", "+use_metadata_tags" + ("+faststart" if faststart else "")]
    return cmd


class VideoWriter:
    """Encode RGB frames to an H.264 file with the input's audio and the given metadata.

    `shortest`: the file ends with its shorter track (audio longer than the frames is cut);
    `faststart`: the index goes before the frames (players and truncation tests want it there).

    Use as a context manager: leaving the block normally finishes and renames the file; leaving it
    with an exception (or calling `abort`) removes the partial file.
    """

    def __init__(self, path: str | os.PathLike, fps: float | Fraction | str, size: tuple[int, int], *,
                 crf: int = 18, preset: str = "veryfast", audio_from: str | os.PathLike | None = None,
                 audio_start: float | None = None, audio_duration: float | None = None,
                 audio_codec: str | None = None, video_delay: float = 0.0,
                 metadata: dict[str, str] | None = None, shortest: bool = False, faststart: bool = False):
        self.final = Path(path)
        self.muxer = MUXERS.get(self.final.suffix.lower())
        if self.muxer is None:
            raise OutputError(f"cannot write video as {self.final.suffix or '(no extension)'!r}; "
                              f"use one of {', '.join(sorted(MUXERS))}")
        if not 0 <= int(crf) <= 51:
            raise OutputError(f"--crf must be 0–51 (lower is better quality), not {crf}")
        self.width, self.height = int(size[0]), int(size[1])
        self.rate = exact_rate(fps)
        self.frames = 0
        self.tmp = partial_path(self.final)
        self._stderr: deque[str] = deque(maxlen=200)
        self._closed = False
        clean_stale_partials(self.final)
        check_writable(self.final)
        audio = None if audio_from is None else (str(audio_from), audio_start, audio_duration, audio_codec)
        cmd = _input_args(self.width, self.height, self.rate, video_delay, audio)
        cmd += _output_args(self.muxer, self.width, self.height, int(crf), preset, audio, shortest, faststart,
                            metadata)
        cmd += ["-f", self.muxer, str(self.tmp)]
        self.cmd = cmd
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, bufsize=0)
        except OSError as e:
            raise OutputError(f"cannot start ffmpeg ({cmd[0]}): {e}") from e
        self._reader = threading.Thread(target=self._read_stderr, name="ffmpeg-stderr", daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    @property
    def stderr(self) -> str:
        return "\n".join(self._stderr)

    def _failure(self, what: str) -> OutputError:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=2)
        text = self.stderr
        if _disk_full(text):
            return OutputError(f"disk full: no space left on the device holding {self.final.parent} while writing "
                               f"{self.final.name}; nothing was kept — free some space and convert again")
        tail = "; ".join(text.splitlines()[-3:]) or f"exit code {self.proc.returncode}"
        return OutputError(f"ffmpeg failed while {what} {self.final.name}: {tail}")

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame of shape {frame.shape} {frame.dtype} does not match the video size "
                             f"{self.width}×{self.height} (({self.height}, {self.width}, 3) uint8)")
        try:
            self.proc.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except (BrokenPipeError, OSError) as e:
            err = self._failure("writing")
            self.abort()
            raise err from e
        self.frames += 1

    def close(self, before_rename: list[Callable[[Path], None]] | None = None) -> Path:
        """Finish encoding, run `before_rename` hooks on the complete temporary file, rename it."""
        if self._closed:
            return self.final
        try:
            try:
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            rc = self.proc.wait()
            self._reader.join(timeout=5)
            if rc != 0:
                raise self._failure("finishing")
            if self.frames == 0:
                raise OutputError(f"no frames to write to {self.final.name}")
            result = _finish(self.tmp, self.final, before_rename or [])
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                raise OutputError(f"disk full: no space left in {self.final.parent} while finishing "
                                  f"{self.final.name}; nothing was kept — free some space and convert again") from e
            raise
        self._closed = True
        return result

    def abort(self) -> None:
        """Stop ffmpeg and remove the partial file (safe to call more than once)."""
        self._closed = True
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


def _audio_codec(path: str | os.PathLike) -> str | None:
    """The codec of a file's first audio stream, as ffmpeg names it (None when it has none)."""
    streams = describe(path, count_frames=False)["streams"]
    return next((st["codec"] for st in streams if st["kind"] == "audio"), None)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float,
                audio_from: str | os.PathLike | None = None) -> Path:
    """Write RGB frames (all the same size) as a video, its index first; returns the path.
    `audio_from`: a file whose audio is muxed in, cut where the frames end (synthetic clips, tests)."""
    writer = None
    try:
        for f in frames:
            f = np.ascontiguousarray(f, dtype=np.uint8)
            if writer is None:
                codec = _audio_codec(audio_from) if audio_from is not None else None
                writer = VideoWriter(path, fps, (f.shape[1], f.shape[0]), audio_from=audio_from, audio_codec=codec,
                                     shortest=True, faststart=True)
            writer.write(f)
        if writer is None:
            raise OutputError(f"{path}: no frames to write")
        return writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


# ---- images --------------------------------------------------------------------------------------

def write_image(path: str | os.PathLike, rgb: np.ndarray, metadata: dict[str, str] | None = None,
                before_rename: list[Callable[[Path], None]] | None = None, quality: int = 95) -> Path:
    """Write an RGB uint8 image as PNG (text chunks) or JPEG (EXIF + comment), atomically."""
    from PIL import Image, PngImagePlugin

    final = Path(path)
    fmt = IMAGE_FORMATS.get(final.suffix.lower())
    if fmt is None:
        raise OutputError(f"cannot write an image as {final.suffix or '(no extension)'!r}; "
                          f"use one of {', '.join(sorted(IMAGE_FORMATS))}")
    clean_stale_partials(final)
    check_writable(final)
    tmp = partial_path(final)
    meta = metadata or {}
    img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    try:
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            for k, v in meta.items():
                info.add_itxt(k if k != "comment" else "Comment", v)
            if "description" in meta:
                info.add_itxt("Description", meta["description"])
            img.save(tmp, "PNG", pnginfo=info)
        else:
            exif = Image.Exif()
            if "description" in meta:
                exif[0x010E] = meta["description"]  # ImageDescription
            if "generator" in meta:
                exif[0x0131] = meta["generator"]  # Software
            comment = meta.get("comment", "")
            img.save(tmp, "JPEG", quality=quality, exif=exif.tobytes(), comment=comment.encode("utf-8"))
        return _finish(tmp, final, before_rename or [])
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise OutputError(f"disk full: no space left in {final.parent} while writing {final.name}; "
                              f"nothing was kept") from e
        raise
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def cut(path: str | os.PathLike, seconds: float) -> None:
    """Shorten a finished video file to its first `seconds` in place (stream copy, no re-encoding):
    the input's audio outlasting a truncated video is cut where the video ends."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.cut-{os.getpid()}{path.suffix}")
    muxer = MUXERS.get(path.suffix.lower()) or MUXERS.get(Path(path.name.rsplit(".partial-", 1)[0]).suffix.lower())
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(path), "-map", "0",
           "-c", "copy", "-map_metadata", "0", "-t", f"{seconds:.6f}"]
    if muxer in ("mp4", "mov"):
        cmd += ["-movflags", "+use_metadata_tags"]
    cmd += ["-f", muxer or "mp4", str(tmp)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if res.returncode != 0:
            if _disk_full(res.stderr):
                raise OutputError(f"disk full: no space left in {path.parent} while finishing {path.name}")
            raise OutputError(f"ffmpeg could not cut {path.name}: {res.stderr.strip()[-300:]}")
        os.replace(tmp, path)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
