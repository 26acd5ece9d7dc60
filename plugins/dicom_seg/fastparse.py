"""Read a SEG's per-frame functional groups without building a pydicom Dataset per item.

A SEG with a thousand frames has tens of thousands of elements in its Per-frame
Functional Groups Sequence; pydicom turns each into Python objects and spends most of the
read there (0.45 s of a 0.9 s read of a 24-segment CT SEG). This module walks that one
sequence with ``struct`` and returns plain dicts (keyword -> value), which is all the
reader needs, and lets pydicom parse the rest of the header, which is small.

It handles the common encoding only: explicit VR little endian with native (not
encapsulated) pixel data. Anything else returns None and the caller uses pydicom for the
whole file, so this is a pure speed path, never a second source of truth.
"""

from __future__ import annotations

import io
import mmap
import struct
from functools import lru_cache
from pathlib import Path
from typing import Any

_PER_FRAME = b"\x00\x52\x30\x92SQ\x00\x00"  # (5200,9230) SQ, explicit VR little endian
_PIXEL_DATA = b"\xe0\x7f\x10\x00"  # (7FE0,0010)
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_NUMBERS = {b"US": "H", b"SS": "h", b"UL": "I", b"SL": "i", b"FL": "f", b"FD": "d"}


class _MalformedError(Exception):
    """The fast path cannot make sense of the bytes: fall back to pydicom."""


def read(path: Path) -> tuple[Any, list[dict[str, Any]]] | None:
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
            groups, end = _sequence(mm, start + 12, struct.unpack_from("<I", mm, start + 8)[0])
        except (_MalformedError, struct.error, IndexError, ValueError):
            return None
        pixel = mm.find(_PIXEL_DATA, end)
        if pixel < 0 or mm[pixel + 4 : pixel + 6] not in (b"OB", b"OW"):
            return None
        (length,) = struct.unpack_from("<I", mm, pixel + 8)
        if length == _UNDEFINED or pixel + 12 + length > len(mm):
            return None
        header = mm[:start] + mm[end:pixel]
        pixels = mm[pixel + 12 : pixel + 12 + length]
    dataset = pydicom.dcmread(io.BytesIO(header), stop_before_pixels=True)
    dataset.PixelData = pixels
    return dataset, groups


def _sequence(buf: Any, pos: int, length: int) -> tuple[list[dict[str, Any]], int]:
    """Items of a sequence starting at ``pos``; returns them and the end position."""
    end = pos + length if length != _UNDEFINED else len(buf)
    items: list[dict[str, Any]] = []
    while pos < end:
        group, element, item_length = struct.unpack_from("<HHI", buf, pos)
        tag = (group << 16) | element
        pos += 8
        if tag == _SEQUENCE_END:
            return items, pos
        if tag != _ITEM:
            raise _MalformedError(f"expected an item at {pos - 8}")
        item, pos = _dataset(buf, pos, item_length)
        items.append(item)
    if length == _UNDEFINED:
        raise _MalformedError("sequence without end")
    return items, end


def _dataset(buf: Any, pos: int, length: int) -> tuple[dict[str, Any], int]:
    end = pos + length if length != _UNDEFINED else len(buf)
    values: dict[str, Any] = {}
    while pos < end:
        group, element = struct.unpack_from("<HH", buf, pos)
        tag = (group << 16) | element
        if tag == _ITEM_END:
            return values, pos + 8
        vr = bytes(buf[pos + 4 : pos + 6])
        if vr in _LONG_VRS:
            (size,) = struct.unpack_from("<I", buf, pos + 8)
            pos += 12
        else:
            (size,) = struct.unpack_from("<H", buf, pos + 6)
            pos += 8
        if vr == b"SQ":
            value, pos = _sequence(buf, pos, size)
        elif size == _UNDEFINED:
            raise _MalformedError("undefined length outside a sequence")
        else:
            value = _value(vr, bytes(buf[pos : pos + size]))
            pos += size
        values[_keyword(tag)] = value
    if length == _UNDEFINED:
        raise _MalformedError("item without end")
    return values, end


def _value(vr: bytes, raw: bytes) -> Any:
    if vr in _NUMBERS:
        code = _NUMBERS[vr]
        numbers = struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw)
        return numbers[0] if len(numbers) == 1 else list(numbers)
    text = raw.decode("latin-1").strip(" \x00")
    if vr in (b"DS", b"IS"):
        parts = [float(p) if vr == b"DS" else int(p) for p in text.split("\\") if p.strip()]
        return parts[0] if len(parts) == 1 else parts
    return text


@lru_cache(maxsize=512)
def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"{tag:08X}"
