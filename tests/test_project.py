"""Face-pair projects: creation with consent, name rules, sources, atomic writes, deletion."""

from __future__ import annotations

import os
import tomllib

import pytest

from core.errors import ProjectError
from core.project import projects as P
from core.studio.removal import delete_project
from core.system.atomic import atomic_write_text


def test_create_writes_layout_and_consent(home):
    p = P.create_project(home, "duo", "Ann", "Ben", "Ann and Ben agreed on 2026-11-29.")
    assert p.root == home / "duo"
    for sub in P.SUBDIRS:
        assert (p.root / sub).is_dir(), sub
    data = tomllib.loads((p.root / "project.toml").read_text())
    assert data["schema"] == P.SCHEMA_VERSION
    assert data["people"] == {"a": {"label": "Ann"}, "b": {"label": "Ben"}}
    assert data["consent"]["statement"] == "Ann and Ben agreed on 2026-11-29."
    assert data["consent"]["by"] == ["Ann", "Ben"]
    assert data["consent"]["recorded"] and data["consent"]["recorded_by"]
    again = P.load_project(home, "duo")
    assert again.consent == p.consent and again.label_b == "Ben"


@pytest.mark.parametrize("consent", [None, "", "   "])
def test_no_consent_no_project(home, consent):
    with pytest.raises(ProjectError, match="without consent"):
        P.create_project(home, "duo", "Ann", "Ben", consent)
    assert not (home / "duo").exists()


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        ("   ", "empty"),
        (".", "not a folder name"),
        ("..", "not a folder name"),
        ("a/b", "slash"),
        ("a\\b", "slash"),
        ("bad\x07bell", "control character"),
        ("new\nline", "control character"),
        ("x" * 65, "65 characters"),
        (".hidden", "dot"),
        (" padded", "whitespace"),
    ],
)
def test_bad_names_refused_with_the_rule(home, name, why):
    with pytest.raises(ProjectError) as e:
        P.create_project(home, name, "Ann", "Ben", "ok")
    assert why in str(e.value)
    assert "1–64 characters" in str(e.value)
    assert list(home.iterdir()) == []


def test_longest_name_and_unicode_are_fine(home):
    P.create_project(home, "x" * 64, "Ann", "Ben", "ok")
    P.create_project(home, "Zoë und Jürgen", "Zoë", "Jürgen", "ok")
    assert P.project_names(home) == sorted(["x" * 64, "Zoë und Jürgen"])


def test_duplicate_project_refused(home):
    P.create_project(home, "duo", "Ann", "Ben", "ok")
    with pytest.raises(ProjectError, match="already exists"):
        P.create_project(home, "duo", "Ann", "Ben", "ok")


def test_add_sources_records_absolute_paths(project, tmp_path, astronaut):
    import cv2

    img = tmp_path / "media" / "face.png"
    img.parent.mkdir()
    cv2.imwrite(str(img), astronaut[:, :, ::-1])
    folder = tmp_path / "media" / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "1.jpg"), astronaut[:, :, ::-1])
    os.chdir(tmp_path)
    added = P.add_sources(project, "a", ["media/face.png", str(folder)])
    assert [s.kind for s in added] == ["image", "folder"]
    assert added[0].path == str(img.resolve()) and added[0].size == img.stat().st_size
    reloaded = P.load_project(project.home, project.name)
    assert [s.path for s in reloaded.sources_of("a")] == [str(img), str(folder)]
    assert reloaded.sources_of("b") == []
    # adding the same path again records nothing new
    assert P.add_sources(reloaded, "a", [str(img)]) == []


def test_bad_sources_name_each_and_record_nothing(project, tmp_path):
    good = tmp_path / "ok.png"
    good.write_bytes(b"\x89PNG")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProjectError) as e:
        P.add_sources(project, "b", [good, tmp_path / "missing.mp4", tmp_path / "notes.txt", tmp_path / "empty"])
    msg = str(e.value)
    assert "nothing was added" in msg
    assert "missing.mp4: no such file" in msg
    assert "notes.txt: unsupported file type '.txt'" in msg
    assert "empty: folder holds no images" in msg
    assert P.load_project(project.home, project.name).sources == []


def test_copy_source_into_project(project, tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"not really a video but the extension says so")
    (added,) = P.add_sources(project, "a", [src], copy=True)
    assert added.copied_from == str(src)
    assert added.path.startswith(str(project.sources_dir("a")))
    assert open(added.path, "rb").read() == src.read_bytes()


def test_remove_source(project, tmp_path):
    src = tmp_path / "p.jpg"
    src.write_bytes(b"x")
    (s,) = P.add_sources(project, "b", [src])
    P.remove_source(project, "b", s.id)
    assert P.load_project(project.home, project.name).sources == []
    with pytest.raises(ProjectError, match="has no source"):
        P.remove_source(project, "b", s.id)


def test_atomic_write_survives_a_crash_before_rename(tmp_path, monkeypatch):
    target = tmp_path / "project.toml"
    atomic_write_text(target, "old = 1\n")

    def crash(src, dst):
        raise OSError("power cut between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        atomic_write_text(target, "new = 2\n")
    monkeypatch.undo()
    assert target.read_text() == "old = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["project.toml"]  # no temp file left


def test_project_save_is_atomic(project, monkeypatch):
    before = project.file.read_text()

    def crash(src, dst):
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    project.label_a = "Changed"
    with pytest.raises(OSError):
        project.save()
    monkeypatch.undo()
    assert project.file.read_text() == before


def test_malformed_project_file_is_a_clear_error(home):
    (home / "broken").mkdir()
    (home / "broken" / "project.toml").write_text("this is = = not toml")
    with pytest.raises(ProjectError, match="not valid TOML"):
        P.load_project(home, "broken")
    (home / "partial").mkdir()
    (home / "partial" / "project.toml").write_text('schema = 1\nname = "partial"\n')
    with pytest.raises(ProjectError, match="malformed"):
        P.load_project(home, "partial")


def test_delete_project(home, project):
    delete_project(home, "pair")
    assert not (home / "pair").exists()
    with pytest.raises(ProjectError, match="no project"):
        delete_project(home, "pair")


def test_home_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("FACEPAIR_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert P.home_dir() == tmp_path / "xdg" / "facepair"
    monkeypatch.setenv("FACEPAIR_HOME", str(tmp_path / "env"))
    assert P.home_dir() == tmp_path / "env"
    assert P.home_dir(tmp_path / "flag") == tmp_path / "flag"
