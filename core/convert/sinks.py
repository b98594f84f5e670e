"""Where converted frames go: the output video (with the input's audio, in sync), one still, or a
folder of stills. Every sink writes under a temporary name and renames it when complete (`close`);
`abort` leaves nothing behind. Each file is signed with a C2PA manifest on the way (`sign`), and a
failure to sign is kept in `c2pa_failures` rather than raised.

May import core.convert.sources, core.media and core.system.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.convert.sources import FrameWork
from core.media import write as video_out
from core.media.probe import MediaInfo, describe

Sign = Callable[[Path], str | None]  # signs a complete file; the reason when it could not


def sign_hooks(sign: Sign | None, failures: list[str]) -> list[Callable[[Path], None]]:
    """The before-rename hook that signs a file and records why when it could not."""
    if sign is None:
        return []

    def hook(path: Path) -> None:
        reason = sign(path)
        if reason:
            failures.append(reason)
    return [hook]


def audio_plan(in_path: Path, fps: float, first: int, stop: int | None) -> dict:
    """The VideoWriter's audio arguments for converting frames [first, stop) of `in_path`: its
    audio copied, trimmed to the range converted, or delayed as the input's video track was."""
    desc = describe(in_path, count_frames=False)
    audio = next((s for s in desc["streams"] if s["kind"] == "audio"), None)
    file_start = desc.get("start") or 0.0
    v_start = desc.get("video_start") or file_start
    kw: dict = {}
    if audio is not None:
        kw["audio_from"] = in_path
        kw["audio_codec"] = audio.get("codec")
        if first or stop is not None:
            kw["audio_start"] = max(0.0, v_start - file_start + first / fps)
            if stop is not None:
                kw["audio_duration"] = (stop - first) / fps
        else:
            kw["video_delay"] = v_start - file_start
    return kw


class VideoSink:
    """Converted frames into the output video at the input's size and rate, with its audio."""

    def __init__(self, final: Path, in_path: Path, info: MediaInfo, fps: float, first: int, stop: int | None,
                 crf: int, meta: dict, sign: Sign | None):
        kw = audio_plan(in_path, fps, first, stop)
        self.video_delay = kw.get("video_delay") or 0.0
        self.size = (info.width, info.height)
        self.writer = video_out.VideoWriter(final, fps, self.size, crf=int(crf), metadata=meta, **kw)
        self.sign = sign
        self.c2pa_failures: list[str] = []
        self.written = 0

    def __call__(self, frame: FrameWork, image: np.ndarray) -> None:
        if image.shape[:2] != (self.size[1], self.size[0]):  # a mid-stream size change: keep the first size
            import cv2

            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.written += 1

    def close(self, cut: bool = False) -> Path:
        """Finish the file; `cut`: the input broke, so its audio is cut where the frames end."""
        w = self.writer
        hooks = []
        if cut:
            hooks.append(lambda p: video_out.cut(p, w.frames / float(w.rate) + self.video_delay))
        return w.close(before_rename=hooks + sign_hooks(self.sign, self.c2pa_failures))

    def abort(self) -> None:
        self.writer.abort()


class FolderSink:
    """Converted stills into a hidden partial folder, renamed over the output folder at the end."""

    def __init__(self, final: Path, meta: dict, sign: Sign | None):
        self.final = final
        self.tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        for p in final.parent.glob(f".{final.name}.partial-*"):
            m = re.search(r"-(\d+)$", p.name)
            if m and not _alive(int(m.group(1))):
                shutil.rmtree(p, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.meta = meta
        self.sign = sign
        self.c2pa_failures: list[str] = []
        self.written = 0

    def __call__(self, frame: FrameWork, image: np.ndarray) -> None:
        name = Path(frame.name or f"{frame.index:06d}.png")
        if name.suffix.lower() not in video_out.IMAGE_FORMATS:
            name = name.with_suffix(".png")
        video_out.write_image(self.tmp / name.name, image, self.meta,
                              before_rename=sign_hooks(self.sign, self.c2pa_failures))
        self.written += 1

    def close(self, cut: bool = False) -> Path:
        old = None
        if self.final.exists():
            old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
            os.rename(self.final, old)
        os.rename(self.tmp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    from core.system import procs

    return pid == os.getpid() or procs.is_alive(pid)


class ImageSink:
    """One converted still, written atomically with its labels."""

    def __init__(self, final: Path, meta: dict, sign: Sign | None):
        self.final, self.meta, self.sign = final, meta, sign
        self.c2pa_failures: list[str] = []
        self.written = 0

    def __call__(self, frame: FrameWork, image: np.ndarray) -> None:
        video_out.write_image(self.final, image, self.meta, before_rename=sign_hooks(self.sign, self.c2pa_failures))
        self.written += 1

    def close(self, cut: bool = False) -> Path:
        return self.final

    def abort(self) -> None:
        pass
