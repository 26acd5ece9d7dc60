"""Which ``.seg.nrrd`` layout a header is: its keys in today's names, and its space.

Two layouts that 3D Slicer no longer writes need more than lenient key parsing
(spec ``shared/specs/seg-nrrd-and-model.md`` §1.9):

* **SlicerRT, before the code moved into Slicer (2016).** Keys had no ``Segment``
  prefix: ``0ID``, ``0Name``, ``0DefaultColor``, ``0DisplayedColor`` (the display colour
  and 3D opacity), ``0Extent``, ``0Tags``, and ``Extent``, ``MasterRepresentation``,
  ``ConversionParameters``, ``ContainedRepresentationNames`` for the segmentation
  (``SlicerRt/SlicerRT:Segmentations/MRML/vtkMRMLSegmentationStorageNode.cxx``). They are
  renamed here to today's keys, so the rest of the reader needs no second code path.
* **The "4D spatial" files of SlicerRT and Slicer 2016-07** were written through ITK as an
  ``itk::Image<unsigned char, 4>``: the 4th axis is the segment index, and ITK writes
  ``space dimension: 4`` rather than a ``space`` (it names LPS only for 3 dimensions).
  The numbers are Slicer's RAS ones: Slicer read them back with ITK and used them as RAS
  (``ReadBinaryLabelmapRepresentation4DSpatial``). Read as LPS they come out mirrored
  left-right and front-back.

Other files without a ``space`` field are ambiguous: current Slicer (through ITK) takes
the numbers as LPS, while every Slicer before November 2019 held RAS. The reader then
warns, saying which space it assumed and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .nrrdfile import NrrdHeader

#: SlicerRT's per-segment keys: ``<index><Key>``.
_SLICERRT_SEGMENT_KEY = re.compile(r"(\d+)([A-Za-z]\w*)\Z")
#: SlicerRT's segmentation-level keys, which Slicer later prefixed with ``Segmentation_``.
_SLICERRT_SEGMENTATION_KEYS = (
    "Extent",
    "MasterRepresentation",
    "ConversionParameters",
    "ContainedRepresentationNames",
)
_SEGMENT_KEY = re.compile(r"Segment(\d+)_(\w+)\Z")
_FIX = (
    "if the segments come out mirrored left-right and front-back, give the header "
    "'space: {other}' (in place of any 'space dimension')"
)


@dataclass(frozen=True)
class Layout:
    """What a header's layout says.

    ``key_values`` use today's key names. ``ras`` is True when the space numbers are RAS
    although the header names no space. ``note`` is the warning to give when the space
    was inferred rather than known.
    """

    key_values: dict[str, str]
    ras: bool = False
    note: str | None = None


def identify(header: NrrdHeader) -> Layout:
    """The layout of a header (before its payload is read)."""
    keys = header.key_values
    slicerrt = is_slicerrt(keys)
    if slicerrt:
        keys = from_slicerrt(keys)
    if "space" in header.fields or not _is_segmentation(keys):
        return Layout(keys)
    path = header.path
    if slicerrt or "Segmentation_Extent" in keys:
        # Certain: only the ITK writers of SlicerRT and Slicer 2016-07 wrote these keys,
        # and they never wrote a space.
        return Layout(keys, ras=True)
    evidence = _old_evidence(header, keys)
    if evidence:
        fix = _FIX.format(other="left-posterior-superior")
        note = (
            f"{path}: the header names no 'space'; read as RAS, as 3D Slicer held the "
            f"numbers of files with {evidence} (2016); {fix}"
        )
        return Layout(keys, ras=True, note=note)
    fix = _FIX.format(other="right-anterior-superior")
    note = (
        f"{path}: the header names no 'space'; read as LPS, as current 3D Slicer and ITK do "
        f"(a 3D Slicer before November 2019 held RAS); {fix}"
    )
    return Layout(keys, note=note)


def is_slicerrt(keys: Mapping[str, str]) -> bool:
    """SlicerRT's layout: ``0ID`` and no ``Segment``-prefixed key."""
    return "0ID" in keys and not any(_SEGMENT_KEY.match(key) for key in keys)


def from_slicerrt(keys: Mapping[str, str]) -> dict[str, str]:
    """SlicerRT's keys under today's names.

    ``NDisplayedColor`` ("r g b opacity") was the colour the user saw (the display
    node's, which a recolouring changed) rather than the segment's default: its RGB
    becomes ``SegmentN_Color``; the key itself is kept (a segment property).
    """
    renamed: dict[str, str] = {}
    for key, value in keys.items():
        match = _SLICERRT_SEGMENT_KEY.match(key)
        if match:
            renamed[f"Segment{int(match[1])}_{match[2]}"] = value
        elif key in _SLICERRT_SEGMENTATION_KEYS:
            renamed[f"Segmentation_{key}"] = value
        else:
            renamed[key] = value
    for key, value in list(renamed.items()):
        match = _SEGMENT_KEY.match(key)
        if match and match[2] == "DisplayedColor":
            rgb = value.split()[:3]
            if len(rgb) == 3:
                renamed.setdefault(f"Segment{match[1]}_Color", " ".join(rgb))
    return renamed


def _is_segmentation(keys: Mapping[str, str]) -> bool:
    return any(_SEGMENT_KEY.match(key) or key.startswith("Segmentation_") for key in keys)


def _old_evidence(header: NrrdHeader, keys: Mapping[str, str]) -> str:
    """What dates a file without a space to 2016, when Slicer held RAS numbers ('' if
    nothing does)."""
    fields = dict.fromkeys(m[2] for key in keys if (m := _SEGMENT_KEY.match(key)))
    if "DefaultColor" in fields and "Color" not in fields:
        return "SegmentN_DefaultColor and no SegmentN_Color"
    if header.fields.get("space dimension", "").strip() == "4":
        return "a 4th spatial axis (ITK's 4D image)"
    return ""
