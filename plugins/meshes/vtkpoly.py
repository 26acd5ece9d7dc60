"""VTK PolyData: legacy ``.vtk`` (binary, version 4.2) and XML ``.vtp``, parsed in numpy.

VTK's own readers crash the process on some truncated or corrupt files, so both flavours
are read and written here (numpy, no VTK needed; the XML layer is :mod:`.vtkxml`); VTK,
ParaView and 3D Slicer read what this module writes.

Coordinates: LPS millimetres by default, RAS with ``coordinate_system=ras``. The space is
written where 3D Slicer looks for it, the legacy header line (``3D Slicer output.
SPACE=LPS``), and in the segment table below for both flavours; the reader honours
either, and the ``SPACE`` field array 3D Slicer writes into the ``.vtp`` models it saves
(LPS when absent).

All segments go in one PolyData: an int32 cell array ``SegmentId`` (0-based segment index)
and a field-data array ``SegmentInfo`` (the UTF-8 JSON of the segment names, ids,
terminologies, exact colours and opacities, stored as unsigned chars because legacy VTK
string arrays are not portable) plus ``SegmentColors`` (RGBA doubles, for VTK tools).
A file without ``SegmentId`` is one segment. The reader takes binary and ASCII legacy files
(POLYGONS and TRIANGLE_STRIPS; vertices and lines are ignored) and XML files with ascii,
base64 or appended raw data, zlib-compressed or not.

A ``.vtp`` that is one piece of a 3D Slicer ``.seg.vtm`` (its segment's name, colour and
terminology in ``Segment_*`` field arrays, closed surface or planar contours in RAS) is
read as that one segment, as :mod:`.segvtm` reads the whole segmentation.

Untrusted files: a PolyData file names no other file (appended data is inside it; the
parallel ``.pvtp`` format, whose pieces are files, is not read). zlib blocks inflate to
exactly the sizes their header declares and no further, declared counts are compared with
the bytes that follow before anything is allocated, and XML with a document type
declaration (entity expansion) is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError, reading
from segio.fileio.limits import check_payload
from segio.fileio.outputs import OutputFiles
from segio.model import Segmentation
from segio.surfaces import compacted

from . import segvtm, vtkxml
from .common import (
    SPACES,
    Part,
    checked_surface,
    choice,
    load_json,
    part_from_metadata,
    part_metadata,
    parts_of,
    polygon_triangles,
    read_file,
    space_in,
    to_segmentation,
)

_LEGACY_TYPES = {
    "bit": None, "unsigned_char": "u1", "char": "i1", "unsigned_short": "u2", "short": "i2",
    "unsigned_int": "u4", "int": "i4", "unsigned_long": "u8", "long": "i8", "float": "f4",
    "double": "f8", "vtkidtype": "i8", "vtktypeint64": "i8", "vtktypeuint64": "u8",
    "vtktypeint32": "i4", "vtktypeuint32": "u4",
}  # fmt: skip


# -- writing ------------------------------------------------------------------------------


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    coordinate_system: str = "lps",
) -> None:
    """A binary legacy ``.vtk`` or an XML ``.vtp`` (by the suffix), every segment in one."""
    space = choice(coordinate_system, "coordinate_system", SPACES)
    parts = parts_of(segmentation, space)
    offsets = np.cumsum([0] + [len(p.surface.vertices) for p in parts])
    # The empty leading arrays let a segmentation without segments write an empty mesh,
    # as the other mesh writers do.
    points = np.concatenate([np.zeros((0, 3))] + [p.surface.vertices for p in parts])
    faces = np.concatenate(
        [np.zeros((0, 3), np.int64)] + [p.surface.faces + offsets[n] for n, p in enumerate(parts)]
    )
    owner = np.concatenate(
        [np.zeros(0, np.int32)]
        + [np.full(len(p.surface.faces), n, np.int32) for n, p in enumerate(parts)]
    )
    info = json.dumps(
        {
            "space": space.upper(),
            "segments": [part_metadata(p) for p in parts],
        },
        ensure_ascii=False,
    ).encode("utf-8")
    colors = np.array(
        [[*(p.color or (1.0, 1.0, 1.0)), 1.0 if p.opacity is None else p.opacity] for p in parts]
    ).reshape(-1, 4)
    if path.suffix.lower() == ".vtk":
        payload = _legacy(points, faces.reshape(-1, 3), owner, info, colors, space)
    else:
        payload = _xml(points, faces.reshape(-1, 3), owner, info, colors)
    files.stage(path).write_bytes(payload)


def _legacy(
    points: NDArray[np.float64],
    faces: NDArray[np.int64],
    owner: NDArray[np.int32],
    info: bytes,
    colors: NDArray[np.float64],
    space: str,
) -> bytes:
    cells = np.concatenate([np.full((len(faces), 1), 3), faces], axis=1).astype(">i4")
    return b"".join(
        [
            b"# vtk DataFile Version 4.2\n",
            f"3D Slicer output. SPACE={space.upper()}\n".encode(),
            b"BINARY\nDATASET POLYDATA\n",
            b"FIELD FieldData 2\n",
            f"SegmentInfo 1 {len(info)} unsigned_char\n".encode(),
            info,
            b"\n",
            f"SegmentColors 4 {len(colors)} double\n".encode(),
            colors.astype(">f8").tobytes(),
            b"\n",
            f"POINTS {len(points)} double\n".encode(),
            points.astype(">f8").tobytes(),
            b"\n",
            f"POLYGONS {len(faces)} {4 * len(faces)}\n".encode(),
            cells.tobytes(),
            b"\n",
            f"CELL_DATA {len(faces)}\nSCALARS SegmentId int 1\nLOOKUP_TABLE default\n".encode(),
            owner.astype(">i4").tobytes(),  # no newline after: a cut file is detectably short
        ]
    )


def _xml(
    points: NDArray[np.float64],
    faces: NDArray[np.int64],
    owner: NDArray[np.int32],
    info: bytes,
    colors: NDArray[np.float64],
) -> bytes:
    encoding = vtkxml.Encoding()
    return vtkxml.document(
        encoding,
        points,
        {"Polys": faces},
        field_data=[
            encoding.numbers("SegmentInfo", "UInt8", np.frombuffer(info, np.uint8)),
            encoding.numbers("SegmentColors", "Float64", colors, 4),
        ],
        cell_data=[encoding.numbers("SegmentId", "Int32", owner)],
        scalars="SegmentId",
    )


# -- reading ------------------------------------------------------------------------------


def read(path: Path, *, reference: Any = None) -> Segmentation:
    """One segment per ``SegmentId`` value, named from ``SegmentInfo`` when present."""
    with reading(path, "VTK PolyData"):
        data = read_file(path)
        if data.startswith(b"# vtk DataFile"):
            mesh = _read_legacy(data, path)
        elif b"<VTKFile" in data[:65536]:
            piece = vtkxml.parse(data, path)
            if segvtm.is_segment_piece(piece):
                return segvtm.piece_segmentation(piece, path, reference=reference)
            mesh = _read_xml(piece)
        else:
            raise ReadError("neither a legacy VTK nor a VTK XML file", path=path)
        parts, space = _parts(*mesh, path)
        return to_segmentation(parts, path, space=space, reference=reference)


_Mesh = tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64] | None, dict[str, Any], str]


def _parts(
    points: NDArray[np.float64],
    faces: NDArray[np.int64],
    owner: NDArray[np.int64] | None,
    info: dict[str, Any],
    header: str,
    path: Path,
) -> tuple[list[Part], str]:
    space = str(info.get("space", "")).lower() or space_in(header.encode())
    space = "ras" if space == "ras" else "lps"
    if owner is None or len(owner) != len(faces):
        owner = np.zeros(len(faces), np.int64)
    segments = info.get("segments") or []
    labels = np.unique(owner)
    if segments:
        if len(labels) and (labels[0] < 0 or labels[-1] >= len(segments)):
            raise ReadError(
                f"SegmentId values {labels[0]}..{labels[-1]} are outside the "
                f"{len(segments)} segments of SegmentInfo",
                path=path,
            )
        labels = np.arange(len(segments))
    elif not len(labels):
        labels = np.zeros(1, np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= len(points)):
        raise ReadError(f"a cell refers to a point outside 0..{len(points) - 1}", path=path)
    order = np.argsort(owner, kind="stable")
    edges = np.searchsorted(owner[order], np.concatenate([labels, [labels[-1] + 1]]))
    parts = []
    for n in range(len(labels)):
        meta = segments[n] if segments else {}
        mine = faces[order[edges[n] : edges[n + 1]]]
        surface = checked_surface(*compacted(points, mine), path, "VTK")
        parts.append(part_from_metadata(meta, surface))
    return parts, space


def _cells(flat: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Vertex counts and concatenated ids from a legacy ``n id id ... n id ...`` list."""
    if not len(flat):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    size = int(flat[0])
    if size >= 0 and len(flat) % (size + 1) == 0 and np.all(flat[:: size + 1] == size):
        table = flat.reshape(-1, size + 1)  # every cell the same size: the usual case
        return table[:, 0].copy(), table[:, 1:].ravel()
    # Mixed sizes: each count says where the next cell starts, so finding the starts is a
    # walk over the counts (plain ints); the triangulation itself stays in numpy.
    values = flat.tolist()
    starts: list[int] = []
    at = 0
    while at < len(values):
        count = values[at]
        if count < 0 or at + 1 + count > len(values):
            raise ValueError("a cell list runs past its end")
        starts.append(at)
        at += 1 + count
    mask = np.ones(len(flat), bool)
    mask[starts] = False
    return flat[starts], flat[mask]


class _Cursor:
    """Reads a legacy VTK file: text lines, then binary or ASCII numbers."""

    def __init__(self, data: bytes, binary: bool, at: int) -> None:
        self.data, self.binary, self.at = data, binary, at

    def line(self) -> str:
        while True:
            end = self.data.find(b"\n", self.at)
            if end < 0:
                if self.at >= len(self.data):
                    return ""
                end = len(self.data)
            text = self.data[self.at : end].decode("ascii").strip()
            self.at = end + 1
            if text:
                return text

    def numbers(self, count: int, kind: str, what: str = "a data section") -> NDArray[Any]:
        """``count`` numbers; a count the rest of the file cannot hold is refused before
        anything is read (binary: their bytes; ASCII: at least two characters each)."""
        if count < 0:
            raise ReadError(f"{what} declares {count} values")
        left = len(self.data) - self.at
        if self.binary:
            dtype = np.dtype(">" + kind)
            check_payload(dtype.itemsize * count, left, what)
            values = np.frombuffer(self.data, dtype, count, self.at)
            self.at += dtype.itemsize * count
            return values
        if count > (left + 1) // 2:
            raise ReadError(
                f"{what} declares {count} numbers but only {left} characters follow",
                hint="the header is wrong or the file is truncated",
            )
        values_list: list[bytes] = []
        while len(values_list) < count:
            end = self.data.find(b"\n", self.at)
            end = len(self.data) if end < 0 else end
            if self.at >= len(self.data):
                raise ReadError("the data ends early (truncated?)")
            values_list += self.data[self.at : end].split()
            self.at = end + 1
        return np.array(values_list[:count], dtype="S").astype(kind)


def _read_legacy(data: bytes, path: Path) -> _Mesh:
    lines = data.split(b"\n", 4)
    if len(lines) < 5:
        raise ReadError("the legacy VTK header is incomplete (truncated?)", path=path)
    header = lines[1].decode("utf-8", "replace")
    encoding = lines[2].strip().upper()
    if encoding not in (b"BINARY", b"ASCII"):
        raise ReadError(f"unknown legacy VTK encoding {encoding[:20]!r}", path=path)
    if lines[3].split()[:2] != [b"DATASET", b"POLYDATA"]:
        raise ReadError("a legacy VTK file, but not DATASET POLYDATA", path=path)
    cursor = _Cursor(data, encoding == b"BINARY", sum(len(x) + 1 for x in lines[:4]))
    points: NDArray[np.float64] | None = None
    faces: list[NDArray[np.int64]] = []
    owners: list[NDArray[np.int64]] = []
    cell_count = 0
    polygon_cells = np.zeros(0, np.int64)
    segment_id: NDArray[np.int64] | None = None
    info: dict[str, Any] = {}
    section = "dataset"
    while True:
        line = cursor.line()
        if not line:
            break
        words = line.split()
        key = words[0].upper()
        if key == "FIELD":
            for _ in range(int(words[2])):
                name, components, tuples, kind = cursor.line().split()[:4]
                values = cursor.numbers(int(components) * int(tuples), _kind(kind), name[:40])
                if section == "dataset" and name == "SegmentInfo" and len(values):
                    info = load_json(values.astype(np.uint8).tobytes(), "SegmentInfo field")
                elif section == "cell" and name == "SegmentId":
                    segment_id = values.astype(np.int64)
        elif key == "POINTS":
            points = cursor.numbers(3 * int(words[1]), _kind(words[2]), "POINTS")
            points = points.astype(np.float64)
            points = points.reshape(-1, 3)
        elif key in ("VERTICES", "LINES", "POLYGONS", "TRIANGLE_STRIPS"):
            cells, size = int(words[1]), int(words[2])
            following = cursor.line() if data[cursor.at : cursor.at + 7] == b"OFFSETS" else ""
            if following:  # version 5 layout: OFFSETS and CONNECTIVITY arrays
                offsets = cursor.numbers(cells, _kind(following.split()[1])).astype(np.int64)
                kind = _kind(cursor.line().split()[1])
                connectivity = cursor.numbers(size, kind).astype(np.int64)
                counts = np.diff(offsets)
            else:
                counts, connectivity = _cells(cursor.numbers(size, "i4", key).astype(np.int64))
            n_cells = len(counts)
            if key in ("POLYGONS", "TRIANGLE_STRIPS"):
                triangles, owner = polygon_triangles(
                    counts, connectivity, strips=key == "TRIANGLE_STRIPS"
                )
                faces.append(triangles)
                owners.append(owner + cell_count)
                polygon_cells = np.concatenate([polygon_cells, np.arange(n_cells) + cell_count])
            cell_count += n_cells
        elif key == "CELL_DATA":
            section = "cell"
        elif key == "POINT_DATA":
            section = "point"
        elif key in ("SCALARS", "VECTORS", "NORMALS", "TEXTURE_COORDINATES", "TENSORS"):
            count = {"SCALARS": 1, "VECTORS": 3, "NORMALS": 3, "TENSORS": 9}.get(key, 0)
            if key == "SCALARS":
                count = int(words[3]) if len(words) > 3 else 1
                table = cursor.line()
                if not table.upper().startswith("LOOKUP_TABLE"):
                    raise ReadError("SCALARS without LOOKUP_TABLE", path=path)
            elif key == "TEXTURE_COORDINATES":
                count = int(words[2])
            rows = cell_count if section == "cell" else (0 if points is None else len(points))
            values = cursor.numbers(
                count * rows, _kind(words[2] if key != "TEXTURE_COORDINATES" else words[3])
            )
            if section == "cell" and key == "SCALARS" and words[1] == "SegmentId":
                segment_id = values.astype(np.int64)
        elif key == "METADATA":  # VTK's array metadata: text lines up to a blank line
            end = data.find(b"\n\n", cursor.at - 1)
            cursor.at = len(data) if end < 0 else end + 2
        elif key in ("INFORMATION", "NAME", "DATA", "LOOKUP_TABLE", "COLOR_SCALARS"):
            raise ReadError(f"unsupported legacy VTK section {key}", path=path)
        else:
            raise ReadError(f"unexpected legacy VTK keyword {words[0][:30]!r}", path=path)
    if points is None:
        raise ReadError("the file has no POINTS", path=path)
    triangles = np.concatenate(faces) if faces else np.zeros((0, 3), np.int64)
    segments: NDArray[np.int64] | None = None
    if segment_id is not None and len(segment_id) == cell_count and faces:
        segments = segment_id[np.concatenate(owners)]
    return points, triangles, segments, info, header


def _kind(name: str) -> str:
    kind = _LEGACY_TYPES.get(name.lower())
    if kind is None:
        raise ValueError(f"unsupported data type {name!r}")
    return kind


def _read_xml(piece: vtkxml.PolyData) -> _Mesh:
    """Triangles of the strips and polygons, the segment of each, and segio's table."""
    faces: list[NDArray[np.int64]] = []
    owners: list[NDArray[np.int64]] = []
    cell_count = 0
    for section in ("Verts", "Lines", "Polys", "Strips"):  # VTK's cell id order
        counts, ids = piece.section(section)
        if section in ("Polys", "Strips"):
            triangles, owner = polygon_triangles(counts, ids, strips=section == "Strips")
            faces.append(triangles)
            owners.append(owner + cell_count)
        cell_count += len(counts)
    info: dict[str, Any] = {}
    table = piece.field_data.get("SegmentInfo")
    text_bytes = b"" if not isinstance(table, np.ndarray) else table.astype(np.uint8).tobytes()
    if text_bytes:
        info = load_json(text_bytes, "SegmentInfo field")
    space = piece.text("SPACE")  # 3D Slicer's models: "LPS" or "RAS"
    if space and "space" not in info:
        info["space"] = space
    triangles = np.concatenate(faces) if faces else np.zeros((0, 3), np.int64)
    owner_array = None
    segment_ids = piece.cell_data.get("SegmentId")
    if segment_ids is not None and faces:
        ids = segment_ids.reshape(-1).astype(np.int64)
        if len(ids) == cell_count:
            owner_array = ids[np.concatenate(owners)]
    return piece.points, triangles, owner_array, info, ""
