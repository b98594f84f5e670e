"""The alignments store (core.faces.alignments) and load_faceset (core.faces.faceset)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from core.faces import align, detect, faceset
from core.faces import alignments as al


def fake_face(rng, frame: int, size: int = 64, with_desc: bool = False) -> al.Face:
    lm = rng.uniform(0, 640, (68, 2)).astype(np.float32)
    return al.Face(box=rng.uniform(0, 640, 4).astype(np.float32), score=float(rng.normal()),
                   landmarks=lm, landmarks_raw=lm + 1, matrix=rng.normal(size=(2, 3)), size=size, coverage=2.0,
                   blur=float(frame), status=frame % 4, tracked=bool(frame % 2), track=frame // 10,
                   descriptor=rng.normal(size=128).astype(np.float32) if with_desc else None)


META = {"source": {"id": "clip-abc123"}, "settings": {"size": 64}}


def test_store_round_trips_parts_and_compaction(tmp_path):
    rng = np.random.default_rng(0)
    w = al.Writer(tmp_path / "s.fpa", META)
    expected = {}
    for frame in range(30):
        faces = [fake_face(rng, frame, with_desc=(frame % 3 == 0)) for _ in range(frame % 3)]
        w.add(frame, faces)
        expected[frame] = faces
        if frame % 7 == 6:
            w.flush()
    w.flush()
    a = al.load(tmp_path / "s.fpa")

    def check(a):
        assert a.frames.tolist() == list(range(30))
        assert len(a) == sum(len(v) for v in expected.values())
        for frame, faces in expected.items():
            rows = a.faces_in(frame)
            assert len(rows) == len(faces)
            for i, (r, f) in enumerate(zip(rows, faces, strict=True)):
                assert a.face_index[r] == i and a.face_frame[r] == frame
                np.testing.assert_array_equal(a.landmarks[r], f.landmarks)
                np.testing.assert_array_equal(a.landmarks_raw[r], f.landmarks_raw)
                np.testing.assert_array_equal(a.matrix[r], f.matrix)
                assert (a.status[r], a.tracked[r], a.track[r]) == (f.status, f.tracked, f.track)
                d = a.descriptor(r)
                if f.descriptor is None:
                    assert d is None
                else:
                    np.testing.assert_array_equal(d, f.descriptor)
                assert a.name(r) == f"clip-abc123_{frame:06d}_{i:02d}.png"

    check(a)
    assert len(list((tmp_path / "s.fpa").glob("part-*.npz"))) == 5
    al.Writer(tmp_path / "s.fpa").compact()
    assert len(list((tmp_path / "s.fpa").glob("part-*.npz"))) == 1
    check(al.load(tmp_path / "s.fpa"))


def test_newer_part_wins_for_a_redone_frame(tmp_path):
    rng = np.random.default_rng(1)
    w = al.Writer(tmp_path / "s.fpa", META)
    w.add(5, [fake_face(rng, 5), fake_face(rng, 5)])
    w.add(6, [fake_face(rng, 6)])
    w.flush()
    redo = fake_face(rng, 5, with_desc=True)
    w.add(5, [redo])
    w.flush()
    a = al.load(tmp_path / "s.fpa")
    assert a.frames.tolist() == [5, 6]
    assert len(a.faces_in(5)) == 1 and len(a.faces_in(6)) == 1
    np.testing.assert_array_equal(a.landmarks[a.row(5, 0)], redo.landmarks)
    np.testing.assert_array_equal(a.descriptor(a.row(5, 0)), redo.descriptor)


def test_store_is_versioned_and_never_pickled(tmp_path):
    w = al.Writer(tmp_path / "s.fpa", META)
    w.add(0, [fake_face(np.random.default_rng(2), 0)])
    part = w.flush()
    with np.load(part, allow_pickle=False) as z:  # every array loads without pickle
        assert all(z[k].dtype != object for k in z.files)
    meta = al.read_meta(tmp_path / "s.fpa")
    assert meta["format"] == "facepair-alignments" and meta["version"] == al.VERSION
    import json

    (tmp_path / "s.fpa" / "meta.json").write_text(json.dumps({**meta, "version": al.VERSION + 1}))
    with pytest.raises(al.AlignmentsError, match="newer than this facepair"):
        al.load(tmp_path / "s.fpa")


def test_damaged_part_is_named(tmp_path):
    w = al.Writer(tmp_path / "s.fpa", META)
    w.add(0, [])
    part = w.flush()
    part.write_bytes(b"garbage")
    with pytest.raises(al.AlignmentsError, match=part.name):
        al.load(tmp_path / "s.fpa")


def test_missing_store_names_the_command(project):
    with pytest.raises(al.AlignmentsError, match="facepair extract pair"):
        al.load_for_source(project, "nothing-000000")


def test_crop_names_round_trip():
    assert al.parse_crop_name(al.crop_name("clip-ab12cd", 123, 4)) == ("clip-ab12cd", 123, 4)
    assert al.parse_crop_name(al.crop_name("x-000000", 1234567, 12)) == ("x-000000", 1234567, 12)
    assert al.parse_crop_name("holiday.png") is None


@pytest.mark.slow
def test_100k_frames_save_and_load_fast(tmp_path):
    """A long video's store (100k frames, one face each) loads in well under a few seconds."""
    n = 100_000
    rng = np.random.default_rng(3)
    lm = rng.uniform(0, 1920, (n, 68, 2)).astype(np.float32)
    arrays = {"frames": np.arange(n), "face_frame": np.arange(n), "face_index": np.zeros(n, np.int16),
              "box": np.zeros((n, 4), np.float32), "score": np.ones(n, np.float32),
              "tracked": np.zeros(n, bool), "track": np.zeros(n, np.int32), "landmarks": lm,
              "landmarks_raw": lm, "matrix": np.zeros((n, 2, 3)), "size": np.full(n, 256, np.int32),
              "coverage": np.full(n, 2.0, np.float32), "blur": np.zeros(n, np.float32),
              "status": np.zeros(n, np.int8), "descriptor_face": np.arange(0, n, 50),
              "descriptor": rng.normal(size=(n // 50, 128)).astype(np.float32)}
    w = al.Writer(tmp_path / "big.fpa", META)
    t0 = time.perf_counter()
    half = n // 2
    w._write_part({k: (v[:half] if k != "descriptor_face" and k != "descriptor" else v[:0].reshape(0, *v.shape[1:]))
                   for k, v in arrays.items()})
    w._write_part({**{k: v[half:] for k, v in arrays.items() if k not in ("descriptor_face", "descriptor")},
                   "face_frame": arrays["face_frame"][half:], "descriptor_face": arrays["descriptor_face"][:10],
                   "descriptor": arrays["descriptor"][:10]})
    t1 = time.perf_counter()
    a = al.load(tmp_path / "big.fpa")
    t2 = time.perf_counter()
    assert len(a) == n and len(a.frames) == n
    np.testing.assert_array_equal(a.landmarks[n - 1], lm[n - 1])
    assert a.faces_in(77_777).tolist() == [77_777]
    assert a.descriptor(half + 50) is not None and a.descriptor(half + 51) is None
    print(f"100k frames: write {t1 - t0:.2f} s, load {t2 - t1:.2f} s")
    assert t2 - t1 < 5.0


def test_a_long_extraction_leaves_few_parts_and_the_same_store(tmp_path):
    """Every 16 parts of one tier merge into one as they are written (a store in progress opens as
    fast as a finished one), and what the store holds is what was added."""
    rng = np.random.default_rng(4)
    w = al.Writer(tmp_path / "s.fpa", META)
    expected = {}
    for frame in range(16 * 16 + 3):  # one flush a frame: 259 parts written
        faces = [fake_face(rng, frame, with_desc=frame % 5 == 0) for _ in range(frame % 3)]
        w.add(frame, faces)
        expected[frame] = faces
        held = w.flush()
        assert held.is_file()  # the part that holds the frame (a merged one after every 16th)
    parts = sorted(p.name for p in (tmp_path / "s.fpa").glob("part-*.npz"))
    assert len(parts) == 4  # one of 256 frames (two merges deep) and the last three
    a = al.load(tmp_path / "s.fpa")
    assert a.frames.tolist() == list(range(16 * 16 + 3))
    for frame, faces in expected.items():
        rows = a.faces_in(frame)
        assert [int(a.face_index[r]) for r in rows] == list(range(len(faces)))
        for r, f in zip(rows, faces, strict=True):
            np.testing.assert_array_equal(a.landmarks[r], f.landmarks)
            assert a.track[r] == f.track and a.status[r] == f.status
            d = a.descriptor(r)
            assert (d is None) == (f.descriptor is None)
            if d is not None:
                np.testing.assert_array_equal(d, f.descriptor)


def test_merging_keeps_the_newer_copy_of_a_redone_frame(tmp_path):
    """Parts that overlap (a frame written twice) merge as load reads them: the newer one wins."""
    rng = np.random.default_rng(5)
    w = al.Writer(tmp_path / "s.fpa", META)
    first = fake_face(rng, 3)
    w.add(3, [first])
    w.flush()
    redo = fake_face(rng, 3, with_desc=True)
    w.add(3, [redo, fake_face(rng, 3)])
    w.flush()
    w.compact()
    assert len(list((tmp_path / "s.fpa").glob("part-*.npz"))) == 1
    a = al.load(tmp_path / "s.fpa")
    assert a.frames.tolist() == [3] and len(a) == 2
    np.testing.assert_array_equal(a.landmarks[a.row(3, 0)], redo.landmarks)
    np.testing.assert_array_equal(a.descriptor(a.row(3, 0)), redo.descriptor)


def _synthetic_store(path, frames: int, part_frames: int, seed: int = 6):
    """A store of `frames` frames, one face each, written as parts of `part_frames` frames; returns
    the landmarks and the descriptor rows it holds."""
    rng = np.random.default_rng(seed)
    w = al.Writer(path, META)
    lm = rng.uniform(0, 1920, (frames, 68, 2)).astype(np.float32)
    desc_rows = np.arange(0, frames, 64)
    desc = rng.normal(size=(len(desc_rows), 128)).astype(np.float32)
    for lo in range(0, frames, part_frames):
        hi = min(frames, lo + part_frames)
        arrays = al._empty_faces(hi - lo)
        arrays["face_frame"][:] = np.arange(lo, hi)
        arrays["landmarks"][:] = arrays["landmarks_raw"][:] = lm[lo:hi]
        arrays["track"][:] = np.arange(lo, hi) // 64
        mine = (desc_rows >= lo) & (desc_rows < hi)
        w._write_part({"frames": np.arange(lo, hi), **arrays, "descriptor_face": desc_rows[mine] - lo,
                       "descriptor": desc[mine]})
    return w, lm, desc_rows, desc


def test_a_100k_frame_store_is_mapped_and_answers_a_frame_lookup(tmp_path):
    """A long video's store (100,000 frames), compacted from 10 parts: opening maps it (nothing
    read but the frame index), and a lookup gives that frame's face."""
    n = 100_000
    w, lm, desc_rows, desc = _synthetic_store(tmp_path / "big.fpa", n, 10_000)
    w.compact()
    assert len(list((tmp_path / "big.fpa").glob("part-*.npz"))) == 1
    a = al.load(tmp_path / "big.fpa")
    assert not a.landmarks.flags.owndata and not a.matrix.flags.owndata  # views of the mapped file
    assert len(a) == n and a.frames[-1] == n - 1 and a.processed(77_777) and not a.processed(n)
    rows = a.faces_in(77_777)
    assert rows.tolist() == [77_777]
    np.testing.assert_array_equal(a.landmarks[rows[0]], lm[77_777])
    assert a.track[rows[0]] == 77_777 // 64
    row = int(desc_rows[1000])
    np.testing.assert_array_equal(a.descriptor(row), desc[1000])
    assert a.descriptor(row + 1) is None
    assert a.name(rows[0]) == "clip-abc123_077777_00.png"


# ---- load_faceset ------------------------------------------------------------------------------

def _extract_by_hand(project, side: str, source_id: str, images: list[np.ndarray], size: int = 96) -> None:
    """Crops + store written with core.faces.detect/core.faces.align only (the pipeline is tested elsewhere)."""
    w = al.Writer(al.store_path(project, source_id), {"source": {"id": source_id}, "settings": {"size": size}})
    for frame, img in enumerate(images):
        faces = []
        for d in detect.detect(img)[:1]:
            lm = detect.landmarks(img, d)
            m = align.crop_matrix(lm, size)
            cv2.imwrite(str(project.faces_dir(side) / al.crop_name(source_id, frame, len(faces))),
                        cv2.cvtColor(align.warp_to_crop(img, m, size), cv2.COLOR_RGB2BGR))
            faces.append(al.Face(d.as_array(), d.score, lm, lm, m, size, align.COVERAGE))
        w.add(frame, faces)
    w.flush()


def test_load_faceset_reads_crops_landmarks_and_masks(project, astronaut, hopper):
    _extract_by_hand(project, "a", "astro-000001", [astronaut, astronaut[:, ::-1].copy(), np.zeros((64, 64, 3), np.uint8)])
    _extract_by_hand(project, "b", "hopper-000002", [hopper])
    fa = faceset.load_faceset(project, "a")
    assert len(fa) == 2 and fa.images.shape == (2, 96, 96, 3) and fa.images.dtype == np.uint8
    assert fa.masks.shape == (2, 96, 96) and fa.landmarks.shape == (2, 68, 2) and fa.landmarks.dtype == np.float32
    assert fa.names == ["astro-000001_000000_00.png", "astro-000001_000001_00.png"]
    assert fa.source_ids == ["astro-000001"] * 2
    # Crop landmarks sit on the canonical mean face (that is what alignment means) ...
    assert np.abs(fa.landmarks[:, 17:] - align.mean_face_landmarks(96)).mean() < 3.0
    # ... and the mask covers the face centre, not the corners.
    assert fa.masks[0, 55, 48] == 255 and fa.masks[0, 2, 2] == 0

    small = faceset.load_faceset(project, "a", size=48)
    assert small.images.shape == (2, 48, 48, 3) and small.masks.shape == (2, 48, 48)
    np.testing.assert_allclose(small.landmarks, (fa.landmarks + 0.5) / 2 - 0.5, atol=1e-4)

    # A crop the user deleted is gone; an unknown file is skipped and said why.
    (project.faces_dir("a") / "astro-000001_000001_00.png").unlink()
    cv2.imwrite(str(project.faces_dir("a") / "stray.png"), np.zeros((96, 96, 3), np.uint8))
    fa2 = faceset.load_faceset(project, "a")
    assert fa2.names == ["astro-000001_000000_00.png"] and "stray.png" in fa2.skipped
    assert len(faceset.load_faceset(project, "b")) == 1


def test_load_faceset_without_faces_says_what_to_run(project):
    with pytest.raises(faceset.FaceSetError, match="facepair extract pair --side b"):
        faceset.load_faceset(project, "b")
