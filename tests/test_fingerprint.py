"""core.media.fingerprint: the one comparison that says whether a source file changed (pure) and the
cheap fingerprint it compares."""

from __future__ import annotations

import os

from core.media import fingerprint as fp


def test_compare_decides_on_content_when_both_sides_have_a_hash():
    rec = {"size": 1000, "mtime": 10.0, "hash": "aa", "frames": 275}
    assert fp.compare(rec, {**rec, "mtime": 99.0}).state == "same"  # touched, same content
    c = fp.compare(rec, {**rec, "hash": "bb"})
    assert c.state == "changed" and c.changed and c.why == "content differs"
    c = fp.compare(rec, {**rec, "size": 900, "hash": "bb"})
    assert c.state == "changed" and "size 1,000 → 900 bytes" in c.why
    assert "frames 275 → 75" in fp.compare(rec, {**rec, "hash": "bb", "frames": 75}).why
    assert fp.compare(rec, {**rec, "frames": None}).state == "same"  # an unknown count decides nothing


def test_compare_falls_back_to_size_and_mtime_for_older_records():
    old = {"size": 1000, "mtime": 10.0, "hash": None, "frames": None}  # a project from before fingerprints
    cur = {"size": 1000, "mtime": 10.0, "hash": "aa", "frames": 275}
    assert fp.compare(old, cur).state == "same"
    assert fp.compare(old, {**cur, "mtime": 11.0}).why == "modified since"
    assert fp.compare(old, {**cur, "size": 5}).state == "changed"
    assert fp.compare(None, cur).state == "unknown" and not fp.compare(None, cur).changed
    assert fp.compare(old, None).state == "missing" and fp.compare(old, None).changed


def test_fingerprint_reads_the_ends_only_and_sees_a_change_in_them(tmp_path):
    f = tmp_path / "big.bin"
    data = bytearray(os.urandom(3 * fp.EDGE))
    f.write_bytes(data)
    a = fp.fingerprint(f)
    data[len(data) // 2] ^= 0xFF  # the middle is not read: same fingerprint (cheap by design)
    f.write_bytes(data)
    os.utime(f, ns=(1, 1))
    assert fp.compare(a, fp.fingerprint(f)).state == "same"
    data[-1] ^= 0xFF
    f.write_bytes(data)
    assert fp.compare(a, fp.fingerprint(f)).why == "content differs"
    assert fp.fingerprint(tmp_path / "gone.mp4") is None
