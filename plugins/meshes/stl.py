"""STL, binary (default) or ASCII, as 3D Slicer's "Export to files" writes it.

Coordinates: LPS millimetres by default (Slicer's exporter default), RAS with
``coordinate_system=ras``; the choice is recorded as Slicer does, in the 80-byte header of a
binary file (``3D Slicer output. SPACE=LPS``) or on the ``solid`` line of an ASCII one
(``solid Liver SPACE=LPS``). The reader honours that tag (LPS when absent, like Slicer for
new files). STL has no units (millimetres by convention), no colour and, in binary, no name.

One file per segment by default, named ``<stem>_<segment name>.stl`` like Slicer (read
back, such a file is named after itself, ``<stem>_<segment name>``, as in Slicer); with
``merge=true`` one file: binary STL then loses the segment boundaries (one body), ASCII keeps
them as one named ``solid`` block per segment, which slicers for 3D printing accept.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from segio.errors import ReadError, WriteError, reading
from segio.fileio.outputs import OutputFiles
from segio.model import Segmentation
from segio.surfaces import face_normals

from .common import (
    SPACES,
    Part,
    checked_surface,
    choice,
    flag,
    parts_of,
    safe_name,
    space_in,
    to_segmentation,
    welded,
)

HEADER = b"3D Slicer output. SPACE="
_RECORD = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
_NUMBER = rb"[-+0-9.eEinfINFaA]+"
_VERTEX = re.compile(rb"vertex\s+(" + _NUMBER + rb")\s+(" + _NUMBER + rb")\s+(" + _NUMBER + rb")")
_SOLID = re.compile(rb"^\s*solid[ \t]*([^\r\n]*)", re.MULTILINE)
_ENDSOLID = re.compile(rb"^\s*endsolid[ \t]*([^\r\n]*)", re.MULTILINE)
_TAG = re.compile(r"\s*(3D Slicer output\.?)?\s*SPACE=(LPS|RAS)\S*\s*$", re.IGNORECASE)


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    ascii: object = False,
    merge: object = False,
    coordinate_system: str = "lps",
) -> None:
    """Write one STL per segment (``<stem>_<name>.stl``) or, with ``merge``, one file."""
    space = choice(coordinate_system, "coordinate_system", SPACES)
    as_text = flag(ascii, "ascii")
    parts = parts_of(segmentation, space)
    empty = [p.name for p in parts if p.surface.is_empty]
    if empty:
        warnings.warn(
            f"{path}: STL cannot hold a segment without triangles; not written: "
            + ", ".join(empty),
            stacklevel=2,
        )
    parts = [p for p in parts if not p.surface.is_empty]
    if not parts:
        raise WriteError("no segment has a triangle; STL cannot hold an empty mesh", path=path)
    encode = _ascii if as_text else _binary
    if flag(merge, "merge"):
        files.stage(path).write_bytes(encode(parts, space))
        return
    stem = path.name[: -len(".stl")] if path.name.lower().endswith(".stl") else path.name
    used: set[str] = set()
    for part in parts:
        name = safe_name(part.name)
        candidate, n = name, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{name}_{n}"
        used.add(candidate.lower())
        files.stage(path.with_name(f"{stem}_{candidate}.stl")).write_bytes(encode([part], space))


def _binary(parts: list[Part], space: str) -> bytes:
    count = sum(len(p.surface.faces) for p in parts)
    records = np.zeros(count, dtype=_RECORD)
    start = 0
    for part in parts:
        v, f = part.surface.vertices, part.surface.faces
        corners = v[f]
        stop = start + len(f)
        records["normal"][start:stop] = face_normals(v, f, unit=True)
        records["corners"][start:stop] = corners
        start = stop
    header = (HEADER + space.upper().encode()).ljust(80, b"\0")
    return header + np.uint32(count).tobytes() + records.tobytes()


def _ascii(parts: list[Part], space: str) -> bytes:
    chunks: list[bytes] = []
    for part in parts:
        title = f"{' '.join(part.name.split())} SPACE={space.upper()}".strip()
        v, f = part.surface.vertices, part.surface.faces
        corners = v[f]
        table = np.concatenate([face_normals(v, f, unit=True), corners.reshape(-1, 9)], axis=1)
        facet = (
            "facet normal %.9g %.9g %.9g\n outer loop\n"
            "  vertex %.17g %.17g %.17g\n  vertex %.17g %.17g %.17g\n  vertex %.17g %.17g %.17g\n"
            " endloop\nendfacet\n"
        )
        body = (facet * len(table)) % tuple(table.ravel()) if len(table) else ""
        chunks.append(f"solid {title}\n{body}endsolid {title}".encode())
    # No newline at the very end: a file cut by even one byte breaks the last endsolid name.
    return b"\n".join(chunks)


def read(path: Path, *, reference: Any = None) -> Segmentation:
    """One segment per ASCII ``solid`` block or per binary file, named by :func:`_named`."""
    with reading(path, "STL"):
        data = path.read_bytes()
        if _is_ascii(data):
            parts, space = _read_ascii(data, path)
        else:
            parts, space = _read_binary(data, path)
        return to_segmentation(_named(parts, path), path, space=space, reference=reference)


def _named(parts: list[Part], path: Path) -> list[Part]:
    """Parts without a name take the file's, as 3D Slicer names a model it loads.

    A binary STL has no name and an ASCII ``solid`` may have none (or only a ``SPACE=``
    tag): Slicer names the model after the file without its ``.stl``, so segio does too
    (``case_Liver.stl``, which the per-segment writer makes for segment ``Liver``, reads
    back as ``case_Liver``, as in Slicer). In a file of several solids the unnamed ones are
    numbered after the file, so that no two segments share a name.
    """
    stem = path.name[: -len(".stl")] if path.name.lower().endswith(".stl") else path.name
    for n, part in enumerate(parts):
        if not part.name:
            part.name = stem if len(parts) == 1 else f"{stem}_{n + 1}"
    return parts


def _is_ascii(data: bytes) -> bool:
    head = data[:1024].lstrip()
    return head[:5].lower() == b"solid" and b"facet" in data[:4096] and b"\0" not in head


def _read_binary(data: bytes, path: Path) -> tuple[list[Part], str]:
    if len(data) < 84:
        raise ReadError(
            f"too short for a binary STL ({len(data)} bytes; the header alone is 84)", path=path
        )
    count = int(np.frombuffer(data, "<u4", 1, 80)[0])
    expected = 84 + 50 * count
    if len(data) != expected:
        raise ReadError(
            f"a binary STL of {count} triangles has {expected} bytes, this file {len(data)}",
            path=path,
            hint="the file is truncated or not a binary STL",
        )
    records = np.frombuffer(data, _RECORD, count, 84)
    vertices, faces = welded(records["corners"])
    space = space_in(data[:80])
    return [Part(name="", surface=checked_surface(vertices, faces, path, "STL"))], space


def _read_ascii(data: bytes, path: Path) -> tuple[list[Part], str]:
    starts = list(_SOLID.finditer(data))
    parts: list[Part] = []
    space = "lps"
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(data)
        block = data[match.end() : end]
        title = match.group(1).decode("utf-8", "replace").strip()
        if n == 0:
            space = space_in(match.group(1))
        name = _TAG.sub("", title).strip()
        closing = _ENDSOLID.search(block)
        if closing is None:
            raise ReadError(f"solid {title!r} has no endsolid (truncated?)", path=path)
        closing_title = closing.group(1).decode("utf-8", "replace").strip()
        if closing_title and closing_title != title:
            raise ReadError(
                f"solid {title!r} ends with endsolid {closing_title!r} (truncated?)", path=path
            )
        found = _VERTEX.findall(block)
        numbers = np.array(found, dtype="S").astype(np.float64).reshape(-1, 3)
        if len(numbers) % 3 or len(numbers) // 3 != block.count(b"endfacet"):
            raise ReadError(f"solid {title!r}: a facet does not have three vertices", path=path)
        vertices, faces = welded(numbers.reshape(-1, 3, 3))
        surface = checked_surface(vertices, faces, path, "STL")
        parts.append(Part(name=name, surface=surface))
    return parts, space
