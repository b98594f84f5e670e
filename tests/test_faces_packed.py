"""The packed face cache (core.faces.packed) under load_faceset, on a real extracted project: the same
pixels as the PNGs, and it follows the faces as they change — removed to the trash (and curation's
status 4 still respected), restored, added, rewritten, deleted."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from core.faces import curation, faceset, packed, trash
from core.faces.faceset import load_faceset


@pytest.fixture
def no_decoding(monkeypatch):
    """Turns PNG decoding off: a load that passes took every crop from the cache."""
    def refuse(path):
        raise AssertionError(f"{path.name} was decoded from its PNG")

    real = faceset._read

    def set_(on: bool = True):
        monkeypatch.setattr(faceset, "_read", refuse if on else real)
    return set_


def _entries(p) -> dict:
    return json.loads((packed.cache_dir(p, "a") / packed.INDEX).read_text())["entries"]


def test_the_cache_gives_the_pngs_pixels_and_follows_the_faces(extracted_project_copy, no_decoding, tmp_path):
    p = extracted_project_copy
    faces_dir = p.faces_dir("a")
    shutil.rmtree(packed.cache_dir(p, "a"), ignore_errors=True)  # the session project may have made one
    files = faceset.face_files(p, "a")
    late = files[len(files) // 2]  # held back, then added once the cache exists
    late.rename(tmp_path / late.name)

    png = load_faceset(p, "a", cache=False)
    assert not packed.cache_dir(p, "a").exists()  # cache=False leaves it alone
    built = load_faceset(p, "a")
    assert set(_entries(p)) == set(png.names)
    no_decoding()
    cached = load_faceset(p, "a")
    assert cached.names == png.names
    np.testing.assert_array_equal(cached.images, png.images)
    np.testing.assert_array_equal(cached.masks, png.masks)
    np.testing.assert_array_equal(built.images, png.images)

    # Removed to the trash: not loaded; put back by hand it stays out (the store says removed).
    gone = png.names[3]
    curation.remove_faces(p, "a", [gone])
    assert gone not in load_faceset(p, "a").names
    (trash.trash_dir(p, "a") / gone).rename(faces_dir / gone)
    fs = load_faceset(p, "a")
    assert gone not in fs.names and "removed" in fs.skipped[gone]
    (faces_dir / gone).rename(trash.trash_dir(p, "a") / gone)
    # Restored: back, and from the cache (its file came back unchanged).
    curation.restore_faces(p, "a", [gone])
    fs = load_faceset(p, "a")
    assert fs.names == png.names
    np.testing.assert_array_equal(fs.images[fs.names.index(gone)], png.images[png.names.index(gone)])

    # Added: decoded once (a load without decoding fails), then cached.
    (tmp_path / late.name).rename(late)
    with pytest.raises(AssertionError, match=late.name):
        load_faceset(p, "a")
    no_decoding(False)
    fs = load_faceset(p, "a")
    assert late.name in fs.names and len(fs) == len(png) + 1
    want = cv2.cvtColor(cv2.imread(str(late)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(fs.images[fs.names.index(late.name)], want)
    no_decoding()
    assert load_faceset(p, "a").names == fs.names

    # Rewritten (a new extraction writes the same name): the new pixels, not the cached ones.
    no_decoding(False)
    victim = faces_dir / png.names[0]
    flipped = cv2.imread(str(victim))[:, ::-1]
    cv2.imwrite(str(victim), flipped)
    fs = load_faceset(p, "a")
    np.testing.assert_array_equal(fs.images[0], cv2.cvtColor(flipped, cv2.COLOR_BGR2RGB))

    # Deleted for good: its entry goes.
    victim.unlink()
    load_faceset(p, "a")
    assert victim.name not in _entries(p)


def test_an_unwritable_cache_still_loads_the_faces(extracted_project_copy, monkeypatch):
    p = extracted_project_copy
    shutil.rmtree(packed.cache_dir(p, "a"), ignore_errors=True)
    png = load_faceset(p, "a", cache=False)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packed, "atomic_file", full)
    fs = load_faceset(p, "a")
    assert fs.names == png.names
    np.testing.assert_array_equal(fs.images, png.images)
