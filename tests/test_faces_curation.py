"""Removing and restoring faces on an extracted project (real dlib on the fixture's portrait clips):
the crop goes to the trash, training and `convert --faces match` leave the detection out, the store
records it, restore brings it all back; `--where` filters parse or refuse with clear words."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from core.faces import alignments as al
from core.faces import curation, trash
from core.faces.faceset import load_faceset


def _track_run(project, side: str = "a") -> list[curation.FaceRecord]:
    """The faces of the side's longest track, in frame order."""
    faces = curation.list_faces(project, side)
    tracks: dict[int, list] = {}
    for r in faces:
        tracks.setdefault(r.track, []).append(r)
    return max(tracks.values(), key=len)


def test_remove_moves_to_the_trash_and_training_leaves_it_out(extracted_project_copy):
    p = extracted_project_copy
    before = len(load_faceset(p, "a"))
    run = _track_run(p)
    gone = [run[3].name, run[4].name]
    result = curation.remove_faces(p, "a", gone)
    assert sorted(result.removed) == sorted(gone) and result.already == [] and result.batch == 1
    for n in gone:
        assert not (p.faces_dir("a") / n).exists()
        assert (trash.trash_dir(p, "a") / n).is_file()
    fs = load_faceset(p, "a")
    assert len(fs) == before - 2 and not set(gone) & set(fs.names)
    a = al.load_for_source(p, run[3].source)
    assert [al.STATUS[int(a.status[a.row(r.frame, r.face)])] for r in run[2:6]] == ["kept", "removed", "removed", "kept"]
    assert curation.side_counts(p, "a") == {"faces": before - 2, "trash": 2}
    listed = {r.name for r in curation.list_faces(p, "a")}
    assert not set(gone) & listed
    assert {r.name for r in curation.list_faces(p, "a", removed=True)} == set(gone)
    # A crop put back by hand is still not trained on: the store says removed.
    (trash.trash_dir(p, "a") / gone[0]).rename(p.faces_dir("a") / gone[0])
    fs = load_faceset(p, "a")
    assert gone[0] not in fs.names and "removed" in fs.skipped[gone[0]]


def test_convert_match_skips_a_removed_detection(extracted_project_copy):
    from core.convert.identity import IdentityMatcher, reference_descriptors
    from core.convert.sources import store_faces, track_descriptors

    p = extracted_project_copy
    run = _track_run(p)
    victim, neighbour = run[5], run[6]
    a = al.load_for_source(p, victim.source)
    matcher = IdentityMatcher(reference_descriptors(p, "a"))
    image = np.zeros((240, 320, 3), np.uint8)  # not read: every face of the store has its track's descriptor
    assert matcher.matches(image, store_faces(a, victim.frame, track_descriptors(a))[victim.face])
    curation.remove_faces(p, "a", [victim.name])
    a = al.load_for_source(p, victim.source)
    tracks = track_descriptors(a)
    removed = store_faces(a, victim.frame, tracks)[victim.face]
    assert removed.removed
    fresh = IdentityMatcher(reference_descriptors(p, "a"))
    assert not fresh.matches(image, removed)
    kept = store_faces(a, neighbour.frame, tracks)[neighbour.face]
    assert not kept.removed and fresh.matches(image, kept)  # the rest of the track is still swapped
    assert fresh.computed == 0


def test_restore_brings_back_the_last_batch(extracted_project_copy):
    p = extracted_project_copy
    before = len(load_faceset(p, "a"))
    run = _track_run(p)
    first = curation.remove_faces(p, "a", [run[1].name])
    second = curation.remove_faces(p, "a", [run[2].name, run[3].name])
    assert second.batch == first.batch + 1
    back = curation.restore_faces(p, "a")  # the last batch
    assert sorted(back.restored) == sorted([run[2].name, run[3].name]) and not back.skipped
    assert len(load_faceset(p, "a")) == before - 1
    a = al.load_for_source(p, run[2].source)
    assert al.STATUS[int(a.status[a.row(run[2].frame, run[2].face)])] == "kept"
    assert trash.trash_names(p, "a") == [run[1].name]
    again = curation.restore_faces(p, "a", names=[run[2].name, run[1].name.removesuffix(".png")])
    assert again.restored == [run[1].name] and again.skipped == {run[2].name: "not removed"}
    assert len(load_faceset(p, "a")) == before and trash.trash_names(p, "a") == []
    assert trash.batches(p, "a") == []


def test_remove_by_where_and_restore_all(extracted_project_copy):
    p = extracted_project_copy
    faces = curation.list_faces(p, "a", sort="blur")
    # Scores are shown rounded (4 places): cut halfway between two distinct shown values, so the
    # faces below the cut are exactly the first i whatever the digits the rounding dropped.
    blur = [r.scores["blur"] for r in faces]
    i = next(i for i in range(4, len(faces)) if blur[i] > blur[i - 1])
    cut = (blur[i - 1] + blur[i]) / 2
    blurry = curation.list_faces(p, "a", where=f"blur<{cut}")
    assert {r.name for r in blurry} == {r.name for r in faces[:i]}
    curation.remove_faces(p, "a", [r.name for r in blurry])
    assert curation.list_faces(p, "a", where=f"blur<{cut}") == []
    assert min(r.scores["blur"] for r in curation.list_faces(p, "a")) >= cut
    back = curation.restore_faces(p, "a", everything=True)
    assert len(back.restored) == 4 and curation.side_counts(p, "a")["trash"] == 0


def test_unknown_faces_refuse_the_whole_removal(extracted_project_copy):
    p = extracted_project_copy
    good = curation.list_faces(p, "a", limit=1)[0].name
    other_side = curation.list_faces(p, "b", limit=1)[0].name
    with pytest.raises(curation.CurationError, match="no face of side a"):
        curation.remove_faces(p, "a", [good, other_side])
    assert (p.faces_dir("a") / good).is_file()
    with pytest.raises(curation.CurationError, match="not a face name"):
        curation.remove_faces(p, "a", ["holiday.jpg"])


def test_near_duplicates_and_order_on_a_clip(extracted_project_copy):
    run = _track_run(extracted_project_copy)
    assert run[0].scores["change"] is None  # a track's first face has nothing to repeat
    changes = [r.scores["change"] for r in run[1:]]
    assert all(c is not None and 0 <= c < 0.1 for c in changes), changes
    dup_first = curation.list_faces(extracted_project_copy, "a", sort="change")
    assert dup_first[0].scores["change"] == min(changes)
    assert dup_first[-1].scores["change"] is None  # faces without a value sort last
    orders = [r.scores["order"] for r in curation.list_faces(extracted_project_copy, "a")]
    assert orders == sorted(orders)


def test_a_running_training_hears_of_removals(extracted_project_copy):
    from core.train.job import removed_since

    p = extracted_project_copy
    loaded = {s: {f.name for f in p.faces_dir(s).glob("*.png")} for s in ("a", "b")}
    run = _track_run(p)
    curation.remove_faces(p, "a", [run[0].name, run[1].name])
    assert removed_since(p, loaded) == {"a": 2, "b": 0}


def test_the_overview_counts_the_trash(extracted_project_copy):
    from core.studio.overview import summarize

    p = extracted_project_copy
    n = p.face_count("a")
    curation.remove_faces(p, "a", [curation.list_faces(p, "a", limit=1)[0].name])
    s = summarize(p, source_states=False)
    assert s["faces"]["a"] == n - 1 and s["trash"] == {"a": 1, "b": 0}


# ---- --where ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("blur<30", [("blur", "<", 30.0, False)]),
    ("|yaw|>40, identity>=0.55", [("yaw", ">", 40.0, True), ("identity", ">=", 0.55, False)]),
    ("source=clip-1a2b3c and frame >= 100", [("source", "=", "clip-1a2b3c", False), ("frame", ">=", 100.0, False)]),
    ("Change<1e-3 AND size!=0", [("change", "<", 0.001, False), ("size", "!=", 0.0, False)]),
    ("", []),
])
def test_where_parses(text, expected):
    w = curation.parse_where(text)
    assert [(c.key, c.op, c.value, c.absolute) for c in w.clauses] == expected


@pytest.mark.parametrize("text, words", [
    ("blurr<30", "unknown key 'blurr'"),
    ("blur<abc", "'abc' is not a number"),
    ("blur 30", "is not a condition"),
    ("blur<30,", "empty condition"),
    ("source<3", "compare it with = or !="),
    ("yaw>nan", "finite number"),
    ("__import__('os')", "is not a condition"),
])
def test_where_refuses_with_clear_words(text, words):
    with pytest.raises(curation.CurationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        curation.parse_where(text)


def test_where_selects_on_a_table(extracted_project_copy):
    p = extracted_project_copy
    table = curation.face_table(p, "a")
    sid = str(table.columns["source"][0])
    assert len(curation.select(table, f"source={sid}")) == len(table)
    assert len(curation.select(table, f"source!={sid}")) == 0
    yaw = table.columns["yaw"].astype(np.float64)
    rows = curation.select(table, "|yaw|>2")
    assert set(rows.tolist()) == set(np.flatnonzero(np.abs(yaw) > 2).tolist())
    # The fixture's extraction kept its person's faces only: all near the reference.
    assert all(math.isfinite(float(d)) and d < 0.6 for d in table.columns["identity"])


def test_training_says_so_at_its_checkpoint_and_a_resume_leaves_them_out(extracted_project_copy, monkeypatch):
    """Faces removed while a run trains: its checkpoint warns; the resumed run loads fewer faces."""
    from core.jobs import control as jobs
    from core.jobs.events import read_events
    from core.train import job as train_job
    from tests.fixtures.train import TRAIN_ARGS

    p = extracted_project_copy
    gone = [r.name for r in _track_run(p)[:3]]
    real = train_job.get_trainer

    def remove_then_build(*args, **kwargs):  # after the faces are loaded, before the first step
        curation.remove_faces(p, "a", gone)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_job, "get_trainer", remove_then_build)
    first = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 3})
    assert first.state == "succeeded", first.reason
    texts = [e["text"] for e in read_events(first.events_path) if e["type"] == "message"]
    warned = [t for t in texts if "were removed from faces/a" in t]
    from core.train.model_io import read_holdout

    trained_on = [g for g in gone if g not in read_holdout(p)["a"]]  # held-out faces are not trained on
    assert trained_on, "the removed faces were all held out: the test removes nothing the run trains on"
    assert len(warned) == 1 and warned[0].startswith(f"{len(trained_on)} of the "), texts
    loaded = next(t for t in texts if "faces A " in t)

    monkeypatch.setattr(train_job, "get_trainer", real)
    resumed = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 6})
    assert resumed.state == "succeeded", resumed.reason
    texts = [e["text"] for e in read_events(resumed.events_path) if e["type"] == "message"]
    again = next(t for t in texts if "faces A " in t)

    def count(text: str) -> int:  # "faces A 24 (+5 held out)": trained and held out
        m = re.search(r"faces A (\d+) \(\+(\d+) held out\)", text)
        return int(m[1]) + int(m[2])

    assert count(again) == count(loaded) - 3
    assert not any("were removed" in t for t in texts)
