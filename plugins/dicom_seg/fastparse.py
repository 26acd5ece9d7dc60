"""Read a whole SEG header without pydicom: the struct walker, and Pixel Data mapped.

``import pydicom`` alone costs 0.25 s (it loads its pixel decoders), more than the rest of
a 24-segment CT SEG read; building a Dataset per element of the Per-frame Functional
Groups Sequence costs as much again. Here :mod:`segio.dicom.walker` walks the header into
a :class:`~segio.dicom.walker.Header` that the reader uses as it uses pydicom's Dataset
(``get``, attributes, ``in``), and the Pixel Data is a view of the mapped file: no pydicom
object, no copy. (A file truncated by another process while it is read ends the process
with SIGBUS, as with any mapped file; pydicom's path, ``SEGIO_DICOM_FAST=0``, reads a copy.)

The per-frame groups repeat themselves: the same Plane Position for every segment of a
slice, the same Segment Identification for every frame of a segment. Each distinct
functional group (its bytes) is walked once and shared; only the groups the reader uses
are kept (:data:`KEPT_GROUPS`), the others are walked all the same, so a broken one sends
the file to pydicom as it would if it were kept.

Values are what pydicom gives, or the file goes to pydicom: text is only right-stripped,
as pydicom does (the walker strips both ends), split at backslashes into lists (as
pydicom's MultiValue), and anything where pydicom's rules per VR could differ (spaces or
NULs around a backslash, non-ASCII text outside Latin-1/UTF-8, Integer Strings not in
plain form, empty numbers in a Decimal String, text tags of another VR) is not read here.
The encodings read: explicit VR little endian with native Pixel Data, no palette colour.
Anything else returns None (the reason logged on the ``segio.dicom`` logger) and the
reader uses pydicom for the whole file, so this is a pure speed path, never a second
source of truth. Warnings are the one difference: pydicom warns about values that break
the standard's rules (a too-long LO, say), which this path does not check.
"""

from __future__ import annotations

import mmap
import re
import struct
from functools import lru_cache
from pathlib import Path
from typing import Any

from segio.dicom import walker
from segio.dicom.walker import UNDEFINED, Header, MalformedError
from segio.fileio.inputs import open_input

PER_FRAME = 0x52009230
_SEQUENCE_END, _ITEM, _ITEM_END = walker.SEQUENCE_END, walker.ITEM, walker.ITEM_END
_HEADER = struct.Struct("<HH2sH").unpack_from
_TAG_LENGTH = struct.Struct("<HHI").unpack_from
_LONG = struct.Struct("<I").unpack_from
_ELEMENT = struct.Struct("<HH2sHI").unpack_from
#: The per-frame functional groups the reader uses; the others are checked and dropped.
KEPT_GROUPS = frozenset(
    {
        "PlanePositionSequence",
        "PlaneOrientationSequence",
        "SegmentIdentificationSequence",
        "PixelMeasuresSequence",
        "PlanePositionSlideSequence",
    }
)
#: VRs whose values pydicom decodes in the dataset's character set (the rest are ASCII).
_TEXT = {"SH", "LO", "ST", "LT", "UT", "PN", "UC"}
#: VRs pydicom never splits at backslashes.
_SINGLE = {"ST", "LT", "UT"}
_STRINGS = _TEXT | {"AE", "AS", "CS", "DA", "DT", "TM", "UI", "DS", "IS"}
_INTEGER = re.compile(r"0|[1-9][0-9]*")


def read(path: Path) -> Header | None:
    """The SEG's header as a Header (Pixel Data a view of the mapped file, ``file_meta``
    set, the per-frame groups reduced to :data:`KEPT_GROUPS`), or None with the reason
    logged."""
    try:
        with open_input(path) as stream:
            syntax = walker.transfer_syntax(stream.read(8192))
            if syntax != walker.EXPLICIT_VR_LITTLE_ENDIAN:
                raise MalformedError(f"transfer syntax {syntax or 'unknown'}")
            mm = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            header, start, length = _walk(mm)
            if start + length > len(mm):
                raise MalformedError("Pixel Data runs past the end of the file")
        except BaseException:
            mm.close()
            raise
    except (MalformedError, struct.error, IndexError, ValueError, OverflowError, OSError) as exc:
        walker.fall_back(path, "the SEG header", exc)
        return None
    # A view of the mapping, not a copy: the pages are the page cache's (5 times faster
    # than reading 234 MB into a buffer). The mapping goes when the last view does.
    header["PixelData"] = memoryview(mm)[start : start + length]
    header.filename = str(path)
    return header


def _walk(mm: Any) -> tuple[Header, int, int]:
    """(the header, where the Pixel Data value starts, its length)."""
    if bytes(mm[128:132]) != b"DICM":
        raise MalformedError("no DICM preamble")
    meta, pos = walker.dataset(mm, 132, UNDEFINED, stop=0x00030000, open_ended=True)
    raw = _raw_tags()
    header, pos = walker.dataset(mm, pos, UNDEFINED, raw, stop=PER_FRAME, open_ended=True)
    charset = str(header.get("SpecificCharacterSet") or "").strip()
    if charset not in walker._CHARSETS:
        raise MalformedError(f"character set {charset!r}")
    if pos + 12 <= len(mm) and _HEADER(mm, pos)[:3] == (0x5200, 0x9230, b"SQ"):
        (length,) = _LONG(mm, pos + 8)
        header["PerFrameFunctionalGroupsSequence"], pos = frame_groups(
            mm, pos + 12, length, charset
        )
    rest, pos = walker.dataset(
        mm,
        pos,
        UNDEFINED,
        raw,
        encoding=walker._CHARSETS[charset],
        stop=walker.PIXEL_DATA,
        open_ended=True,
    )
    if rest.keys() & header.keys() or "PerFrameFunctionalGroupsSequence" in rest:
        raise MalformedError("an element twice in the dataset, or out of order")
    header.update(rest)
    if pos + 12 > len(mm) or _HEADER(mm, pos)[:2] != (0x7FE0, 0x0010):
        raise MalformedError("no Pixel Data")
    if bytes(mm[pos + 4 : pos + 6]) not in (b"OB", b"OW"):
        raise MalformedError("Pixel Data is not OB or OW")
    (length,) = _LONG(mm, pos + 8)
    if length == UNDEFINED:
        raise MalformedError("encapsulated Pixel Data")
    _as_pydicom(header, charset)
    if str(header.get("PhotometricInterpretation", "")) == "PALETTE COLOR":
        raise MalformedError("palette colour lookup tables are read by pydicom")
    header.file_meta = meta  # type: ignore[attr-defined]  # as pydicom's Dataset has it
    return header, pos + 12, length


def frame_groups(buf: Any, pos: int, length: int, charset: str) -> tuple[list[Header], int]:
    """The items of a Per-frame Functional Groups Sequence whose value starts at ``pos``.

    Each item holds functional group sequences; each distinct one (tag and bytes) is walked
    once by :func:`segio.dicom.walker.sequence` (every value checked and converted) and
    shared by the frames that repeat it. Only :data:`KEPT_GROUPS` stay in the items.
    """
    end = pos + length if length != UNDEFINED else len(buf)
    if end > len(buf):
        raise MalformedError("the per-frame groups run past the end of the data")
    encoding, raw, kept = walker._CHARSETS[charset], _raw_tags(), _kept_tags()
    seen: dict[tuple[int, bytes], list[Header]] = {}
    sizes: dict[int, set[int]] = {}  # tag -> the byte lengths of its groups seen so far
    groups: list[Header] = []
    while pos < end:
        if pos + 8 > end:
            raise MalformedError(f"cut item header at {pos}")
        group, element, item_length = _TAG_LENGTH(buf, pos)
        tag = (group << 16) | element
        pos += 8
        if tag == _SEQUENCE_END:
            if length != UNDEFINED:
                raise MalformedError("a sequence delimiter in a sequence of defined length")
            return groups, pos
        if tag != _ITEM:
            raise MalformedError(f"expected an item at {pos - 8}")
        item_end = pos + item_length if item_length != UNDEFINED else end
        if item_end > end:
            raise MalformedError("an item runs past the end of its sequence")
        frame, last = Header(), -1
        while True:
            if item_length != UNDEFINED and pos == item_end:
                break
            if pos + 8 > item_end:
                raise MalformedError(f"cut element header at {pos}")
            group, element, vr, _, size = _ELEMENT(buf, pos)
            tag = (group << 16) | element
            if tag == _ITEM_END and item_length == UNDEFINED:
                pos += 8
                break
            if vr != b"SQ" or pos + 12 > item_end or tag <= last:  # groups in tag order
                raise MalformedError(f"a per-frame element {tag:08X} not read here")
            last, pos = tag, pos + 12
            if size != UNDEFINED and pos + size > item_end:
                raise MalformedError(f"a functional group at {pos} runs past its item")
            # The same bytes walk to the same values (and, for an undefined length, end at
            # the same delimiter): a group seen before is looked up, not walked again.
            items = None
            for candidate in (size,) if size != UNDEFINED else sizes.get(tag, ()):
                items = seen.get((tag, buf[pos : pos + candidate]))
                if items is not None:
                    pos += candidate
                    break
            if items is None:
                items, stop = walker.sequence(buf, pos, size, raw, encoding=encoding, depth=2)
                for inner in items:
                    _as_pydicom(inner, charset)
                if stop > item_end or (size != UNDEFINED and stop != pos + size):
                    raise MalformedError(f"a functional group at {pos} does not fit its item")
                seen[(tag, bytes(buf[pos:stop]))] = items
                sizes.setdefault(tag, set()).add(stop - pos)
                pos = stop
            name = kept.get(tag)
            if name is not None:
                frame[name] = items
        groups.append(frame)
    if length == UNDEFINED:
        raise MalformedError("per-frame groups without their sequence delimiter")
    return groups, end


@lru_cache(maxsize=1)
def _kept_tags() -> dict[int, str]:
    """Tag -> keyword of :data:`KEPT_GROUPS`."""
    return {tag: e[4] for tag, e in walker._dictionary().items() if e[4] in KEPT_GROUPS}


@lru_cache(maxsize=1)
def _raw_tags() -> frozenset[int]:
    """Every dictionary tag of a string VR but Specific Character Set (which the walker
    itself reads): kept as bytes, converted by :func:`_as_pydicom`."""
    return frozenset(
        tag
        for tag, entry in walker._dictionary().items()
        if entry[0] in _STRINGS and tag != 0x00080005
    )


def _as_pydicom(item: Header, charset: str) -> None:
    """Convert the raw string values of ``item`` and its sequences (in place) as pydicom
    does; MalformedError where its rules might give something else."""
    for name, value in item.items():
        if isinstance(value, tuple):
            item[name] = _string(value[0].decode("ascii"), value[1], charset)
        elif isinstance(value, list) and value and isinstance(value[0], Header):
            if name == "PerFrameFunctionalGroupsSequence":
                continue  # converted by frame_groups
            for inner in value:
                _as_pydicom(inner, charset)


def _string(vr: str, data: bytes, charset: str) -> Any:
    """One string value as pydicom reads it, or MalformedError."""
    if vr not in _STRINGS:  # e.g. UN: pydicom would read it with the dictionary's VR
        raise MalformedError(f"a {vr} value where the dictionary says text")
    if not data.isascii() and (vr not in _TEXT or charset not in ("ISO_IR 100", "ISO_IR 192")):
        raise MalformedError(f"non-ASCII {vr} value")
    text = data.decode(walker._CHARSETS[charset] if vr in _TEXT else "ascii")
    value = text.rstrip("\x00 ")
    if not value:
        return None if vr in ("DS", "IS") else ""
    if "\x00" in value or (
        vr not in _SINGLE and "\\" in value and re.search(r"[ \t]\\|\\[ \t]", value)
    ):
        raise MalformedError(f"a {vr} value pydicom might read otherwise")
    parts = [value] if vr in _SINGLE else value.split("\\")
    if vr == "DS":
        return _numbers([float(p) for p in parts] if all(p.strip() for p in parts) else None)
    if vr == "IS":
        return _numbers(
            [int(p) for p in parts] if all(_INTEGER.fullmatch(p) for p in parts) else None
        )
    return parts[0] if len(parts) == 1 else parts


def _numbers(values: list[Any] | None) -> Any:
    if values is None:
        raise MalformedError("a number pydicom might read otherwise")
    return values[0] if len(values) == 1 else values
