"""`facepair faces` as a user types it: the table, --json, remove and restore, and refusals."""

from __future__ import annotations

import json

from tui.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_as_json_sorted_and_filtered(extracted_project_copy, capsys):
    name = extracted_project_copy.name
    code, out, _ = run(capsys, "faces", name, "a", "--sort", "blur", "--desc", "--limit", "5", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["side"] == "a" and data["sort"] == "blur" and data["descending"] is True
    assert data["matching"] == extracted_project_copy.face_count("a") and len(data["faces"]) == 5
    blurs = [f["scores"]["blur"] for f in data["faces"]]
    assert blurs == sorted(blurs, reverse=True)
    first = data["faces"][0]
    assert set(first) == {"name", "path", "source", "frame", "face", "track", "removed", "scores"}
    assert first["removed"] is False and first["path"].endswith(first["name"])
    assert set(first["scores"]) >= {"blur", "yaw", "pitch", "roll", "identity", "size", "align", "change", "order"}

    code, out, _ = run(capsys, "faces", "list", name, "a", "--where", f"blur<{blurs[-1]}", "--json")
    assert code == 0 and all(f["scores"]["blur"] < blurs[-1] for f in json.loads(out)["faces"])


def test_the_table(extracted_project_copy, capsys):
    code, out, _ = run(capsys, "faces", extracted_project_copy.name, "b", "--limit", "3")
    assert code == 0
    assert "side b: 3 of" in out and "blur" in out and "yaw" in out and "identity" in out


def test_remove_then_restore(extracted_project_copy, capsys):
    p = extracted_project_copy
    n = p.face_count("a")
    code, out, _ = run(capsys, "faces", p.name, "a", "--sort", "blur", "--limit", "3", "--json")
    names = [f["name"] for f in json.loads(out)["faces"]]

    code, out, _ = run(capsys, "faces", "remove", p.name, "a", "--ids", *names, "--dry-run", "--json")
    assert code == 0 and json.loads(out)["would_remove"] == names and p.face_count("a") == n

    code, out, _ = run(capsys, "faces", "remove", p.name, "a", "--ids", *names, "--json")
    removed = json.loads(out)
    assert code == 0 and sorted(removed["removed"]) == sorted(names) and removed["batch"] == 1
    assert removed["training_job_note"] is None and p.face_count("a") == n - 3

    code, out, _ = run(capsys, "faces", p.name, "a", "--trash", "--json")
    assert sorted(f["name"] for f in json.loads(out)["faces"]) == sorted(names)
    code, out, _ = run(capsys, "show", p.name, "--json")
    assert json.loads(out)["trash"]["a"] == 3

    code, out, _ = run(capsys, "faces", "restore", p.name, "a", "--last")
    assert code == 0 and "restored 3 face(s)" in out and p.face_count("a") == n
    code, out, _ = run(capsys, "faces", "restore", p.name, "a", "--json")
    assert json.loads(out) == {"project": p.name, "side": "a", "restored": [], "skipped": {}}


def test_remove_by_where_says_how_to_undo(extracted_project_copy, capsys):
    p = extracted_project_copy
    code, out, _ = run(capsys, "faces", "remove", p.name, "b", "--where", "blur<1e9 and frame<2")
    assert code == 0 and "removed 2 face(s) of side b" in out and f"faces restore {p.name} b --last" in out


def test_refusals_exit_2_with_words(extracted_project_copy, capsys):
    name = extracted_project_copy.name
    cases = [
        (("faces", name, "a", "--where", "blurr<3"), "unknown key 'blurr'"),
        (("faces", name, "a", "--where", "blur<x"), "'x' is not a number"),
        (("faces", name, "a", "--sort", "beauty"), "unknown sort key 'beauty'"),
        (("faces", "remove", name, "a"), "needs --where EXPR or --ids"),
        (("faces", "remove", name, "a", "--ids", "nobody_000001_00"), "no face of side a"),
        (("faces", "restore", name, "a", "--last", "--all"), "--ids, --last or --all"),
        (("faces", name), "takes a project and a side"),
        (("faces", name, "c"), "side"),
        (("faces", name, "a", "--ids", "x"), "--ids does not go with `facepair faces list`"),
    ]
    for argv, words in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2 and words in err, (argv, err)
