"""Reading from bytes and file objects, and writing to binary streams.

A segmentation often arrives without a file name: a download from an object store, a
DICOMweb response, an upload. :func:`segio.read` and :func:`segio.write` accept those
through this module, and every format's own reader and writer does the work, so a stream
reads *exactly* as the same bytes read from a path (the tests compare the two).

How: the bytes (at most :func:`segio.fileio.limits.memory_limit` of them: a stream that
never ends is refused, not read forever) are placed in a private temporary folder (mode
0700) under a name with the format's suffix, read there and removed at once. Why a file
rather than a memory buffer: readers hand paths to libraries (nibabel, pydicom, VTK) and
open them through :func:`segio.fileio.inputs.open_input`; one code path means one set
of bugs, and every untrusted-input rule still holds.

A stream is ONE file: a file that names other files (a ``.nhdr`` header's data file, a
``.gltf``'s buffers, a ``.seg.vtm``'s pieces, a sliceomatic tag's companion image) is
refused by :func:`segio.fileio.inputs.referenced_file`, which knows the spooled files
(:func:`is_spooled`): there is no folder to take them from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from segio.errors import ReadError, SegioError, ValidationError, located

__all__ = ["Readable", "is_source_stream", "is_spooled", "spooled", "stream_bytes", "stream_label"]

#: How a stream is named in messages and provenance when it has no name of its own.
STREAM = "<stream>"
BYTES = "<bytes>"

_SPOOLED: set[str] = set()  # real paths of the folders that hold spooled streams


class Readable(Protocol):
    """A binary file object: anything with ``read(size)`` returning bytes."""

    def read(self, size: int = -1, /) -> bytes: ...


def is_source_stream(source: object) -> bool:
    """True for bytes-like data or a file object (not a path)."""
    return isinstance(source, bytes | bytearray | memoryview) or hasattr(source, "read")


def stream_label(source: object) -> str:
    """How messages name ``source``: a file object's own ``name`` when it has one."""
    if isinstance(source, bytes | bytearray | memoryview):
        return BYTES
    name = getattr(source, "name", None)
    return f"<stream {name}>" if isinstance(name, str) and name else STREAM


def stream_bytes(source: bytes | bytearray | memoryview | Readable, *, label: str) -> bytes:
    """The bytes of ``source``, refused beyond the memory limit and when not binary."""
    from segio.fileio.limits import check_allocation, memory_limit

    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        limit = memory_limit()
        data = source.read(limit + 1)
        if not isinstance(data, bytes | bytearray):
            raise ValidationError(
                f"the stream gave {type(data).__name__}, not bytes",
                path=label,
                hint="open the file in binary mode ('rb') or pass io.BytesIO",
            )
        data = bytes(data)
    check_allocation(len(data), "the stream", path=label)
    if not data:
        raise ReadError("the stream is empty", path=label, hint="check the download or upload")
    return data


def is_spooled(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a stream placed in a temporary folder by :func:`spooled`."""
    return os.path.realpath(Path(path).parent) in _SPOOLED


@contextmanager
def spooled(data: bytes | None, name: str) -> Iterator[Path]:
    """A private temporary folder holding ``data`` as ``name`` (or nothing when ``data`` is
    None: a writer fills it); removed on exit, whatever happens."""
    import shutil  # here: reading a file by its path needs neither (3 ms of start-up)
    import tempfile

    folder = tempfile.mkdtemp(prefix="segio-stream-")
    real = os.path.realpath(folder)
    _SPOOLED.add(real)
    try:
        path = Path(folder) / name
        if data is not None:
            path.write_bytes(data)
        yield path
    finally:
        _SPOOLED.discard(real)
        shutil.rmtree(folder, ignore_errors=True)


def relabelled(text: str, path: Path, label: str) -> str:
    """``text`` naming ``label`` wherever it names the temporary folder or a file in it."""
    inside = re.compile(re.escape(str(path.parent)) + r"(?:" + re.escape(os.sep) + r"[^\s:'\"]*)?")
    return inside.sub(label.replace("\\", "\\\\"), text)


def renamed(exc: SegioError, path: Path, label: str) -> SegioError | None:
    """``exc`` naming ``label`` instead of the temporary ``path``; None when unchanged."""

    def clean(text: str | None) -> str | None:
        return None if text is None else relabelled(text, path, label)

    where = clean(os.fspath(exc.path)) if exc.path else label
    reason, hint = clean(exc.reason), clean(exc.hint)
    if (where, reason, hint) == (exc.path, exc.reason, exc.hint):
        return None
    return located(exc, where or label, reason=reason, hint=hint)


def scrub_provenance(provenance: dict[str, Any], path: Path, label: str) -> None:
    """Point the provenance at ``label``: no temporary path is kept (a later write would
    otherwise treat the long-gone file as its input)."""
    folder = str(path.parent)
    for key, value in list(provenance.items()):
        if isinstance(value, str | os.PathLike) and os.fspath(value).startswith(folder):
            del provenance[key]
    provenance["source"] = label


def suffix_for(suffixes: tuple[str, ...], head: bytes, name: str | None, fmt: str) -> str:
    """The suffix a stream is given: the one its ``name`` ends with, else the variant its
    content shows (gzip NIfTI, XML or JSON OsiriX export, XML VTK, binary glTF)."""
    if name:
        lowered = name.lower()
        matching = [s for s in suffixes if lowered.endswith(s)]
        if matching:
            return max(matching, key=len)
    text = head.lstrip()
    by_content = {
        "nifti": ".nii.gz" if head[:2] == b"\x1f\x8b" else ".nii",
        "osirix": ".xml" if text[:1] == b"<" else ".json" if text[:1] in (b"{", b"[") else ".csv",
        "vtk": ".vtp" if text[:1] == b"<" else ".vtk",
        "gltf": ".glb" if head[:4] == b"glTF" else ".gltf",
        "seg-vtm": ".seg.vtm",
    }
    return by_content.get(fmt, suffixes[0] if suffixes else "")


def write_target(target: Any, data: bytes, label: str) -> None:
    """Write ``data`` to the binary stream ``target``."""
    try:
        target.write(data)
    except TypeError as exc:
        raise ValidationError(
            "the output stream does not take bytes",
            path=label,
            hint="open the file in binary mode ('wb') or pass io.BytesIO",
        ) from exc


def refuse_many(files: list[Path], fmt: str, options: Any, label: str) -> SegioError:
    """A stream holds one file: the refusal when a writer wrote several, saying which
    option makes it write one (``options``: the format's write options)."""
    from segio.errors import WriteError

    names = ", ".join(p.name for p in files)
    hint = "write to a path, or choose a single-file format"
    if "sidecar" in options:
        hint = "pass sidecar='none' (names and colours are then not written) or " + hint
    elif "merge" in options:
        hint = "pass merge=True (all segments in one file) or " + hint
    return WriteError(
        f"the {fmt} writer wrote {len(files)} files ({names}); a stream holds one file",
        path=label,
        hint=hint,
    )


def spooled_name(data_head: bytes, suffixes: tuple[str, ...], name: str | None, fmt: str) -> str:
    """The temporary file's name: ``name``'s last part when it ends with one of the
    format's suffixes (readers that name a segment after the file, as a merged STL, then
    name it as from the path), else ``stream`` plus the suffix :func:`suffix_for` picks."""
    suffix = suffix_for(suffixes, data_head, name, fmt)
    base = Path(name or "").name
    if base.lower().endswith(suffix) and len(base) > len(suffix) and "\0" not in base:
        return base
    return "stream" + suffix


def name_of(source: object, name: str | None) -> str | None:
    """The file name a stream would have: ``name``, else a file object's own name."""
    own = getattr(source, "name", None)
    return name or (Path(own).name if isinstance(own, str) and own else None)


def write_name(suffixes: tuple[str, ...], name: str | None, fmt: str) -> str:
    """The temporary name a writer writes a stream to: ``name``'s suffix, else the
    single-file variant (compressed NIfTI, binary glTF) or the format's first suffix."""
    head = {"nifti": b"\x1f\x8b", "gltf": b"glTF"}.get(fmt, b"")
    return spooled_name(head, suffixes, name, fmt)


def read_from(path: Path) -> bytes:
    """The bytes a writer left in the spooled folder."""
    from segio.fileio.inputs import read_input

    return read_input(path)
