"""The TUI's plain-Python parts: incremental event reading, bounded series, decimation, log tail,
path completion, thumbnails. No Textual app needed."""

from __future__ import annotations

import json
import math
import time
import tracemalloc

from PIL import Image

from core.jobs.events import EventWriter
from tests.fixtures.tui import metrics_events, write_job
from tui.app.watch import JobDigest, JobWatch, LogTail, LossHistory, Series, decimate, fmt_duration
from tui.app.widgets.path_input import complete_path
from tui.app.widgets.thumbs import montage, sample_faces


def test_series_stays_bounded_and_keeps_first_and_newest_points():
    s = Series(capacity=64)
    for i in range(10_000):
        s.add(i, float(i))
    xs, ys = s.points()
    assert len(s) < 64
    assert xs[0] == 0 and xs[-1] == 9999 and ys[-1] == 9999.0
    assert xs == sorted(xs)
    # thinning is even: gaps between kept points are all the same stride
    gaps = {b - a for a, b in zip(s.xs, s.xs[1:], strict=False)}
    assert gaps == {s.stride}


def test_loss_history_smooths_and_restarts_on_a_lower_step():
    h = LossHistory(capacity=128)
    for ev in metrics_events(50):
        h.add(ev)
    raw_x, raw_y = h.raw["a"].points()
    sm_x, sm_y = h.smooth["a"].points()
    assert raw_x == sm_x and len(raw_x) == 50
    # the smoothed curve wiggles less than the raw one
    def wiggle(ys):
        return sum(abs(b - a) for a, b in zip(ys, ys[1:], strict=False))
    assert wiggle(sm_y) < wiggle(raw_y)
    # NaN/None losses are skipped, a step counting from the start again begins a new curve
    assert not h.add({"step": 600, "loss_a": None, "loss_b": float("nan")})
    h.add({"step": 1, "loss_a": 0.9, "loss_b": 0.8})
    assert h.raw["a"].points() == ([1.0], [0.9])


def test_decimate_bounds_points_and_keeps_extremes():
    xs = list(range(100_000))
    ys = [math.sin(x / 500) + (3.0 if x == 40_000 else 0.0) for x in xs]
    dx, dy = decimate(xs, ys, buckets=50, envelope=True)
    assert len(dx) <= 2 * 50 + 2
    assert dx[0] == 0 and dx[-1] == 99_999
    assert max(dy) == max(ys)  # the spike survives in the envelope
    mx, my = decimate(xs, ys, buckets=50, envelope=False)
    assert len(mx) <= 52 and max(my) < max(ys)
    small = decimate([1, 2, 3], [3, 2, 1], buckets=50, envelope=True)
    assert small == ([1, 2, 3], [3, 2, 1])


def test_watch_reads_by_offset_and_never_sees_half_a_line(project):
    d = write_job(project, "selftest-x", "selftest", metrics_events(3), state="running")
    w = JobWatch(d)
    assert w.poll()
    assert w.digest.events == 3 and w.digest.metrics["step"] == 30
    offset = w.reader.offset
    # a writer caught mid-line: nothing is consumed until the line is complete
    with open(d / "events.jsonl", "a") as f:
        f.write('{"t": 1, "type": "metrics", "step": 40, "loss_a": 0.1')
    w.poll()
    assert w.reader.offset == offset and w.digest.metrics["step"] == 30
    with open(d / "events.jsonl", "a") as f:
        f.write(', "loss_b": 0.2}\n')
    w.poll()
    assert w.digest.metrics["step"] == 40 and w.digest.events == 4
    # an unchanged file: no change reported, the version stays
    v = w.digest.version
    assert not w.poll() and w.digest.version == v


def test_watch_catches_up_within_its_time_budget(project):
    d = write_job(project, "train-big", "train", metrics_events(20_000), state="running")
    w = JobWatch(d, chunk_bytes=32 << 10, budget_s=0.01)
    longest, polls = 0.0, 0
    while True:
        t = time.perf_counter()
        w.poll()
        longest = max(longest, time.perf_counter() - t)
        polls += 1
        if w.caught_up:
            break
    assert polls > 1, "a big backlog is read over several polls, not in one long freeze"
    assert w.digest.events == 20_000
    # budget + one chunk of parsing; generous for a loaded 2-core machine
    assert longest < 0.5, f"one poll took {longest:.3f} s"


def test_digest_memory_does_not_grow_with_the_length_of_the_run(tmp_path):
    def retained(n: int) -> int:
        path = tmp_path / f"events-{n}.jsonl"
        lines = [json.dumps(ev) for ev in metrics_events(n)]
        lines += [json.dumps({"t": 1.0, "type": "message", "level": "info", "text": f"message {i}"})
                  for i in range(n // 4)]
        path.write_text("\n".join(lines) + "\n")
        from core.jobs.events import EventReader

        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        digest, reader = JobDigest(), EventReader(path)
        while batch := reader.read_new(256 << 10):
            digest.apply(batch)
        del batch
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        assert len(digest.notes) <= digest.notes.maxlen
        assert all(len(s) <= s.capacity for s in (*digest.loss.raw.values(), *digest.loss.smooth.values()))
        return used

    small, large = retained(1_000), retained(10_000)
    assert large < small + (512 << 10), f"10x the events kept {large - small} more bytes"


def test_digest_eta_and_elapsed_come_from_events_not_the_clock():
    d = JobDigest()
    d.apply([{"t": 100.0, "type": "state", "state": "running"},
             {"t": 110.0, "type": "progress", "done": 25, "total": 100}])
    assert d.elapsed_s() == 10.0
    assert d.eta_s() == 30.0
    assert d.fraction() == 0.25
    d.apply([{"t": 111.0, "type": "metrics", "step": 5, "elapsed_s": 42.0, "eta_s": 7.0}])
    assert d.elapsed_s() == 42.0 and d.eta_s() == 7.0
    assert fmt_duration(3725) == "1h02m" and fmt_duration(None) == "-"


def test_corrupt_event_lines_are_counted_not_fatal(project):
    d = write_job(project, "selftest-c", "selftest", [], state="running")
    (d / "events.jsonl").write_text('{"t": 1, "type": "message", "text": "ok"}\nnot json at all\n')
    w = JobWatch(d)
    w.poll()
    assert w.digest.corrupt == 1 and w.digest.events == 2


def test_log_tail_returns_new_lines_and_skips_a_huge_backlog(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("one\ntwo\nthr")
    tail = LogTail(log, keep=5, chunk_bytes=1024)
    assert tail.read_new() == ["one", "two"]
    with open(log, "a") as f:
        f.write("ee\n")
    assert tail.read_new() == ["three"]
    with open(log, "a") as f:
        for i in range(20_000):
            f.write(f"line {i}\n")
    lines = tail.read_new()
    assert lines[-1] == "line 19999" and len(lines) == 5


def test_complete_path(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "video-notes.txt").write_text("x")
    (tmp_path / "portrait.png").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    base = str(tmp_path) + "/"
    assert complete_path(base + "po") == base + "portrait.png"
    assert complete_path(base + "videos") == base + "videos/"
    assert complete_path(base + "vid") == base + "video"  # common prefix of two names
    assert complete_path(base + "nothing") is None
    assert complete_path(base + ".hi") == base + ".hidden"
    assert complete_path(base + "v", only_dirs=True) == base + "videos/"


def test_thumbnails_sample_evenly_and_skip_unreadable_files(tmp_path):
    for i in range(20):
        Image.new("RGB", (64, 64), (i * 10, 0, 0)).save(tmp_path / f"src-{i:02d}.png")
    (tmp_path / "src-99.png").write_bytes(b"not a png")
    picked = sample_faces(tmp_path, 4)
    assert [p.name for p in picked] == ["src-00.png", "src-05.png", "src-10.png", "src-15.png"]
    sheet = montage(picked + [tmp_path / "src-99.png"], cols=2, cell=16)
    assert sheet.size == (32, 32)
    assert sheet.getpixel((0, 0)) == (0, 0, 0) and sheet.getpixel((16, 0))[0] == 50
    assert montage([tmp_path / "src-99.png"], cols=2) is None
    assert sample_faces(tmp_path / "missing", 4) == []


def test_event_file_written_by_the_runner_is_read_the_same_way(project):
    """The watch reads what core's EventWriter writes (types and fields of the contract)."""
    d = write_job(project, "selftest-w", "selftest", [], state="running")
    with EventWriter(d / "events.jsonl") as w:
        w.write("state", state="running", pid=1, kind="selftest")
        w.write("metrics", step=1, loss_a=0.5, loss_b=0.6)
        w.write("preview", step=1, path="/nowhere.png")
        w.write("summary", faces=3, dropped={"blur": 1})
        w.write("progress", done=1, total=2, stage="selftest")
    watch = JobWatch(d)
    watch.poll()
    dg = watch.digest
    assert dg.state == "running" and dg.preview["path"] == "/nowhere.png"
    assert dg.summary["dropped"] == {"blur": 1} and dg.fraction() == 0.5
    assert [n["type"] for n in dg.notes] == ["state", "preview", "summary"]
    assert json.loads((d / "events.jsonl").read_text().splitlines()[1])["loss_a"] == 0.5
