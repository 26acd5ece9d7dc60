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

The bytes are untrusted, so the walk is bounded by them: a length is never believed past
the end of its item or of the data, sequences nest at most :data:`MAX_DEPTH` deep (a
crafted file nests thousands), and an undefined length without its delimiter ends at the
end of the data. :func:`inflated_part10` inflates the dataset of the Deflated Explicit VR
Little Endian transfer syntax within a limit (:func:`deflated_limit`), for this walker and
for pydicom alike (pydicom alone would inflate any bomb whole).
"""

from __future__ import annotations

import importlib.util
import os
import struct
from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from segio.fileio import limits as limits
from segio.fileio.deflate import RAW, inflate

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
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
PIXEL_DATA = 0x7FE00010
#: Deepest nesting of sequences walked. Real files nest a few levels (SR content trees a
#: dozen); a crafted one nests thousands, which would exhaust the stack of any recursive
#: reader. Deeper files go to pydicom, whose recursion segio turns into a ReadError.
MAX_DEPTH = 64
#: The inflated dataset of a Deflated Explicit VR Little Endian file may take at most this
#: fraction of ``SEGIO_MAX_MEMORY``: reading it takes several times its size again.
DEFLATED_SHARE = 4
#: What one element of a dataset costs once parsed (pydicom's DataElement and its value,
#: roughly): the elements a deflated dataset may hold are ``SEGIO_MAX_MEMORY`` over this.
ELEMENT_COST = 512
#: Text VRs in the dataset's character set; every other string VR is ASCII.
_TEXT_VRS = {b"SH", b"LO", b"ST", b"LT", b"UT", b"PN", b"UC"}
#: Specific Character Set values read here, and their Python codecs (pydicom decodes the
#: default repertoire as Latin-1 too).
_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


#: Environment switch: ``SEGIO_DICOM_FAST=0`` sends every DICOM read through pydicom.
#: The fast paths (this walker, the SEG header and frames, the RTSTRUCT contours, series
#: headers) fall back to pydicom silently by design; with the switch the suite runs on
#: pydicom alone too (``make test`` runs the DICOM tests both ways), so a fast-path bug
#: fails a test instead of only costing time.
FAST_SWITCH = "SEGIO_DICOM_FAST"


class MalformedError(Exception):
    """The fast path cannot make sense of the bytes: fall back to pydicom."""


def fast_path() -> bool:
    """False when :data:`FAST_SWITCH` is ``0``: callers then use pydicom alone. Read at
    every call, so a test or a long-running process can change it."""
    return os.environ.get(FAST_SWITCH, "").strip() != "0"


def fall_back(path: str | os.PathLike[str] | None, what: str, reason: object) -> None:
    """Log at debug level why ``what`` of ``path`` is read by pydicom after all: the
    fast path turning a whole class of files away only shows as time, so say it."""
    import logging  # here: importing it costs a fast read 4 ms, most of which never log

    log = logging.getLogger("segio.dicom")
    if log.isEnabledFor(logging.DEBUG):
        why = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
        log.debug("%s: %s read by pydicom (%s)", os.fspath(path or "<bytes>"), what, why)


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


def deflated_limit() -> int:
    """The most bytes the dataset of a deflated file may inflate to (see :data:`DEFLATED_SHARE`)."""
    return limits.memory_limit() // DEFLATED_SHARE


def _meta_end(data: Any) -> tuple[int, tuple[int, int] | None]:
    """Where the file meta of a Part 10 file ends, and the (start, end) of its Transfer
    Syntax UID element; the meta is always Explicit VR Little Endian (PS3.10 7.1)."""
    pos, syntax = 132, None
    while pos + 8 <= len(data) and _SHORT(data, pos)[0] == 0x0002:
        vr = bytes(data[pos + 4 : pos + 6])
        if vr in LONG_VRS:
            if pos + 12 > len(data):
                break
            (size,) = _LONG(data, pos + 8)
            start = pos + 12
        else:
            (size,) = _SHORT(data, pos + 6)
            start = pos + 8
        if start + size > len(data):
            raise MalformedError("the file meta runs past the end of the data")
        if _SHORT(data, pos + 2)[0] == 0x0010:
            syntax = (pos, start + size)
        pos = start + size
    return pos, syntax


def transfer_syntax(data: Any) -> str | None:
    """The Transfer Syntax UID of a Part 10 file's bytes (None without preamble or UID)."""
    if bytes(data[128:132]) != b"DICM":
        return None
    try:
        _, where = _meta_end(data)
    except MalformedError:
        return None
    if where is None:
        return None
    return bytes(data[where[0] + 8 : where[1]]).decode("latin-1").strip(" \x00")


def inflated_part10(data: bytes, path: str | os.PathLike[str] | None = None) -> bytes:
    """``data`` as is, or, for Deflated Explicit VR Little Endian, with its dataset inflated.

    The dataset inflates to at most :func:`deflated_limit` bytes (more is a
    :class:`~segio.errors.ReadError`, a decompression bomb); the result is an Explicit VR
    Little Endian file that this walker and pydicom read without inflating anything.
    """
    if transfer_syntax(data) != DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return data
    end, where = _meta_end(data)
    assert where is not None
    limit = deflated_limit()
    dataset = inflate(
        memoryview(data)[end:],
        limit,
        wbits=RAW,
        exact=False,
        what=f"the deflated dataset (limited to {limits.format_bytes(limit)}, "
        f"{limits.ENVIRONMENT_VARIABLE} / {DEFLATED_SHARE})",
        path=path,
    )
    # Inflated bytes cost their elements' parsing: a bomb of tiny elements would keep
    # pydicom (or this walker) busy for minutes within the byte limit, so they are counted.
    budget = limits.memory_limit() // ELEMENT_COST
    count = element_count(dataset, budget)
    limits.check_allocation(
        count * ELEMENT_COST,
        f"the {count:,}{'+' if count > budget else ''} elements of the deflated dataset "
        f"(at {ELEMENT_COST} bytes each once read)",
        path=path,
    )
    syntax = EXPLICIT_VR_LITTLE_ENDIAN.encode() + b"\x00"  # even length
    element = bytes(data[where[0] : where[0] + 6]) + struct.pack("<H", len(syntax)) + syntax
    meta = bytearray(data[: where[0]] + element + data[where[1] : end])
    if _TAG(meta, 132) == (0x0002, 0x0000):  # File Meta Information Group Length
        struct.pack_into("<I", meta, 140, len(meta) - 144)
    return bytes(meta) + dataset


def element_count(buf: Any, limit: int, *, implicit: bool = False) -> int:
    """How many elements (nested ones included) ``buf`` holds, counting no further than
    ``limit + 1``.

    A flat scan of element headers, never recursive and always moving forward (every step
    passes at least 8 bytes), so it ends on any bytes: sequences and items are stepped
    into, other values skipped by their length, encapsulated fragments by theirs.
    """
    pos, count, end = 0, 0, len(buf)
    while pos + 8 <= end and count <= limit:
        group, element = _TAG(buf, pos)
        if group == 0xFFFE:  # an item (stepped into) or a delimiter
            pos += 8
            continue
        count += 1
        if implicit:
            (size,) = _LONG(buf, pos + 4)
            tag = (group << 16) | element
            vr = b"SQ" if size == UNDEFINED else implicit_vr(tag)
            pos += 8
        else:
            vr = bytes(buf[pos + 4 : pos + 6])
            if vr in LONG_VRS:
                (size,) = _LONG(buf, pos + 8) if pos + 12 <= end else (0,)
                pos += 12
            else:
                (size,) = _SHORT(buf, pos + 6)
                pos += 8
        if vr == b"SQ":
            continue  # its items follow
        if size == UNDEFINED:  # encapsulated fragments: skip them by their lengths
            while pos + 8 <= end and _TAG(buf, pos) == (0xFFFE, 0xE000):
                pos += 8 + _LONG(buf, pos + 4)[0]
            pos += 8  # the sequence delimiter
            continue
        pos += size
    return count


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
    depth: int = 1,
) -> tuple[list[Header], int]:
    """Items of a sequence whose value starts at ``pos``; returns them and the end position.

    Elements whose tag is in ``raw`` keep their value bytes (with the VR, as
    ``(vr, bytes)``), for the caller to convert in bulk. ``depth`` is how many sequences
    hold this one (itself included); beyond :data:`MAX_DEPTH` it is refused.
    """
    if depth > MAX_DEPTH:
        raise MalformedError(f"sequences nested more than {MAX_DEPTH} deep")
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
        item, pos = dataset(
            buf, pos, item_length, raw, implicit=implicit, encoding=encoding, depth=depth
        )
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
    depth: int = 0,
) -> tuple[Header, int]:
    """The elements of one item whose value starts at ``pos``, and the end position.

    ``open_ended``: a top-level dataset, which ends at the end of ``buf`` or before the
    first tag at or after ``stop`` instead of at an item delimiter. ``raw_within``: the
    ``raw`` tags to use inside particular sequences of this dataset. ``depth``: how many
    sequences hold this item (0 for a top-level dataset).
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
            item_value, pos = sequence(
                buf, pos, size, inner, implicit=implicit, encoding=encoding, depth=depth + 1
            )
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
