"""core.media.label: the visible mark, the metadata, and C2PA manifests signed with the local identity."""

from __future__ import annotations

import os
import stat
import subprocess

import numpy as np
import pytest

from core.media import label
from core.media import write as video_out
from core.media.probe import ffmpeg_exe


def test_visible_label_touches_only_its_corner_box(astronaut):
    frame = astronaut.copy()
    out = label.burn_label(frame.copy())
    x0, y0, x1, y1 = label.label_box(frame.shape)
    h, w = frame.shape[:2]
    assert x1 > w * 0.6 and y1 > h * 0.85  # bottom-right corner
    assert (x1 - x0) < w * 0.4 and (y1 - y0) < h * 0.1  # small
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], frame[outside])
    # legible on any background: a dark plate with bright text on it (here on light grey)
    box = label.burn_label(np.full_like(frame, 170))[y0:y1, x0:x1].astype(int)
    assert (box.max(axis=2) > 200).sum() > 0.05 * box.shape[0] * box.shape[1]
    assert np.median(box) < 100


@pytest.mark.parametrize("shape", [(48, 64), (360, 640), (1080, 1920), (400, 90)])
def test_visible_label_fits_any_frame(shape):
    frame = np.full((*shape, 3), 128, np.uint8)
    out = label.burn_label(frame.copy())
    x0, y0, x1, y1 = label.label_box(frame.shape)
    assert 0 <= x0 < x1 <= shape[1] and 0 <= y0 < y1 <= shape[0]
    assert (out != 128).any()


def test_metadata_says_ai_generated_with_project_and_time():
    meta = label.metadata("my pair", created="2025-01-02T03:04:05+00:00")
    assert "AI-generated" in meta["comment"] and "facepair" in meta["comment"]
    assert "my pair" in meta["comment"] and "2025-01-02T03:04:05+00:00" in meta["comment"]
    assert meta["ai_generated"] == "true"
    assert meta["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")


def test_signing_identity_is_made_once_and_kept_private(tmp_path):
    chain, key = label.signing_identity(tmp_path)
    assert chain.count(b"BEGIN CERTIFICATE") == 2 and b"PRIVATE KEY" in key
    folder = label.identity_dir(tmp_path)
    assert stat.S_IMODE(os.stat(folder / "signer.key").st_mode) == 0o600
    assert label.signing_identity(tmp_path) == (chain, key)  # reused, not remade


def _png(path, rgb):
    from PIL import Image

    Image.fromarray(rgb).save(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_c2pa_manifest_on_images_says_composite_with_trained_algorithmic_media(tmp_path, astronaut, suffix):
    out = tmp_path / f"out{suffix}"
    video_out.write_image(out, astronaut[:128, :128], label.metadata("pair"))
    assert label.embed_c2pa(out, tmp_path / "home", "pair", "2025-01-01T00:00:00+00:00") is None
    store = label.read_c2pa(out)
    assert label.c2pa_source_types(store) == [label.SOURCE_TYPE]
    codes = [s["code"] for s in store.get("validation_status", [])]
    assert codes == ["signingCredential.untrusted"]  # intact; only the local signer is not trusted
    assert store.get("validation_state") == "Valid"


def test_c2pa_manifest_on_video_detects_tampering(tmp_path):
    src = tmp_path / "v.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=96x64:rate=10", "-t", "1", "-pix_fmt", "yuv420p", str(src)], check=True)
    assert label.embed_c2pa(src, tmp_path / "home", "pair", label.now_iso()) is None
    store = label.read_c2pa(src)
    assert store["validation_state"] == "Valid"
    assert label.c2pa_source_types(store) == [label.SOURCE_TYPE]
    data = bytearray(src.read_bytes())
    i = data.find(b"mdat") + 200
    data[i] ^= 0xFF
    src.write_bytes(bytes(data))
    tampered = label.read_c2pa(src)
    assert tampered["validation_state"] == "Invalid"


def test_c2pa_failure_is_reported_not_raised(tmp_path, astronaut):
    out = tmp_path / "out.mkv"
    out.write_bytes(b"not signable")
    reason = label.embed_c2pa(out, tmp_path / "home", "pair", label.now_iso())
    assert reason and ".mkv" in reason
    assert out.read_bytes() == b"not signable"
    png = tmp_path / "x.png"
    _png(png, astronaut[:32, :32])
    before = png.read_bytes()
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("x")  # the identity cannot be created under a file
    reason = label.embed_c2pa(png, blocker, "pair", label.now_iso())
    assert reason and "Error" in reason
    assert png.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
