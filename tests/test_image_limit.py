"""The pixel limit: an image whose header claims more than 100 megapixels (a 'decompression bomb':
this one is a valid 20000×20000 PNG of 48 KB that decodes to 1.2 GB) is refused by add-source,
extract and convert with a message naming the file and its size, before anything is decoded."""

from __future__ import annotations

import json
import resource
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from core.jobs import control as jobs
from core.media import read as media
from core.media.probe import probe
from core.project.projects import describe_source, load_project
from tui.cli.main import main

SIDE = 20000
PIL_DEFAULT_LIMIT = Image.MAX_IMAGE_PIXELS  # what PIL ships with; facepair must leave it alone


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_bomb(path: Path, side: int = SIDE) -> Path:
    """A valid, fully decodable 1-bit PNG of side×side pixels, compressed to a few tens of KB."""
    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


@pytest.fixture
def bomb(tmp_path) -> Path:
    return write_bomb(tmp_path / "bomb.png")


@pytest.fixture(autouse=True)
def default_limit(monkeypatch):
    monkeypatch.delenv(media.MAX_PIXELS_ENV, raising=False)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def says_too_large(text: str, path: Path) -> bool:
    text = " ".join(text.split())
    return (f"{path}: image is 20000×20000 pixels (400 megapixels), over the limit of 100 megapixels" in text
            and media.MAX_PIXELS_ENV in text)


def test_bomb_is_small_on_disk_and_claims_400_megapixels(bomb, tmp_path):
    assert bomb.stat().st_size < 200_000
    with pytest.raises(Image.DecompressionBombError):  # PIL's own guard agrees it is one
        Image.open(bomb)
    media.check_image_pixels(write_bomb(tmp_path / "ok.png", side=10000))  # exactly 100 megapixels: allowed


def test_media_refuses_the_bomb_from_its_header(bomb, tmp_path):
    before, t0 = peak_rss_mb(), time.monotonic()
    for call in (probe, media.read_image, media.check_image_pixels, lambda p: list(media.iter_frames(p))):
        with pytest.raises(media.MediaError) as e:
            call(bomb)
        assert says_too_large(str(e.value), bomb)
    folder = tmp_path / "photos"
    folder.mkdir()
    write_bomb(folder / "a.png")
    Image.new("RGB", (64, 48)).save(folder / "b.png")
    errors = []
    frames = list(media.iter_frames(folder, on_error=lambda i, name, msg: errors.append((name, msg))))
    assert [f.name for f in frames] == ["b.png"]
    assert errors and errors[0][0] == "a.png" and says_too_large(errors[0][1], folder / "a.png")
    assert probe(folder).frames == 2
    assert time.monotonic() - t0 < 5
    assert peak_rss_mb() - before < 200  # decoding it would take 1.2 GB
    assert Image.MAX_IMAGE_PIXELS == PIL_DEFAULT_LIMIT  # PIL's process-wide guard is untouched


def test_add_source_refuses_the_bomb_and_records_nothing(project, home, bomb, tmp_path, capsys):
    before, t0 = peak_rss_mb(), time.monotonic()
    code, out, err = run(capsys, "add-source", "pair", "b", str(bomb))
    assert code == 2 and says_too_large(err, bomb) and "Traceback" not in err
    folder = tmp_path / "photos"
    folder.mkdir()
    write_bomb(folder / "huge.png")
    Image.new("RGB", (64, 48)).save(folder / "fine.png")
    code, out, err = run(capsys, "add-source", "pair", "b", str(folder), "--copy")
    assert code == 2 and "1 image(s) over the pixel limit" in err and says_too_large(err, folder / "huge.png")
    assert time.monotonic() - t0 < 5 and peak_rss_mb() - before < 200
    assert load_project(home, "pair").sources == []
    assert not any((project.root / "sources" / "b").iterdir())
    assert Image.MAX_IMAGE_PIXELS == PIL_DEFAULT_LIMIT


def test_the_limit_is_configurable(project, home, bomb, tmp_path, capsys, monkeypatch):
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 64)).save(small)  # 4,096 pixels
    monkeypatch.setenv(media.MAX_PIXELS_ENV, "4000")
    code, out, err = run(capsys, "add-source", "pair", "b", str(small))
    assert code == 2 and "64×64 pixels" in err and "limit of 0.004 megapixels" in err
    monkeypatch.setenv(media.MAX_PIXELS_ENV, "500_000_000")
    code, out, err = run(capsys, "add-source", "pair", "b", str(bomb))
    assert code == 0 and "added image" in out
    monkeypatch.setenv(media.MAX_PIXELS_ENV, "0")  # no limit
    code, out, err = run(capsys, "add-source", "pair", "b", str(small))
    assert code == 0 and "added image" in out
    monkeypatch.setenv(media.MAX_PIXELS_ENV, "lots")
    with pytest.raises(media.MediaError, match="not a number of pixels"):
        media.max_image_pixels()


def test_convert_refuses_the_bomb_before_starting_a_job(project, bomb, capsys):
    before, t0 = peak_rss_mb(), time.monotonic()
    code, out, err = run(capsys, "convert", "pair", "-i", str(bomb))
    assert code == 2 and says_too_large(err, bomb) and "Traceback" not in err
    assert time.monotonic() - t0 < 5 and peak_rss_mb() - before < 200
    assert jobs.project_jobs(project) == []
    assert not any(project.output_dir.iterdir())  # no 20000² output


def test_convert_job_refuses_the_bomb(project, bomb):
    """The job itself checks too (a job started by the TUI or a script)."""
    job = jobs.run_inline(project, "convert", {"input": str(bomb)})
    assert job.state == "failed" and says_too_large(job.reason, bomb)


def test_extract_refuses_a_recorded_bomb_with_the_message(project, home, bomb, capsys):
    # Recorded before the limit existed (or with the limit off): extract must still refuse it.
    project.sources.append(describe_source("a", bomb))
    project.save()
    t0 = time.monotonic()
    code, out, err = run(capsys, "extract", "pair", "--side", "a")
    assert code == 1 and "Traceback" not in out + err
    (job,) = jobs.project_jobs(project)
    assert job.state == "failed" and "nothing could be extracted" in job.reason and says_too_large(job.reason, bomb)
    assert "MemoryError" not in job.log_path.read_text()
    assert time.monotonic() - t0 < 60  # a decode of 20000² would take seconds and 1.2 GB more
    code, out, err = run(capsys, "job", "show", job.id, "--json")
    summary = [e for e in json.loads(out)["events"] if e["type"] == "summary"][0]
    assert says_too_large(summary["sides"]["a"]["errors"][str(bomb)], bomb)


def test_a_jpeg_whose_header_claims_too_much_is_refused_too(tmp_path):
    """A small JPEG whose frame header (SOF0) is edited to say 20000×20000."""
    import io

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 120, 90)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", SIDE, SIDE)  # height, width
    path = tmp_path / "forged.jpg"
    path.write_bytes(bytes(data))
    for call in (probe, media.read_image):
        with pytest.raises(media.MediaError) as e:
            call(path)
        assert says_too_large(str(e.value), path)
