"""`facepair bench scale` (core/bench/scale.py): its parts on small inputs — the long 1080p input,
the memory sampler over a process tree, the store section's lookups — and its report: the summary's
targets and the CLI's table, from a saved result."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from core.bench import report as bench
from core.bench import scale
from core.bench.memory import TreeSampler


def test_the_long_input_is_1080p_at_the_asked_length(tmp_path):
    from core.media import synth
    from core.media.probe import describe, probe

    clip = synth.portrait_clip("astronaut", tmp_path / "clip.mp4", frames=12, size=(240, 240), audio=True, fps=24.0)
    out = scale.long_video(clip, tmp_path / "long.mp4", minutes=0.05, fps=10)  # 3 s: the 0.5 s clip looped
    info = probe(out)
    assert (info.width, info.height) == (1920, 1080) and info.fps == pytest.approx(10)
    assert info.frames == 30
    assert any(s["kind"] == "audio" for s in describe(out)["streams"])


def test_the_sampler_counts_every_process_of_the_tree():
    """A parent holding 60 MiB and its child holding 120 MiB: the tree's peak has both, the root's
    only its own, and two processes were seen."""
    child = "import numpy as np, time; a = np.ones(120 << 20, np.uint8); time.sleep(3)"
    parent = (f"import numpy as np, subprocess, sys, time; b = np.ones(60 << 20, np.uint8); "
              f"p = subprocess.Popen([sys.executable, '-c', {child!r}]); p.wait()")
    proc = subprocess.Popen([sys.executable, "-c", parent])
    s = TreeSampler(proc.pid, 0.1).start()
    proc.wait()
    time.sleep(0.2)
    s.stop()
    got = s.summary()
    assert got["processes"] == 2
    assert got["peak_rss_mib"] >= 180 and 60 <= got["peak_root_rss_mib"] < 150
    assert got["peak_pss_mib"] is None or got["peak_pss_mib"] >= 175


def test_the_store_section_finds_the_frame_in_each_form(tmp_path):
    r = scale.store_section(tmp_path, frames=10_000, unmerged_parts=100)
    assert r["lookup_ok"] and r["frames"] == 10_000 and r["lookup_frame"] == 7_770
    assert r["written_parts"] == 12 + 8  # 200 flushes of 50 frames = 12 merges of 16, and 8 parts
    assert r["unmerged_parts"] == 100
    for k in ("written_open_lookup_s", "compacted_open_lookup_s", "unmerged_open_lookup_s"):
        assert 0 < r[k] < 60


SECTION = {
    "clip": "/data/talking/d18.mp4", "width": 1920, "height": 1080, "fps": 10.0,
    "runs": [{"minutes": m, **{stage: {"frames": f, "faces": f, "frames_per_s": fps, "seconds": f / fps,
                                       "peak_rss_mib": rss, "peak_pss_mib": rss - 300, "peak_root_rss_mib": 900.0,
                                       "processes": 5, "samples": 9, "rss_second_quarter_mib": rss - 100,
                                       "rss_last_quarter_mib": rss - 90}
                                for stage, fps, rss in (("extract", 8.0, base), ("convert", 15.0, base - 800))}}
             for m, f, base in ((1.0, 600, 2400.0), (20.0, 12000, 2500.0))],
    "resume": {"done_at_kill": 540, "stored_at_kill": 500, "resumed_new_frames": 100, "frames_after": 600,
               "complete": True, "killed_state": "failed", "resumed_state": "succeeded"},
    "store": {"frames": 100_000, "written_open_lookup_s": 0.2, "written_parts": 22, "compacted_open_lookup_s": 0.05,
              "unmerged_parts": 2000, "unmerged_open_lookup_s": 5.1, "lookup_ok": True},
    "faceset": {"faces": 10_000, "loaded": 10_000, "size": 256, "png_load_s": 70.0, "build_load_s": 75.0,
                "cached_load_s": 9.5},
}


def test_the_summary_says_which_targets_are_met():
    rows = {r[0]: r for r in bench.scale_rows(SECTION)}
    ext = rows["extract 12,000 frames of 1080p (20 min at 10 fps)"]
    assert ext[3] == "1.04×" and ext[5] == "yes"
    assert rows["resume after a kill at 540 frames done"][5] == "yes"
    missed = {**SECTION, "resume": {**SECTION["resume"], "killed_state": "succeeded", "stored_at_kill": 600,
                                    "resumed_new_frames": 0}}  # the job ended before the kill landed
    assert {r[0]: r for r in bench.scale_rows(missed)}["resume after a kill at 540 frames done"][5] == "no"
    assert rows["alignments store, 100,000 frames"][5] == "yes"
    assert rows["face set, 10,000 faces of 256 px"][5] == "yes"
    grown = {**SECTION, "runs": [SECTION["runs"][0], {**SECTION["runs"][1], "extract": {
        **SECTION["runs"][1]["extract"], "peak_rss_mib": 4000.0}}]}
    assert {r[0]: r for r in bench.scale_rows(grown)}["extract 12,000 frames of 1080p (20 min at 10 fps)"][5] == "no"
    text = bench.text_report({"machine": {}, "scale": SECTION})
    assert "store of 100,000 frames: open + lookup 0.2 s as written (22 parts)" in text


def test_the_cli_prints_the_runs_as_a_table(capsys):
    from tui.cli.commands import bench as cli

    cli._print({"machine": {"cores": 2}, "scale": SECTION})
    out = capsys.readouterr().out
    assert "scale: /data/talking/d18.mp4 looped to 1920×1080 at 10 fps" in out
    assert "12,000" in out and "2,500" in out
    assert "face set of 10,000 faces (256 px): load_faceset 70.0 s from the PNGs" in out
