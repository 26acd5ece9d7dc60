"""The fast path of the RTSTRUCT reader: the ROI Contour Sequence without pydicom.

pydicom builds a Dataset per contour and converts each ContourData, and importing it costs
more than a whole read of a small file; for thousands of contours that is most of the
time. :func:`_fast_read` walks the file with ``struct`` (:mod:`segio.dicom.walker`) and parses
all ContourData at once, but only when every value the reader uses is plain: otherwise it
returns None and the reader takes pydicom's path, so both give the same numbers and the
same warnings (``tests/plugins/test_rtstruct_fastparse.py`` compares them).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: An ROI Contour item as the reader uses it: ReferencedROINumber, ROIDisplayColor (None
#: when absent) and its contours as (geometric type, ContourData numbers, image UID,
#: NumberOfContourPoints or None when absent).
_Contour = tuple[str, NDArray[np.float64], str, int | None]
_RoiContours = tuple[int, list[Any] | None, list[_Contour]]


class _FallbackError(Exception):
    """The fast path met something it does not read exactly as pydicom does."""


def _fast_read(data: bytes, path: Path | None = None) -> tuple[Any, list[_RoiContours]] | None:
    """(the dataset as a :class:`segio.dicom.walker.Header`, its ROI Contour Sequence) or None.

    pydicom builds a Dataset per contour and converts each ContourData, and importing it
    costs more than this whole read; for thousands of contours that is most of the time.
    Here the file is walked with ``struct`` (:mod:`segio.dicom.walker`: little endian, explicit
    or implicit VR, Latin-1 or UTF-8), the ROI Contour Sequence into plain values with all
    ContourData parsed at once. Only when every value the reader uses is plain; otherwise
    None, the reason logged for ``path`` (:func:`segio.dicom.walker.fall_back`), and
    pydicom reads the whole file.
    """
    from segio.dicom import walker as dicomfast

    try:
        header = dicomfast.read_part10(data, raw={0x30060039: _RAW_TAGS})
        items = header.pop("ROIContourSequence", None) or []
        return header, _fast_contours(items)
    except Exception as exc:  # a speed path: whatever it cannot read, pydicom reads
        dicomfast.fall_back(path, "the structure set", exc)
        return None


#: Elements the fast path keeps as bytes, to convert exactly as pydicom would.
_RAW_TAGS = frozenset({0x30060084, 0x3006002A, 0x30060042, 0x30060046, 0x30060050, 0x00081155})
#: Values pydicom reads without a validation warning (its own rules: pydicom.valuerep);
#: the fast path takes only these, so pydicom warns (or not) exactly as before.
_INTEGER = re.compile(rb" *[+-]?[0-9]+ *")
_CODE = re.compile(rb"[A-Z0-9 _]{0,16}")
_UID = re.compile(rb"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def _raw(item: dict[str, Any], keyword: str, vr: bytes) -> bytes | None:
    """The bytes of a plain ASCII value of ``vr``, None when absent; else _FallbackError."""
    if keyword not in item:
        return None
    value = item[keyword]
    if not isinstance(value, tuple) or value[0] != vr:
        raise _FallbackError(keyword)
    data: bytes = value[1]
    if not data.isascii() or b"\x00" in data.rstrip(b"\x00"):
        raise _FallbackError(keyword)
    return data


def _integers(data: bytes) -> list[int]:
    values = data.split(b"\\")
    if not all(len(v) <= 12 and _INTEGER.fullmatch(v) for v in values):
        raise _FallbackError("IS")
    return [int(v) for v in values]


_DECIMAL = b"0123456789+-.eE"


def _ds_numbers(raws: list[bytes]) -> tuple[NDArray[np.float64], list[int]]:
    """The numbers of many DS values (as :func:`parse_ds` reads each) and their counts.

    Plain decimal values (digits, sign, point, exponent; backslashes between, no empty
    field; trailing padding) go through one ``np.fromstring``, which must find exactly one
    number per field; anything else through :func:`parse_ds`'s own split and cast. Both
    round correctly, so the numbers are the same bits (the tests compare them).
    """
    trimmed = [raw.rstrip(b" ") for raw in raws]
    joined = b"\\".join(t for t in trimmed if t)
    counts = [t.count(b"\\") + 1 if t else 0 for t in trimmed]
    if (
        joined
        and not joined.translate(None, _DECIMAL + b"\\")
        and b"\\\\" not in joined
        and joined[:1] != b"\\"
        and joined[-1:] != b"\\"
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns when a field is not all read
            try:
                values = np.fromstring(joined.replace(b"\\", b" "), dtype=np.float64, sep=" ")
            except (DeprecationWarning, ValueError):
                values = np.zeros(0)
        if len(values) == sum(counts):
            return values, counts
    fields = [raw.replace(b"\\", b" ").split() for raw in raws]
    flat = [field for found in fields for field in found]
    values = np.array(flat).astype(np.float64) if flat else np.zeros(0)
    return values, [len(found) for found in fields]


def _fast_contours(items: list[dict[str, Any]]) -> list[_RoiContours]:
    """The ROI Contour Sequence items of the fast walker as :func:`_pydicom_contours` has them."""
    rois: list[tuple[int, list[Any] | None, list[tuple[str, str, int | None]]]] = []
    raws: list[bytes] = []
    valid: set[bytes] = set()  # geometric types already checked
    valid_uids: set[bytes] = set()
    for item in items:
        raw_number = _raw(item, "ReferencedROINumber", b"IS")
        numbers = _integers(raw_number) if raw_number is not None else [-1]
        raw_color = _raw(item, "ROIDisplayColor", b"IS")
        color: list[Any] | None = None
        if raw_color is not None:
            color = _integers(raw_color)
            if len(color) < 2:  # pydicom gives a single number, not a list
                raise _FallbackError("ROIDisplayColor")
        sequence = item.get("ContourSequence", [])
        if len(numbers) != 1 or not isinstance(sequence, list):
            raise _FallbackError("ROI Contour item")
        contours: list[tuple[str, str, int | None]] = []
        for c in sequence:
            raw_kind = _raw(c, "ContourGeometricType", b"CS") or b""
            if raw_kind not in valid and not _CODE.fullmatch(raw_kind.rstrip(b" ")):
                raise _FallbackError("ContourGeometricType")
            valid.add(raw_kind)
            raws.append(_raw(c, "ContourData", b"DS") or b"")
            images = c.get("ContourImageSequence", [])
            if not isinstance(images, list):
                raise _FallbackError("ContourImageSequence")
            uid = (_raw(images[0], "ReferencedSOPInstanceUID", b"UI") or b"") if images else b""
            if uid and uid not in valid_uids:
                plain = uid.rstrip(b"\x00 ")
                if len(plain) > 64 or not _UID.fullmatch(plain):
                    raise _FallbackError("ReferencedSOPInstanceUID")
                valid_uids.add(uid)
            raw_count = _raw(c, "NumberOfContourPoints", b"IS")
            counts = _integers(raw_count) if raw_count is not None else [None]
            if len(counts) != 1:
                raise _FallbackError("NumberOfContourPoints")
            kind = raw_kind.decode().strip().upper()
            contours.append((kind, uid.decode().rstrip("\x00 "), counts[0]))
        rois.append((numbers[0], color, contours))
    values, counts = _ds_numbers(raws)
    pieces = iter(np.split(values, np.cumsum(counts)[:-1]) if counts else [])
    return [
        (number, color, [(kind, next(pieces), uid, count) for kind, uid, count in contours])
        for number, color, contours in rois
    ]
