"""OutputFiles: every staged file appears on success, none on failure."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from segio.errors import SegioError, WriteError
from segio.fileio.outputs import OutputFiles


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_commit_moves_every_staged_file_into_place(tmp_path: Path, umask_022: None) -> None:
    image, sidecar = tmp_path / "seg.nii.gz", tmp_path / "seg.json"
    with OutputFiles() as out:
        first = out.stage(image)
        second = out.stage(sidecar)
        # Temporaries sit next to the targets, hidden, with a recognisable suffix.
        for temporary, target in ((first, image), (second, sidecar)):
            assert temporary.parent == tmp_path
            assert temporary.name.startswith(f".{target.name}.")
            assert temporary.name.endswith(".segio-tmp")
            assert temporary.exists()
        first.write_bytes(b"image")
        second.write_text("{}")
        assert not image.exists() and not sidecar.exists()
        assert out.targets == [image, sidecar]
    assert image.read_bytes() == b"image"
    assert sidecar.read_text() == "{}"
    assert listing(tmp_path) == ["seg.json", "seg.nii.gz"]


def test_committed_files_get_the_usual_mode(tmp_path: Path, umask_022: None) -> None:
    with OutputFiles() as out:
        out.stage(tmp_path / "a.nrrd").write_bytes(b"x")
    mode = stat.S_IMODE((tmp_path / "a.nrrd").stat().st_mode)
    assert mode == 0o644
    assert mode != 0o600


def test_committed_mode_follows_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        with OutputFiles() as out:
            out.stage(tmp_path / "a.nrrd").write_bytes(b"x")
        assert os.umask(0o027) == 0o027  # reading the umask did not change it
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.nrrd").stat().st_mode) == 0o640


def test_commit_returns_the_targets_in_staging_order(tmp_path: Path) -> None:
    out = OutputFiles()
    names = ["c.txt", "a.txt", "b.txt"]
    for name in names:
        out.stage(tmp_path / name).write_text(name)
    assert out.commit() == [tmp_path / n for n in names]
    for name in names:
        assert (tmp_path / name).read_text() == name


def test_relative_targets_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = OutputFiles()
    out.stage("rel.txt").write_text("r")
    assert out.targets == [tmp_path / "rel.txt"]
    with pytest.raises(WriteError, match="twice"):
        out.stage(tmp_path / "rel.txt")
    out.commit()
    assert (tmp_path / "rel.txt").read_text() == "r"


def test_exception_removes_every_temporary_and_creates_no_target(tmp_path: Path) -> None:
    staged: list[Path] = []
    with pytest.raises(RuntimeError, match="writer failed"), OutputFiles() as out:
        for name in ("a.nrrd", "b.nrrd", "c.json"):
            path = out.stage(tmp_path / name)
            path.write_bytes(b"partial")
            staged.append(path)
        raise RuntimeError("writer failed")
    assert len(staged) == 3
    assert not any(p.exists() for p in staged)
    assert listing(tmp_path) == []


def test_exception_before_writing_anything_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), OutputFiles() as out:
        out.stage(tmp_path / "a.nrrd")
        raise KeyboardInterrupt
    assert listing(tmp_path) == []


def test_existing_target_is_refused_without_force(tmp_path: Path) -> None:
    target = tmp_path / "seg.nrrd"
    target.write_text("old")
    with pytest.raises(WriteError, match="exists already") as info:
        OutputFiles().stage(target)
    assert info.value.path == str(target)
    assert "force" in str(info.value)
    assert target.read_text() == "old"
    assert listing(tmp_path) == ["seg.nrrd"]


def test_existing_target_is_replaced_with_force(tmp_path: Path) -> None:
    target = tmp_path / "seg.nrrd"
    target.write_text("old")
    with OutputFiles(force=True) as out:
        out.stage(target).write_text("new")
    assert target.read_text() == "new"
    assert listing(tmp_path) == ["seg.nrrd"]


def test_a_folder_is_never_a_target(tmp_path: Path) -> None:
    (tmp_path / "seg.nrrd").mkdir()
    with pytest.raises(WriteError, match="folder has this name"):
        OutputFiles(force=True).stage(tmp_path / "seg.nrrd")
    with pytest.raises(WriteError, match="exists already"):
        OutputFiles().stage(tmp_path / "seg.nrrd")


def test_staging_the_same_target_twice_is_refused(tmp_path: Path) -> None:
    out = OutputFiles()
    out.stage(tmp_path / "a.nrrd")
    with pytest.raises(WriteError, match="twice"):
        out.stage(tmp_path / "a.nrrd")
    with pytest.raises(WriteError, match="twice"):
        out.stage(tmp_path / "." / "a.nrrd")
    assert out.targets == [tmp_path / "a.nrrd"]
    out.discard()
    assert listing(tmp_path) == []


def test_missing_output_folder(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "seg.nrrd"
    with pytest.raises(WriteError, match="folder does not exist") as info:
        OutputFiles().stage(target)
    assert isinstance(info.value, SegioError)
    assert info.value.path == str(target)
    assert not (tmp_path / "missing").exists()


def test_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    with pytest.raises(WriteError, match="cannot write in this folder: Permission denied"):
        OutputFiles().stage(tmp_path / "seg.nrrd")
    assert listing(tmp_path) == []


def test_failed_commit_raises_write_error_and_removes_temporaries(tmp_path: Path) -> None:
    out = OutputFiles()
    first = out.stage(tmp_path / "a.nrrd")
    second = out.stage(tmp_path / "b.nrrd")
    first.write_text("a")
    second.write_text("b")
    # Something else claims the second name between staging and commit.
    (tmp_path / "b.nrrd").mkdir()
    (tmp_path / "b.nrrd" / "keep").write_text("k")
    with pytest.raises(WriteError, match="a folder has this name"):
        out.commit()
    assert not first.exists()
    assert not second.exists()
    assert not [n for n in listing(tmp_path) if n.endswith(".segio-tmp")]


def test_failed_commit_leaves_no_target(tmp_path: Path) -> None:
    with pytest.raises(WriteError), OutputFiles() as out:
        out.stage(tmp_path / "a.nrrd").write_text("a")
        out.stage(tmp_path / "b.nrrd").write_text("b")
        (tmp_path / "b.nrrd").mkdir()
        (tmp_path / "b.nrrd" / "keep").write_text("k")
    assert listing(tmp_path) == ["b.nrrd"]
    assert not (tmp_path / "a.nrrd").exists()
