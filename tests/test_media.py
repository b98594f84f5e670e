"""Frames in (core.media.read): probing, reading, the decoder thread, bad input, the video writer."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from core.errors import FacepairError
from core.media import read as media
from core.media.probe import ffmpeg_exe, probe
from core.media.write import VideoWriter, write_video


def write_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def numbered_frames(n: int, w: int = 96, h: int = 64) -> list[np.ndarray]:
    """Frames whose mean brightness encodes their number, robust to lossy coding."""
    return [np.full((h, w, 3), 10 + 12 * i, np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    write_video(path, numbered_frames(20), fps=10)
    return path


def frame_number(rgb: np.ndarray) -> int:
    return int(round((rgb.mean() - 10) / 12))


def test_probe_and_read_a_video_in_order(clip):
    info = probe(clip)
    assert (info.kind, info.width, info.height, info.frames) == ("video", 96, 64, 20)
    assert info.fps == pytest.approx(10, rel=0.01) and info.duration == pytest.approx(2.0, rel=0.05)
    assert info.has_audio is False and info.codec == "h264"
    frames = list(media.iter_frames(clip))
    assert [f.index for f in frames] == list(range(20))
    assert [frame_number(f.image) for f in frames] == list(range(20))
    assert frames[0].image.shape == (64, 96, 3) and frames[0].image.dtype == np.uint8


def test_start_every_stop_select_frames(clip):
    got = list(media.iter_frames(clip, start=3, every=4, stop=16))
    assert [f.index for f in got] == [3, 7, 11, 15]
    assert [frame_number(f.image) for f in got] == [3, 7, 11, 15]


def test_decoder_thread_stops_when_the_reader_stops(clip):
    before = {t.name for t in threading.enumerate()}
    it = media.iter_frames(clip, queue_size=2)
    next(it)
    assert any(t.name.startswith("decode:") for t in threading.enumerate())
    it.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
            t.name.startswith("decode:") and t.name not in before for t in threading.enumerate()):
        time.sleep(0.05)
    assert not any(t.name.startswith("decode:") and t.name not in before for t in threading.enumerate())


def test_images_and_folders(tmp_path, astronaut):
    folder = tmp_path / "photos"
    folder.mkdir()
    write_png(folder / "b.png", astronaut)
    write_png(folder / "a.png", astronaut[:, ::-1])
    (folder / "notes.txt").write_text("not an image")
    info = probe(folder)
    assert (info.kind, info.frames, info.width, info.height) == ("folder", 2, 512, 512)
    frames = list(media.iter_frames(folder))
    assert [(f.index, f.name) for f in frames] == [(0, "a.png"), (1, "b.png")]
    np.testing.assert_array_equal(frames[1].image, astronaut)
    one = probe(folder / "b.png")
    assert (one.kind, one.frames, one.width) == ("image", 1, 512)
    assert [f.name for f in media.iter_frames(folder / "b.png")] == ["b.png"]


def test_read_image_converts_grey_and_alpha(tmp_path, astronaut):
    grey = tmp_path / "g.png"
    cv2.imwrite(str(grey), astronaut[..., 0])
    assert media.read_image(grey).shape == (512, 512, 3)
    rgba = tmp_path / "a.png"
    cv2.imwrite(str(rgba), np.dstack([astronaut[..., ::-1], np.full((512, 512), 128, np.uint8)]))
    np.testing.assert_array_equal(media.read_image(rgba), astronaut)


# ---- bad input ---------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    with pytest.raises(media.MediaError, match="no such file"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(media.MediaError, match="no such"):
        list(media.iter_frames(tmp_path / "nope.png"))


def test_a_file_that_is_not_media(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(media.MediaError, match="not a video or image") as e:
        probe(p)
    assert isinstance(e.value, FacepairError) and str(p) in str(e.value)


def test_corrupt_image_is_named(tmp_path, astronaut):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    with pytest.raises(media.MediaError, match="corrupt") as e:
        media.read_image(bad)
    assert "broken.jpg" in str(e.value)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(media.MediaError, match="empty"):
        media.read_image(empty)


def test_folder_with_a_corrupt_image_skips_it_and_reports_it(tmp_path, astronaut):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_png(folder / "1.png", astronaut)
    (folder / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    write_png(folder / "3.png", astronaut)
    errors = []
    frames = list(media.iter_frames(folder, on_error=lambda i, name, msg: errors.append((i, name, msg))))
    assert [f.name for f in frames] == ["1.png", "3.png"]
    assert [(i, n) for i, n, _ in errors] == [(1, "2.png")] and "corrupt" in errors[0][2]
    with pytest.raises(media.MediaError, match="2.png"):
        list(media.iter_frames(folder))


def test_video_that_cannot_be_opened(tmp_path):
    bad = tmp_path / "movie.mp4"
    bad.write_bytes(b"definitely not an mp4 " * 100)
    with pytest.raises(media.MediaError, match="cannot open it as a video"):
        probe(bad)
    with pytest.raises(media.MediaError, match="movie.mp4"):
        list(media.iter_frames(bad))


def test_truncated_video_is_refused_or_yields_what_decodes(tmp_path, clip):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:300])
    try:
        frames = list(media.iter_frames(cut))
    except media.MediaError as e:
        assert "cut.mp4" in str(e)
    else:
        assert len(frames) < 20


def test_empty_folder(tmp_path):
    (tmp_path / "none").mkdir()
    with pytest.raises(media.MediaError, match="no images"):
        probe(tmp_path / "none")


def test_large_image_is_probed_from_its_header(tmp_path):
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((16, 8300, 3), np.uint8))
    info = probe(big)
    assert (info.width, info.height) == (8300, 16) and info.width > media.LARGE_SIDE


def test_writer_checks_frame_size_and_copies_audio(tmp_path, clip):
    with pytest.raises(ValueError, match="size"), VideoWriter(tmp_path / "o.mp4", 10, (96, 64)) as w:
        w.write(np.zeros((10, 10, 3), np.uint8))
    # Audio from another file is muxed in.
    import subprocess

    wav = tmp_path / "tone.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    str(wav)], check=True)
    out = write_video(tmp_path / "with_audio.mp4", numbered_frames(20), fps=10, audio_from=str(wav))
    assert probe(out).has_audio
