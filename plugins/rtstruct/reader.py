"""Read a DICOM RT Structure Set into planar contours, or rasterised onto a series grid.

Real structure sets break the rules a reader would like to rely on, so this one relies on
none: the file meta may be absent (pydicom's ``rtstruct.dcm``), ContourImageSequence and
RTReferencedStudySequence are optional and often dangling (MIM), ROIs may have no
ContourSequence (RayStation omits empty ones), and POINT/OPEN contours mark isocentres
and lines, not volumes. POINT contours become point annotations (:mod:`segio.points`),
with their ROI's name, colour, terminology and properties, and an ROI that holds nothing
but points is no segment; OPEN contours are kept as annotations of their segment. Slices
are matched geometrically when rasterising, never by UID.

One rule is not relaxed: ContourData holds (x, y, z) triples, as many as
NumberOfContourPoints says. Anything else is a :class:`ReadError` naming the ROI, not a
contour silently cut to the triples it seems to hold. The file itself is untrusted: read as
a regular file only, a deflated dataset inflated within a limit, sequences nested within a
depth, and every pydicom failure a one-line ReadError (:func:`segio.dicom.series.read_dataset`).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import segio.options as options
from segio.colors import color_for_index
from segio.contours import Contour, ContourKind, PlanarContours
from segio.dicom.codes import code_from_item
from segio.dicom.series import dicom_files, read_dataset
from segio.errors import ReadError, SegioError, reading
from segio.fileio.inputs import open_input, read_input
from segio.geometry import Geometry
from segio.model import Segment, Segmentation, unique_id
from segio.points import PointAnnotation, check_count
from segio.representations import Representation
from segio.terminology import Code, Terminology

from .fastpath import _Contour, _fast_read, _RoiContours

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
PRIVATE_GROUP = 0x0071
PRIVATE_CREATOR = "segio"
PRIVATE_ROI = 0x01
PRIVATE_GRID = 0x02
#: Geometric types read as closed polygons (the last two are vendor variants seen in the wild).
_CLOSED_TYPES = {"CLOSED_PLANAR", "CLOSEDPLANAR_XOR", "CLOSED_PLANAR_XOR"}


def parse_ds(element: Any) -> NDArray[np.float64]:
    """The numbers of a DS element, raw (bytes, parsed by numpy in one go) or converted."""
    value = element.value
    if isinstance(value, bytes | bytearray):
        fields = bytes(value).replace(b"\\", b" ").split()
        return np.array(fields).astype(np.float64) if fields else np.zeros(0)
    if value is None or value == "":
        return np.zeros(0)
    if isinstance(value, str | float | int):
        return np.array([float(value)], dtype=np.float64)
    return np.array([float(v) for v in value], dtype=np.float64)


def find_rtstruct(folder: Path) -> Path:
    """The one RT Structure Set in ``folder`` (recursively); ReadError for none or several.

    Only regular files inside the folder are looked at (no FIFO, device, or link out of it).
    """
    from .register import sniff_rtstruct

    found = []
    for file in dicom_files(folder):
        try:
            with open_input(file) as stream:
                if not sniff_rtstruct(stream.read(4096)):
                    continue
            ds = read_dataset(file, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        except SegioError:  # any unreadable file is simply not the structure set
            continue
        if str(ds.get("SOPClassUID", "")) == RT_STRUCTURE_SET_STORAGE:
            found.append(file)
    if not found:
        raise ReadError("no RT Structure Set in this folder", path=folder)
    if len(found) > 1:
        raise ReadError(
            f"{len(found)} RT Structure Sets in this folder",
            path=folder,
            hint="point to one of: " + ", ".join(p.name for p in found[:5]),
        )
    return found[0]


def read(
    path: Path,
    *,
    reference: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    keep_contours: bool | str = False,
) -> Segmentation:
    """Read an RTSTRUCT file (or the one in a folder).

    Without ``reference`` the contours are the source representation, unless the file
    states the exact grid it was traced on (segio's own files): then they are rasterised
    onto it, which gives back the labelmap that was written. With ``reference`` they are
    rasterised onto that series' grid.
    """
    path = Path(path)
    if path.is_dir():
        path = find_rtstruct(path)
    with reading(path, "RT Structure Set"):  # pydicom raises many types on damaged files
        segmentation, grid = _read(path)
    if reference is not None:  # any image: a DICOM series, NIfTI, NRRD, a segmentation
        from segio.reference import read_reference

        found = read_reference(reference)
        series = found.series
        frame = segmentation.provenance.get("FrameOfReferenceUID")
        if (
            frame
            and series is not None
            and series.frame_of_reference_uid
            and frame != series.frame_of_reference_uid
        ):
            warnings.warn(
                "the structure set and the reference series have different Frame of "
                "Reference UIDs; the contours are placed by their coordinates anyway",
                stacklevel=2,
            )
        grid = found.geometry
    elif options.flag(keep_contours) is True:
        grid = None
    if grid is None:
        return segmentation
    from segio.converters.contours_to_labelmap import to_labelmap

    if segmentation.provenance.get("ManufacturerModelName") == "rt-utils":
        segmentation = _undo_spacing_swap(segmentation, grid, path)
    labelmap = to_labelmap(segmentation, grid)
    labelmap.points = segmentation.points  # points are not rasterised: they stay points
    return labelmap


def _undo_spacing_swap(segmentation: Segmentation, grid: Geometry, path: Path) -> Segmentation:
    """Put back contours that rt-utils stretched by swapping the two pixel spacings.

    rt-utils up to 1.2.7 turns pixels into millimetres with the row and column spacings
    swapped (fixed upstream in qurit/rt-utils 8992c98, not released), so on non-square
    pixels its contours are stretched; its own reader swaps them back. Its vertices are
    voxel centres (``cv.findContours``), so the evidence is exact: only when every vertex
    is off whole pixels on ``grid`` and on whole pixels with the spacings swapped are the
    contours corrected, with a warning.
    """
    col_spacing, row_spacing = float(grid.spacing[0]), float(grid.spacing[1])
    closed = [c for group in segmentation.contours.values() for c in group.closed]
    if np.isclose(col_spacing, row_spacing, rtol=1e-6) or not closed:
        return segmentation
    ijk = grid.points_to_ijk(np.concatenate([c.points for c in closed]))
    ratio = np.array([col_spacing / row_spacing, row_spacing / col_spacing])
    swapped = ijk[:, :2] * ratio
    if not (
        np.abs(ijk[:, :2] - np.round(ijk[:, :2])).max() > 0.01
        and np.abs(swapped - np.round(swapped)).max() < 1e-3
    ):
        return segmentation
    warnings.warn(
        f"{path.name}: rt-utils wrote these contours with the pixel spacings swapped "
        "(qurit/rt-utils 1.2.7); they are put back where the voxels are",
        stacklevel=3,
    )
    fixed = segmentation.copy()
    for group in fixed.contours.values():
        group.contours = [
            Contour(_unswap(c.points, grid, ratio), c.kind, c.image_uid) if c.is_closed else c
            for c in group.contours
        ]
    return fixed


def _unswap(
    points: NDArray[np.float64], grid: Geometry, ratio: NDArray[np.float64]
) -> NDArray[np.float64]:
    ijk = grid.points_to_ijk(points)
    ijk[:, :2] *= ratio
    return grid.ijk_to_points(ijk)


def _open(path: Path) -> tuple[Any, list[_RoiContours] | None]:
    """The dataset, and its ROI Contour Sequence when the fast path could read it.

    When it could, the dataset is a :class:`segio.dicom.walker.Header` (see
    :func:`_fast_read`); otherwise pydicom's Dataset, contours and all.
    """
    from segio.dicom.walker import fast_path, inflated_part10

    data = read_input(path)
    if len(data) < 16:
        raise ReadError("file too short to be DICOM", path=path)
    data = inflated_part10(data, path)
    fast = _fast_read(data, path) if fast_path() else None
    if fast is not None:
        return _checked(fast[0], path), fast[1]
    return _checked(read_dataset(path, data=data, force=True), path), None


def _checked(ds: Any, path: Path) -> Any:
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class != RT_STRUCTURE_SET_STORAGE and ds.get("Modality") != "RTSTRUCT":
        raise ReadError("not an RT Structure Set", path=path)
    if "StructureSetROISequence" not in ds:
        raise ReadError("the structure set has no StructureSetROISequence", path=path)
    return ds


def _private(item: Any, element: int) -> dict[str, Any] | None:
    """segio's JSON extras in ``item``, or None (absent, or not segio's)."""
    if isinstance(item, dict):  # a dicomfast.Header
        from segio.dicom.walker import private_value

        value = private_value(item, PRIVATE_GROUP, PRIVATE_CREATOR, element)
        if value is None:
            return None
    else:
        try:
            value = item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[element].value
        except (KeyError, ValueError):
            return None
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        parsed = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _grid(ds: Any) -> Geometry | None:
    """The exact grid segio traced the contours on, when it wrote the file."""
    extras = _private(ds, PRIVATE_GRID)
    if extras is None:
        return None
    try:
        return Geometry(extras["ijk_to_lps"], extras["shape"])
    except (KeyError, TypeError, ValueError, SegioError):
        return None


def _pydicom_contours(ds: Any) -> list[_RoiContours]:
    """The ROI Contour Sequence through pydicom: the reference the fast path must match."""
    result: list[_RoiContours] = []
    for item in ds.get("ROIContourSequence", []):
        number = int(item.get("ReferencedROINumber", -1))
        color = list(item.ROIDisplayColor) if "ROIDisplayColor" in item else None
        contours: list[_Contour] = []
        for c in item.get("ContourSequence", []) or []:
            kind_text = str(c.get("ContourGeometricType", "")).strip().upper()
            element = c.get_item(0x30060050)
            points = parse_ds(element) if element is not None else np.zeros(0)
            images = c.get("ContourImageSequence") or []
            image_uid = str(images[0].get("ReferencedSOPInstanceUID", "")) if images else ""
            count = c.get("NumberOfContourPoints")
            declared = int(count) if count not in (None, "") else None
            contours.append((kind_text, points, image_uid, declared))
        result.append((number, color, contours))
    return result


def _triples(
    values: NDArray[np.float64], declared: int | None, where: str, path: Path
) -> NDArray[np.float64]:
    """ContourData as (N, 3) points; ReadError unless it holds the triples it declares."""
    if len(values) % 3:
        raise ReadError(
            f"{where}: its ContourData holds {len(values)} numbers, not (x, y, z) triples",
            path=path,
            hint="the file is corrupt: segio does not guess which coordinate is missing",
        )
    if declared is not None and declared * 3 != len(values):
        raise ReadError(
            f"{where}: NumberOfContourPoints is {declared} but its ContourData holds "
            f"{len(values) // 3} points",
            path=path,
            hint="the file is corrupt: segio does not guess which of the two is right",
        )
    return values.reshape(-1, 3)


def _roi_names(ds: Any) -> dict[int, str]:
    """ROI number -> name, to say which ROI a broken contour belongs to."""
    names: dict[int, str] = {}
    for index, roi in enumerate(ds.StructureSetROISequence):
        try:
            names.setdefault(int(roi.get("ROINumber", index + 1)), str(roi.get("ROIName", "")))
        except (TypeError, ValueError, OverflowError):
            continue
    return names


def _read(path: Path) -> tuple[Segmentation, Geometry | None]:
    ds, roi_contours = _open(path)
    if roi_contours is None:
        roi_contours = _pydicom_contours(ds)
    names = _roi_names(ds)
    colors: dict[int, list[Any]] = {}
    contour_sets: dict[int, PlanarContours] = {}
    point_sets: dict[int, list[tuple[NDArray[np.float64], str | None]]] = {}
    skipped: dict[str, int] = {}
    annotations = point_count = 0
    for number, display, items in roi_contours:
        if display is not None:
            colors[number] = display
        contours: list[Contour] = []
        for position, (kind_text, values, image_uid, declared) in enumerate(items, start=1):
            where = f"ROI {number} ({names.get(number, '')!r}), contour {position}"
            points = _triples(values, declared, where, path)
            if kind_text in _CLOSED_TYPES:
                kind = ContourKind.CLOSED_PLANAR
            elif kind_text in ContourKind.__members__:
                kind = ContourKind[kind_text]
            else:
                skipped[kind_text or "(none)"] = skipped.get(kind_text or "(none)", 0) + 1
                continue
            if not len(points):
                skipped[f"{kind_text} with {len(points)} point(s)"] = (
                    skipped.get(f"{kind_text} with {len(points)} point(s)", 0) + 1
                )
                continue
            if not np.all(np.isfinite(points)):
                skipped["non-finite"] = skipped.get("non-finite", 0) + 1
                continue
            if kind is ContourKind.POINT:
                point_count += len(points)
                check_count(point_count, path)
                point_sets.setdefault(number, []).append((points, image_uid or None))
                continue
            if kind is not ContourKind.CLOSED_PLANAR:
                annotations += 1
            contours.append(Contour(points, kind, image_uid or None))
        contour_sets.setdefault(number, PlanarContours()).contours.extend(contours)
    observations: dict[int, Any] = {}
    for item in ds.get("RTROIObservationsSequence", []):
        observations.setdefault(int(item.get("ReferencedROINumber", -1)), item)

    segments: list[Segment] = []
    marks: list[PointAnnotation] = []
    taken: set[str] = set()  # the ids given so far (a set: naming n ROIs stays linear)
    contours_by_id: dict[str, PlanarContours] = {}
    frames: set[str] = set()
    for index, roi in enumerate(ds.StructureSetROISequence):
        number = int(roi.get("ROINumber", index + 1))
        extras = _private(roi, PRIVATE_ROI) or {}
        name = str(roi.get("ROIName", "") or f"ROI {number}")
        properties: dict[str, str]
        if isinstance(extras.get("properties"), dict):
            properties = {str(k): str(v) for k, v in extras["properties"].items()}
        else:
            properties = {"DICOM.ROINumber": str(number)}
            algorithm = str(roi.get("ROIGenerationAlgorithm", "") or "")
            if algorithm:
                properties["DICOM.ROIGenerationAlgorithm"] = algorithm
            observation = observations.get(number)
            if observation is not None and observation.get("RTROIInterpretedType"):
                properties["DICOM.RTROIInterpretedType"] = str(observation.RTROIInterpretedType)
        if "ReferencedFrameOfReferenceUID" in roi:
            frames.add(str(roi.ReferencedFrameOfReferenceUID))
        color = _color(extras.get("color"), colors.get(number), index)
        terminology = None
        if isinstance(extras.get("terminology"), str):
            try:
                terminology = Terminology.from_slicer(extras["terminology"])
            except (SegioError, ValueError):
                terminology = None
        if terminology is None and not extras:
            terminology = _terminology(observations.get(number))
        for points, drawn_on in point_sets.get(number, []):
            marks += [
                PointAnnotation(name, point, color, terminology, drawn_on, properties)
                for point in points
            ]
        if number in point_sets and not contour_sets[number].contours:
            continue  # a POINT (marker, isocentre) ROI: its points, not an empty segment
        wanted = extras.get("id")
        segment_id = (
            wanted
            if isinstance(wanted, str) and wanted and wanted not in taken
            else unique_id(str(number), taken)
        )
        taken.add(segment_id)
        segments.append(
            Segment(segment_id, name, color, terminology=terminology, properties=properties)
        )
        contours_by_id[segment_id] = contour_sets.get(number, PlanarContours())
    if skipped:
        detail = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
        warnings.warn(f"{path.name}: contours skipped: {detail}", stacklevel=3)
    if annotations:
        warnings.warn(
            f"{path.name}: {annotations} OPEN contour(s) kept as annotations "
            "(not part of any volume)",
            stacklevel=3,
        )
    provenance = {
        "SOPInstanceUID": str(ds.get("SOPInstanceUID", "")),
        "SeriesInstanceUID": str(ds.get("SeriesInstanceUID", "")),
        "StudyInstanceUID": str(ds.get("StudyInstanceUID", "")),
    }
    if len(frames) == 1:
        provenance["FrameOfReferenceUID"] = frames.pop()
    if ds.get("ManufacturerModelName"):
        provenance["ManufacturerModelName"] = str(ds.ManufacturerModelName)
    referenced = _referenced_series(ds)
    if referenced:
        provenance["ReferencedSeriesInstanceUID"] = referenced
    segmentation = Segmentation(
        segments,
        source_representation=Representation.PLANAR_CONTOURS,
        contours=contours_by_id,
        provenance=provenance,
        reference_geometry=_grid(ds),
        points=marks,
    )
    return segmentation, segmentation.reference_geometry


def _code(item: Any) -> Code | None:
    """The item's code, or None for an incomplete one (readers are lenient)."""
    try:
        return code_from_item(item)
    except SegioError:
        return None


def _terminology(observation: Any) -> Terminology | None:
    """Category and type codes of an RT ROI Observations item, when it has both."""
    if observation is None:
        return None
    categories = observation.get("SegmentedPropertyCategoryCodeSequence") or []
    types = observation.get("RTROIIdentificationCodeSequence") or []
    if not categories or not types:
        return None
    category, kind = _code(categories[0]), _code(types[0])
    if category is None or kind is None:
        return None
    modifiers = types[0].get("SegmentedPropertyTypeModifierCodeSequence") or []
    modifier = _code(modifiers[0]) if modifiers else None
    try:
        return Terminology(category, kind, type_modifier=modifier)
    except SegioError:
        return None


def _referenced_series(ds: Any) -> str:
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []) or []:
        for study in frame.get("RTReferencedStudySequence", []) or []:
            for series in study.get("RTReferencedSeriesSequence", []) or []:
                if "SeriesInstanceUID" in series:
                    return str(series.SeriesInstanceUID)
    return ""


def _color(exact: Any, display: list[Any] | None, index: int) -> tuple[float, float, float]:
    """segio's exact colour, else ROIDisplayColor (0-255), else the palette colour."""
    if isinstance(exact, list) and len(exact) == 3:
        try:
            rgb = tuple(float(c) for c in exact)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) == 3 and all(0.0 <= c <= 1.0 for c in rgb):
            return (rgb[0], rgb[1], rgb[2])
    if display is not None and len(display) == 3:
        try:
            values = [min(max(float(c), 0.0), 255.0) / 255.0 for c in display]
            return (values[0], values[1], values[2])
        except (TypeError, ValueError):
            pass
    return color_for_index(index + 1)
