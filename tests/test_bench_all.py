"""`facepair bench … --json`: the extraction and conversion sections with their documented keys, next
to the machine header, as `bench all` joins them (the train section's row is checked in detail by
tests/test_bench.py, in a run without dlib or Textual; it is not repeated here: it compiles for a minute).

The CLI runs in this process (no second interpreter to start) on a 16-frame synthetic clip with the
tiny preset.
"""

from __future__ import annotations

import json

import pytest

from tui.cli.main import main


def _bench(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["bench", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    from core.media import synth

    d = tmp_path_factory.mktemp("bench_all")
    return str(synth.portrait_clip("astronaut", d / "clip.mp4", frames=16, seed=5, audio=True))


def test_bench_extract_and_convert_json_have_their_documented_keys(capsys, clip):
    ext = _bench(capsys, "extract", "--video", clip, "--workers", "1")
    conv = _bench(capsys, "convert", "--video", clip, "--preset", "tiny")
    for res, stage in ((ext, "extract"), (conv, "convert")):
        assert set(res) == {"machine", stage}, set(res)  # only what was asked for, nothing missing
        m = res["machine"]
        for key in ("cpu", "cores", "memory_gib", "devices", "versions", "load_average", "load_average_end", "time"):
            assert key in m, key

    e = ext["extract"]
    for key in ("video", "frames", "workers", "seconds", "naive_seconds", "frames_per_s", "naive_frames_per_s",
                "ratio", "faces", "naive_faces", "recall", "landmark_px", "landmark_px_smoothed"):
        assert key in e, key
    assert e["video"] == clip and e["frames"] == 16
    assert e["frames_per_s"] > 0 and e["naive_frames_per_s"] > 0
    assert e["ratio"] == pytest.approx(e["frames_per_s"] / e["naive_frames_per_s"], rel=0.05)
    assert 0.0 <= e["recall"] <= 1.0 and e["faces"] >= 14  # one face in (nearly) every frame

    c = conv["convert"]
    for key in ("video", "frames", "faces", "preset", "resolution", "device", "frames_per_s", "decode_fps",
                "find_fps", "infer_fps", "merge_fps", "encode_fps", "seconds", "compile_s", "load_s"):
        assert key in c, key
    assert c["video"] == clip and c["frames"] == 16 and c["faces"] >= 14
    assert c["preset"] == "tiny" and c["resolution"] == 32
    assert c["frames_per_s"] > 0 and c["frames_per_s"] <= min(c["decode_fps"], c["encode_fps"]) * 1.05

    # `bench all` joins the sections under one machine header: the plain report names each one.
    from core.bench import report as bench

    report = bench.text_report({"machine": ext["machine"], "extract": e, "convert": c})
    assert "\nextract\n" in report and "\nconvert\n" in report and "frames_per_s" in report
