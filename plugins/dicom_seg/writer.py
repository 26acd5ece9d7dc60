"""DICOM SEG writer: BINARY, LABELMAP and FRACTIONAL Segmentation objects, fast.

Why segio writes SEG itself instead of calling highdicom: highdicom builds a pydicom
Dataset per frame and encodes frame by frame, which takes seconds for a CT with tens of
segments (thousands of frames). This writer builds the same object with pydicom but does
each piece of work once: pixels are selected, bit-packed and RLE-encoded block-wise with
numpy, and every Per-Frame Functional Groups item is joined from elements pydicom encoded
once per slice and per segment (:mod:`.encode`). The file is streamed to disk, so memory
stays near one block of frames.

What it writes, after PS3.3 A.51 / C.8.20 and Supplement 243 (spec
``dicom-seg-and-rtstruct.md`` §1, §3): the grid of the source series (a segmentation
elsewhere is moved onto it: by index when it shares the lattice, else nearest neighbour
with a warning); per frame, a reference to its source
image; patient, study and frame of reference copied from the source (a series without
its UIDs is refused: :func:`segio.reference.cited_series`); segments numbered
1..N in segment order with their codes and CIELab colours (:func:`.segments.segment_item`;
a segment without codes is coded by its name, :func:`.segments.coded`).
LABELMAP pixels are segment numbers; 0 is background, declared as Pixel Padding Value and
as segment 0 "Background" (DCM 125040), as highdicom and dcmqi write it. Empty frames are
left out unless asked for. Fields a SEG reader kept in ``extras["dicom-seg"]`` (content
label, description, creator, series description and number, fractional type) are written
back unless an option says otherwise.

Transfer syntaxes: Explicit VR Little Endian (``none``), Deflated Explicit VR Little
Endian (``deflate``), RLE Lossless, JPEG-LS Lossless, JPEG 2000 Lossless. 1-bit BINARY
frames take only ``none``, ``deflate`` and ``jpeg2000``: the layout of 1-bit RLE frames is
still being settled (pydicom PRs #2216, #2266; highdicom refuses it) and JPEG-LS has no
1-bit mode.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import segio.options as options
from segio.converters.resample import onto_grid
from segio.dicom.series import ImageSeries
from segio.errors import WriteError
from segio.fileio.outputs import OutputFiles
from segio.model import Segment, Segmentation
from segio.reference import cited_series
from segio.terminology import Code, Terminology

from . import elements, encode
from .segments import ALGORITHM_NAME, coded, segment_item

SEG_TYPES = ("binary", "labelmap", "fractional")
BINARY_SYNTAXES = ("none", "deflate", "jpeg2000")
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
ALGORITHM_TYPES = ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")
BACKGROUND = Code("DCM", "125040", "Background")
#: Patient, study and frame of reference attributes copied from the source (Type 2 ones
#: always, empty when the source has none) and optional ones copied when present.
TYPE2_COPIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)  # fmt: skip
OPTIONAL_COPIED = (
    "IssuerOfPatientID", "OtherPatientIDsSequence", "PatientAge", "PatientSize", "PatientWeight",
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "StudyDescription", "IssuerOfAccessionNumberSequence", "ClinicalTrialSponsorName",
    "ClinicalTrialProtocolID", "ClinicalTrialProtocolName", "ClinicalTrialSiteID",
    "ClinicalTrialSiteName", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
    "ClinicalTrialTimePointID", "ClinicalTrialTimePointDescription",
)  # fmt: skip
#: Series-level fields of ``extras["dicom-seg"]`` written back as they are.
EXTRAS_COPIED = ("BodyPartExamined", "ClinicalTrialSeriesID", "ClinicalTrialCoordinatingCenterName")
_CODE_STRING = re.compile(r"[A-Z0-9_ ]{1,16}")
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
_TEXT_VRS = ("SH", "LO", "ST", "LT", "UT", "UC", "PN")


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    reference: Any = None,
    seg_type: str = "binary",
    compression: str = "none",
    omit_empty_frames: bool | str = True,
    series_description: str | None = None,
    series_number: int | str | None = None,
    content_label: str | None = None,
    content_description: str | None = None,
    content_creator: str | None = None,
    algorithm_type: str | None = None,
    algorithm_name: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    manufacturer: str | None = None,
) -> None:
    """Write ``segmentation`` as one DICOM SEG instance that references ``reference``."""
    try:
        kind = _choice(seg_type or "binary", SEG_TYPES, "seg_type")
        codec = _choice(compression or "none", tuple(encode.SYNTAXES), "compression")
        if kind == "binary" and codec not in BINARY_SYNTAXES:
            raise WriteError(
                f"a BINARY SEG (1 bit per pixel) cannot be compressed with {codec}",
                hint=f"use compression {', '.join(BINARY_SYNTAXES)}, or seg_type=labelmap "
                f"or fractional (8-bit frames) with {codec}",
            )
        omit = _flag(omit_empty_frames, "omit_empty_frames")
        extras = segmentation.extras.get("dicom-seg", {})
        algorithm = _choice(algorithm_type, ALGORITHM_TYPES, "algorithm_type") or (
            "AUTOMATIC" if algorithm_name else "MANUAL"
        )
        fields = {
            "SeriesDescription": series_description or extras.get("SeriesDescription"),
            "SeriesNumber": _series_number(series_number, extras.get("SeriesNumber")),
            "ContentLabel": _content_label(content_label, extras.get("ContentLabel")),
            "ContentDescription": content_description or extras.get("ContentDescription") or "",
            "ContentCreatorName": content_creator or extras.get("ContentCreatorName") or "",
            "SeriesInstanceUID": _uid(series_instance_uid, "series_instance_uid"),
            "SOPInstanceUID": _uid(sop_instance_uid, "sop_instance_uid"),
            "Manufacturer": manufacturer or "segio",
            **{keyword: extras[keyword] for keyword in EXTRAS_COPIED if extras.get(keyword)},
        }
    except WriteError as exc:
        raise WriteError(exc.reason, path=path, hint=exc.hint) from None
    segments = list(segmentation.segments.values())
    if not segments:
        raise WriteError("the segmentation has no segment; a DICOM SEG needs one", path=path)
    if len(segments) > 65535:
        raise WriteError(f"{len(segments)} segments: a SEG holds at most 65535", path=path)
    if reference is None:
        raise WriteError(
            "DICOM SEG needs the source image series it segments",
            path=path,
            hint="pass the series folder or files: --reference DIR on the command line, "
            "reference=DIR in Python",
        )
    series = cited_series(reference, "a DICOM SEG")
    grid = series.geometry
    if codec == "jpeg2000" and min(grid.shape[1:]) < 32:
        raise WriteError(
            f"JPEG 2000 cannot encode frames of {grid.shape[1]} x {grid.shape[2]} pixels "
            "(openjpeg needs at least 32 x 32)",
            path=path,
            hint="use compression none, deflate or rle",
        )
    # segio.write has put it there; a direct call may not have.
    segmentation = onto_grid(segmentation, grid, what="the grid of the reference series")
    segments = list(segmentation.segments.values())

    sources = [_source(segmentation, s) for s in segments]
    fractions = kind == "fractional"
    present, unclean = encode.presence(sources, any_fraction=fractions)
    has_source = np.array([frame is not None for frame in series.frames])
    _check_gaps(present, has_source, segments, path)
    pair = encode.overlap(sources, present, any_fraction=fractions)
    if pair is not None and kind == "labelmap":
        raise WriteError(
            f"segments {segments[pair[0]].name!r} and {segments[pair[1]].name!r} overlap; "
            "a LABELMAP SEG holds one segment per pixel",
            path=path,
            hint="use seg_type=binary",
        )
    wanted = present & has_source if omit else np.broadcast_to(has_source, present.shape)
    if kind == "labelmap":
        wanted = wanted.any(axis=0, keepdims=True)
    if not wanted.any():  # nothing to show: keep every frame, as highdicom does
        wanted = np.broadcast_to(has_source, wanted.shape)
    frames = [(int(i), int(k)) for i, k in zip(*np.nonzero(wanted), strict=True)]

    bits = 1 if kind == "binary" else 8 if fractions or len(segments) < 256 else 16
    max_value = _max_fraction(segmentation) if fractions else 255
    items = [
        _segment_item(s, n, algorithm, algorithm_name) for n, s in enumerate(coded(segments), 1)
    ]
    if kind == "labelmap":
        black = (0.0, 0.0, 0.0)
        background = Segment("Background", "Background", black, Terminology(BACKGROUND, BACKGROUND))
        items.insert(0, segment_item(background, 0))
    dataset = _dataset(kind, series, items, frames, bits, fields)
    dataset.SegmentsOverlap = "NO" if kind == "labelmap" or pair is None else "YES"
    if fractions:
        occupancy = str(extras.get("SegmentationFractionalType")).upper() == "OCCUPANCY"
        dataset.SegmentationFractionalType = "OCCUPANCY" if occupancy else "PROBABILITY"
        dataset.MaximumFractionalValue = max_value
    if _needs_utf8(dataset):
        dataset.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, declared only when needed
    rows, columns = grid.shape[1:]
    per_block = encode.block_frames(rows * columns * (2 if bits == 16 else 1))
    if codec == "rle":
        per_block = max(1, encode.RLE_BLOCK_PIXELS // (rows * columns))
    dtype = bool if bits == 1 else np.uint16 if bits == 16 else np.uint8
    blocks = encode.frame_blocks(
        kind, sources, frames, dtype, per_block=per_block, max_value=max_value, unclean=unclean
    )
    instances = {f.sop_instance_uid: f.sop_class_uid for f in series.frames if f is not None}
    raw = elements.references(series.series_instance_uid, instances)
    positions = grid.slice_positions()
    raw[0x52009230] = elements.per_frame_groups(kind, frames, series.frames, positions)
    with Path(files.stage(path)).open("wb") as handle:
        encode.save(handle, dataset, raw, blocks, codec, bits)


# -- options ---------------------------------------------------------------------------------


def _choice(value: Any, allowed: Sequence[str], name: str) -> Any:
    """``value`` as one of ``allowed`` (case-insensitive); None stays None."""
    if value is None:
        return None
    found = options.choice(value, allowed)
    if found is None:
        raise WriteError(f"unknown {name} {value!r}", hint=f"use one of {', '.join(allowed)}")
    return found


def _flag(value: bool | str, name: str) -> bool:
    result = options.flag(value)
    if result is None:
        raise WriteError(f"{name} must be true or false, got {value!r}")
    return result


def _series_number(value: int | str | None, kept: str | None) -> int:
    if value is None:
        text = str(kept or "").strip()
        return int(text) if text.isdigit() and int(text) < 2**31 else 1000
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if not 0 <= number < 2**31:
        raise WriteError(f"series_number must be a whole number, got {value!r}")
    return number


def _content_label(value: str | None, kept: str | None) -> str:
    """The Content Label: a valid Code String (upper case, at most 16 characters)."""
    if value is None:
        kept_label = str(kept or "").strip().upper()
        return kept_label if _CODE_STRING.fullmatch(kept_label) else "SEGMENTATION"
    label = str(value).strip().upper()
    if not _CODE_STRING.fullmatch(label):
        raise WriteError(
            f"content_label {value!r} is not a DICOM code string",
            hint="use up to 16 letters, digits, spaces or underscores, e.g. LIVER_SEG",
        )
    return label


def _uid(value: str | None, name: str) -> str:
    from pydicom.uid import generate_uid

    if value is None:
        return str(generate_uid())
    uid = str(value).strip()
    if len(uid) > 64 or not _UID.fullmatch(uid):
        raise WriteError(f"{name} {value!r} is not a valid DICOM UID")
    return uid


# -- segments and checks ------------------------------------------------------------------------


def _source(segmentation: Segmentation, segment: Segment) -> encode.Source:
    layer = segmentation.layers[segment.layer]
    if layer.max_fraction is None:
        return encode.Source(layer.array, segment.label_value)
    half = max(1, (layer.max_fraction + 1) // 2)  # as Segmentation.mask: at least half inside
    return encode.Source(layer.array, 1, threshold=half, max_fraction=layer.max_fraction)


def _max_fraction(segmentation: Segmentation) -> int:
    """Maximum Fractional Value: the layers' own when they share one that fits 8 bits."""
    maxima = {layer.max_fraction for layer in segmentation.layers}
    if len(maxima) == 1:
        (only,) = maxima
        if only is not None and only <= 255:
            return only
    if any(m is not None and m > 255 for m in maxima):
        warnings.warn(
            "fractions are rescaled to 0..255, the 8 bits of a FRACTIONAL SEG", stacklevel=4
        )
    return 255


def _segment_item(segment: Segment, number: int, algorithm: str, name: str | None) -> Any:
    item = segment_item(segment, number, default_algorithm=algorithm)
    if name and item.SegmentAlgorithmType != "MANUAL" and ALGORITHM_NAME not in segment.properties:
        item.SegmentAlgorithmName = str(name)[:64]
    return item


def _check_gaps(
    present: NDArray[np.bool_], has_source: NDArray[np.bool_], segments: list[Segment], path: Path
) -> None:
    """Voxels on grid slices without a source image cannot be referenced: refuse them."""
    stray = present & ~has_source
    if stray.any():
        slices = np.flatnonzero(stray.any(axis=0)).tolist()
        names = [segments[i].name for i in np.flatnonzero(stray.any(axis=1))]
        raise WriteError(
            f"segment(s) {', '.join(map(repr, names[:5]))} have voxels on slice(s) "
            f"k = {', '.join(map(str, slices[:10]))}, where the reference series has no "
            "image (a gap in its slice spacing); every SEG frame must reference one",
            path=path,
            hint="clear those slices or use the complete series",
        )


# -- the dataset ---------------------------------------------------------------------------------


def _dataset(
    kind: str,
    series: ImageSeries,
    items: list[Any],
    frames: list[tuple[int, int]],
    bits: int,
    fields: dict[str, Any],
) -> Any:
    """Every attribute but the Per-Frame Functional Groups and the Pixel Data."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    from segio._version import __version__

    source = series.dataset
    grid = series.geometry
    now = datetime.datetime.now()
    ds = Dataset()
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID = LABELMAP_SEGMENTATION_STORAGE if kind == "labelmap" else SEGMENTATION_STORAGE
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for keyword in TYPE2_COPIED:
        setattr(ds, keyword, source.get(keyword, ""))
    for keyword in OPTIONAL_COPIED:
        if keyword in source:
            setattr(ds, keyword, source[keyword].value)
    ds.StudyInstanceUID = series.study_instance_uid
    ds.Modality = "SEG"
    ds.InstanceNumber = 1
    ds.ManufacturerModelName = "segio"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = __version__
    for keyword, value in fields.items():
        if value is not None:
            setattr(ds, keyword, value if isinstance(value, int) else str(value)[:64])
    if series.frame_of_reference_uid:
        ds.FrameOfReferenceUID = series.frame_of_reference_uid
        ds.PositionReferenceIndicator = source.get("PositionReferenceIndicator", "")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PresentationLUTShape = "IDENTITY"
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.NumberOfFrames = len(frames)
    ds.SegmentationType = kind.upper()
    if kind == "labelmap":
        ds.add_new(0x00280120, "US", 0)  # Pixel Padding Value: the background
    ds.SegmentSequence = items
    normal = np.cross(grid.direction[:, 0], grid.direction[:, 1])
    measures = Dataset()
    measures.PixelSpacing = [elements.ds(grid.spacing[1]), elements.ds(grid.spacing[0])]
    measures.SliceThickness = elements.ds(float(source.get("SliceThickness") or grid.spacing[2]))
    measures.SpacingBetweenSlices = elements.ds(abs(float(grid.ijk_to_lps[:3, 2] @ normal)))
    orientation = Dataset()
    orientation.ImageOrientationPatient = [elements.ds(v) for v in grid.image_orientation()]
    shared = Dataset()
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    organization = str(generate_uid())
    ds.DimensionOrganizationSequence = [Dataset()]
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = organization
    pointers = [] if kind == "labelmap" else [(0x0062000B, 0x0062000A, "Referenced Segment Number")]
    pointers.append((0x00200032, 0x00209113, "Image Position Patient"))
    ds.DimensionIndexSequence = [Dataset() for _ in pointers]
    for index, (pointer, group, label) in zip(ds.DimensionIndexSequence, pointers, strict=True):
        index.DimensionOrganizationUID = organization
        index.DimensionIndexPointer = pointer
        index.FunctionalGroupPointer = group
        index.DimensionDescriptionLabel = label
    steps = np.diff([k for _, k in frames])
    if kind == "labelmap" and (steps.size == 0 or np.all(steps == steps[0])):
        ds.DimensionOrganizationType = "3D"
    return ds


def _needs_utf8(ds: Any) -> bool:
    """True when a text value (nested ones included) is not plain ASCII."""
    for element in ds.iterall():
        if element.VR in _TEXT_VRS and element.VM:
            values = element.value if element.VM > 1 else [element.value]
            if not all(str(value).isascii() for value in values):
                return True
    return False
