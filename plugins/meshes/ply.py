"""Stanford PLY, binary little-endian, every segment in one file.

Coordinates: LPS millimetres by default, RAS with ``coordinate_system=ras``; recorded in a
header comment (``comment 3D Slicer output. SPACE=LPS``) that the reader honours.

Layout (chosen because one file keeps the scene together and any viewer shows colours):
vertices ``float x, y, z`` plus ``uchar red, green, blue`` (the segment colour, so MeshLab
and CloudCompare show segments apart); faces ``list uchar int vertex_indices`` plus
``int segment`` (0-based segment index). One ``comment segio segment {json}`` line per
segment keeps name, exact colour, opacity, id and terminology. The reader also takes
ASCII and big-endian files and polygons (fan-triangulated); without a ``segment`` face
property the file is one segment, coloured by its first vertex colour when it has one.
"""

from __future__ import annotations

import json
import struct
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError, WriteError, reading
from segio.fileio.limits import check_payload
from segio.fileio.outputs import OutputFiles
from segio.model import Segmentation
from segio.surfaces import compacted

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
    rgb8,
    space_in,
    to_segmentation,
    whole_numbers,
)

MARK = "segio segment "
#: Faces are written as ``list uchar int``: the largest vertex index a reader accepts.
MAX_INDEX = int(np.iinfo(np.int32).max)
_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    coordinate_system: str = "lps",
) -> None:
    """One binary little-endian PLY with a per-face ``segment`` index."""
    space = choice(coordinate_system, "coordinate_system", SPACES)
    parts = parts_of(segmentation, space)
    header = [
        "ply",
        "format binary_little_endian 1.0",
        f"comment 3D Slicer output. SPACE={space.upper()} (written by segio)",
    ]
    for n, part in enumerate(parts):
        header.append("comment " + MARK + json.dumps({"index": n, **part_metadata(part)}))
    n_vertices = sum(len(p.surface.vertices) for p in parts)
    n_faces = sum(len(p.surface.faces) for p in parts)
    if n_vertices - 1 > MAX_INDEX:  # checked before the tables are allocated
        raise WriteError(
            f"{n_vertices} vertices are too many for the int32 indices of a PLY face",
            path=path,
            hint="write fewer segments per file, or decimate the surfaces",
        )
    header += [
        f"element vertex {n_vertices}",
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        f"element face {n_faces}",
        "property list uchar int vertex_indices",
        "property int segment",
        "end_header",
    ]
    vertex = np.zeros(n_vertices, dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    face = np.zeros(n_faces, dtype=[("n", "u1"), ("v", "<i4", 3), ("segment", "<i4")])
    face["n"] = 3
    v0 = f0 = 0
    for n, part in enumerate(parts):
        v, f = part.surface.vertices, part.surface.faces
        vertex["xyz"][v0 : v0 + len(v)] = v
        vertex["rgb"][v0 : v0 + len(v)] = rgb8(part.color or (1.0, 1.0, 1.0))
        face["v"][f0 : f0 + len(f)] = f + v0
        face["segment"][f0 : f0 + len(f)] = n
        v0, f0 = v0 + len(v), f0 + len(f)
    payload = ("\n".join(header) + "\n").encode("ascii") + vertex.tobytes() + face.tobytes()
    files.stage(path).write_bytes(payload)


class _Element:
    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self.count = count
        #: (name, dtype) or (name, (count dtype, item dtype)) for lists.
        self.properties: list[tuple[str, Any]] = []


def read(path: Path, *, reference: Any = None) -> Segmentation:
    """Segments from the ``segment`` face property, named by the ``comment segio`` lines."""
    with reading(path, "PLY"):
        data = read_file(path)
        parts, space = _parse(data, path)
        return to_segmentation(parts, path, space=space, reference=reference)


def _header(data: bytes, path: Path) -> tuple[str, list[_Element], list[str], int]:
    if not data.startswith(b"ply"):
        raise ReadError("no 'ply' signature", path=path)
    end = data.find(b"end_header")
    if end < 0:
        raise ReadError("the header has no end_header (truncated?)", path=path)
    body = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii").splitlines()
    encoding = ""
    elements: list[_Element] = []
    comments: list[str] = []
    for line in lines[1:]:
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            encoding = words[1]
        elif words[0] == "comment":
            comments.append(line.partition("comment")[2].strip())
        elif words[0] == "element":
            count = int(words[2])
            if count < 0:
                raise ReadError(f"element {words[1]} has {count} rows", path=path)
            elements.append(_Element(words[1], count))
        elif words[0] == "property" and elements:
            if words[1] == "list":
                elements[-1].properties.append((words[4], (_TYPES[words[2]], _TYPES[words[3]])))
            else:
                elements[-1].properties.append((words[2], _TYPES[words[1]]))
    if encoding not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise ReadError(f"unknown PLY format {encoding!r}", path=path)
    return encoding, elements, comments, body


def _parse(data: bytes, path: Path) -> tuple[list[Part], str]:
    encoding, elements, comments, body = _header(data, path)
    tables = (
        _ascii_tables(data[body:], elements, path)
        if encoding == "ascii"
        else _binary_tables(
            memoryview(data)[body:], elements, "<" if "little" in encoding else ">", path
        )
    )
    vertex, face = tables.get("vertex"), tables.get("face")
    if vertex is None or face is None:
        raise ReadError("the file has no vertex or no face element", path=path)
    points = np.stack([np.asarray(vertex[k], np.float64) for k in ("x", "y", "z")], axis=1)
    polygons = face.get("vertex_indices", face.get("vertex_index"))
    if polygons is None:
        raise ReadError("the face element has no vertex_indices list", path=path)
    triangles, owner = _triangulate(polygons)
    labels = np.asarray(face["segment"], np.int64)[owner] if "segment" in face else None
    metas = [
        load_json(c[len(MARK) :], "segio segment comment") for c in comments if c.startswith(MARK)
    ]
    space = space_in(" ".join(comments).encode())
    if labels is None or not metas:
        color = None
        if "red" in vertex and len(points):
            color = tuple(float(vertex[c][0]) / 255 for c in ("red", "green", "blue"))
        metas = [{"index": 0, "color": color}]
        labels = np.zeros(len(triangles), np.int64)
    parts = []
    for meta in metas:
        mine = triangles[labels == int(meta["index"])]
        if mine.size and (mine.min() < 0 or mine.max() >= len(points)):
            raise ReadError(f"a face refers to a vertex outside 0..{len(points) - 1}", path=path)
        surface = checked_surface(*compacted(points, mine), path, "PLY")
        parts.append(part_from_metadata(meta, surface))
    return parts, space


@dataclass(frozen=True)
class _Lists:
    """A list property of every row: the item counts, and all items concatenated."""

    counts: NDArray[np.int64]
    values: NDArray[Any]


def _triangulate(polygons: _Lists | NDArray[Any]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Triangles and the polygon each came from (fans for polygons of more than 3)."""
    if isinstance(polygons, np.ndarray):  # all triangles, read in one go
        return polygons.astype(np.int64), np.arange(len(polygons))
    return polygon_triangles(polygons.counts, polygons.values.astype(np.int64))


def _binary_tables(
    data: memoryview, elements: list[_Element], order: str, path: Path
) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    offset = 0
    for element in elements:
        lists = [p for p in element.properties if isinstance(p[1], tuple)]
        # The count is a claim: each row takes at least its scalars and its list sizes,
        # so a count the rest of the file cannot hold is refused before anything is read.
        smallest = sum(
            np.dtype(k[0] if isinstance(k, tuple) else k).itemsize for _, k in element.properties
        )
        check_payload(
            smallest * element.count,
            len(data) - offset,
            f"the {element.name} element ({element.count} rows)",
            path=path,
        )
        if not lists:
            dtype = np.dtype([(name, order + kind) for name, kind in element.properties])
            table = np.frombuffer(data, dtype, element.count, offset)
            offset += dtype.itemsize * element.count
            tables[element.name] = {name: table[name] for name in dtype.names or ()}
            continue
        found = _triangle_table(data, element, order, offset)
        if found is None:
            found = _rows(data, element, order, offset, path)
        tables[element.name], offset = found
    return tables


def _rows(
    data: memoryview, element: _Element, order: str, offset: int, path: Path
) -> tuple[dict[str, Any], int]:
    """An element whose rows differ in size (polygons of mixed sizes).

    Where a row ends depends on its list counts, so one pass over the rows records where
    each property starts (plain integers in compact arrays, a few operations a row); numpy
    then gathers every property at once. Per-row numpy arrays would take about a hundred
    bytes of memory and a microsecond for each row of a few bytes.
    """
    plan: list[tuple[str, struct.Struct | None, int]] = []
    for name, kind in element.properties:
        if isinstance(kind, tuple):
            reader = struct.Struct(order + np.dtype(kind[0]).char)
            plan.append((name, reader, np.dtype(kind[1]).itemsize))
        else:
            plan.append((name, None, np.dtype(kind).itemsize))
    starts = {name: array("q") for name, _, _ in plan}
    counts = {name: array("q") for name, counter, _ in plan if counter is not None}
    at, end = offset, len(data)
    for _ in range(element.count):
        for name, counter, size in plan:
            starts[name].append(at)
            if counter is None:
                at += size
                continue
            if at + counter.size > end:
                raise ReadError(f"the {element.name} element is cut short (truncated?)", path=path)
            count = counter.unpack_from(data, at)[0]
            if count < 0:
                raise ReadError(f"a {name} list has {count} items", path=path)
            counts[name].append(count)
            at += counter.size + count * size
        if at > end:
            raise ReadError(f"the {element.name} element is cut short (truncated?)", path=path)
    buffer = np.frombuffer(data, np.uint8)
    columns: dict[str, Any] = {}
    for name, kind in element.properties:
        first = np.frombuffer(starts[name], np.int64)
        if not isinstance(kind, tuple):
            columns[name] = _gather(buffer, first, np.dtype(order + kind))
            continue
        sizes = np.frombuffer(counts[name], np.int64)
        item = np.dtype(order + kind[1])
        within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        items = np.repeat(first + np.dtype(kind[0]).itemsize, sizes) + within * item.itemsize
        columns[name] = _Lists(sizes, _gather(buffer, items, item))
    return columns, at


def _gather(buffer: NDArray[np.uint8], starts: NDArray[np.int64], dtype: np.dtype[Any]) -> Any:
    """Values of ``dtype`` at byte offsets ``starts`` of ``buffer`` (unaligned is fine)."""
    picked = buffer[starts[:, np.newaxis] + np.arange(dtype.itemsize)]
    return picked.reshape(-1).view(dtype)


def _triangle_table(
    data: memoryview, element: _Element, order: str, offset: int
) -> tuple[dict[str, Any], int] | None:
    """The element read in one go when every list holds three items (meshes of triangles)."""
    fields = []
    for name, kind in element.properties:
        if isinstance(kind, tuple):
            fields += [(f"{name}#n", order + kind[0]), (name, order + kind[1], 3)]
        else:
            fields.append((name, order + kind))
    dtype = np.dtype(fields)
    end = offset + dtype.itemsize * element.count
    if end > len(data):
        return None
    table = np.frombuffer(data, dtype, element.count, offset)
    counts = [f for f in dtype.names or () if f.endswith("#n")]
    if not all(np.all(table[c] == 3) for c in counts):
        return None
    return {n: table[n] for n in dtype.names or () if not n.endswith("#n")}, end


def _ascii_tables(data: bytes, elements: list[_Element], path: Path) -> dict[str, dict[str, Any]]:
    lines = data.decode("ascii").splitlines()
    tables: dict[str, dict[str, Any]] = {}
    row = 0
    for element in elements:
        if row + element.count > len(lines):
            raise ReadError(f"the {element.name} element is cut short (truncated?)", path=path)
        tokens: dict[str, list[str]] = {name: [] for name, _ in element.properties}
        sizes: dict[str, list[int]] = {name: [] for name, _ in element.properties}
        for line in lines[row : row + element.count]:
            values = line.split()
            at = 0
            for name, kind in element.properties:
                if isinstance(kind, tuple):
                    count = int(values[at])
                    items = values[at + 1 : at + 1 + count]
                    if count < 0 or len(items) != count:
                        raise ReadError(
                            f"a {name} list says {count} items but holds {len(items)}", path=path
                        )
                    tokens[name] += items
                    sizes[name].append(count)
                    at += 1 + count
                else:
                    tokens[name].append(values[at])
                    at += 1
        row += element.count
        tables[element.name] = {
            name: (
                _Lists(np.array(sizes[name], np.int64), _items(tokens[name], kind[1], name))
                if isinstance(kind, tuple)
                else np.array(tokens[name], dtype=np.float64)
            )
            for name, kind in element.properties
        }
    return tables


def _items(tokens: list[str], kind: str, name: str) -> NDArray[Any]:
    """ASCII list items: whole numbers for integer types (vertex indices), else floats."""
    if np.dtype(kind).kind in "iu":
        return whole_numbers(tokens, f"a {name} value")
    return np.array(tokens, dtype=np.float64)
