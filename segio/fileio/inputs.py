"""Opening untrusted input: regular files only, and references only inside the input's folder.

Two rules, applied by every reader:

- **Only regular files are read.** A FIFO blocks a read forever, ``/dev/zero`` never ends,
  a socket or a tty is not data. :func:`open_input` opens without blocking and checks the
  opened descriptor (no window between check and open); :func:`check_regular` checks a
  path that a library will open by name.
- **A path named inside a file stays inside that file's folder.** An NRRD ``data file:``,
  a glTF buffer or image URI, an OBJ ``mtllib``, a ``.seg.vtm`` piece: :func:`referenced_file`
  resolves it (symbolic links included) and refuses anything that leaves the folder of the
  file naming it, that is not a regular file, or that is named by a file read from a stream
  (which has no folder).

Refusals are :class:`~segio.errors.ReadError` naming the file, the reference and why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from segio.errors import ReadError
from segio.fileio.streams import is_spooled

__all__ = ["check_regular", "folder_files", "open_input", "read_input", "referenced_file"]

PathLike = str | os.PathLike[str]


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: PathLike, *, what: str = "the file") -> None:
    """Refuse ``path`` unless it is (a link to) an existing regular file; never opens it."""
    try:
        mode = Path(path).stat().st_mode
    except OSError as exc:
        raise ReadError(f"cannot read {what}: {exc.strerror}", path=path) from exc
    kind = _kind(mode)
    if kind is not None:
        raise ReadError(
            f"{what} is {kind}, not a regular file",
            path=path,
            hint="segio reads only regular files",
        )


def folder_files(folder: PathLike, *, recursive: bool = True) -> list[Path]:
    """The regular files in ``folder`` (and below it), sorted; hidden files left out.

    What a reader may take from a folder it is given: FIFOs, devices and sockets are left
    out without being opened (a FIFO would block the read), and so are links that resolve
    outside ``folder`` (to another user's file, to ``/dev/zero``); links to folders are not
    followed (no cycles). Nothing is opened here.
    """
    root = Path(os.path.realpath(folder))
    found = []
    for current, folders, names in os.walk(folder, followlinks=False):
        if not recursive:
            folders.clear()
        for name in names:
            path = Path(current) / name
            if name.startswith(".") or not Path(os.path.realpath(path)).is_relative_to(root):
                continue
            try:
                mode = path.stat().st_mode
            except OSError:  # a dangling link
                continue
            if stat.S_ISREG(mode):
                found.append(path)
    return sorted(found)


def open_input(path: PathLike, *, what: str = "the file") -> BinaryIO:
    """Open a regular file for binary reading; devices, FIFOs and sockets are refused.

    The file is opened non-blocking (a FIFO with no writer would block the open itself)
    and the *opened* descriptor is checked, so a file swapped in after a check cannot slip
    through.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ReadError(f"cannot open {what}: {exc.strerror}", path=path) from exc
    try:
        kind = _kind(os.fstat(descriptor).st_mode)
        if kind is not None:
            raise ReadError(
                f"{what} is {kind}, not a regular file",
                path=path,
                hint="segio reads only regular files",
            )
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_input(path: PathLike, *, what: str = "the file", limit: int | None = None) -> bytes:
    """The bytes of a regular file (at most ``limit`` of them: more is a :class:`ReadError`)."""
    with open_input(path, what=what) as stream:
        data = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ReadError(f"{what} is larger than {limit} bytes", path=path)
    return data


def referenced_file(
    container: PathLike | None,
    reference: str,
    *,
    what: str = "the file it names",
    url: bool = False,
) -> Path:
    """The regular file that ``container`` names as ``reference``, inside its folder.

    ``url`` says the reference is a URI reference (glTF): percent escapes are decoded and a
    scheme is refused. Either way absolute paths, ``..`` escapes and links that resolve
    outside the folder are refused, and so is every reference from a file that has no
    folder (``container`` None: read from a stream or from bytes).
    """

    def refuse(why: str, hint: str | None = None) -> ReadError:
        return ReadError(
            f"refused to read {what} {reference!r}: {why}",
            path=container,
            hint=hint or "a file may only name files in its own folder or below it",
        )

    if container is None or is_spooled(container):
        raise refuse(
            "a file read from a stream has no folder to take the files it names from",
            "read it from a path, with the files it names beside it",
        )
    name = reference
    if url:
        parts = urlsplit(reference)
        if parts.scheme or parts.netloc:
            raise refuse("it is a URL, and segio reads no URL")
        name = unquote(parts.path)
    if not name or "\0" in name:
        raise refuse("it is empty or holds a NUL character")
    if Path(name).is_absolute() or name.startswith(("/", "~", "\\")) or name[1:3] == ":\\":
        raise refuse("it is an absolute path")
    folder = Path(os.path.realpath(Path(container).parent))
    target = Path(os.path.realpath(folder / name))
    if not target.is_relative_to(folder):
        raise refuse("it resolves outside the folder of the file naming it")
    try:
        mode = target.stat().st_mode
    except OSError as exc:
        raise refuse(exc.strerror or "it cannot be found") from exc
    kind = _kind(mode)
    if kind is not None:
        raise refuse(f"it is {kind}, not a regular file")
    return target
