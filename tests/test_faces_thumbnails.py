"""The thumbnail cache of a side (core.faces.thumbnails) on an extracted project's real crops: one
thumbnail a crop, made again only when the crop changes, untouched by removing and restoring, an
unreadable crop kept as a placeholder; and the pose coverage of a side (core.faces.coverage)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from core.faces import coverage, curation, thumbnails, trash
from core.faces.thumbnails import THUMB_PX, ThumbCache


def _crops(project, side="a") -> list[str]:
    return sorted(p.name for p in project.faces_dir(side).glob("*.png"))


def _shrunk(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((THUMB_PX, THUMB_PX), Image.Resampling.BOX), np.float64)


def test_build_makes_one_thumbnail_a_crop(extracted_project_copy):
    p = extracted_project_copy
    names = _crops(p)
    cache = ThumbCache(p, "a")
    assert cache.stale() == names and cache.get(names[0]) is None
    done = cache.build()
    assert done.built == len(names) and done.unreadable == [] and done.total == len(names)
    for n in (names[0], names[-1]):
        thumb = cache.get(n)
        assert thumb.shape == (THUMB_PX, THUMB_PX, 3) and thumb.dtype == np.uint8
        assert np.abs(thumb - _shrunk(p.faces_dir("a") / n)).mean() < 6  # the crop, shrunk (JPEG q90)
    assert cache.stale() == [] and cache.build().built == 0
    other = ThumbCache(p, "a")  # another screen or process reads what this one built
    assert np.array_equal(other.get(names[3]), cache.get(names[3]))
    assert (p.faces_dir("a") / ".thumbs" / "index.npz").is_file()  # hidden: the side's crops are still these
    assert p.face_count("a") == len(names)


def test_removing_and_restoring_cost_nothing(extracted_project_copy):
    p = extracted_project_copy
    cache = ThumbCache(p, "a")
    cache.build()
    gone = _crops(p)[:3]
    curation.remove_faces(p, "a", gone)
    assert cache.stale() == [] and cache.build().built == 0
    assert all(cache.get(n) is not None for n in gone)  # in the trash, still shown
    curation.restore_faces(p, "a", last=True)
    assert cache.stale() == [] and cache.build().built == 0


def test_a_changed_crop_is_made_again_and_a_deleted_one_forgotten(extracted_project_copy):
    p = extracted_project_copy
    names = _crops(p)
    cache = ThumbCache(p, "a")
    cache.build()
    changed, deleted = names[1], names[2]
    path = p.faces_dir("a") / changed
    Image.fromarray(np.full((64, 64, 3), (250, 10, 10), np.uint8)).save(path)
    os.utime(path, ns=(1, 1))
    (p.faces_dir("a") / deleted).unlink()
    assert cache.stale() == [changed]
    assert cache.build().built == 1
    assert np.abs(cache.get(changed).astype(int) - (250, 10, 10)).max() < 12
    assert not cache.has(deleted) and len(cache) == len(names) - 1
    assert len(ThumbCache(p, "a")) == len(names) - 1


def test_an_unreadable_crop_is_a_placeholder_until_it_is_fixed(extracted_project_copy):
    p = extracted_project_copy
    bad = _crops(p)[4]
    good = (p.faces_dir("a") / bad).read_bytes()
    (p.faces_dir("a") / bad).write_bytes(b"not a png")
    cache = ThumbCache(p, "a")
    done = cache.build()
    assert done.unreadable == [bad] and done.built == len(_crops(p)) - 1
    assert cache.get(bad) is None and cache.unreadable(bad)
    assert cache.build().unreadable == []  # not tried again while the file is unchanged
    (p.faces_dir("a") / bad).write_bytes(good)
    assert cache.build().built == 1 and not cache.unreadable(bad) and cache.get(bad) is not None


def test_the_first_names_come_first_and_a_cancel_keeps_what_was_made(extracted_project_copy, monkeypatch):
    monkeypatch.setattr(thumbnails, "CHUNK", 4)
    p = extracted_project_copy
    names = _crops(p)
    wanted = names[::-1][:4]
    cache = ThumbCache(p, "a")
    seen = []

    def progress(done, total):
        seen.append((done, total, all(cache.has(n) for n in wanted)))

    done = cache.build(first=wanted, progress=progress, cancelled=lambda: len(seen) >= 2)
    assert seen[0] == (4, len(names), True)
    assert done.cancelled and done.built == 8 and len(ThumbCache(p, "a")) == 8


def test_compaction_rewrites_only_live_thumbnails(extracted_project_copy, monkeypatch):
    monkeypatch.setattr(thumbnails, "COMPACT_MIN_BYTES", 0)
    p = extracted_project_copy
    names = _crops(p)
    cache = ThumbCache(p, "a")
    cache.build()
    first = cache._blob
    for n in names:  # every crop "re-extracted": every thumbnail dead once rebuilt
        os.utime(p.faces_dir("a") / n, ns=(5, 5))
    cache.build()
    cache.build()  # dead bytes now outweigh the live ones: rewritten
    assert cache._blob != first and not (cache.dir / first).exists()
    assert [f.name for f in cache.dir.glob("thumbs-*.bin")] == [cache._blob]
    size = (cache.dir / cache._blob).stat().st_size
    assert size == sum(e[1] for e in cache._index.values())
    assert np.abs(cache.get(names[5]) - _shrunk(p.faces_dir("a") / names[5])).mean() < 6


def test_a_trash_only_face_has_a_thumbnail(extracted_project_copy):
    p = extracted_project_copy
    n = _crops(p)[0]
    curation.remove_faces(p, "a", [n])
    assert (trash.trash_dir(p, "a") / n).is_file()
    cache = ThumbCache(p, "a")
    cache.build()
    assert cache.get(n) is not None


# ---- pose coverage ---------------------------------------------------------------------------------

def test_histogram_bins_as_faces_sit_on_screen():
    counts = coverage.histogram([0, 0, 50, -80, np.nan], [0, 30, 0, 0, 0])
    assert counts.shape == (coverage.PITCH_BINS, coverage.YAW_BINS) and counts.sum() == 4
    mid_row, mid_col = coverage.PITCH_BINS // 2, coverage.YAW_BINS // 2
    assert counts[mid_row, mid_col] == 1  # frontal in the middle
    assert counts[0, mid_col] == 1  # nose up: the top row
    assert counts[mid_row, -1] == 1 and counts[mid_row, 0] == 1  # turned right / far left (clamped)


def test_a_pose_counts_as_covered_within_one_bin():
    at = lambda yaw, pitch: coverage.PoseHistogram(coverage.histogram([yaw], [pitch]), "")  # noqa: E731
    target = coverage.PoseHistogram(coverage.histogram([0, 0, 40], [0, -12, 0]), "A")
    b = at(0, 0)
    assert coverage.covered_share(target, b) == pytest.approx(2 / 3)  # 12° down: the next bin, covered
    lack = coverage.lacking(target, b)
    assert lack.sum() == 1 and lack[coverage.bin_of(40, 0)]  # 40° to the side is not
    assert coverage.covered_share(target, b, reach=0) == pytest.approx(1 / 3)
    assert coverage.lacking(target, at(-50, 30)).sum() == 3


def test_lacking_poses_of_the_target(extracted_project_copy):
    p = extracted_project_copy
    a = coverage.target_histogram(p)
    b = coverage.side_histogram(curation.face_table(p, "b"))
    assert a.total == p.face_count("a") and b.total == p.face_count("b")
    empty = coverage.PoseHistogram(np.zeros_like(a.counts), "none")
    assert np.array_equal(coverage.lacking(a, empty), a.counts > 0)
    assert coverage.covered_share(a, empty) == 0.0 and coverage.covered_share(a, a) == 1.0
    assert not coverage.lacking(a, a).any()
    share = coverage.covered_share(a, b)
    assert share == pytest.approx(a.counts[coverage.reached(b)].sum() / a.total)
