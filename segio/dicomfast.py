"""Walk DICOM bytes (little endian) into plain dicts, without pydicom objects.

pydicom builds a Dataset and a DataElement per item and element, and converts every
value; for the large sequences of some files (the Per-frame Functional Groups of a SEG,
the ROI Contour Sequence of an RTSTRUCT) that is most of the read, and ``import pydicom``
alone (0.1-0.2 s: it loads its pixel decoders) costs more than reading a whole structure
set or the headers of a 200-slice series this way. These functions walk a file or a
sequence with ``struct`` and return each dataset as a :class:`Header` (keyword -> value).

Explicit and implicit VR little endian are understood (implicit VRs come from the DICOM
dictionary), in the default, Latin-1 and UTF-8 character sets, and nothing is guessed:
anything else raises :class:`MalformedError`, and the callers then read the file with
pydicom, so this is a pure speed path, never a second source of truth.
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path
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
_BINARY = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"UN"}
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
_TAG_LENGTH = struct.Struct("<HHI").unpack_from
_TAG = struct.Struct("<HH").unpack_from
_SHORT = struct.Struct("<H").unpack_from
_LONG = struct.Struct("<I").unpack_from
_NUMBERS = {b"US": "H", b"SS": "h", b"UL": "I", b"SL": "i", b"FL": "f", b"FD": "d"}


EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
PIXEL_DATA = 0x7FE00010
#: Text VRs in the dataset's character set; every other string VR is ASCII.
_TEXT_VRS = {b"SH", b"LO", b"ST", b"LT", b"UT", b"PN", b"UC"}
#: Specific Character Set values read here, and their Python codecs (pydicom decodes the
#: default repertoire as Latin-1 too).
_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


class MalformedError(Exception):
    """The fast path cannot make sense of the bytes: fall back to pydicom."""


class Header(dict[str, Any]):
    """A walked dataset: keyword -> value, readable as attributes like a pydicom Dataset.

    Values are converted as :func:`value` does (numbers, lists of numbers, text); nested
    sequences are lists of Headers. Tags outside the dictionary (private ones) are keyed by
    their eight hex digits; :func:`private_value` finds them by creator.
    """

    filename: str = ""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def private_value(item: dict[str, Any], group: int, creator: str, element: int) -> Any:
    """The value of private ``element`` of ``creator``'s block in ``group``, or None."""
    for block in range(0x10, 0x100):
        found = item.get(f"{(group << 16) | block:08X}")
        if isinstance(found, bytes):  # implicit VR: unknown to the dictionary, so UN
            found = found.decode("latin-1").strip(" \x00")
        if found == creator:
            return item.get(f"{(group << 16) | (block << 8) | element:08X}")
    return None


def read_part10(
    data: Any,
    *,
    stop: int = 0x100000000,
    raw: Mapping[int, Collection[int]] | None = None,
    cut: bool = False,
) -> Header:
    """The dataset of a DICOM file (preamble and file meta required), up to tag ``stop``.

    ``stop=PIXEL_DATA`` reads the header of an image and ignores the rest. ``cut``: ``data``
    is only the start of the file (its first kilobytes), so reaching its end before
    ``stop`` raises :class:`MalformedError` too: read the whole file then. ``raw`` maps a
    top-level sequence to the tags whose bytes are kept within it (see :func:`sequence`).
    """
    if bytes(data[128:132]) != b"DICM":
        raise MalformedError("no DICM preamble")
    meta, pos = dataset(data, 132, UNDEFINED, stop=0x00030000, open_ended=True)
    syntax = meta.get("TransferSyntaxUID")
    if syntax not in (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN):
        raise MalformedError(f"transfer syntax {syntax!r}")
    header, end = dataset(
        data,
        pos,
        UNDEFINED,
        raw_within=raw,
        implicit=syntax == IMPLICIT_VR_LITTLE_ENDIAN,
        stop=stop,
        open_ended=True,
    )
    if cut and end >= len(data):
        raise MalformedError("the data ends before the header does")
    return header


@lru_cache(maxsize=1)
def _dictionary() -> dict[int, tuple[str, str, str, str, str]]:
    """pydicom's data dictionary (tag -> VR, VM, name, retired, keyword), without pydicom.

    The dictionary is a plain data module; loading it alone takes milliseconds, importing
    pydicom for it 0.1-0.2 s. When pydicom's layout changes, it comes through pydicom.
    """
    try:
        spec = importlib.util.find_spec("pydicom")
        folders = list(spec.submodule_search_locations or []) if spec else []
        source = importlib.util.spec_from_file_location(
            "segio._pydicom_dictionary", Path(folders[0]) / "_dicom_dict.py"
        )
        if source is None or source.loader is None:
            raise ImportError("pydicom's dictionary module is not where it was")
        module = importlib.util.module_from_spec(source)
        source.loader.exec_module(module)
        table: dict[int, tuple[str, str, str, str, str]] = module.DicomDictionary
    except (ImportError, OSError, AttributeError, IndexError, SyntaxError):
        import pydicom._dicom_dict as fallback

        table = fallback.DicomDictionary
    return table


@lru_cache(maxsize=1024)
def implicit_vr(tag: int) -> bytes:
    """The VR of ``tag`` for implicit VR files: the dictionary's, ``UN`` for unknown tags."""
    entry = _dictionary().get(tag)
    if entry is None:
        if tag & 0xFFFF == 0:
            return b"UL"  # group length
        return b"UN"
    if " or " in entry[0] or len(entry[0]) != 2:  # US or SS, OB or OW: kept as bytes
        return b"UN"
    return entry[0].encode("ascii")


def sequence(
    buf: Any,
    pos: int,
    length: int,
    raw: Collection[int] = (),
    *,
    implicit: bool = False,
    encoding: str = "latin-1",
) -> tuple[list[Header], int]:
    """Items of a sequence whose value starts at ``pos``; returns them and the end position.

    Elements whose tag is in ``raw`` keep their value bytes (with the VR, as
    ``(vr, bytes)``), for the caller to convert in bulk.
    """
    end = pos + length if length != UNDEFINED else len(buf)
    if end > len(buf):
        raise MalformedError("sequence beyond the end of the data")
    items: list[Header] = []
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
        item, pos = dataset(buf, pos, item_length, raw, implicit=implicit, encoding=encoding)
        items.append(item)
    if length == UNDEFINED:
        raise MalformedError("sequence without end")
    if pos != end:
        raise MalformedError("an item runs past the end of its sequence")
    return items, end


def dataset(
    buf: Any,
    pos: int,
    length: int,
    raw: Collection[int] = (),
    *,
    implicit: bool = False,
    encoding: str = "latin-1",
    stop: int = 0x100000000,
    open_ended: bool = False,
    raw_within: Mapping[int, Collection[int]] | None = None,
) -> tuple[Header, int]:
    """The elements of one item whose value starts at ``pos``, and the end position.

    ``open_ended``: a top-level dataset, which ends at the end of ``buf`` or before the
    first tag at or after ``stop`` instead of at an item delimiter. ``raw_within``: the
    ``raw`` tags to use inside particular sequences of this dataset.
    """
    end = pos + length if length != UNDEFINED else len(buf)
    if end > len(buf):
        raise MalformedError("item beyond the end of the data")
    values = Header()
    while pos < end:
        if pos + 8 > end:
            raise MalformedError(f"cut element header at {pos}")
        group, element = _TAG(buf, pos)
        tag = (group << 16) | element
        if tag >= stop:
            return values, pos
        if group == 0xFFFE:
            if tag == ITEM_END and not open_ended:
                return values, pos + 8
            raise MalformedError(f"a stray delimiter at {pos}")
        if implicit:
            (size,) = _LONG(buf, pos + 4)
            vr = b"SQ" if size == UNDEFINED else implicit_vr(tag)
            pos += 8
        else:
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
            inner = raw_within.get(tag, raw) if raw_within else raw
            item_value, pos = sequence(buf, pos, size, inner, implicit=implicit, encoding=encoding)
        elif size == UNDEFINED:
            raise MalformedError("undefined length outside a sequence")
        elif pos + size > end:
            raise MalformedError(f"value at {pos} runs past its item")
        else:
            data = bytes(buf[pos : pos + size])
            if tag in raw:
                item_value = (vr, data)
            elif vr in _TEXT_VRS:
                item_value = text(data, encoding)
            else:
                item_value = value(vr, data)
            pos += size
        if tag == 0x00080005:  # Specific Character Set: for the rest of this dataset
            charset = item_value if isinstance(item_value, str) else ""
            if charset.strip() not in _CHARSETS:
                raise MalformedError(f"character set {charset!r}")
            encoding = _CHARSETS[charset.strip()]
        name = keyword(tag)
        if name in values:
            raise MalformedError(f"{name} twice in one item")
        values[name] = item_value
    if length == UNDEFINED and not open_ended:
        raise MalformedError("item without end")
    if pos != end:
        raise MalformedError("an element runs past the end of its item")
    return values, end


def text(raw: bytes, encoding: str) -> str:
    """A text value in the dataset's character set, padding removed."""
    try:
        return raw.decode(encoding).strip(" \x00")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"text not in {encoding}") from exc


def value(vr: bytes, raw: bytes) -> Any:
    """A value converted as the reader needs it: numbers, lists of numbers or text.

    Binary and unknown values (OB, OW, UN, ...) stay bytes.
    """
    if vr in _BINARY:
        return raw
    if vr in _NUMBERS:
        code = _NUMBERS[vr]
        numbers = struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw)
        return numbers[0] if len(numbers) == 1 else list(numbers)
    text = raw.decode("latin-1").strip(" \x00")
    if vr in (b"DS", b"IS"):
        parts = [float(p) if vr == b"DS" else int(p) for p in text.split("\\") if p.strip()]
        if not parts:
            return None  # empty, as pydicom has it
        return parts[0] if len(parts) == 1 else parts
    return text


@lru_cache(maxsize=1024)
def keyword(tag: int) -> str:
    """The dictionary keyword of ``tag``, or its eight hex digits for tags it does not know."""
    entry = _dictionary().get(tag)
    return entry[4] if entry is not None and entry[4] else f"{tag:08X}"
