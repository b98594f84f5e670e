"""core.media.write: H.264 out with the input's rate, exact frame count, copied audio, metadata,
and no partial file left behind by a failure (including a full disk)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.media import label
from core.media import write as video_out
from core.media.probe import describe, ffmpeg_exe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A 2 s 29.97 fps clip with a 440 Hz tone (AAC)."""
    path = tmp_path_factory.mktemp("src") / "src.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                    "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30000/1001",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                    "-t", "2", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(path)], check=True)
    return path


def _frames(n: int, h: int = 120, w: int = 160) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, :, 0] = (i * 5) % 256
        cv2.circle(f, (20 + i * 2 % (w - 40), h // 2), 12, (255, 255, 255), -1)
        out.append(f)
    return out


def _decode(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    return frames


def test_exact_rate():
    assert video_out.exact_rate(30000 / 1001) == Fraction(30000, 1001)
    assert video_out.exact_rate(29.97) == Fraction(30000, 1001)
    assert video_out.exact_rate(25.0) == 25
    assert video_out.exact_rate("24000/1001") == Fraction(24000, 1001)


def test_video_keeps_rate_frame_count_audio_and_metadata(tmp_path, source):
    out = tmp_path / "out.mp4"
    frames = _frames(47)
    meta = label.metadata("pair", created="2025-01-01T00:00:00+00:00")
    with video_out.VideoWriter(out, 30000 / 1001, (160, 120), crf=12, audio_from=source, audio_codec="aac",
                               metadata=meta) as w:
        for f in frames:
            w.write(f)
    d = describe(out)
    assert d["frames"] == 47
    assert d["fps"] == pytest.approx(29.97, abs=0.01)
    assert [s["kind"] for s in d["streams"]] == ["video", "audio"]
    assert d["streams"][1]["codec"] == "aac"  # copied, not re-encoded
    assert "AI-generated" in d["metadata"]["comment"] and d["metadata"]["ai_generated"] == "true"
    back = _decode(out)
    assert len(back) == 47
    err = np.abs(np.stack(back).astype(int) - np.stack(frames).astype(int)).mean()
    assert err < 3.0
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_video_delay_keeps_the_video_behind_the_audio(tmp_path, source):
    out = tmp_path / "late.mp4"
    with video_out.VideoWriter(out, 25, (160, 120), audio_from=source, video_delay=0.5) as w:
        for f in _frames(25):
            w.write(f)
    d = describe(out)
    assert d["frames"] == 25
    assert d["video_start"] == pytest.approx(0.5, abs=0.05)
    assert (d["audio_start"] or 0.0) == pytest.approx(0.0, abs=0.05)


def test_audio_trim_and_odd_sizes(tmp_path, source):
    out = tmp_path / "trim.mkv"
    with video_out.VideoWriter(out, 10, (95, 61), audio_from=source, audio_start=0.5, audio_duration=1.0) as w:
        for f in _frames(10, 61, 95):
            w.write(f)
    d = describe(out)
    assert d["frames"] == 10 and (d["width"], d["height"]) == (96, 62)
    assert d["duration"] == pytest.approx(1.0, abs=0.1)


def test_failure_inside_the_block_leaves_nothing_and_keeps_the_old_output(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous, complete output")
    with pytest.raises(RuntimeError):
        with video_out.VideoWriter(out, 25, (160, 120)) as w:
            for f in _frames(5):
                w.write(f)
            raise RuntimeError("the pipeline broke")
    assert out.read_bytes() == b"the previous, complete output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_stale_partials_of_dead_runs_are_removed(tmp_path):
    out = tmp_path / "out.mp4"
    stale = video_out.partial_path(out, pid=999_999_999)
    stale.write_bytes(b"left by a killed run")
    other = tmp_path / ".other.mp4.partial-999999999.mp4"
    other.write_bytes(b"another output's")
    with video_out.VideoWriter(out, 25, (160, 120)) as w:
        w.write(_frames(1)[0])
    assert not stale.exists() and other.exists() and out.exists()


def test_unwritable_output_fails_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(video_out.OutputError, match="not a folder|cannot create"):
        video_out.VideoWriter(blocker / "out.mp4", 25, (160, 120))
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(video_out.OutputError, match="is a folder"):
        video_out.VideoWriter(tmp_path / "dir.mp4", 25, (160, 120))
    with pytest.raises(video_out.OutputError, match=r"\.avi"):
        video_out.VideoWriter(tmp_path / "out.avi", 25, (160, 120))
    if os.geteuid() != 0:  # root writes anywhere; the permission case needs a normal user
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(video_out.OutputError, match="not writable"):
                video_out.VideoWriter(ro / "out.mp4", 25, (160, 120))
        finally:
            ro.chmod(0o700)


def test_image_out_png_and_jpeg_carry_the_metadata(tmp_path, astronaut):
    from PIL import Image

    meta = label.metadata("pair")
    png = video_out.write_image(tmp_path / "o.png", astronaut, meta)
    with Image.open(png) as im:
        assert "AI-generated" in im.text["Comment"] and im.text["ai_generated"] == "true"
        assert np.array_equal(np.asarray(im.convert("RGB")), astronaut)
    jpg = video_out.write_image(tmp_path / "o.jpg", astronaut, meta)
    with Image.open(jpg) as im:
        assert "AI-generated" in im.info["comment"].decode()
        assert "AI-generated" in im.getexif()[0x010E]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "o.png"]


def _write_noise_until_full(out: Path) -> str:
    return textwrap.dedent(f"""
        import numpy as np, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from core.media import write as video_out
        rng = np.random.default_rng(0)
        try:
            with video_out.VideoWriter({str(out)!r}, 25, (320, 240), crf=0) as w:
                for i in range(200):
                    w.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
            print("NO ERROR")
        except video_out.OutputError as e:
            print("ERROR", e)
        print("LEFT", sorted(os.listdir({str(out.parent)!r})))
    """)


def test_full_disk_fails_with_that_reason_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """A real full filesystem: a 2 MiB tmpfs in a private mount namespace when the kernel allows
    one; otherwise the kernel's /dev/full (every write → ENOSPC) at the writer's file."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True) if unshare else None
    if probe is not None and probe.returncode == 0:
        script = _write_noise_until_full(mnt / "out.mp4")
        res = subprocess.run(
            [unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size=2m tmpfs {mnt} && {sys.executable} -c \"$0\"",
             script], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "ERROR disk full" in res.stdout, res.stdout + res.stderr
        assert "LEFT []" in res.stdout
        return
    out = mnt / "out.mp4"
    tmp = video_out.partial_path(out)
    os.symlink("/dev/full", tmp)
    monkeypatch.setattr(video_out, "check_writable", lambda p: None)
    monkeypatch.setattr(video_out, "clean_stale_partials", lambda p: [])
    rng = np.random.default_rng(0)
    with pytest.raises(video_out.OutputError, match="disk full"):
        with video_out.VideoWriter(out, 25, (320, 240), crf=0) as w:
            for _ in range(200):
                w.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    assert list(mnt.iterdir()) == []
