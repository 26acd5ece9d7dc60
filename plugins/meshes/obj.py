"""Wavefront OBJ with its MTL material library.

Coordinates: LPS millimetres by default, RAS with ``coordinate_system=ras``, recorded in the
first comment as Slicer does (``# 3D Slicer output. SPACE=LPS``), which the reader honours.

Each segment is an object and a group of the same name (``o Liver`` / ``g Liver``) using
its own material (``usemtl``) whose ``Kd`` is the segment colour and ``d`` its opacity
(segment property ``opacity``, else 1); ``Tr`` is deliberately not written (readers disagree
on whether it means opacity, as VTK writes it, or transparency). A ``# segio`` comment per
object keeps the segment id and terminology for a lossless round trip. Unlike Slicer's
exporter (groups ``grpN``), names survive. The reader takes ``o`` names (else ``g`` names),
``Kd`` and ``d`` (else ``1 - Tr``), and fan-triangulates polygons.

Files an OBJ names: each ``mtllib`` is read only when it is a regular file in the OBJ's
folder or below it; one that is missing or refused (absolute, ``../``, a link out of the
folder, a FIFO or device) costs its colours, with one warning, not the read (see
:func:`_materials`). Texture maps named in an MTL are never opened.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError, reading
from segio.fileio.outputs import OutputFiles
from segio.model import Segmentation
from segio.surfaces import compacted
from segio.terminology import Terminology

from .common import (
    SPACES,
    Part,
    checked_metadata,
    checked_surface,
    choice,
    load_json,
    parts_of,
    polygon_triangles,
    read_file,
    read_reference,
    to_segmentation,
    whole_numbers,
)

MARK = "# segio "
SIGNATURE = "(written by segio)"
#: Last line of every OBJ segio writes; a segio file without it was cut short.
END = "# end of file"


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    coordinate_system: str = "lps",
) -> None:
    """``path`` (.obj) and ``<stem>.mtl`` next to it, one object + material per segment."""
    space = choice(coordinate_system, "coordinate_system", SPACES)
    parts = parts_of(segmentation, space)
    library = path.with_suffix(".mtl")
    obj = [
        f"# 3D Slicer output. SPACE={space.upper()} {SIGNATURE}",
        f"mtllib {library.name}",
    ]
    mtl = ["# materials of " + path.name]
    offset = 1
    for n, part in enumerate(parts):
        material = f"segment{n + 1}_" + "_".join(part.name.split())
        meta: dict[str, Any] = {"id": part.id}
        if part.terminology is not None:
            meta["terminology"] = part.terminology.to_slicer()
        name = " ".join(part.name.splitlines())
        obj += [f"o {name}", MARK + json.dumps(meta, ensure_ascii=False), f"g {name}"]
        obj.append(f"usemtl {material}")
        color = part.color or (1.0, 1.0, 1.0)
        mtl += [
            f"newmtl {material}",
            "Ka 0 0 0",
            "Kd " + " ".join(repr(float(c)) for c in color),
            "Ks 0.2 0.2 0.2",
            "Ns 20",
            f"d {float(part.opacity if part.opacity is not None else 1.0)!r}",
            "illum 2",
        ]
        v, f = part.surface.vertices, part.surface.faces
        if len(v):
            obj.append(_table("v", v, "%.17g"))
        if len(f):
            obj.append(_table("f", f + offset, "%d"))
        offset += len(v)
    obj.append(END)  # no newline after it: a file cut by even one byte loses the marker
    files.stage(path).write_text("\n".join(obj), encoding="utf-8")
    files.stage(library).write_text("\n".join(mtl) + "\n", encoding="utf-8")


def _table(key: str, rows: NDArray[Any], number: str) -> str:
    line = f"{key} {number} {number} {number}\n"
    return ((line * len(rows)) % tuple(rows.ravel().tolist())).rstrip("\n")


class _Group:
    def __init__(self, name: str, first_face: int) -> None:
        self.name = name
        self.material: str | None = None
        self.first_face = first_face  # index of its first ``f`` line
        self.meta: dict[str, Any] = {}


def read(path: Path, *, reference: Any = None) -> Segmentation:
    """One segment per ``o`` object (or ``g`` group when the file has no objects)."""
    with reading(path, "OBJ"):
        text = read_file(path).decode("utf-8")
        if "\0" in text:
            raise ReadError("binary content in an OBJ (text) file", path=path)
        parts, space = _parse(text, path)
        return to_segmentation(parts, path, space=space, reference=reference)


def _parse(text: str, path: Path) -> tuple[list[Part], str]:
    """One pass sorts the lines; vertices and faces are then converted in bulk by numpy."""
    lines = text.splitlines()
    if lines and SIGNATURE in lines[0] and lines[-1] != END:
        raise ReadError(
            f"the file does not end with {END!r} as segio writes it (truncated?)", path=path
        )
    by_object = any(line.startswith("o ") for line in lines)
    split_key = "o" if by_object else "g"
    vertices: list[str] = []
    faces: list[str] = []
    seen: list[int] = []  # vertices defined before each face (for negative indices)
    groups: list[_Group] = []
    libraries: list[str] = []
    space = "ras" if lines and "SPACE=RAS" in lines[0].upper() else "lps"
    current: _Group | None = None
    for number, raw in enumerate(lines, start=1):
        if raw.startswith("v "):
            vertices.append(raw[2:])
            continue
        if raw.startswith("f "):
            if current is None:
                current = _Group("", len(faces))
                groups.append(current)
            faces.append(raw[2:])
            seen.append(len(vertices))
            continue
        line = raw.strip()
        key, _, rest = line.replace("\t", " ").partition(" ")
        rest = rest.strip()
        if not line or key.startswith("#"):
            if line.startswith(MARK) and current is not None:
                current.meta = load_json(line[len(MARK) :], "segio metadata comment")
        elif key == "v":
            vertices.append(rest)
        elif key == "f":
            if current is None:
                current = _Group("", len(faces))
                groups.append(current)
            faces.append(rest)
            seen.append(len(vertices))
        elif key == split_key:
            current = _Group(rest, len(faces))
            groups.append(current)
        elif key == "usemtl":
            if current is None:
                current = _Group("", len(faces))
                groups.append(current)
            if current.material is None:
                current.material = rest
        elif key == "mtllib":
            libraries.append(rest)
        elif key not in _KNOWN:
            raise ReadError(f"line {number}: unknown OBJ statement {key[:20]!r}", path=path)
    points = _numbers(vertices, path)
    triangles, owner = _triangles(faces, np.array(seen, np.int64), path)
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(points)):
        raise ReadError(f"a face refers to a vertex outside 1..{len(points)}", path=path)
    materials = _materials(path, libraries)
    bounds = [g.first_face for g in groups] + [len(faces)]
    parts = []
    for n, group in enumerate(groups):
        if bounds[n] == bounds[n + 1] and not group.meta:
            continue
        lo, hi = np.searchsorted(owner, [bounds[n], bounds[n + 1]])
        surface = checked_surface(*compacted(points, triangles[lo:hi]), path, "OBJ")
        color, opacity = materials.get(group.material or "", (None, None))
        opacity, segment_id = checked_metadata(opacity, group.meta.get("id"))
        term = group.meta.get("terminology")
        parts.append(
            Part(
                name=group.name,
                surface=surface,
                color=color,
                opacity=opacity,
                id=segment_id,
                terminology=Terminology.from_slicer(term) if term else None,
            )
        )
    return parts, space


_KNOWN = {"vn", "vt", "vp", "g", "o", "s", "l", "p", "mg", "cstype", "deg", "surf", "curv"}


def _numbers(rows: list[str], path: Path) -> NDArray[np.float64]:
    """``x y z`` of the ``v`` lines (extra numbers, a w or a colour, are ignored)."""
    if not rows:
        return np.zeros((0, 3))
    tokens = " ".join(rows).split()
    if len(tokens) == 3 * len(rows):  # the usual case: three numbers per line
        return np.array(tokens, dtype=np.float64).reshape(-1, 3)
    table = [row.split()[:3] for row in rows]
    if any(len(row) != 3 for row in table):
        raise ReadError("a vertex (v) line has fewer than three coordinates", path=path)
    return np.array(table, dtype=np.float64)


def _triangles(
    rows: list[str], seen: NDArray[np.int64], path: Path
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """0-based triangles of the ``f`` lines (polygons as fans) and the line of each."""
    if not rows:
        return np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    joined = " ".join(rows)
    tokens = joined.split()
    if "/" in joined:
        tokens = [token.partition("/")[0] for token in tokens]
    counts = (
        np.full(len(rows), 3)
        # At most three tokens a line (two spaces, no tabs), three on average: three each.
        if len(tokens) == 3 * len(rows)
        and "\t" not in joined
        and all(r.count(" ") == 2 for r in rows)
        else np.array([len(r.split()) for r in rows])
    )
    if np.any(counts < 3):
        raise ReadError("a face (f) line has fewer than three vertices", path=path)
    values = whole_numbers(tokens, "a face (f) vertex index")
    if np.any(values == 0):
        raise ReadError("a face refers to vertex 0 (OBJ counts from 1)", path=path)
    line_of_value = np.repeat(np.arange(len(rows)), counts)
    values = np.where(values > 0, values - 1, values + seen[line_of_value])
    return polygon_triangles(counts, values)


def _materials(
    path: Path, libraries: list[str]
) -> dict[str, tuple[tuple[float, float, float] | None, float | None]]:
    """``newmtl`` name -> (Kd, opacity) from the ``mtllib`` libraries that can be read.

    A library is read only when it is a regular file in the OBJ's folder or below it
    (:func:`segio.fileio.inputs.referenced_file`). One that cannot be read (missing, outside the
    folder, a FIFO or device, too large) is skipped with one warning and the meshes come
    without its colours: the geometry is all there, and that is what trimesh and 3D Slicer
    do with an OBJ whose MTL did not come along. Texture maps an MTL names (``map_Kd``)
    are never opened: segio reads no texture.
    """
    found: dict[str, tuple[tuple[float, float, float] | None, float | None]] = {}
    skipped: list[str] = []
    for library in dict.fromkeys(libraries):  # a library named twice is read once
        try:
            data = read_reference(path, library, what="the MTL material library")
        except ReadError as exc:
            skipped.append(exc.reason)
            continue
        found.update(_parse_mtl(data.decode("utf-8", errors="replace")))
    if skipped:
        more = f" (and {len(skipped) - 1} more libraries)" if len(skipped) > 1 else ""
        warnings.warn(
            f"{path}: {skipped[0]}{more}; its meshes are read without those colours",
            stacklevel=4,
        )
    return found


def _parse_mtl(text: str) -> dict[str, tuple[tuple[float, float, float] | None, float | None]]:
    found: dict[str, tuple[tuple[float, float, float] | None, float | None]] = {}
    name: str | None = None
    color: tuple[float, float, float] | None = None
    opacity: float | None = None
    for raw in [*text.splitlines(), "newmtl"]:
        key, _, rest = raw.strip().partition(" ")
        if key == "newmtl":
            if name is not None:
                found[name] = (color, opacity)
            name, color, opacity = rest.strip(), None, None
        elif key == "Kd":
            r, g, b = (min(max(float(x), 0.0), 1.0) for x in rest.split()[:3])
            color = (r, g, b)
        elif key == "d":
            opacity = min(max(float(rest.split()[0]), 0.0), 1.0)
        elif key == "Tr" and opacity is None:
            opacity = 1.0 - min(max(float(rest.split()[0]), 0.0), 1.0)
    return found
