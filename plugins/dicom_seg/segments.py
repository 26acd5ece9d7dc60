"""What DICOM SEG says about a segment, both ways: Segment Sequence item <-> Segment.

Shared by the reader and the writer: colours as CIELab PCS values, terminology as code
sequences, algorithm fields as segment properties.

Colour: RecommendedDisplayCIELabValue holds three uint16: L*·65535/100, (a*+128)·65535/255,
(b*+128)·65535/255 (PS3.3 C.10.7.1.1). RGB <-> Lab uses the sRGB/D65 recipe highdicom and
dcmqi share (spec ``dicom-seg-and-rtstruct.md`` §3), so colours round-trip with both within
the 16-bit rounding.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from segio.dicom.codes import code_from_item, code_item
from segio.model import Segment
from segio.terminology import Terminology

_RGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = np.array([95.047, 100.0, 108.883])

#: Segment properties that map to Segment Sequence attributes (Slicer's tag names).
ALGORITHM_TYPE = "DICOM.SegmentAlgorithmType"
ALGORITHM_NAME = "DICOM.SegmentAlgorithmName"
DESCRIPTION = "Description"
TRACKING_ID = "DICOM.TrackingIdentifier"
TRACKING_UID = "DICOM.TrackingUniqueIdentifier"
#: The Segment Number in the file read (label values may differ, e.g. fractional layers).
SEGMENT_NUMBER = "DICOM.SegmentNumber"
#: How many generic segments the warning names before "and N more".
_NAMED = 20


def rgb_to_dicom_lab(rgb: tuple[float, float, float]) -> list[int]:
    """sRGB (0..1) -> RecommendedDisplayCIELabValue (three uint16)."""
    c = np.asarray(rgb, dtype=np.float64)
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92) * 100.0
    xyz = _RGB_TO_XYZ @ linear / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lab = np.array([116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])])
    scaled = [
        lab[0] * 65535.0 / 100.0,
        (lab[1] + 128.0) * 65535.0 / 255.0,
        (lab[2] + 128.0) * 65535.0 / 255.0,
    ]
    return [int(np.clip(round(v), 0, 65535)) for v in scaled]


def dicom_lab_to_rgb(values: Any) -> tuple[float, float, float]:
    """RecommendedDisplayCIELabValue -> sRGB (0..1), clipped to the gamut."""
    v = [float(x) for x in values]
    lab = np.array(
        [v[0] * 100.0 / 65535.0, v[1] * 255.0 / 65535.0 - 128.0, v[2] * 255.0 / 65535.0 - 128.0]
    )
    fy = (lab[0] + 16.0) / 116.0
    f = np.array([fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0])
    xyz = np.where(f**3 > 0.008856, f**3, (f - 16.0 / 116.0) / 7.787) * _WHITE / 100.0
    linear = _XYZ_TO_RGB @ xyz
    c = np.where(
        linear > 0.0031308, 1.055 * np.power(np.maximum(linear, 0), 1 / 2.4) - 0.055, 12.92 * linear
    )
    r, g, b = (float(x) for x in np.clip(c, 0.0, 1.0))
    return (r, g, b)


def terminology_from_item(item: Any) -> Terminology | None:
    """The Segmented Property codes of a Segment Sequence item, None when incomplete."""
    category = item.get("SegmentedPropertyCategoryCodeSequence")
    type_ = item.get("SegmentedPropertyTypeCodeSequence")
    if not category or not type_:
        return None
    modifier = type_[0].get("SegmentedPropertyTypeModifierCodeSequence")
    region = item.get("AnatomicRegionSequence")
    region_modifier = region[0].get("AnatomicRegionModifierSequence") if region else None
    return Terminology(
        category=code_from_item(category[0]),
        type=code_from_item(type_[0]),
        type_modifier=code_from_item(modifier[0]) if modifier else None,
        region=code_from_item(region[0]) if region else None,
        region_modifier=code_from_item(region_modifier[0]) if region_modifier else None,
    )


def segment_fields(item: Any) -> dict[str, Any]:
    """Keyword arguments for :class:`Segment` (less id, layer, label) from an item."""
    properties: dict[str, str] = {SEGMENT_NUMBER: str(int(item.SegmentNumber))}
    for keyword, name in (
        ("SegmentAlgorithmType", ALGORITHM_TYPE),
        ("SegmentAlgorithmName", ALGORITHM_NAME),
        ("SegmentDescription", DESCRIPTION),
        ("TrackingID", TRACKING_ID),
        ("TrackingUID", TRACKING_UID),
    ):
        if item.get(keyword):
            properties[name] = str(item.get(keyword))
    lab = item.get("RecommendedDisplayCIELabValue")
    return {
        "name": str(item.get("SegmentLabel") or item.get("SegmentDescription") or ""),
        "color": dicom_lab_to_rgb(lab) if lab is not None and len(lab) == 3 else (0.5, 0.5, 0.5),
        "terminology": terminology_from_item(item),
        "properties": properties,
    }


def coded(segments: list[Segment]) -> list[Segment]:
    """``segments`` with every one that has no terminology coded by its name.

    Codes come from :func:`segio.labels.catalogue.lookup` (``liver``, ``kidney_left``,
    ``vertebrae_L1`` ...); a segment whose name it does not know is written as generic
    Tissue, as before, and ONE warning names them all. The segments given are not
    changed: coded ones are copies.
    """
    from dataclasses import replace

    from segio.labels.catalogue import lookup

    out, generic = [], []
    for segment in segments:
        found = segment.terminology or lookup(segment.name)
        if found is None:
            generic.append(segment.name)
        out.append(segment if found is segment.terminology else replace(segment, terminology=found))
    if generic:
        shown = ", ".join(repr(name) for name in generic[:_NAMED])
        more = f" and {len(generic) - _NAMED} more" if len(generic) > _NAMED else ""
        warnings.warn(
            f"{len(generic)} segment(s) have no code for their name and are written as "
            f"generic Tissue: {shown}{more}; pass -I terminology=FILE (a table with codes) "
            "or set their terminology",
            stacklevel=4,
        )
    return out


def segment_item(segment: Segment, number: int, *, default_algorithm: str = "MANUAL") -> Any:
    """A Segment Sequence item describing ``segment`` as segment ``number``."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from segio.terminology import DEFAULT_TISSUE

    terminology = segment.terminology or DEFAULT_TISSUE
    item = Dataset()
    item.SegmentNumber = number
    item.SegmentLabel = segment.name[:64]
    if segment.properties.get(DESCRIPTION):
        item.SegmentDescription = segment.properties[DESCRIPTION][:64]
    algorithm = segment.properties.get(ALGORITHM_TYPE, default_algorithm).upper()
    item.SegmentAlgorithmType = algorithm
    if algorithm != "MANUAL":
        item.SegmentAlgorithmName = segment.properties.get(ALGORITHM_NAME, "segio")[:64]
    item.SegmentedPropertyCategoryCodeSequence = Sequence([code_item(terminology.category)])
    type_item = code_item(terminology.type)
    if terminology.type_modifier is not None:
        type_item.SegmentedPropertyTypeModifierCodeSequence = Sequence(
            [code_item(terminology.type_modifier)]
        )
    item.SegmentedPropertyTypeCodeSequence = Sequence([type_item])
    if terminology.region is not None:
        region = code_item(terminology.region)
        if terminology.region_modifier is not None:
            region.AnatomicRegionModifierSequence = Sequence(
                [code_item(terminology.region_modifier)]
            )
        item.AnatomicRegionSequence = Sequence([region])
    item.RecommendedDisplayCIELabValue = rgb_to_dicom_lab(segment.color)
    if segment.properties.get(TRACKING_ID) and segment.properties.get(TRACKING_UID):
        item.TrackingID = segment.properties[TRACKING_ID][:64]
        item.TrackingUID = segment.properties[TRACKING_UID]
    return item
