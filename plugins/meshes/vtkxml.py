"""VTK XML PolyData (``.vtp``), read and written in numpy: no VTK needed.

VTK's own readers crash the process on some truncated or corrupt files, so segio parses
the format itself. One parser serves the ``.vtp`` files segio writes (:mod:`.vtkpoly`),
those VTK and 3D Slicer write, and the pieces of a Slicer ``.seg.vtm`` (:mod:`.segvtm`).

Reading takes every layout VTK writes: ``ascii``, inline ``binary`` (base64) and
``appended`` data (raw or base64), zlib-compressed or not, UInt32 or UInt64 headers, both
byte orders; numeric ``DataArray`` s and ``String`` ``Array`` s (the field data where
Slicer keeps a segment's name and colour). The four cell sections (vertices, lines, strips,
polygons) are kept as vertex counts and ids.

Untrusted files: zlib blocks inflate to exactly the sizes their header declares and no
further, declared counts are compared with the bytes that follow before anything is
allocated, and XML with a document type declaration (entity expansion) is refused.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError
from segio.fileio.deflate import inflate
from segio.fileio.limits import check_payload

from .common import xml_root

XML_TYPES = {
    "Int8": "i1", "UInt8": "u1", "Int16": "i2", "UInt16": "u2", "Int32": "i4", "UInt32": "u4",
    "Int64": "i8", "UInt64": "u8", "Float32": "f4", "Float64": "f8",
}  # fmt: skip
#: The cell sections of a PolyData piece, in file order.
SECTIONS = ("Verts", "Lines", "Strips", "Polys")
#: vtkZLibDataCompressor's block size (VTK's default).
BLOCK = 1 << 15

Cells = tuple[NDArray[np.int64], NDArray[np.int64]]


@dataclass
class PolyData:
    """One PolyData piece: points, cells per section, and the named data arrays.

    ``cells`` maps each section present (``Verts``, ``Lines``, ``Strips``, ``Polys``) to
    the vertex count of every cell and their concatenated point ids. Numeric arrays are
    ``(tuples, components)``; ``String`` arrays are lists of text.
    """

    points: NDArray[np.float64]
    cells: dict[str, Cells] = field(default_factory=dict)
    field_data: dict[str, NDArray[Any] | list[str]] = field(default_factory=dict)
    point_data: dict[str, NDArray[Any]] = field(default_factory=dict)
    cell_data: dict[str, NDArray[Any]] = field(default_factory=dict)

    def section(self, name: str) -> Cells:
        """Counts and ids of a section (both empty when the file has none)."""
        return self.cells.get(name, (np.zeros(0, np.int64), np.zeros(0, np.int64)))

    @property
    def cell_count(self) -> int:
        return sum(len(counts) for counts, _ in self.cells.values())

    def text(self, name: str) -> str | None:
        """The first value of a ``String`` field array (Slicer's metadata), or None."""
        values = self.field_data.get(name)
        if isinstance(values, list) and values:
            return values[0]
        return None


# -- reading --------------------------------------------------------------------------------


def parse(data: bytes, path: Path | None) -> PolyData:
    """The PolyData piece of a ``.vtp`` file's bytes (ReadError for anything else)."""
    marker = data.find(b"<AppendedData")
    appended = b""
    text = data
    if marker >= 0:  # raw appended bytes are not XML: cut them out before parsing
        start = data.index(b"_", marker) + 1
        end = data.rfind(b"</AppendedData>")
        if end < start:
            raise ReadError("the appended data section is not closed (truncated?)", path=path)
        appended = data[start:end]
        text = data[:start] + data[end:]
    root = xml_root(text, "VTK XML file")
    if root.tag != "VTKFile" or root.get("type") != "PolyData":
        kind = root.get("type") if root.tag == "VTKFile" else root.tag
        raise ReadError(f"a VTK XML file of type {str(kind)[:40]!r}, not PolyData", path=path)
    decoder = _Decoder(root, appended, path)
    piece = root.find("PolyData/Piece")
    if piece is None:
        raise ReadError("no PolyData Piece", path=path)
    points_element = piece.find("Points/DataArray")
    points = (
        np.zeros((0, 3))
        if points_element is None and piece.get("NumberOfPoints", "0").strip() == "0"
        else decoder.numbers(points_element).astype(np.float64).reshape(-1, 3)
    )
    result = PolyData(points)
    for section in SECTIONS:
        element = piece.find(section)
        if element is None:
            continue
        ids = decoder.numbers(element.find("DataArray[@Name='connectivity']")).astype(np.int64)
        offsets = decoder.numbers(element.find("DataArray[@Name='offsets']")).astype(np.int64)
        counts = np.diff(np.concatenate([[0], offsets]))
        if np.any(counts < 0) or int(counts.sum()) != len(ids):
            raise ReadError(f"the {section} offsets and connectivity disagree", path=path)
        if ids.size and (ids.min() < 0 or ids.max() >= len(points)):
            raise ReadError(f"a cell refers to a point outside 0..{len(points) - 1}", path=path)
        result.cells[section] = (counts, ids)
    for where, target in (("PointData", result.point_data), ("CellData", result.cell_data)):
        for element in piece.findall(f"{where}/DataArray"):
            target[element.get("Name", "")] = decoder.table(element)
    for element in root.findall("PolyData/FieldData/*"):
        name = element.get("Name", "")
        if element.tag == "Array" and element.get("type") == "String":
            result.field_data[name] = decoder.strings(element)
        elif element.tag == "DataArray":
            result.field_data[name] = decoder.table(element)
    return result


class _Decoder:
    """Decodes the data arrays of one VTK XML document."""

    def __init__(self, root: ElementTree.Element, appended: bytes, path: Path | None) -> None:
        self.path = path
        self.appended = appended
        self.order = "<" if root.get("byte_order", "LittleEndian") == "LittleEndian" else ">"
        header = root.get("header_type", "UInt32")
        if header not in ("UInt32", "UInt64"):
            raise ReadError(f"unknown header_type {header[:20]!r}", path=path)
        self.header = self.order + XML_TYPES[header]
        compressor = root.get("compressor")
        if compressor not in (None, "", "vtkZLibDataCompressor"):
            raise ReadError(f"unsupported compressor {compressor[:40]!r}", path=path)
        self.compressed = compressor == "vtkZLibDataCompressor"
        section = root.find("AppendedData")
        self.encoded = section is not None and section.get("encoding", "raw") != "raw"

    def payload(self, element: ElementTree.Element) -> bytes:
        """The raw bytes of a binary or appended array."""
        form = element.get("format", "ascii")
        if form == "binary":
            return _inline((element.text or "").strip(), self.header, self.compressed)
        if form != "appended":
            raise ReadError(f"unknown data array format {form[:20]!r}", path=self.path)
        start = _offset(element, len(self.appended))
        if self.encoded:
            return _inline(self.appended[start:].decode("ascii"), self.header, self.compressed)
        return _raw(self.appended[start:], self.header, self.compressed)

    def numbers(self, element: ElementTree.Element | None) -> NDArray[Any]:
        """A numeric array, flat."""
        if element is None:
            raise ReadError("a required data array is missing", path=self.path)
        name = element.get("type", "")
        if name not in XML_TYPES:
            raise ReadError(f"unsupported data array type {name[:20]!r}", path=self.path)
        kind = self.order + XML_TYPES[name]
        if element.get("format", "ascii") == "ascii":
            return np.array((element.text or "").split(), dtype="S").astype(kind)
        return np.frombuffer(self.payload(element), kind)

    def table(self, element: ElementTree.Element) -> NDArray[Any]:
        """A numeric array as ``(tuples, components)``."""
        values = self.numbers(element)
        components = element.get("NumberOfComponents", "1").strip()
        width = int(components) if components.isdigit() and int(components) > 0 else 1
        if len(values) % width:
            raise ReadError(
                f"array {element.get('Name', '')[:40]!r} has {len(values)} values, "
                f"not a multiple of its {width} components",
                path=self.path,
            )
        return values.reshape(-1, width)

    def strings(self, element: ElementTree.Element) -> list[str]:
        """A ``String`` array: NUL-terminated UTF-8 values (ASCII: their byte values)."""
        if element.get("format", "ascii") == "ascii":
            raw = np.array((element.text or "").split(), dtype="S").astype(np.int64)
            if raw.size and (raw.min() < 0 or raw.max() > 255):
                raise ReadError("a string array holds values that are not bytes", path=self.path)
            blob = raw.astype(np.uint8).tobytes()
        else:
            blob = self.payload(element)
        values = blob.split(b"\0")
        if values and not values[-1]:
            values.pop()
        count = element.get("NumberOfTuples", "").strip()
        if count.isdigit():
            values = values[: int(count)]
        return [value.decode("utf-8", "replace") for value in values]


def _offset(element: ElementTree.Element, size: int) -> int:
    """An appended array's ``offset``: a whole number inside the appended data."""
    text = element.get("offset", "0").strip()
    if not text.isdigit() or int(text) >= max(size, 1):
        raise ValueError(f"an appended data offset {text[:20]!r} is not inside the data")
    return int(text)


def _raw(blob: bytes, header: str, compressed: bool) -> bytes:
    """One appended raw data array: a length header, or a zlib block table and blocks."""
    size = np.dtype(header).itemsize
    if not compressed:
        length = int(np.frombuffer(blob, header, 1)[0])
        data = blob[size : size + length]
        if len(data) != length:
            raise ValueError(f"a data array declares {length} bytes but holds {len(data)}")
        return data
    table = _block_table(blob, header)
    return _inflate(blob[len(table) * size :], table)


def _chars(n_bytes: int) -> int:
    """Base64 characters of ``n_bytes`` bytes."""
    return -(-n_bytes // 3) * 4


def _inline(text: str, header: str, compressed: bool) -> bytes:
    """One inline base64 data array: the header and the data are separate base64 runs."""
    size = np.dtype(header).itemsize
    if not compressed:
        head = base64.b64decode(text[: _chars(size)], validate=True)
        length = int(np.frombuffer(head, header, 1)[0])
        if text[_chars(size) - 1] != "=":  # one run: header and data encoded together
            data = base64.b64decode(text[: _chars(size + length)], validate=True)[size:]
        else:
            start = _chars(size)
            data = base64.b64decode(text[start : start + _chars(length)], validate=True)
        if len(data) != length:
            raise ValueError(f"a data array declares {length} bytes but holds {len(data)}")
        return data
    first = base64.b64decode(text[: _chars(3 * size)], validate=True)
    blocks = _block_count(first, header, len(text) * 3 // 4)
    end = _chars((3 + blocks) * size)
    table = _block_table(base64.b64decode(text[:end], validate=True), header)
    body = text[end : end + _chars(int(table[3:].sum()))]
    return _inflate(base64.b64decode(body, validate=True), table)


def _block_count(blob: bytes, header: str, available: int) -> int:
    """The block count of a vtkZLibDataCompressor header, at most what ``available``
    bytes can hold a table for (so a lying count is refused before it sizes a read)."""
    count = int(np.frombuffer(blob, header, 1)[0])
    if count > available // np.dtype(header).itemsize:
        raise ValueError(f"a compressed data array declares {count} blocks")
    return count


def _block_table(blob: bytes, header: str) -> NDArray[np.int64]:
    """``[blocks, block size, last block size, compressed size of each block...]``."""
    blocks = _block_count(blob, header, len(blob))
    table = np.frombuffer(blob, header, 3 + blocks).astype(np.int64)
    if np.any(table < 0):
        raise ValueError("a compressed data array header holds negative sizes")
    return table


def _inflate(blob: bytes, table: NDArray[np.int64]) -> bytes:
    """The blocks of a vtkZLibDataCompressor array, each inflated to exactly the size the
    header declares (the last one may be shorter): a block that would inflate to more is
    refused as it is inflated (:func:`segio.fileio.deflate.inflate`), and the total is checked
    against the compressed bytes and the memory limit before the first block."""
    blocks, block, last = (int(v) for v in table[:3])
    sizes = table[3:]
    declared = [block] * blocks
    if blocks and last:
        declared[-1] = last
    check_payload(sum(declared), len(blob), "a compressed data array", compressed=True)
    out, start = [], 0
    for length, size in zip(sizes.tolist(), declared, strict=True):
        out.append(inflate(blob[start : start + length], size, what="a zlib block of a data array"))
        start += length
    return b"".join(out)


# -- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """How arrays are written: ``ascii``, or inline ``binary`` (base64), zlib-compressed
    (VTK's ``vtkZLibDataCompressor``, 32 KiB blocks) or not; ``header`` UInt32 or UInt64."""

    ascii: bool = False
    compress: bool = False
    header: str = "UInt64"

    def attributes(self) -> str:
        """The ``VTKFile`` attributes this encoding needs."""
        text = f'byte_order="LittleEndian" header_type="{self.header}"'
        if self.compress and not self.ascii:
            text += ' compressor="vtkZLibDataCompressor"'
        return text

    def _binary(self, raw: bytes) -> str:
        size = "<" + XML_TYPES[self.header]
        if not self.compress:
            # As VTK does: the length header and the data are two separate base64 runs.
            head = np.array([len(raw)], size).tobytes()
            return (base64.b64encode(head) + base64.b64encode(raw)).decode()
        chunks = [raw[n : n + BLOCK] for n in range(0, len(raw), BLOCK)]
        streams = [zlib.compress(chunk) for chunk in chunks]
        last = len(chunks[-1]) if chunks and len(chunks[-1]) != BLOCK else 0
        table = [len(chunks), BLOCK, last, *(len(s) for s in streams)]
        head = np.array(table, size).tobytes()
        return (base64.b64encode(head) + base64.b64encode(b"".join(streams))).decode()

    def numbers(self, name: str, kind: str, values: NDArray[Any], components: int = 1) -> str:
        """A ``DataArray`` element (``values`` flattened, C order)."""
        flat = np.ascontiguousarray(values).astype("<" + XML_TYPES[kind]).ravel()
        tuples = len(flat) // max(components, 1)
        head = (
            f'<DataArray type="{kind}" Name="{_attribute(name)}" '
            f'NumberOfComponents="{components}" NumberOfTuples="{tuples}"'
        )
        if self.ascii:
            body = " ".join(repr(v) if kind.startswith("Float") else str(v) for v in flat.tolist())
            return f'{head} format="ascii">{body}</DataArray>'
        return f'{head} format="binary">{self._binary(flat.tobytes())}</DataArray>'

    def strings(self, name: str, values: list[str]) -> str:
        """A ``String`` ``Array`` element: each value UTF-8 and NUL-terminated."""
        raw = b"".join(value.encode("utf-8") + b"\0" for value in values)
        head = f'<Array type="String" Name="{_attribute(name)}" NumberOfTuples="{len(values)}"'
        if self.ascii:
            body = " ".join(str(b) for b in raw)
            return f'{head} format="ascii">{body}</Array>'
        return f'{head} format="binary">{self._binary(raw)}</Array>'


def _attribute(text: str) -> str:
    """``text`` escaped for a double-quoted XML attribute."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def document(
    encoding: Encoding,
    points: NDArray[np.float64],
    cells: Mapping[str, Sequence[NDArray[np.int64]] | NDArray[np.int64]],
    *,
    field_data: Sequence[str] = (),
    point_data: Sequence[str] = (),
    cell_data: Sequence[str] = (),
    scalars: str | None = None,
    normals: str | None = None,
) -> bytes:
    """A PolyData ``.vtp`` file, laid out as VTK writes one (all four cell sections, the
    version VTK gives the header type): ``cells`` maps sections to triangles ``(M, 3)`` or
    to a list of point-id arrays (one per cell); the data arguments are encoded elements."""
    counts = {name: _cell_arrays(cells.get(name, [])) for name in SECTIONS}
    version = "1.0" if encoding.header == "UInt64" else "0.1"
    text = [
        '<?xml version="1.0"?>',
        f'<VTKFile type="PolyData" version="{version}" {encoding.attributes()}>',
        "<PolyData>",
    ]
    if field_data:
        text += ["<FieldData>", *field_data, "</FieldData>"]
    sizes = " ".join(f'NumberOf{name}="{len(counts[name][1])}"' for name in SECTIONS)
    text.append(f'<Piece NumberOfPoints="{len(points)}" {sizes}>')
    text.append(f"<PointData{_named('Normals', normals)}>" + "".join(point_data) + "</PointData>")
    text.append(f"<CellData{_named('Scalars', scalars)}>" + "".join(cell_data) + "</CellData>")
    text.append("<Points>" + encoding.numbers("Points", "Float64", points, 3) + "</Points>")
    for name in SECTIONS:
        ids, offsets = counts[name]
        text += [
            f"<{name}>",
            encoding.numbers("connectivity", "Int64", ids),
            encoding.numbers("offsets", "Int64", offsets),
            f"</{name}>",
        ]
    text.append("</Piece></PolyData></VTKFile>")
    return "\n".join(text).encode("utf-8")  # ends at </VTKFile>: a cut file is not XML


def _named(attribute: str, value: str | None) -> str:
    return "" if value is None else f' {attribute}="{_attribute(value)}"'


def _cell_arrays(
    cells: Sequence[NDArray[np.int64]] | NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Connectivity and offsets (end of each cell) of triangles or of a list of cells."""
    if isinstance(cells, np.ndarray):
        width = cells.shape[1] if cells.ndim == 2 else 1
        return cells.reshape(-1).astype(np.int64), np.arange(1, len(cells) + 1) * width
    sizes = np.array([len(c) for c in cells], dtype=np.int64)
    ids = np.concatenate([np.zeros(0, np.int64), *cells]).astype(np.int64)
    return ids, np.cumsum(sizes)
