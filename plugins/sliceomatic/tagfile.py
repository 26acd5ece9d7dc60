"""The bytes of a SliceOmatic ``.tag`` file: header parsing and formatting, geometry, presets.

Layout (TomoVision appendix D, spec ``legacy-and-meshes.md`` §2): an ASCII header of
``keyword:value`` pairs ended by a form feed (0x0C), then ``x·y·z`` raw labels, one byte
each (``type:BYTE``; ``SHORT`` is 2 bytes, read little endian), image by image, row by
row from the top, no flip, no compression, nothing after them (a few extra bytes: a warning).
Real headers differ in line ends (LF or CRLF), separators (spaces, tabs, commas), keyword
case, ``*`` comments and the optional ``uid``/``chksum``/``dim_*``/``bin`` keys; all are
accepted, and every field and comment is kept in the segmentation's provenance
(``sliceomatic.header``, JSON).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError
from segio.geometry import Geometry
from segio.terminology import Terminology

FORM_FEED = b"\x0c"
#: How far into a file the header's form feed is looked for.
MAX_HEADER = 65536
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^\s,]*)")
_BYTES_PER_VOXEL = {"BYTE": 1, "SHORT": 2}
#: A decimal number as headers write them (``20``, ``3.0``, ``1e3``); no "nan" or "inf".
_DECIMAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass
class TagHeader:
    """The header's fields (keys lower case, values as text) and where the labels start."""

    fields: dict[str, str]
    body_offset: int
    comments: list[str] = field(default_factory=list)

    def integer(self, key: str, default: int | None = None) -> int:
        text = self.fields.get(key)
        if text is None:
            if default is None:
                raise ReadError(f"the header has no {key!r} keyword")
            return default
        number = float(text) if _DECIMAL.fullmatch(text) else math.nan
        if not (math.isfinite(number) and number == round(number) and abs(number) < 2**63):
            raise ReadError(f"header value {key}:{text[:20]} is not a whole number")
        return int(number)

    def number(self, key: str, default: float) -> float:
        text = self.fields.get(key)
        if text is None or text == "":
            return default
        try:
            value = float(text)
        except ValueError:
            raise ReadError(f"header value {key}:{text} is not a number") from None
        if not np.isfinite(value):
            raise ReadError(f"header value {key}:{text} is not finite")
        return value

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x), each checked positive."""
        dims = (self.integer("z", 1), self.integer("y"), self.integer("x"))
        if any(n < 1 or n > 1 << 16 for n in dims):
            raise ReadError(f"image size x:{dims[2]} y:{dims[1]} z:{dims[0]} is not valid")
        return dims

    @property
    def bytes_per_voxel(self) -> int:
        kind = self.fields.get("type", "BYTE").upper()
        if kind not in _BYTES_PER_VOXEL:
            raise ReadError(f"type:{kind} is not BYTE or SHORT")
        return _BYTES_PER_VOXEL[kind]

    def geometry(self) -> Geometry:
        """The header's grid: ``P(i,j,k) = org + i·inc_x·dir_h + j·inc_y·dir_v + k·epais·n``.

        ``n = dir_h × dir_v``; this is what TomoVision documents and Slicer builds. Values
        are often rounded to 4 decimals, so the direction vectors are re-normalised.
        """
        row = np.array(
            [self.number(f"dir_h_{a}", d) for a, d in zip("xyz", (1, 0, 0), strict=True)]
        )
        col = np.array(
            [self.number(f"dir_v_{a}", d) for a, d in zip("xyz", (0, 1, 0), strict=True)]
        )
        lengths = np.linalg.norm(row), np.linalg.norm(col)
        if min(lengths) < 1e-6:
            raise ReadError("the header's direction vectors are zero")
        row, col = row / lengths[0], col / lengths[1]
        normal = np.cross(row, col)
        if np.linalg.norm(normal) < 1e-3:
            raise ReadError("the header's direction vectors are parallel")
        normal /= np.linalg.norm(normal)
        spacing = (self.number("inc_x", 1.0), self.number("inc_y", 1.0), self.number("epais", 1.0))
        if min(spacing) <= 0:
            raise ReadError(f"the header's spacing {spacing} is not positive")
        origin = [self.number(f"org_{a}", 0.0) for a in "xyz"]
        return Geometry.from_spacing(
            self.shape, spacing, origin, np.column_stack([row, col, normal])
        )


def parse_header(data: bytes) -> TagHeader:
    """The header of a tag file's bytes; ReadError when there is none."""
    end = data.find(FORM_FEED, 0, MAX_HEADER)
    if end < 0:
        raise ReadError("no header end (form feed) found: not a SliceOmatic tag file")
    text = data[:end].decode("latin-1")
    fields: dict[str, str] = {}
    comments: list[str] = []
    for line in text.splitlines():
        content, star, comment = line.partition("*")
        if star:
            comments.append(comment.strip())
        for match in _PAIR.finditer(content):
            fields[match.group(1).lower()] = match.group(2)
    if "x" not in fields or "y" not in fields:
        raise ReadError("the header has no x and y keywords: not a SliceOmatic tag file")
    return TagHeader(fields, end + 1, comments)


def decode(data: bytes, name: str = "the file") -> tuple[TagHeader, NDArray[np.integer]]:
    """Header and ``(z, y, x)`` labels (uint8, or uint16 for SHORT) of a tag file's bytes.

    Real files hold exactly ``x·y·z·bytes`` after the form feed (both samples). Fewer means
    a cut file (ReadError). A few more (less than one image) are accepted with a warning,
    as the spec says (a tool that pads or appends a footer): the first ``x·y·z`` labels are
    read. A whole image more means the header is wrong (a missing ``z``): ReadError.
    """
    header = parse_header(data)
    shape = header.shape
    size = header.bytes_per_voxel
    count = shape[0] * shape[1] * shape[2]
    body = memoryview(data)[header.body_offset :]
    if len(body) < count * size:
        raise ReadError(
            f"the file is truncated: {len(body)} label bytes, the header says "
            f"{shape[2]}x{shape[1]}x{shape[0]}x{size} = {count * size}"
        )
    extra = len(body) - count * size
    if extra >= shape[1] * shape[2] * size:
        # A whole image or more: the header's size is wrong (a missing z, a wrong type),
        # and reading only what it says would silently drop images.
        raise ReadError(
            f"the file is longer than its header says: {len(body)} label bytes, the header "
            f"says {shape[2]}x{shape[1]}x{shape[0]}x{size} = {count * size}",
            hint="check the header's x, y, z and type",
        )
    if extra > 0:
        warnings.warn(
            f"{name}: {len(body) - count * size} byte(s) after the {count * size} label bytes "
            "the header describes; ignored",
            stacklevel=3,
        )
    dtype = np.dtype(np.uint8) if size == 1 else np.dtype("<u2")
    labels = np.frombuffer(body[: count * size], dtype=dtype).reshape(shape)
    return header, labels.astype(dtype.newbyteorder("="), copy=True)


def number_text(value: float) -> str:
    """``%.4f`` as SliceOmatic writes, unless that loses precision: then the exact decimal.

    Geometry from DICOM (0.705078125 mm pixels, oblique cosines) must survive a round trip;
    every reader of the format parses the value with ``atof``/``float``.
    """
    fixed = f"{value:.4f}"
    if float(fixed) == value:
        return fixed
    return np.format_float_positional(value, trim="-")


def format_header(
    geometry: Geometry,
    shape: tuple[int, int, int],
    *,
    chksum: int | None = None,
    line_end: str = "\n",
) -> bytes:
    """A header in the key order of real files (``test01.dcm.tag``), ended by a form feed.

    ``geometry``'s first slice gives ``org_*``; ``epais`` is its k spacing. No ``uid`` (its
    meaning is unknown; real files exist without it), no ``dim_*``/``bin``/comments (the
    Slicer importer rejects them).
    """
    direction, spacing = geometry.direction, geometry.spacing
    origin = geometry.origin
    n = number_text
    lines = [
        f"x:{shape[2]}    y:{shape[1]}    z:{shape[0]}      type:BYTE ",
        f"org_x:{n(origin[0])}  org_y:{n(origin[1])}  org_z:{n(origin[2])}  ",
        f"inc_x:{n(spacing[0])}     inc_y:{n(spacing[1])}     epais:{n(spacing[2])}     ",
        "     ".join(f"dir_h_{a}:{n(direction[i, 0])}" for i, a in enumerate("xyz")) + "     ",
        "     ".join(f"dir_v_{a}:{n(direction[i, 1])}" for i, a in enumerate("xyz")) + "     ",
    ]
    if chksum is not None:
        lines.append(f"chksum:{chksum & 0xFFFFFFFF:08X} ")
    return (line_end.join(lines) + line_end).encode("ascii") + FORM_FEED


def image_chksum(image: Path) -> int | None:
    """Sum of the image's stored pixel values mod 2³² (the header's ``chksum``), or None.

    Verified on one real pair (``test01.dcm``): raw values before rescale, read as the
    unsigned 16-bit words they are stored in. None when the pixels cannot be decoded.
    """
    from segio.dicom.series import check_pixel_data, read_dataset
    from segio.errors import SegioError

    try:
        ds = read_dataset(image, convert=())
        check_pixel_data(ds, image)  # a frame larger than declared is never decoded
    except SegioError:  # unreadable or lying: the header simply has no chksum to check
        return None
    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception:  # no pixel data or no decoder: the header simply has no chksum
        return None
    bits = int(ds.get("BitsAllocated", 16))
    unsigned = pixels.astype(np.int64) % (1 << bits)
    return int(unsigned.sum()) & 0xFFFFFFFF


# -- label presets ------------------------------------------------------------------------------

#: label value -> (name, RGB colour, terminology). The Alberta body-composition protocol
#: (rbrecheisen/barbell2 ``get_alberta_color_map``: 1 red, 2 green, 5 yellow, 7 cyan). No
#: SNOMED CT code in segio's catalogue or the spec is certain for these tissues, so the
#: entries carry names and colours only.
PRESETS: dict[str, dict[int, tuple[str, tuple[float, float, float], Terminology | None]]] = {
    "alberta": {
        1: ("Muscle", (1.0, 0.0, 0.0), None),
        2: ("IMAT", (0.0, 1.0, 0.0), None),
        5: ("VAT", (1.0, 1.0, 0.0), None),
        7: ("SAT", (0.0, 1.0, 1.0), None),
    }
}
