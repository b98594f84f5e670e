"""Projects in the states users get them into: a corrupt project.toml, a job whose job.json cannot
be read, a folder renamed by hand, a hand-edited side, names that differ only in Unicode
normalisation. Each as the user meets it: through `facepair` commands and `core.project.projects`."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest

from core.errors import ProjectError
from core.project import projects as P
from core.studio.removal import delete_project
from core.system import procs
from tui.cli.main import main

CONSENT = "Ann and Ben agreed in writing to this test."


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def corrupt_toml(project) -> None:
    project.file.write_text("schema = 1\nname = [unterminated\n", encoding="utf-8")


@pytest.fixture
def sleeper():
    """A live process standing in for a job's worker."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def fake_running_job_with_unreadable_job_json(project, pid: int) -> None:
    d = project.runs_dir / "train-20261202-010000-abcd"
    d.mkdir(parents=True)
    (d / "job.json").write_text('{"id": "train-2026', encoding="utf-8")  # cut short
    (d / "launch.json").write_text(json.dumps({"pid": pid, "pid_start": procs.start_ticks(pid)}), encoding="utf-8")


# ---- delete ------------------------------------------------------------------------------------

def test_delete_yes_deletes_a_project_whose_toml_is_corrupt(home, project, capsys):
    corrupt_toml(project)
    code, out, err = run(capsys, "delete", "pair", "--yes")
    assert code == 0, err
    assert "not valid TOML" in " ".join(out.split()) and "deleted" in out
    assert not project.root.exists()


def test_delete_of_a_corrupt_project_asks_first(home, project, capsys, monkeypatch):
    corrupt_toml(project)
    asked = []
    monkeypatch.setattr("builtins.input", lambda q: asked.append(q) or "n")
    code, out, _ = run(capsys, "delete", "pair")
    assert code == 1 and "not deleted" in out and project.root.is_dir()
    assert "cannot be read" in asked[0] and str(project.root) in asked[0]
    monkeypatch.setattr("builtins.input", lambda q: "y")
    code, out, _ = run(capsys, "delete", "pair")
    assert code == 0 and not project.root.exists()


def test_delete_never_removes_a_folder_that_is_not_a_project_folder(home, capsys):
    folder = home / "thesis"
    folder.mkdir()
    (folder / "project.toml").write_text("not toml [", encoding="utf-8")
    (folder / "chapter1.tex").write_text("\\section{Intro}", encoding="utf-8")
    code, _, err = run(capsys, "delete", "thesis", "--yes")
    assert code == 2 and "not deleting" in err and "chapter1.tex" in err
    assert (folder / "chapter1.tex").is_file()
    with pytest.raises(ProjectError, match="chapter1.tex"):
        delete_project(home, "thesis", unreadable_ok=True)
    assert folder.is_dir()
    (folder / "chapter1.tex").unlink()
    (folder / ".git").mkdir()  # a hidden folder is not facepair's either
    with pytest.raises(ProjectError, match=".git"):
        delete_project(home, "thesis", unreadable_ok=True)
    assert (folder / ".git").is_dir()


def test_delete_refuses_while_a_job_with_unreadable_job_json_runs(home, project, capsys, sleeper):
    fake_running_job_with_unreadable_job_json(project, sleeper.pid)
    code, _, err = run(capsys, "delete", "pair", "--yes")
    assert code == 2 and "running jobs" in err and f"pid {sleeper.pid}" in err
    assert project.file.is_file()
    corrupt_toml(project)  # an unreadable project with a live job: refused as well
    code, _, err = run(capsys, "delete", "pair", "--yes")
    assert code == 2 and "running jobs" in err
    assert project.root.is_dir()
    sleeper.kill()
    sleeper.wait()
    code, _, err = run(capsys, "delete", "pair", "--yes")  # its process gone: the job is not running
    assert code == 0, err
    assert not project.root.exists()


# ---- a folder renamed by hand --------------------------------------------------------------------

def test_a_renamed_project_folder_says_how_to_fix_it(home, project, capsys):
    project.root.rename(home / "renamed")
    code, _, err = run(capsys, "show", "renamed")
    assert code == 2
    assert "renamed by hand" in err and "'pair'" in err
    assert f"mv {home / 'renamed'} {home / 'pair'}" in err
    code, _, err = run(capsys, "extract", "renamed", "--detach")  # no job is started for it
    assert code == 2 and "renamed by hand" in err
    assert not any((home / "renamed" / "runs").iterdir())
    (home / "renamed").rename(home / "pair")  # the fix the message gives works
    code, out, _ = run(capsys, "show", "pair")
    assert code == 0 and "pair" in out


# ---- a hand-edited side ----------------------------------------------------------------------------

def test_a_source_with_side_z_is_rejected_naming_the_file_and_field(home, project, tmp_path):
    photo = tmp_path / "b.jpg"
    photo.write_bytes(b"jpeg")
    P.add_sources(project, "b", [photo])
    text = project.file.read_text(encoding="utf-8")
    assert 'side = "b"' in text
    project.file.write_text(text.replace('side = "b"', 'side = "z"'), encoding="utf-8")
    with pytest.raises(ProjectError) as e:
        P.load_project(home, "pair")
    msg = str(e.value)
    assert str(project.file) in msg and "sources[0]" in msg and "side = 'z'" in msg and "'a' or 'b'" in msg


# ---- Unicode normalisation ---------------------------------------------------------------------------

def test_names_differing_only_in_normalisation_are_one_project(home, capsys):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert composed != decomposed and unicodedata.normalize("NFC", decomposed) == composed
    code, _, _ = run(capsys, "new", decomposed, "--a", "Ann", "--b", "Ben", "--consent", CONSENT)
    assert code == 0
    assert [p.name for p in home.iterdir()] == [composed]  # stored composed
    code, _, err = run(capsys, "new", composed, "--a", "Ann", "--b", "Ben", "--consent", CONSENT)
    assert code == 2 and "already exists" in err
    for name in (composed, decomposed):
        assert P.load_project(home, name).root == home / composed
    code, out, _ = run(capsys, "list", "--json")
    assert [r["name"] for r in json.loads(out)] == [composed]


def test_a_folder_made_with_a_decomposed_name_is_found_by_either_spelling(home):
    decomposed = "cafe\u0301"
    p = P.create_project(home, "tmp", "Ann", "Ben", CONSENT)
    p.name = decomposed  # as an older facepair wrote it: folder and project.toml decomposed
    p.root = p.root.rename(home / decomposed)
    p.save()
    for name in ("caf\u00e9", decomposed):
        assert P.load_project(home, name).root == home / decomposed
    with pytest.raises(ProjectError, match="already exists"):
        P.create_project(home, "caf\u00e9", "Ann", "Ben", CONSENT)
