"""Read a SEG's per-frame functional groups without building a pydicom Dataset per item.

A SEG with a thousand frames has tens of thousands of elements in its Per-frame
Functional Groups Sequence; pydicom turns each into Python objects and spends most of the
read there (0.45 s of a 0.9 s read of a 24-segment CT SEG). This module walks that one
sequence with ``struct`` and returns plain dicts (keyword -> value), which is all the
reader needs, and lets pydicom parse the rest of the header, which is small.

It handles the common encoding only: explicit VR little endian with native (not
encapsulated) pixel data. Anything else returns None and the caller uses pydicom for the
whole file, so this is a pure speed path, never a second source of truth. The walker is
shared with the RTSTRUCT reader: :mod:`segio.dicomfast`.
"""

from __future__ import annotations

import io
import mmap
import struct
from pathlib import Path
from typing import Any

from segio.dicomfast import UNDEFINED, Header, MalformedError, sequence

_PER_FRAME = b"\x00\x52\x30\x92SQ\x00\x00"  # (5200,9230) SQ, explicit VR little endian
_PIXEL_DATA = b"\xe0\x7f\x10\x00"  # (7FE0,0010)


def read(path: Path) -> tuple[Any, list[Header]] | None:
    """(dataset without the per-frame groups but with Pixel Data, groups) or None."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except Exception:
        return None
    if meta.get("TransferSyntaxUID") != ExplicitVRLittleEndian:
        return None
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        start = mm.find(_PER_FRAME)
        if start < 0:
            return None
        try:
            groups, end = sequence(mm, start + 12, struct.unpack_from("<I", mm, start + 8)[0])
        except (MalformedError, struct.error, IndexError, ValueError):
            return None
        pixel = mm.find(_PIXEL_DATA, end)
        if pixel < 0 or mm[pixel + 4 : pixel + 6] not in (b"OB", b"OW"):
            return None
        (length,) = struct.unpack_from("<I", mm, pixel + 8)
        if length == UNDEFINED or pixel + 12 + length > len(mm):
            return None
        header = mm[:start] + mm[end:pixel]
        pixels = mm[pixel + 12 : pixel + 12 + length]
    dataset = pydicom.dcmread(io.BytesIO(header), stop_before_pixels=True)
    dataset.PixelData = pixels
    return dataset, groups
