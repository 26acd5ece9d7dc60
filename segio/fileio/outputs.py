"""Atomic output: a write produces every file it promised, or none, even when killed.

A writer asks :meth:`OutputFiles.stage` for a temporary path next to each file it will
produce (an image and its sidecar, one file per layer, ...). When the writer returns, all
staged files are published; if it raises, they are deleted. The rules, and why:

- **Temporaries live beside their targets** (same folder, so a rename is atomic), hidden
  and named ``.<target>.<host>~<pid>~<random>.segio-tmp``: nothing that looks like output
  is left by a crash, and the next write into the folder knows whose they are.
- **Replacing (force) is one** ``os.replace`` **per file**: the target is the old file or
  the new one at every instant, never missing. A replaced file keeps its permission bits;
  a new one gets ``0o666 & ~umask``. A symbolic link at the target is replaced, never
  written through.
- **Creating (no force) is** ``os.link(temporary, target)``: the link fails if anything
  appeared at the target (a file, a dangling link, another writer's output), so the check
  and the publication are one system call and of two racing writers exactly one wins. On
  file systems without hard links (FAT, some network shares) segio falls back to a check
  followed by a rename, where that race remains.
- **A multi-file write is journaled.** Every temporary is flushed to disk, then a journal
  (``.segio.<host>~<pid>~<random>.segio-journal``) listing the temporary -> target pairs
  is written and flushed, then the files are published, then the journal is deleted. The
  user's main target (the path given to :func:`segio.write`) is published *last*, after
  its sidecars: whoever sees the new main file sees all of its new sidecars, and a fresh
  write interrupted halfway shows no main file at all. A write killed between its renames
  leaves its journal; the next write into that folder, or the next :func:`segio.read` of a
  file the journal names, rolls it forward (the journal is only written once every new
  file is complete, so forward is always possible). A read that finds the journal of a
  *live* writer waits a moment for it to finish instead of pairing old and new files.
  A write that fails (rather than being killed) puts back the files it had replaced.
- **Leftovers of dead writers are removed** by the next write into the folder: their
  temporaries and their journals (rolled forward first). Only writers on this host whose
  process is gone are touched; journals name plain file names of their own writer's
  temporaries in their own folder, and anything else in them is ignored.
- **Only regular files are replaced**: ``--force`` onto ``/dev/null`` or a FIFO is refused
  (as root, a rename would replace the device node itself).
- **No output may be an input**: a target that is the same file as one of ``inputs``
  (through a symbolic or hard link) or an existing file inside an input folder is refused,
  even with ``force``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from segio.errors import SegioError, WriteError
from segio.fileio.inputs import open_input

__all__ = ["OutputFiles", "host_name", "made_folder", "recover", "settle"]

PathLike = str | os.PathLike[str]

TEMPORARY_SUFFIX = ".segio-tmp"
JOURNAL_SUFFIX = ".segio-journal"
_NAME_KEPT = 120  # characters of the target's name kept in a temporary's name
_TEMPORARY = re.compile(
    r"\.(?P<target>.*)\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>[0-9]+)~[A-Za-z0-9_]+"
    + re.escape(TEMPORARY_SUFFIX)
)
_JOURNAL = re.compile(
    r"\.segio\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>[0-9]+)~[A-Za-z0-9_]+" + re.escape(JOURNAL_SUFFIX)
)
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}
_JOURNAL_LIMIT = 1 << 20  # bytes read of a journal (a few hundred per file it lists)
SETTLE_WAIT = 2.0  # seconds a read waits for a live writer to finish its renames


@contextlib.contextmanager
def made_folder(folder: Path, *, parents: bool = False) -> Iterator[None]:
    """Make ``folder`` if it is missing, for files staged in it; if the block raises, a
    folder made here is removed again with what it holds (only staged temporaries can be
    in it). Enter it once every check is done, so that only an I/O error can follow."""
    created = not folder.exists()
    if created:
        folder.mkdir(parents=parents)
    try:
        yield
    except BaseException:
        if created:
            for leftover in folder.iterdir():
                leftover.unlink()
            folder.rmdir()
        raise


def host_name() -> str:
    """This machine's name as it appears in temporary and journal names."""
    import socket  # here: socket and secrets cost a read's start-up 5 ms

    name = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:63]
    return name or "localhost"


class OutputFiles:
    """Stage temporary files and publish them together (a context manager).

    ``main`` is the user's target (published last; :meth:`add_main` adds more for a write
    of several outputs); ``inputs`` are the files and folders the segmentation was read
    from, which no output may replace.
    """

    def __init__(
        self,
        *,
        force: bool = False,
        main: PathLike | None = None,
        inputs: Iterable[PathLike] = (),
    ) -> None:
        self.force = force
        self.mains: set[Path] = {_absolute(main)} if main is not None else set()
        self.inputs = [Path(p).absolute() for p in inputs]
        self._staged: dict[Path, Path] = {}
        self._recovered: set[Path] = set()

    def add_main(self, target: PathLike, inputs: Iterable[PathLike] = ()) -> None:
        """Another user's target of this write (``segio convert --split`` writes one per
        segment): published after every sidecar, as ``main`` is, so whoever sees a new
        main file sees its sidecars. ``inputs`` join the files no output may replace."""
        self.mains.add(_absolute(target))
        self.inputs += [Path(p).absolute() for p in inputs]

    def stage(self, target: PathLike) -> Path:
        """A temporary path whose content will become ``target`` on success."""
        final = _absolute(target)
        if final in self._staged:
            raise WriteError("the writer produced this file twice", path=final)
        if not final.parent.is_dir():
            raise WriteError("the output folder does not exist", path=final, hint="create it first")
        if final.parent not in self._recovered:
            self._recovered.add(final.parent)
            recover(final.parent)
        self._check_target(final)
        import tempfile  # here, not at import: a read needs none of it (3.5 ms of start-up)

        try:
            handle, name = tempfile.mkstemp(
                prefix=f".{final.name[:_NAME_KEPT]}.{_owner()}~",
                suffix=TEMPORARY_SUFFIX,
                dir=final.parent,
            )
        except OSError as exc:
            raise WriteError(f"cannot write in this folder: {exc.strerror}", path=final) from exc
        os.close(handle)
        self._staged[final] = Path(name)
        return Path(name)

    @property
    def targets(self) -> list[Path]:
        """The files that will exist once the write succeeds, in staging order."""
        return list(self._staged)

    def public(self, text: str) -> str:
        """``text`` with every temporary path or name replaced by its target's."""
        for final, temporary in self._staged.items():
            text = text.replace(str(temporary), str(final)).replace(temporary.name, final.name)
        return text

    def commit(self) -> list[Path]:
        """Publish every staged file; on failure put back what was there and raise."""
        try:
            for final in self._staged:
                self._check_target(final, appeared=True)
            for final, temporary in self._staged.items():
                _prepare(temporary, final)
        except BaseException:
            self.discard()
            raise
        pairs = self._publication_order()
        journals = _write_journals(pairs, self.force) if len(pairs) > 1 else []
        try:
            _publish(pairs, self.force)
        except BaseException:
            self.discard()
            raise
        finally:
            for journal in journals:
                journal.unlink(missing_ok=True)
            for folder in {final.parent for _, final in pairs}:
                _sync_folder(folder)
        return self.targets

    def discard(self) -> None:
        """Delete every temporary (the targets are left as they are)."""
        for temporary in self._staged.values():
            temporary.unlink(missing_ok=True)

    def _check_target(self, final: Path, *, appeared: bool = False) -> None:
        """Refuse an input, an existing file without force, a folder (in that order when
        staging; at commit a folder that appeared is named as such)."""
        if appeared and final.is_dir():
            raise WriteError("a folder has this name", path=final)
        source = _input_at(final, self.inputs)
        if source is not None:
            raise WriteError(
                f"this output would replace the input {source}",
                path=final,
                hint="write to another name; an input is never overwritten, even with force",
            )
        if os.path.lexists(final) and not self.force:
            raise WriteError(
                "the output appeared meanwhile" if appeared else "the output exists already",
                path=final,
                hint="choose another name or pass --force (force=True in Python)",
            )
        if final.is_dir():
            raise WriteError("a folder has this name", path=final)
        if final.exists() and not final.is_file():  # a device, FIFO or socket (or a link to one)
            raise WriteError(
                "the output is not a regular file (a device, FIFO or socket)",
                path=final,
                hint="segio replaces only regular files; choose another name",
            )

    def _publication_order(self) -> list[tuple[Path, Path]]:
        """(temporary, target) pairs: staging order, the main targets last."""
        pairs = [(t, f) for f, t in self._staged.items() if f not in self.mains]
        pairs += [(t, f) for f, t in self._staged.items() if f in self.mains]
        return pairs

    def __enter__(self) -> OutputFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


# -- publishing ------------------------------------------------------------------------


def _prepare(temporary: Path, final: Path) -> None:
    """Give ``temporary`` its final mode and flush it to disk before it is published."""
    try:
        mode = stat.S_IMODE(final.stat().st_mode) if final.exists() else 0o666 & ~_umask()
        temporary.chmod(mode)
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise WriteError(f"cannot finish the output: {exc.strerror}", path=final) from exc


def _publish(pairs: list[tuple[Path, Path]], force: bool) -> None:
    """Publish in order. An error takes back what was published and raises WriteError; an
    interruption (KeyboardInterrupt) finishes the publication first, like a recovery."""
    undo: list[tuple[Path, Path | None, bool]] = []  # target, backup, whether it existed
    done = 0
    try:
        for temporary, final in pairs:
            if force:
                undo.append((final, *_backup(final)))
                temporary.replace(final)
            else:
                _link(temporary, final)
                undo.append((final, None, False))
            done += 1
    except OSError as exc:
        _take_back(undo, pairs)
        if isinstance(exc, FileExistsError):
            raise WriteError(
                "the output appeared meanwhile (another program wrote it)",
                path=_target_of(exc, pairs),
                hint="choose another name or pass --force (force=True in Python)",
            ) from exc
        raise WriteError(
            f"cannot move the output into place: {exc.strerror}", path=_target_of(exc, pairs)
        ) from exc
    except BaseException:
        _finish(pairs[done:], force)
        raise
    finally:
        for _, backup, _ in undo:
            if backup is not None:
                backup.unlink(missing_ok=True)
    if not force:
        for temporary, _ in pairs:
            temporary.unlink(missing_ok=True)


def _finish(pairs: Iterable[tuple[Path, Path]], force: bool) -> None:
    """Publish what is left, ignoring errors (a recovery, or an interrupted commit)."""
    for temporary, final in pairs:
        with contextlib.suppress(OSError):
            if force:
                temporary.replace(final)
            else:
                with contextlib.suppress(FileExistsError):
                    _link(temporary, final)
                temporary.unlink()


def _link(temporary: Path, final: Path) -> None:
    """Publish without replacing: a hard link fails if anything is at ``final``."""
    try:
        os.link(temporary, final, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(final):  # no hard links here: check, then rename (a small window)
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from exc
        temporary.rename(final)


def _backup(final: Path) -> tuple[Path | None, bool]:
    """A hard link to what ``final`` holds now, so a failed write can put it back, and
    whether anything was there."""
    if not os.path.lexists(final):
        return None, False
    backup = final.with_name(_temporary_name(final))
    try:
        os.link(final, backup, follow_symlinks=False)
    except OSError:
        return None, True  # no hard links: the old file cannot be put back after an error
    return backup, True


def _take_back(undo: list[tuple[Path, Path | None, bool]], pairs: list[tuple[Path, Path]]) -> None:
    """Undo the publications in ``undo`` (an error, not a kill, stopped the write)."""
    temporaries = {final: temporary for temporary, final in pairs}
    for final, backup, existed in reversed(undo):
        with contextlib.suppress(OSError):
            if backup is not None:
                backup.replace(final)
            elif not existed and _ours(final, temporaries[final]):
                final.unlink()


def _ours(final: Path, temporary: Path) -> bool:
    """Whether ``final`` is what this write published from ``temporary`` (a replace
    consumed the temporary; a link left it, the same file)."""
    return not os.path.lexists(temporary) or _same_file(final, temporary)


def _target_of(exc: OSError, pairs: list[tuple[Path, Path]]) -> Path | None:
    named = {os.fspath(exc.filename), os.fspath(exc.filename2 or "")}
    for temporary, final in pairs:
        if str(final) in named or str(temporary) in named:
            return final
    return pairs[-1][1] if pairs else None


# -- journals and recovery ---------------------------------------------------------------


def _write_journals(pairs: list[tuple[Path, Path]], force: bool) -> list[Path]:
    """One journal per folder, listing that folder's pairs as plain file names."""
    journals: list[Path] = []
    for folder in dict.fromkeys(final.parent for _, final in pairs):
        entries = [[t.name, f.name] for t, f in pairs if f.parent == folder]
        document = {
            "segio-journal": 1,
            "publish": "replace" if force else "link",
            "files": entries,
        }
        import json
        import tempfile

        try:
            handle, name = tempfile.mkstemp(
                prefix=f".segio.{_owner()}~", suffix=JOURNAL_SUFFIX, dir=folder
            )
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream)
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as exc:
            for journal in journals:
                journal.unlink(missing_ok=True)
            raise WriteError(f"cannot write in this folder: {exc.strerror}", path=folder) from exc
        journals.append(Path(name))
        _sync_folder(folder)
    return journals


def recover(folder: PathLike) -> None:
    """Finish or clean up what writers that died left in ``folder``.

    Journals of dead writers on this host are rolled forward and deleted, then their
    temporaries are deleted. Anything of a live writer, of another host or user, or not
    named like segio's files is left alone; errors (a read-only folder) are ignored.
    """
    folder = Path(folder)
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".")]
    except OSError:
        return
    for name in names:
        journal = _read_journal(folder / name) if _JOURNAL.fullmatch(name) else None
        if journal is not None and journal.dead:
            _roll_forward(journal)
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if match and _dead(match["host"], int(match["pid"])) and _mine(folder / name):
            with contextlib.suppress(OSError):
                (folder / name).unlink()


def settle(path: PathLike) -> None:
    """Before reading ``path``: finish a write that named it and was interrupted.

    A dead writer's journal is rolled forward; a live writer is given up to
    :data:`SETTLE_WAIT` seconds to finish its renames (they take microseconds).
    """
    path = Path(path).absolute()
    deadline = time.monotonic() + SETTLE_WAIT
    while pending := _journals_naming(path):
        for journal in pending:
            if journal.dead:
                _roll_forward(journal)
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)


@dataclass(frozen=True)
class _Journal:
    """A journal of this user, with the pairs it may publish: plain names of its own
    writer's temporaries and of ordinary files beside them (anything else is ignored)."""

    path: Path
    host: str
    pid: int
    replace: bool
    pairs: tuple[tuple[str, str], ...]

    @property
    def dead(self) -> bool:
        return _dead(self.host, self.pid)


def _read_journal(path: Path) -> _Journal | None:
    """The journal at ``path``; None unless it is a regular file of this user (never
    blocks: a FIFO named like a journal is not opened for reading)."""
    match = _JOURNAL.fullmatch(path.name)
    if match is None:
        return None
    owner = f"{match['host']}~{match['pid']}"
    try:
        with open_input(path, what="a segio journal") as stream:
            if not _mine_stat(os.fstat(stream.fileno())):
                return None
            data = stream.read(_JOURNAL_LIMIT)
    except (SegioError, OSError):
        return None
    import json  # only when a journal is found: reads seldom meet one

    replace, pairs = False, []
    with contextlib.suppress(ValueError, TypeError, KeyError):  # cut short by a kill
        document = json.loads(data)
        replace = document["publish"] == "replace"
        pairs = [(t, f) for t, f in document["files"] if _owned(t, owner) and _plain_target(f)]
    return _Journal(path, match["host"], int(match["pid"]), replace, tuple(pairs))


def _journals_naming(path: Path) -> list[_Journal]:
    try:
        names = [e.name for e in os.scandir(path.parent) if e.name.endswith(JOURNAL_SUFFIX)]
    except OSError:
        return []
    journals = [_read_journal(path.parent / name) for name in names]
    return [j for j in journals if j is not None and any(f == path.name for _, f in j.pairs)]


def _owned(name: str, owner: str) -> bool:
    match = _TEMPORARY.fullmatch(name)
    return match is not None and f"{match['host']}~{match['pid']}" == owner


def _plain_target(name: str) -> bool:
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
        and os.sep not in name
        and not name.endswith((TEMPORARY_SUFFIX, JOURNAL_SUFFIX))
    )


def _roll_forward(journal: _Journal) -> None:
    """Publish what a dead writer's journal lists, then delete the journal."""
    folder = journal.path.parent
    pairs = [(folder / t, folder / f) for t, f in journal.pairs if _mine(folder / t)]
    _finish(pairs, journal.replace)
    with contextlib.suppress(OSError):
        journal.path.unlink()
    _sync_folder(folder)


def _mine(path: Path) -> bool:
    """A regular file (not a link) of this user: a file segio may publish or delete."""
    try:
        return _mine_stat(path.lstat())
    except OSError:
        return False


def _mine_stat(status: os.stat_result) -> bool:
    user = os.geteuid() if hasattr(os, "geteuid") else status.st_uid
    return stat.S_ISREG(status.st_mode) and status.st_uid == user


def _dead(host: str, pid: int) -> bool:
    """True only for a process of this host that no longer exists."""
    if host != host_name() or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has ended but not been collected yet (Linux ``/proc``).

    ``kill(pid, 0)`` still finds it; but it will never write again. ``kill -9`` of a whole
    batch leaves its workers so until something reaps them, which in a container whose
    first process does not reap may be never: their temporaries must still go.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:  # noqa: PTH123
            data = stream.read()
    except OSError:
        return False
    end = data.rfind(b")")  # the state follows the command name, which may hold ")"
    return end > 0 and data[end + 2 : end + 3] in (b"Z", b"X")


# -- small helpers ------------------------------------------------------------------------


def _absolute(path: PathLike) -> Path:
    """``path`` absolute and normalised (``a/./b`` and ``a/b`` are one target)."""
    return Path(os.path.normpath(Path(path).absolute()))


def _owner() -> str:
    """``host~pid`` of this process (read at each call: a forked child has its own pid)."""
    return f"{host_name()}~{os.getpid()}"


def _temporary_name(final: Path) -> str:
    import secrets

    return f".{final.name[:_NAME_KEPT]}.{_owner()}~{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"


def _input_at(final: Path, inputs: list[Path]) -> Path | None:
    """The input that ``final`` is (same file, any link) or lies in (an input folder)."""
    if not inputs or not os.path.lexists(final):
        return None
    places = {Path(os.path.realpath(final)), Path(os.path.realpath(final.parent)) / final.name}
    for source in inputs:
        if source.is_dir():
            folder = Path(os.path.realpath(source))
            if any(place.is_relative_to(folder) for place in places):
                return source
        elif _same_file(final, source):
            return source
    return None


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the renames) to disk, where the system allows it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
