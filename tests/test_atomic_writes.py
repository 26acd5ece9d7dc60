"""Writes survive kills and races: issue 11, item 6.

A replaced file is the old or the new one at every instant; a multi-file write (image and
sidecar, one file per layer) is never left mixed once the next write or read of that
folder has run; a killed writer leaves no temporary file behind that the next write does
not remove; two writers without ``force`` cannot both win; a dangling symbolic link is an
existing output; a replaced file keeps its permissions; no output may be one of the inputs.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crashing import crashing_registry

import segio
from segio.errors import WriteError
from segio.fileio.outputs import OutputFiles, host_name, recover
from segio.testing.synthetic import small_segmentation

NAMES = ("seg.nii", "seg.json", "seg_extra.txt")

# Each kill runs the write in a forked child that SIGKILLs itself at its Nth call of a
# function that opens, flushes or changes the folder (open, fsync, replace, rename, link,
# unlink): every step of a commit is a point where a real `kill -9` could land.
KILL_POINTS = ("open", "fsync", "replace", "rename", "link", "unlink", "remove")


def run_killer(
    write: Callable[[Path, bool], object], folder: Path, kill_at: int, force: bool
) -> bool:
    """Run ``write(folder, force)`` in a child killed at call ``kill_at``; True when it
    finished (``kill_at`` is past its last call)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            calls = [0]

            def killing(function: Callable[..., Any]) -> Callable[..., Any]:
                def call(*args: Any, **kwargs: Any) -> Any:
                    calls[0] += 1
                    if calls[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return function(*args, **kwargs)

                return call

            for name in KILL_POINTS:
                setattr(os, name, killing(getattr(os, name)))
            write(folder, force)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return False
    assert os.WEXITSTATUS(status) == 0, "the writer failed (see the captured stderr)"
    return True


def stage_names(folder: Path, force: bool) -> None:
    with OutputFiles(force=force, main=folder / NAMES[0]) as out:
        for name in NAMES:
            out.stage(folder / name).write_text("new " + name)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def contents(folder: Path) -> dict[str, str | None]:
    return {n: (folder / n).read_text() if (folder / n).exists() else None for n in NAMES}


@pytest.mark.parametrize("force", [True, False], ids=["replace", "new"])
def test_a_killed_write_is_old_or_new_never_mixed(tmp_path: Path, force: bool) -> None:
    """Kill the writer at each of its folder changes: before recovery every replaced file
    is still there (old or new); after the next write into the folder, the set is wholly
    old or wholly new and no temporary or journal is left."""
    old = {n: f"old {n}" for n in NAMES} if force else dict.fromkeys(NAMES)
    new = {n: f"new {n}" for n in NAMES}
    seen: set[str] = set()
    for kill_at in range(1, 80):
        folder = tmp_path / f"kill{kill_at}"
        folder.mkdir()
        for name, text in old.items():
            if text is not None:
                (folder / name).write_text(text)
        finished = run_killer(stage_names, folder, kill_at, force)
        if force:  # replacing is atomic at every instant, recovery or not
            assert all(v is not None for v in contents(folder).values()), kill_at
        with OutputFiles() as later:  # the next write into the folder recovers
            later.stage(folder / "later.txt").write_text("later")
        after = contents(folder)
        assert after in (old, new), f"mixed after a kill at call {kill_at}: {after}"
        assert hidden(folder) == [], f"left behind after a kill at call {kill_at}"
        seen.add("new" if after == new else "old")
        if finished:
            break
    else:
        pytest.fail("the writer never finished")
    assert seen == {"old", "new"}, "the kills covered both sides of the commit"


def write_nifti(folder: Path, force: bool) -> None:
    case = small_segmentation()
    for segment in case.segments.values():
        segment.name = "new " + segment.name
    case.layers[0].array[...] = np.flip(case.layers[0].array, axis=0)
    segio.write(case, folder / "seg.nii", force=force)


def test_a_killed_nifti_write_never_pairs_an_image_with_the_wrong_sidecar(
    tmp_path: Path,
) -> None:
    """The real writer path (segio.write, image + JSON sidecar), killed at each step; the
    next *read* of the image finishes an interrupted commit before reading."""
    reference = tmp_path / "reference"
    reference.mkdir()
    segio.write(small_segmentation(), reference / "seg.nii")
    old = {p.name: p.read_bytes() for p in reference.iterdir()}
    assert set(old) == {"seg.nii", "seg.json"}
    outcomes = set()
    for kill_at in range(1, 80):
        folder = tmp_path / f"kill{kill_at}"
        folder.mkdir()
        for name, data in old.items():
            (folder / name).write_bytes(data)
        finished = run_killer(write_nifti, folder, kill_at, force=True)
        assert (folder / "seg.nii").exists() and (folder / "seg.json").exists()
        names = {s.name for s in segio.read(folder / "seg.nii").segments.values()}
        assert hidden(folder) == [] or all(n.endswith(".segio-tmp") for n in hidden(folder))
        assert all(n.startswith("new ") for n in names) or not any(
            n.startswith("new ") for n in names
        ), f"mixed after a kill at call {kill_at}: {names}"
        image = (folder / "seg.nii").read_bytes()
        outcomes.add("old" if image == old["seg.nii"] else "new")
        assert (image == old["seg.nii"]) == ((folder / "seg.json").read_bytes() == old["seg.json"])
        if finished:
            break
    assert outcomes == {"old", "new"}


def test_a_write_killed_after_staging_leaves_temporaries_the_next_write_removes(
    tmp_path: Path,
) -> None:
    def staged_then_killed(folder: Path, force: bool) -> None:
        out = OutputFiles(force=force)
        out.stage(folder / "a.nrrd").write_bytes(b"partial")
        out.stage(folder / "a.json").write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)

    assert not run_killer(staged_then_killed, tmp_path, 0, force=False)
    left = hidden(tmp_path)
    assert len(left) == 2 and all(n.endswith(".segio-tmp") for n in left)
    assert all(f".{host_name()}~" in n for n in left), "temporaries name their writer"
    with OutputFiles() as out:
        out.stage(tmp_path / "b.nrrd").write_bytes(b"b")
    assert hidden(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.nrrd"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_temporaries_of_a_killed_writer_not_yet_reaped_are_removed(tmp_path: Path) -> None:
    """``kill -9`` of a batch leaves its workers as zombies until something reaps them
    (a container's first process may never): ``kill(pid, 0)`` still finds them, but they
    are dead, and their temporaries must go."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        temporary = tmp_path / f".a.nrrd.{host_name()}~{child.pid}~abc.segio-tmp"
        temporary.write_bytes(b"partial")
        recover(tmp_path)
        assert temporary.exists(), "a running writer's temporary stays"
        child.kill()
        deadline = time.monotonic() + 10
        while b") Z" not in Path(f"/proc/{child.pid}/stat").read_bytes():
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.01)
        recover(tmp_path)  # not reaped yet: a zombie
        assert not temporary.exists()
    finally:
        child.kill()
        child.wait()


def test_temporaries_of_a_live_writer_are_left_alone(tmp_path: Path) -> None:
    first = OutputFiles()
    staged = first.stage(tmp_path / "a.nrrd")
    staged.write_bytes(b"in progress")
    assert f"~{os.getpid()}~" in staged.name, "the temporary names its writer"
    with OutputFiles() as second:
        second.stage(tmp_path / "b.nrrd").write_bytes(b"b")
    recover(tmp_path)
    assert staged.read_bytes() == b"in progress"
    first.commit()
    assert (tmp_path / "a.nrrd").read_bytes() == b"in progress"
    assert hidden(tmp_path) == []


def test_a_journal_from_another_host_is_left_alone(tmp_path: Path) -> None:
    temporary = tmp_path / ".a.nrrd.otherhost~1~abc.segio-tmp"
    journal = tmp_path / ".segio.otherhost~1~abc.segio-journal"
    temporary.write_bytes(b"x")
    journal.write_text('{"segio-journal": 1, "publish": "replace", "files": []}')
    recover(tmp_path)
    assert hidden(tmp_path) == sorted([temporary.name, journal.name])


def test_a_planted_journal_cannot_move_files_out_of_its_folder(tmp_path: Path) -> None:
    """A journal names plain file names of its own writer's temporaries: one that names
    other files, other folders or other writers' temporaries moves nothing."""
    folder = tmp_path / "out"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    dead = _dead_pid()
    host = host_name()
    planted = folder / f".segio.{host}~{dead}~zz.segio-journal"
    other_temp = folder / f".b.txt.{host}~1~aa.segio-tmp"
    other_temp.write_text("someone else's")
    planted.write_text(
        '{"segio-journal": 1, "publish": "replace", "files": ['
        '["../victim.txt", "stolen.txt"], ["' + other_temp.name + '", "b.txt"], '
        '["x", "../escaped.txt"]]}'
    )
    recover(folder)
    assert victim.read_text() == "keep"
    assert not (folder / "stolen.txt").exists() and not (folder / "b.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert not planted.exists(), "the dead writer's journal is removed"


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


# -- races -------------------------------------------------------------------------------


def _appearing(monkeypatch: pytest.MonkeyPatch, target: Path, content: str) -> Callable[[], None]:
    """Make ``target`` appear just before the first rename or link into the folder."""
    done = threading.Event()

    def wrap(name: str) -> None:
        real = getattr(os, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if not done.is_set() and os.fspath(args[1]) == str(target):
                done.set()
                target.write_text(content)
            return real(*args, **kwargs)

        monkeypatch.setattr(os, name, call)

    for name in ("replace", "rename", "link"):
        wrap(name)
    return done.set


def test_a_file_appearing_after_the_check_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "seg.nrrd"
    out = OutputFiles()
    out.stage(target).write_text("mine")
    _appearing(monkeypatch, target, "theirs")
    with pytest.raises(WriteError, match=r"exists|appeared") as info:
        out.commit()
    assert info.value.path == str(target)
    assert target.read_text() == "theirs"
    assert hidden(tmp_path) == []


def test_a_multi_file_write_that_loses_a_race_takes_back_what_it_placed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = OutputFiles(main=tmp_path / "seg.nii")
    out.stage(tmp_path / "seg.json").write_text("my sidecar")
    out.stage(tmp_path / "seg.nii").write_text("my image")
    _appearing(monkeypatch, tmp_path / "seg.nii", "their image")
    with pytest.raises(WriteError):
        out.commit()
    assert (tmp_path / "seg.nii").read_text() == "their image"
    assert not (tmp_path / "seg.json").exists()
    assert hidden(tmp_path) == []


def test_two_writers_without_force_one_wins(tmp_path: Path) -> None:
    for round_ in range(20):
        target = tmp_path / f"seg{round_}.nrrd"
        writers = [OutputFiles() for _ in range(4)]
        for n, writer in enumerate(writers):
            writer.stage(target).write_text(f"writer {n}")
        barrier = threading.Barrier(len(writers))
        outcomes: list[str] = []

        def commit(
            n: int, writer: OutputFiles, barrier: threading.Barrier, outcomes: list[str]
        ) -> None:
            barrier.wait()
            try:
                writer.commit()
                outcomes.append(f"writer {n}")
            except WriteError:
                outcomes.append("refused")

        threads = [
            threading.Thread(target=commit, args=(n, w, barrier, outcomes))
            for n, w in enumerate(writers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [o for o in outcomes if o != "refused"]
        assert len(winners) == 1, outcomes
        assert target.read_text() == winners[0]
    assert hidden(tmp_path) == []


def test_two_processes_without_force_one_wins(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from segio.errors import WriteError
        from segio.fileio.outputs import OutputFiles
        out = OutputFiles()
        out.stage(Path(sys.argv[1])).write_text(sys.argv[2])
        while time.time() < float(sys.argv[3]):
            pass
        try:
            out.commit()
        except WriteError:
            sys.exit(3)
        """
    )
    import time

    target = tmp_path / "seg.nrrd"
    start = time.time() + 1.5
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(target), f"p{n}", str(start)])
        for n in range(3)
    ]
    codes = [child.wait(30) for child in children]
    assert sorted(codes) == [0, 3, 3]
    assert target.read_text() == f"p{codes.index(0)}"


# -- links, permissions, inputs -------------------------------------------------------------


def test_a_dangling_symlink_is_an_existing_output(tmp_path: Path) -> None:
    target = tmp_path / "seg.nrrd"
    target.symlink_to(tmp_path / "nowhere.nrrd")
    with pytest.raises(WriteError, match="exists already"):
        OutputFiles().stage(target)
    with pytest.raises(WriteError, match="exists already"):
        segio.write(small_segmentation(), target)
    assert target.is_symlink() and not (tmp_path / "nowhere.nrrd").exists()
    segio.write(small_segmentation(), target, force=True)
    assert not target.is_symlink(), "the link is replaced, not written through"
    assert not (tmp_path / "nowhere.nrrd").exists()


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        for mode in (0o600, 0o640, 0o664):
            target = tmp_path / f"seg{mode:o}.seg.nrrd"
            target.write_bytes(b"old")
            target.chmod(mode)
            segio.write(small_segmentation(), target, force=True)
            assert stat.S_IMODE(target.stat().st_mode) == mode
        fresh = tmp_path / "fresh.seg.nrrd"
        segio.write(small_segmentation(), fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    finally:
        os.umask(previous)


@pytest.fixture
def read_back(tmp_path: Path) -> Iterator[tuple[Path, segio.Segmentation]]:
    source = tmp_path / "seg.seg.nrrd"
    segio.write(small_segmentation(), source)
    yield source, segio.read(source)


def test_the_input_is_never_an_output_even_with_force(
    tmp_path: Path, read_back: tuple[Path, segio.Segmentation]
) -> None:
    source, segmentation = read_back
    before = source.read_bytes()
    alias = tmp_path / "alias.seg.nrrd"
    alias.symlink_to(source)
    hard = tmp_path / "hard.seg.nrrd"
    os.link(source, hard)
    for target in (source, alias, hard):
        with pytest.raises(WriteError, match="input") as info:
            segio.write(segmentation, target, force=True)
        assert str(source) in str(info.value) or info.value.path == str(target)
    with pytest.raises(WriteError, match="input"):
        segio.convert(source, alias, force=True)
    with pytest.raises(WriteError, match="input"):
        segio.convert(source, source, force=True)
    assert source.read_bytes() == before
    assert alias.is_symlink()
    assert hidden(tmp_path) == []


def test_a_sidecar_is_never_an_input(tmp_path: Path) -> None:
    """The JSON sidecar of ``seg.nii`` would be ``seg.json``: refused when that file is
    the segmentation's source, a reference or a file ``convert`` reads."""
    labels = tmp_path / "seg.json"
    labels.write_text("{}")
    segmentation = small_segmentation()
    segmentation.provenance["source_path"] = str(labels)
    with pytest.raises(WriteError, match="input") as info:
        segio.write(segmentation, tmp_path / "seg.nii", force=True)
    assert "seg.json" in str(info.value)
    assert labels.read_text() == "{}"
    assert not (tmp_path / "seg.nii").exists()
    with pytest.raises(WriteError, match="input"):
        segio.write(small_segmentation(), tmp_path / "seg.nii", force=True, inputs=[labels])
    assert hidden(tmp_path) == [] and not (tmp_path / "seg.nii").exists()


def test_an_existing_file_inside_an_input_folder_is_not_replaced(tmp_path: Path) -> None:
    series = tmp_path / "ct"
    series.mkdir()
    (series / "image1.dcm").write_bytes(b"pixels")
    with pytest.raises(WriteError, match="input"):
        segio.write(
            small_segmentation(), series / "image1.dcm", format="seg-nrrd", force=True,
            inputs=[series],
        )  # fmt: skip
    assert (series / "image1.dcm").read_bytes() == b"pixels"
    segio.write(small_segmentation(), series / "new.seg.nrrd", inputs=[series])


# -- messages name the user's file ---------------------------------------------------------


def test_errors_name_the_target_not_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = crashing_registry(load_entry_points=False)
    for kind in ("segio", "segio-message", "oserror", "valueerror"):
        target = tmp_path / f"x.{kind}.crash"
        with pytest.raises(WriteError) as info:
            segio.write(small_segmentation(), target, registry=registry, how=kind)
        message = str(info.value)
        assert ".segio-tmp" not in message, message
        assert str(target) in message, message
        assert "\n" not in message
    assert hidden(tmp_path) == []


def test_reading_during_a_commit_waits_for_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that starts while a write is between its renames (new sidecar, old image)
    waits for the write to finish instead of pairing them."""
    target = tmp_path / "seg.nii"
    segio.write(small_segmentation(), target)
    renamed = small_segmentation()
    for segment in renamed.segments.values():
        segment.name = "new " + segment.name
    halfway, real_replace = threading.Event(), os.replace

    def slow_replace(*args: Any, **kwargs: Any) -> None:
        real_replace(*args, **kwargs)
        if threading.current_thread() is not threading.main_thread() and not halfway.is_set():
            halfway.set()
            threading.Event().wait(0.5)

    monkeypatch.setattr(os, "replace", slow_replace)
    writer = threading.Thread(target=segio.write, args=(renamed, target), kwargs={"force": True})
    writer.start()
    assert halfway.wait(10)
    names = {s.name for s in segio.read(target).segments.values()}
    writer.join()
    assert all(n.startswith("new ") for n in names), names


# -- failures that are not kills ------------------------------------------------------------


def test_without_hard_links_the_write_falls_back_to_check_and_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with OutputFiles() as out:
        out.stage(tmp_path / "a.nrrd").write_text("a")
    assert (tmp_path / "a.nrrd").read_text() == "a"
    out = OutputFiles()
    out.stage(tmp_path / "b.nrrd").write_text("b")
    (tmp_path / "b.nrrd").write_text("theirs")
    with pytest.raises(WriteError, match="appeared"):
        out.commit()
    assert (tmp_path / "b.nrrd").read_text() == "theirs"
    with OutputFiles(force=True) as out:
        out.stage(tmp_path / "a.nrrd").write_text("new a")
    assert (tmp_path / "a.nrrd").read_text() == "new a"
    assert hidden(tmp_path) == []


def test_a_failed_replacement_puts_back_the_files_it_had_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in NAMES:
        (tmp_path / name).write_text(f"old {name}")
    real_replace = os.replace

    def failing(source: Any, target: Any) -> None:
        if Path(target).name == NAMES[0]:  # the main file, published last
            raise OSError(errno.EIO, "Input/output error", str(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(WriteError, match="Input/output error") as info:
        stage_names(tmp_path, force=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert info.value.path == str(tmp_path / NAMES[0])
    assert contents(tmp_path) == {n: f"old {n}" for n in NAMES}
    assert hidden(tmp_path) == []


def test_an_interrupted_commit_finishes_before_the_interrupt_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in NAMES:
        (tmp_path / name).write_text(f"old {name}")
    real_replace, calls = os.replace, [0]

    def interrupted(source: Any, target: Any) -> None:
        calls[0] += 1
        real_replace(source, target)
        if calls[0] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stage_names(tmp_path, force=True)
    assert contents(tmp_path) == {n: f"new {n}" for n in NAMES}
    assert hidden(tmp_path) == []


def test_recovery_ignores_what_another_user_planted(tmp_path: Path) -> None:
    """In a shared folder (/tmp) a journal or temporary of another user, or a FIFO named
    like a journal, is never read, published or deleted."""
    dead, host = _dead_pid(), host_name()
    fifo = tmp_path / f".segio.{host}~{dead}~ff.segio-journal"
    os.mkfifo(fifo)
    temporary = tmp_path / f".seg.nrrd.{host}~{dead}~aa.segio-tmp"
    temporary.write_text("planted")
    journal = tmp_path / f".segio.{host}~{dead}~bb.segio-journal"
    journal.write_text(
        json.dumps({"segio-journal": 1, "publish": "replace", "files": [[temporary.name, "x"]]})
    )
    if os.geteuid() == 0:
        for planted in (temporary, journal):
            os.chown(planted, 65534, 65534)
        recover(tmp_path)  # returns: the FIFO is never opened for reading
        assert temporary.exists() and journal.exists() and not (tmp_path / "x").exists()
    os.chown(temporary, os.geteuid(), os.getegid())
    os.chown(journal, os.geteuid(), os.getegid())
    recover(tmp_path)
    assert (tmp_path / "x").read_text() == "planted", "a journal of this user is rolled forward"
    assert hidden(tmp_path) == [fifo.name]


def test_a_device_or_fifo_is_never_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.seg.nrrd"
    os.mkfifo(fifo)
    link = tmp_path / "null.seg.nrrd"
    link.symlink_to("/dev/null")
    for target in (fifo, link):
        with pytest.raises(WriteError, match="not a regular file"):
            segio.write(small_segmentation(), target, force=True)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()
    assert hidden(tmp_path) == []
