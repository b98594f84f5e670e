"""Frames in: probing and reading videos, images and folders of images; a small video writer.

Every frame is an RGB uint8 array (H, W, 3). Bad input gets a `MediaError` whose message names
the file and says what is wrong: a missing path, a file that is not media, a corrupt image, a
video that cannot be opened or holds no decodable frame.

API
- `probe(path) -> MediaInfo` (kind, width, height, frames, fps, duration, has_audio, codec).
  For a folder: the first readable image's size, `frames` = number of image files.
- `read_image(path) -> rgb` (EXIF orientation applied, grey/alpha/16-bit converted to RGB8).
- `iter_frames(path, start=0, every=1, stop=None, on_error=None) -> Iterator[Frame]`:
  `Frame(index, image, name)`; videos are decoded in order once, in a decoder thread that keeps at
  most `queue_size` frames ahead (memory stays bounded for any length). For a folder, `index` is
  the image's position in name order and `name` its file name; a corrupt image is skipped and
  reported to `on_error(index, name, message)`, or raises MediaError when no callback is given.
  `start`/`every`/`stop` select frames by index (`every` N: indices start, start+N, …);
  `skip` leaves out a set of indices (a resumed extraction's done frames).
- `frame_count(path)`: frames a source yields (exact for folders/images; a video's container count).
- `VideoWriter(path, fps, size, audio_from=None)`: H.264 mp4 through ffmpeg, RGB frames in;
  `audio_from` copies the audio track of another file. `write_video(path, frames, fps)`.
- `ffmpeg_exe()`: the ffmpeg binary (imageio-ffmpeg's).

Pixel limit: an image larger than `max_image_pixels()` (100 megapixels unless
$FACEPAIR_MAX_IMAGE_PIXELS says otherwise; 0 means no limit) is refused with a MediaError naming
the file and its size, read from the header before anything is decoded: a small file can claim
20000×20000 pixels (a "decompression bomb") and decoding it would take gigabytes. `probe`,
`read_image`, `iter_frames` and `check_image_pixels` all apply it. PIL's process-wide
`Image.MAX_IMAGE_PIXELS` is left as it is.
"""

from __future__ import annotations

import os
import queue
import re
import struct
import subprocess
import threading
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.media import types as mediatypes

LARGE_SIDE = 8192  # images larger than this on a side are downscaled for detection
MAX_PIXELS_ENV = "FACEPAIR_MAX_IMAGE_PIXELS"
MAX_PIXELS_DEFAULT = 100_000_000  # 100 megapixels: 300 MB as RGB, about 10000×10000


class MediaError(FacepairError):
    """A source cannot be read: missing, not media, corrupt, or a video that does not decode."""


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


@dataclass
class Frame:
    index: int
    image: np.ndarray
    name: str = ""


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# ---- images ----------------------------------------------------------------------------------

def _kind(path: Path) -> str:
    if not path.exists():
        raise MediaError(f"{path}: no such file or folder")
    kind = mediatypes.classify(path)
    if kind is None:
        raise MediaError(
            f"{path}: not a video or image facepair reads (extension {path.suffix or '(none)'!r}); "
            f"videos: {', '.join(sorted(mediatypes.VIDEO_EXTS))}; images: {', '.join(sorted(mediatypes.IMAGE_EXTS))}"
        )
    return kind


def max_image_pixels() -> int | None:
    """The largest image (width × height) facepair decodes: $FACEPAIR_MAX_IMAGE_PIXELS, else 100
    megapixels; None (no limit) when the variable is 0."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not raw:
        return MAX_PIXELS_DEFAULT
    try:
        value = float(raw)
    except ValueError:
        raise MediaError(f"${MAX_PIXELS_ENV}={raw!r} is not a number of pixels "
                         f"(e.g. {MAX_PIXELS_DEFAULT}; 0 means no limit)") from None
    return None if value <= 0 else int(value)


def _check_pixels(path: Path, width: int, height: int) -> None:
    limit = max_image_pixels()
    if limit is not None and width * height > limit:
        raise MediaError(
            f"{path}: image is {width}×{height} pixels ({width * height / 1e6:,.0f} megapixels), over the "
            f"limit of {limit / 1e6:,.4g} megapixels. Shrink it, or raise the limit "
            f"with {MAX_PIXELS_ENV}=PIXELS (0: no limit) if you trust this file"
        )


def _header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, EXIF orientation) from the file's header, decoding nothing; None when PIL
    does not know the format. PIL's plugins are called directly, as `Image.open` does, but without
    its process-wide decompression-bomb check (facepair applies its own limit)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    Image.init()
    try:
        with open(path, "rb") as fp:
            prefix = fp.read(16)
            for fmt in list(Image.ID):
                factory, accept = Image.OPEN[fmt]
                try:
                    result = not accept or accept(prefix)
                    if not result or isinstance(result, str):
                        continue
                    fp.seek(0)
                    im = factory(fp, str(path))
                except (SyntaxError, IndexError, TypeError, ValueError, EOFError, struct.error, OSError):
                    continue
                w, h = im.size
                return int(w), int(h), _orientation(im)
    except OSError:
        return None
    return None


def _orientation(im) -> int:
    """EXIF orientation (1–8) without decoding: PIL's PNG `getexif` would decode the whole image
    to look for an eXIf chunk after the pixels, so a PNG counts only one before them."""
    try:
        if im.format == "PNG" and "exif" not in im.info:
            return 1
        return int(im.getexif().get(0x0112, 1))
    except Exception:
        return 1


def check_image_pixels(path: str | os.PathLike) -> tuple[int, int] | None:
    """MediaError when the image's header says it is over `max_image_pixels()`; else its
    (width, height) as stored (None when the header is not one PIL reads). Decodes nothing."""
    path = Path(path)
    head = _header(path)
    if head is None:
        return None
    _check_pixels(path, head[0], head[1])
    return head[0], head[1]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8; MediaError when it is missing, not an image, corrupt, or over
    the pixel limit (checked from the header first)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such image file")
    check_image_pixels(path)
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise MediaError(f"{path}: empty file, not an image")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)  # applies EXIF orientation, drops alpha, 8-bit
    except cv2.error as e:
        raise MediaError(f"{path}: cannot decode image ({e.msg if hasattr(e, 'msg') else e})") from None
    if img is None or img.size == 0:
        raise MediaError(f"{path}: corrupt or unsupported image (it could not be decoded)")
    _check_pixels(path, img.shape[1], img.shape[0])  # a format whose header PIL does not read
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) as shown (EXIF orientation applied), from the header when PIL reads it
    (cheap), else by decoding; MediaError over the pixel limit."""
    head = _header(path)
    if head is None:
        img = read_image(path)
        return img.shape[1], img.shape[0]
    w, h, orientation = head
    _check_pixels(path, w, h)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


# ---- probing ---------------------------------------------------------------------------------

def _open_video(path: Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MediaError(f"{path}: cannot open it as a video (not a video file, truncated, or an unsupported codec)")
    return cap


def _ffmpeg_streams(path: Path) -> tuple[bool, str | None]:
    """(has_audio, video codec) from `ffmpeg -i` (empty answer when ffmpeg is unavailable)."""
    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                             timeout=30).stderr
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return False, None
    has_audio = bool(re.search(r"Stream #\S+.*: Audio:", out))
    m = re.search(r"Stream #\S+.*: Video: (\w+)", out)
    return has_audio, (m.group(1) if m else None)


def probe(path: str | os.PathLike) -> MediaInfo:
    """What a source is and its size; MediaError for anything facepair cannot read."""
    import cv2

    path = Path(path)
    kind = _kind(path)
    if kind == "image":
        w, h = _image_size(path)
        return MediaInfo(str(path), "image", w, h, 1)
    if kind == "folder":
        files = mediatypes.images_in(path)
        if not files:
            raise MediaError(f"{path}: folder holds no images")
        w = h = 0
        for f in files:
            try:
                w, h = _image_size(f)
                break
            except MediaError:
                continue
        return MediaInfo(str(path), "folder", w, h, len(files))
    cap = _open_video(path)
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
    has_audio, codec = _ffmpeg_streams(path)
    frames = n if n > 0 else None
    duration = frames / fps if frames and fps else None
    return MediaInfo(str(path), "video", w, h, frames, fps, duration, has_audio, codec)


def frame_count(path: str | os.PathLike) -> int | None:
    return probe(path).frames


# ---- reading frames --------------------------------------------------------------------------

_END = object()


def _video_frames(path: Path, start: int, every: int, stop: int | None, queue_size: int,
                  skip: Container[int] | None = None) -> Iterator[Frame]:
    import cv2

    cap = _open_video(path)
    q: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
    halt = threading.Event()

    def put(item) -> bool:
        while not halt.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            index = 0
            while not halt.is_set() and (stop is None or index < stop):
                wanted = index >= start and (index - start) % every == 0 and not (skip and index in skip)
                if wanted:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    if not put(Frame(index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))):
                        return
                elif not cap.grab():  # skipped frames are demuxed and decoded, never converted
                    break
                index += 1
            put(_END)
        except BaseException as e:  # hand the error to the reader
            put(e)
        finally:
            cap.release()

    thread = threading.Thread(target=decode, name=f"decode:{path.name}", daemon=True)
    thread.start()
    got_any = False
    try:
        while True:
            item = q.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise MediaError(f"{path}: decoding failed: {item}")
            got_any = True
            yield item
        if not got_any and start == 0:
            raise MediaError(f"{path}: the video opens but no frame can be decoded (corrupt or unsupported codec)")
    finally:
        halt.set()
        thread.join(timeout=5)


def iter_frames(path: str | os.PathLike, start: int = 0, every: int = 1, stop: int | None = None,
                on_error: Callable[[int, str, str], None] | None = None, queue_size: int = 8,
                skip: Container[int] | None = None) -> Iterator[Frame]:
    """Frames of a video, an image or a folder of images, in order (see the module notes).
    `skip`: indices not to yield (not decoded for folders; only demuxed for videos)."""
    path = Path(path)
    every = max(1, int(every))
    start = max(0, int(start))
    kind = _kind(path)
    if kind == "video":
        yield from _video_frames(path, start, every, stop, queue_size, skip)
        return
    files = [path] if kind == "image" else mediatypes.images_in(path)
    if kind == "folder" and not files:
        raise MediaError(f"{path}: folder holds no images")
    for index, f in enumerate(files):
        if index < start or (index - start) % every or (stop is not None and index >= stop) or (skip and index in skip):
            continue
        try:
            image = read_image(f)
        except MediaError as e:
            if on_error is None:
                raise
            on_error(index, f.name, str(e))
            continue
        yield Frame(index, image, f.name)


# ---- writing video ---------------------------------------------------------------------------

class VideoWriter:
    """RGB frames → an H.264 mp4 (yuv420p) through ffmpeg; optionally the audio of another file.

    Frame sizes must be even (yuv420p); odd sizes are padded by one pixel by ffmpeg's filter.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], audio_from: str | None = None,
                 crf: int = 18, preset: str = "veryfast"):
        import imageio_ffmpeg

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = (int(size[0]), int(size[1]))
        out = ["-crf", str(crf), "-preset", preset, "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-movflags", "+faststart"]
        if audio_from:
            out += ["-shortest"]  # imageio-ffmpeg maps video 0 and the audio of input 1
        self._gen = imageio_ffmpeg.write_frames(
            str(self.path), self.size, fps=fps, codec="libx264", quality=None, macro_block_size=1,
            output_params=out, audio_path=str(audio_from) if audio_from else None,
            audio_codec="aac" if audio_from else None, ffmpeg_log_level="error",
        )
        self._gen.send(None)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.shape != (self.size[1], self.size[0], 3):
            raise ValueError(f"frame of shape {frame.shape} does not match the video size {self.size}")
        self._gen.send(frame)
        self.frames += 1

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float,
                audio_from: str | None = None) -> Path:
    """Write RGB frames (all the same size) as an mp4; returns the path."""
    writer = None
    try:
        for f in frames:
            if writer is None:
                writer = VideoWriter(path, fps, (f.shape[1], f.shape[0]), audio_from=audio_from)
            writer.write(f)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise MediaError(f"{path}: no frames to write")
    return Path(path)
