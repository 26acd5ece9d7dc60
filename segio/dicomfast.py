"""Walk DICOM bytes (explicit VR little endian) into plain dicts, without pydicom objects.

pydicom builds a Dataset and a DataElement per item and element, and converts every
value; for the large sequences of some files (the Per-frame Functional Groups of a SEG,
the ROI Contour Sequence of an RTSTRUCT) that is most of the read. These functions walk
such a sequence with ``struct`` and return each item as a dict (keyword -> value).

Only explicit VR little endian is understood, and nothing is guessed: anything the walker
cannot make sense of raises :class:`MalformedError`, and the callers then read the file
with pydicom, so this is a pure speed path, never a second source of truth.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from functools import lru_cache
from typing import Any

LONG_VRS = {
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
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
_TAG_LENGTH = struct.Struct("<HHI").unpack_from
_TAG = struct.Struct("<HH").unpack_from
_SHORT = struct.Struct("<H").unpack_from
_LONG = struct.Struct("<I").unpack_from
_NUMBERS = {b"US": "H", b"SS": "h", b"UL": "I", b"SL": "i", b"FL": "f", b"FD": "d"}


class MalformedError(Exception):
    """The fast path cannot make sense of the bytes: fall back to pydicom."""


def sequence(
    buf: Any, pos: int, length: int, raw: Collection[int] = ()
) -> tuple[list[dict[str, Any]], int]:
    """Items of a sequence whose value starts at ``pos``; returns them and the end position.

    Elements whose tag is in ``raw`` keep their value bytes (with the VR, as
    ``(vr, bytes)``), for the caller to convert in bulk.
    """
    end = pos + length if length != UNDEFINED else len(buf)
    if end > len(buf):
        raise MalformedError("sequence beyond the end of the data")
    items: list[dict[str, Any]] = []
    while pos < end:
        if pos + 8 > end:
            raise MalformedError(f"cut item header at {pos}")
        group, element, item_length = _TAG_LENGTH(buf, pos)
        tag = (group << 16) | element
        pos += 8
        if tag == SEQUENCE_END:
            return items, pos
        if tag != ITEM:
            raise MalformedError(f"expected an item at {pos - 8}")
        item, pos = dataset(buf, pos, item_length, raw)
        items.append(item)
    if length == UNDEFINED:
        raise MalformedError("sequence without end")
    if pos != end:
        raise MalformedError("an item runs past the end of its sequence")
    return items, end


def dataset(
    buf: Any, pos: int, length: int, raw: Collection[int] = ()
) -> tuple[dict[str, Any], int]:
    """The elements of one item whose value starts at ``pos``, and the end position."""
    end = pos + length if length != UNDEFINED else len(buf)
    if end > len(buf):
        raise MalformedError("item beyond the end of the data")
    values: dict[str, Any] = {}
    while pos < end:
        if pos + 8 > end:
            raise MalformedError(f"cut element header at {pos}")
        group, element = _TAG(buf, pos)
        tag = (group << 16) | element
        if tag == ITEM_END:
            return values, pos + 8
        vr = bytes(buf[pos + 4 : pos + 6])
        if vr in LONG_VRS:
            if pos + 12 > end:
                raise MalformedError(f"cut element header at {pos}")
            (size,) = _LONG(buf, pos + 8)
            pos += 12
        else:
            (size,) = _SHORT(buf, pos + 6)
            pos += 8
        item_value: Any
        if vr == b"SQ":
            item_value, pos = sequence(buf, pos, size, raw)
        elif size == UNDEFINED:
            raise MalformedError("undefined length outside a sequence")
        elif pos + size > end:
            raise MalformedError(f"value at {pos} runs past its item")
        else:
            data = bytes(buf[pos : pos + size])
            item_value = (vr, data) if tag in raw else value(vr, data)
            pos += size
        name = keyword(tag)
        if name in values:
            raise MalformedError(f"{name} twice in one item")
        values[name] = item_value
    if length == UNDEFINED:
        raise MalformedError("item without end")
    if pos != end:
        raise MalformedError("an element runs past the end of its item")
    return values, end


def value(vr: bytes, raw: bytes) -> Any:
    """A value converted as the reader needs it: numbers, lists of numbers or text."""
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
def keyword(tag: int) -> str:
    """pydicom's keyword for ``tag``, or its hex digits for tags it does not know."""
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"{tag:08X}"
