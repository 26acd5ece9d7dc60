"""Raw Explicit VR Little Endian data elements for the DICOM SEG writer.

A SEG of a CT with a hundred segments has thousands of frames, each with its own
Per-Frame Functional Groups item. Building one pydicom Dataset per frame costs seconds, so
:func:`per_frame_groups` has pydicom encode each *distinct* element once (per slice, per
segment) and joins bytes; the helpers here build elements, items and sequences of defined
length directly, and :func:`encoded` puts such pre-encoded elements in their place in a
dataset that pydicom encodes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.dicom.codes import code_item
from segio.dicom.series import SourceFrame
from segio.terminology import Code

SOURCE_PURPOSE = Code("DCM", "121322", "Source image for image processing operation")
SEGMENTATION_DERIVATION = Code("DCM", "113076", "Segmentation")
_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
ITEM = b"\xfe\xff\x00\xe0"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
UNDEFINED = 0xFFFFFFFF


def element_header(tag: int, vr: str, length: int) -> bytes:
    """Tag, VR and length of an Explicit VR Little Endian data element."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in _LONG_VRS:
        return head + struct.pack("<HI", 0, length)
    return head + struct.pack("<H", length)


def item(body: bytes) -> bytes:
    """A sequence item of defined length."""
    return ITEM + struct.pack("<I", len(body)) + body


def element(tag: int, vr: str, value: Any) -> bytes:
    """One data element, encoded by pydicom (Explicit VR Little Endian)."""
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    write_data_element(buffer, DataElement(tag, vr, value))
    return buffer.getvalue()


def text(tag: int, vr: str, values: Sequence[str]) -> bytes:
    """A text element (UI, DS, IS, CS) of ASCII ``values``, padded to even length (PS3.5
    6.2: NUL after a UID, space otherwise); for the many per-slice values, where building
    a pydicom DataElement each time would cost more than the rest of the frame."""
    value = "\\".join(values).encode("ascii")
    if len(value) % 2:
        value += b"\x00" if vr == "UI" else b" "
    return element_header(tag, vr, len(value)) + value


def sequence(tag: int, items: Sequence[bytes]) -> bytes:
    """A sequence of defined length holding ``items`` (each from :func:`item`)."""
    body = b"".join(items)
    if len(body) >= UNDEFINED:
        return element_header(tag, "SQ", UNDEFINED) + body + SEQUENCE_DELIMITER
    return element_header(tag, "SQ", len(body)) + body


def ds(value: float) -> str:
    """A Decimal String of at most 16 characters for ``value``."""
    from pydicom.valuerep import format_number_as_ds

    return str(format_number_as_ds(float(value)))


def encoded(dataset: Any, raw: dict[int, bytes] | None = None) -> bytes:
    """The Explicit VR Little Endian encoding of ``dataset`` (by pydicom), with the
    pre-encoded elements ``raw`` (tag -> bytes) put in their place in tag order."""
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    charset = dataset.get("SpecificCharacterSet", "ISO_IR 6")
    pieces = []
    part = Dataset()
    for tag in sorted({*dataset.keys(), *(raw or {})}):
        if tag not in (raw or {}):
            part.add(dataset[tag])
            continue
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        write_dataset(buffer, part, charset)
        pieces += [buffer.getvalue(), (raw or {})[tag]]
        part = Dataset()
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, part, charset)
    return b"".join([*pieces, buffer.getvalue()])


def references(series_uid: str, instances: dict[str, str]) -> dict[int, bytes]:
    """Referenced Series Sequence and Source Image Sequence of ``instances`` (instance
    UID -> SOP class UID), encoded."""
    classes = {c: element(0x00081150, "UI", c) for c in set(instances.values())}
    images = [item(classes[c] + text(0x00081155, "UI", [i])) for i, c in instances.items()]
    series = sequence(0x0008114A, images) + element(0x0020000E, "UI", series_uid)
    return {
        0x00081115: sequence(0x00081115, [item(series)]),
        0x00082112: sequence(0x00082112, images),
    }


def per_frame_groups(
    kind: str,
    frames: Sequence[tuple[int, int]],
    sources: Sequence[SourceFrame | None],
    positions: NDArray[np.float64],
) -> bytes:
    """The encoded Per-Frame Functional Groups Sequence of ``frames`` ((index, k) pairs).

    Each item: Derivation Image (the source image of slice k, its frame number when the
    source is multi-frame), Frame Content (Dimension Index Values: segment number and
    k + 1, or k + 1 for LABELMAP), Plane Position and, but for LABELMAP, Segment
    Identification. pydicom encodes every element: the constant ones once, the others
    once per slice or segment; frames only join the pieces.
    """
    from pydicom.dataset import Dataset

    constant = Dataset()
    constant.SpatialLocationsPreserved = "YES"
    constant.PurposeOfReferenceCodeSequence = [code_item(SOURCE_PURPOSE)]
    reference_tail = encoded(constant)
    derivation_code = Dataset()
    derivation_code.DerivationCodeSequence = [code_item(SEGMENTATION_DERIVATION)]
    derivation_tail = encoded(derivation_code)
    classes: dict[str, bytes] = {}
    slices: dict[int, tuple[bytes, bytes]] = {}
    for k in sorted({k for _, k in frames}):
        frame = sources[k]
        assert frame is not None, "frames are only made for slices with a source image"
        if frame.sop_class_uid not in classes:
            classes[frame.sop_class_uid] = element(0x00081150, "UI", frame.sop_class_uid)
        reference = classes[frame.sop_class_uid] + text(0x00081155, "UI", [frame.sop_instance_uid])
        if frame.frame_number is not None:
            reference += text(0x00081160, "IS", [str(frame.frame_number)])
        source = sequence(0x00082112, [item(reference + reference_tail)])
        derivation = sequence(0x00089124, [item(source + derivation_tail)])
        position = text(0x00200032, "DS", [ds(v) for v in positions[k]])
        slices[k] = derivation, sequence(0x00209113, [item(position)])
    values = 1 if kind == "labelmap" else 2
    index_head = element(0x00209157, "UL", [0] * values)[: -4 * values]  # tag, VR, length
    identification: dict[int, bytes] = {}
    body = []
    for index, k in frames:
        derivation, plane = slices[k]
        numbers = (k + 1,) if values == 1 else (index + 1, k + 1)
        content = sequence(0x00209111, [item(index_head + struct.pack(f"<{values}I", *numbers))])
        if kind == "labelmap":
            body.append(item(derivation + content + plane))
            continue
        if index not in identification:
            number = element(0x0062000B, "US", index + 1)
            identification[index] = sequence(0x0062000A, [item(number)])
        body.append(item(derivation + content + plane + identification[index]))
    return sequence(0x52009230, body)
