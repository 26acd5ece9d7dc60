"""Write a DICOM RT Structure Set that references its image series.

The labelmap is traced slice by slice on the series' own grid (``to_contours``): in
``midpoint`` and ``edge`` modes no contour passes through a voxel centre, so any even-odd
reader that samples voxel centres gets back exactly the voxels that were written (the
peers that trace through centres lose half a voxel, qurit/rt-utils#86). Holes are
separate nested contours on the same plane (what Eclipse, RayStation and rt-utils write),
or one keyhole contour per region with ``keyhole``.

What DICOM cannot hold exactly (floating-point colours, segment ids, Slicer terminology,
free properties, the exact grid) goes into one private element per ROI and one for the
grid, so that segio reads its own files back without loss; other readers ignore them.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import segio.options as options
from segio.contours import ContourKind, PlanarContours
from segio.converters.resample import onto_grid
from segio.dicom.codes import code_item
from segio.dicom.series import ImageSeries
from segio.errors import ValidationError, WriteError
from segio.fileio.outputs import OutputFiles
from segio.geometry import Geometry
from segio.model import Segment, Segmentation
from segio.points import PointAnnotation
from segio.reference import cited_series
from segio.representations import Representation

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
#: Private block of segio's lossless extras (odd group, creator "segio").
PRIVATE_GROUP = 0x0071
PRIVATE_CREATOR = "segio"
#: Element offsets in the private block: per-ROI JSON, and the grid JSON (top level).
PRIVATE_ROI = 0x01
PRIVATE_GRID = 0x02
#: Decimal places kept in ContourData (mm): far below any voxel, and every value fits DS.
DECIMALS = 5
#: Largest value of an Explicit VR element with a 2-byte length, as DS has.
EXPLICIT_VR_LIMIT = 0xFFFE
#: DICOM defined terms of RT ROI Interpreted Type (C.8.8.8); others are written empty.
INTERPRETED_TYPES = frozenset(
    [
        "EXTERNAL",
        "PTV",
        "CTV",
        "GTV",
        "TREATED_VOLUME",
        "IRRAD_VOLUME",
        "OAR",
        "BOLUS",
        "AVOIDANCE",
        "ORGAN",
        "MARKER",
        "REGISTRATION",
        "ISOCENTER",
        "CONTRAST_AGENT",
        "CAVITY",
        "BRACHY_CHANNEL",
        "BRACHY_ACCESSORY",
        "BRACHY_SRC_APP",
        "BRACHY_CHNL_SHLD",
        "SUPPORT",
        "FIXATION",
        "DOSE_REGION",
        "CONTROL",
        "DOSE_MEASUREMENT",
    ]
)
GENERATION_ALGORITHMS = frozenset({"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"})


def format_ds(points: NDArray[np.float64]) -> bytes:
    """``x\\y\\z\\...`` as DS text (at most 16 characters a value), padded to even length.

    Formatted here, not left to pydicom, so that every value is valid DS whatever its
    magnitude (pydicom refuses a float whose ``str`` exceeds 16 characters) and rounded to
    1e-5 mm, which keeps files small without moving a contour measurably.
    """
    values = np.round(np.asarray(points, dtype=np.float64).ravel(), DECIMALS) + 0.0
    if values.size and float(np.max(np.abs(values))) >= 1e9:
        text = "\\".join(f"{v:.9e}" for v in values.tolist())
    else:
        # The shortest repr of a float rounded to DECIMALS places is that decimal (or an
        # exponent form for tiny values): at most 16 characters below 1e9, and 5x faster
        # than formatting and stripping.
        text = "\\".join(map(repr, values.tolist()))
    data = text.encode("ascii")
    return data + b" " if len(data) % 2 else data


def _flag(value: object) -> bool:
    return options.flag(value) is True  # anything but a yes word is the default, no


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    reference: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    contour_mode: str = "midpoint",
    keyhole: bool | str = False,
    series_description: str | None = None,
    structure_set_label: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> None:
    """Write ``segmentation`` as one RTSTRUCT file at ``path``."""
    from segio.converters.labelmap_to_contours import MODES, to_contours

    if reference is None:
        raise WriteError(
            "an RTSTRUCT must reference the image series it was drawn on",
            path=path,
            hint="pass --reference SERIES_FOLDER (reference= in Python)",
        )
    if contour_mode not in MODES:
        raise ValidationError(
            f"contour_mode must be one of {', '.join(MODES)}, got {contour_mode!r}", path=path
        )
    series = cited_series(reference, "an RTSTRUCT")
    grid = series.geometry
    if segmentation.source_representation is Representation.PLANAR_CONTOURS:
        contoured = segmentation
    else:
        # segio.write has put it there; a direct call may not have.
        labelmap = onto_grid(segmentation, grid, what="the grid of the reference series")
        contoured = to_contours(labelmap, contour_mode, keyhole=_flag(keyhole))
    dataset, roi_contours = _dataset(
        contoured,
        series,
        grid,
        series_description=series_description,
        structure_set_label=structure_set_label,
        series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
        points=segmentation.points,
    )
    _save(dataset, roi_contours, files.stage(path))


def _sequence(items: list[Any]) -> Any:
    from pydicom.sequence import Sequence as DicomSequence

    return DicomSequence(items)


def _image_ref(sop_class: str, sop_instance: str, frame: int | None) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    if frame is not None:
        item.ReferencedFrameNumber = frame
    return item


def _dataset(
    segmentation: Segmentation,
    series: ImageSeries,
    grid: Geometry,
    *,
    series_description: str | None,
    structure_set_label: str | None,
    series_instance_uid: str | None,
    sop_instance_uid: str | None,
    points: Sequence[PointAnnotation] = (),
) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    source = series.dataset
    now = datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(RT_STRUCTURE_SET_STORAGE)
    sop_uid = UID(sop_instance_uid) if sop_instance_uid else generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    names = [s.name for s in segmentation.segments.values()] + [p.name for p in points]
    if not all(name.isascii() for name in names):
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = (
        now.strftime("%Y%m%d"),
        now.strftime("%H%M%S"),
    )
    # Patient and General Study: copied, so the structure set files under the right study.
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ):
        setattr(ds, keyword, source.get(keyword, ""))
    ds.StudyInstanceUID = series.study_instance_uid
    for keyword in ("StudyDescription", "PatientAge", "IssuerOfPatientID"):
        if keyword in source:
            setattr(ds, keyword, source.get(keyword))
    if "SpecificCharacterSet" in source and "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = source.SpecificCharacterSet
    # RT Series and General Equipment.
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = series_instance_uid or generate_uid()
    ds.SeriesNumber = ""
    if series_description:
        ds.SeriesDescription = series_description
    ds.OperatorsName = ""
    ds.Manufacturer = "segio"
    # Structure Set.
    frame_uid = series.frame_of_reference_uid
    if frame_uid is None:
        frame_uid = generate_uid()
        warnings.warn(
            "the series has no Frame of Reference UID; the RTSTRUCT uses a new one",
            stacklevel=4,
        )
    # Frame of Reference module: the same patient space as the images.
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = source.get("PositionReferenceIndicator", "")
    ds.StructureSetLabel = structure_set_label or "RTSTRUCT"
    ds.StructureSetDate, ds.StructureSetTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    images = [
        _image_ref(f.sop_class_uid, f.sop_instance_uid, f.frame_number)
        for f in series.frames
        if f is not None
    ]
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = series.series_instance_uid
    ref_series.ContourImageSequence = _sequence(images)
    ref_study = Dataset()
    ref_study.ReferencedSOPClassUID = (
        "1.2.840.10008.3.1.2.3.1"  # as the standard's examples (retired class)
    )
    ref_study.ReferencedSOPInstanceUID = series.study_instance_uid
    ref_study.RTReferencedSeriesSequence = _sequence([ref_series])
    ref_frame = Dataset()
    ref_frame.FrameOfReferenceUID = frame_uid
    ref_frame.RTReferencedStudySequence = _sequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = _sequence([ref_frame])

    normal = np.cross(grid.direction[:, 0], grid.direction[:, 1])
    step = float(grid.ijk_to_lps[:3, 2] @ normal)
    roi_items, contour_items, observation_items = [], [], []
    explicit = True
    for number, segment in enumerate(segmentation.segments.values(), start=1):
        roi, observation = _roi_items(number, frame_uid, segment, "ORGAN", id=segment.id)
        roi_items.append(roi)
        observation_items.append(observation)
        contours: list[tuple[tuple[str, str, int | None] | None, str, int, bytes]] = []
        for contour in segmentation.contours.get(segment.id, PlanarContours()):
            k = int(np.round(float((contour.points[0] - grid.origin) @ normal) / step))
            frame = series.frames[k] if 0 <= k < len(series.frames) else None
            # The slice is found geometrically: a UID the contour came with may name an
            # image of another series.
            image = (
                (frame.sop_class_uid, frame.sop_instance_uid, frame.frame_number)
                if frame is not None and contour.is_closed
                else None
            )
            data = format_ds(contour.points)
            explicit = explicit and len(data) <= EXPLICIT_VR_LIMIT
            contours.append((image, contour.kind.value, len(contour.points), data))
        contour_items.append((number, [round(c * 255) for c in segment.color], contours))
    # Point annotations: a POINT ROI each (MARKER unless read as another type), one
    # contour of one point per point; points read from one ROI go back to one ROI.
    for number, group in enumerate(point_groups(points), start=len(roi_items) + 1):
        roi, observation = _roi_items(number, frame_uid, group[0], "MARKER")
        roi_items.append(roi)
        observation_items.append(observation)
        marks: _Contours = [
            (None, ContourKind.POINT.value, 1, format_ds(p.position)) for p in group
        ]
        contour_items.append((number, [round(c * 255) for c in group[0].color], marks))
    ds.StructureSetROISequence = _sequence(roi_items)
    ds.RTROIObservationsSequence = _sequence(observation_items)
    grid_json = {"ijk_to_lps": grid.ijk_to_lps.tolist(), "shape": list(grid.shape)}
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(PRIVATE_GRID, "UT", json.dumps(grid_json))
    if not explicit:
        from pydicom.uid import ImplicitVRLittleEndian

        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds, _ElementWriter(implicit=not explicit).roi_contours(contour_items)


def _roi_items(
    number: int,
    frame_uid: str,
    item: Segment | PointAnnotation,
    default_type: str,
    *,
    id: str | None = None,
) -> tuple[Any, Any]:
    """The Structure Set ROI and RT ROI Observations items of a segment or of points.

    What DICOM cannot hold exactly (the colour, the id, Slicer's terminology, free
    properties) goes into segio's private element of the ROI.
    """
    from pydicom.dataset import Dataset

    props = item.properties
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = frame_uid
    roi.ROIName = item.name
    algorithm = props.get("DICOM.ROIGenerationAlgorithm", "").strip().upper()
    roi.ROIGenerationAlgorithm = algorithm if algorithm in GENERATION_ALGORITHMS else ""
    extras = {
        **({"id": id} if id is not None else {}),
        "color": list(item.color),
        "terminology": item.terminology.to_slicer() if item.terminology else None,
        "properties": dict(props),
    }
    block = roi.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(PRIVATE_ROI, "UT", json.dumps(extras, ensure_ascii=True))

    observation = Dataset()
    observation.ObservationNumber = number
    observation.ReferencedROINumber = number
    kind = props.get("DICOM.RTROIInterpretedType", default_type).strip().upper()
    observation.RTROIInterpretedType = kind if kind in INTERPRETED_TYPES else ""
    observation.ROIInterpreter = ""
    if item.terminology is not None:
        # SEG-style meaning in standard attributes (C.8.8.8), for other readers.
        term = item.terminology
        observation.SegmentedPropertyCategoryCodeSequence = _sequence([code_item(term.category)])
        identification = code_item(term.type)
        if term.type_modifier is not None:
            identification.SegmentedPropertyTypeModifierCodeSequence = _sequence(
                [code_item(term.type_modifier)]
            )
        observation.RTROIIdentificationCodeSequence = _sequence([identification])
    return roi, observation


def point_groups(points: Sequence[PointAnnotation]) -> list[list[PointAnnotation]]:
    """Points by ROI, in first-seen order: same name and same ``DICOM.ROINumber`` (as
    read), so an ROI of several POINT contours is written back as one."""
    groups: dict[tuple[str, str | None], list[PointAnnotation]] = {}
    for point in points:
        groups.setdefault((point.name, point.properties.get("DICOM.ROINumber")), []).append(point)
    return list(groups.values())


_Contours = list[tuple[tuple[str, str, int | None] | None, str, int, bytes]]


class _ElementWriter:
    """The ROI Contour Sequence as bytes, little endian, explicit or implicit VR.

    pydicom would build a Dataset per contour and write its 19,000 elements one call at a
    time (most of the write of a 24-structure CT); these are a few fixed layouts of ASCII
    values, so they are packed directly, with defined lengths. The rest of the file is
    pydicom's (see :func:`_save`), and the tests read every file back with pydicom and
    dciodvfy.
    """

    def __init__(self, *, implicit: bool) -> None:
        self.implicit = implicit

    def element(self, tag: int, vr: bytes, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\0" if vr == b"UI" else b" "
        head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
        if self.implicit:
            return head + struct.pack("<I", len(value)) + value
        if vr in (b"SQ", b"UT"):
            return head + vr + b"\0\0" + struct.pack("<I", len(value)) + value
        return head + vr + struct.pack("<H", len(value)) + value

    def sequence(self, tag: int, items: Sequence[bytes]) -> bytes:
        body = b"".join(struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item for item in items)
        return self.element(tag, b"SQ", body)

    def roi_contours(self, rois: list[tuple[int, list[int], _Contours]]) -> bytes:
        """(3006,0039) for ``(ROI number, display colour, contours)`` in ROI order."""
        items = []
        for number, color, contours in rois:
            parts = [self.element(0x3006002A, b"IS", "\\".join(map(str, color)).encode())]
            if contours:
                encoded = [
                    self._contour(n, *contour) for n, contour in enumerate(contours, start=1)
                ]
                parts.append(self.sequence(0x30060040, encoded))
            parts.append(self.element(0x30060084, b"IS", str(number).encode()))
            items.append(b"".join(parts))
        return self.sequence(0x30060039, items)

    def _contour(
        self,
        number: int,
        image: tuple[str, str, int | None] | None,
        kind: str,
        points: int,
        data: bytes,
    ) -> bytes:
        parts = []
        if image is not None:
            sop_class, sop_instance, frame = image
            reference = [
                self.element(0x00081150, b"UI", sop_class.encode()),
                self.element(0x00081155, b"UI", sop_instance.encode()),
            ]
            if frame is not None:
                reference.append(self.element(0x00081160, b"IS", str(frame).encode()))
            parts.append(self.sequence(0x30060016, [b"".join(reference)]))
        parts += [
            self.element(0x30060042, b"CS", kind.encode()),
            self.element(0x30060046, b"IS", str(points).encode()),
            self.element(0x30060048, b"IS", str(number).encode()),
            self.element(0x30060050, b"DS", data),
        ]
        return b"".join(parts)


def _save(dataset: Any, roi_contours: bytes, target: Path) -> None:
    """pydicom's file with the ROI Contour Sequence spliced in before the last element.

    Every top-level element but the RT ROI Observations Sequence sorts before (3006,0039),
    so the sequence goes right before that one, whose bytes are found by encoding it alone.
    """
    import io

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    tags = sorted(dataset.keys())
    last = tags[-1]
    if last != 0x30060080 or any(0x30060039 <= tag < last for tag in tags):
        raise WriteError("internal: unexpected elements after the ROI Contour Sequence")
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    tail = DicomBytesIO()
    tail.is_little_endian = True
    tail.is_implicit_VR = dataset.file_meta.TransferSyntaxUID.is_implicit_VR
    write_data_element(tail, dataset[last], dataset._character_set)
    end = tail.getvalue()
    if not data.endswith(end):
        raise WriteError("internal: the RT ROI Observations Sequence is not the last element")
    target.write_bytes(data[: len(data) - len(end)] + roi_contours + end)
