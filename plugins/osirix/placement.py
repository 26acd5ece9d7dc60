"""Place OsiriX ROIs in LPS mm and group them into one segmentation.

Millimetre points (``Point_mm``, ``ROI3DPoints``) are DICOM patient coordinates already.
Pixel points (ROI SR archives, Horos ROI-window XML) go through the image they were drawn
on, with OsiriX's pixel-corner rule: pixel (0, 0) spans [0, 1) so its centre is at
(0.5, 0.5), and ``mm = IPP + (x - 0.5)·Δc·row + (y - 0.5)·Δr·col`` (horos ``DCMPix.m``).
The image is found in the ``reference`` series by its SOP Instance UID; the viewer's image
index (``ImageIndex``, ``Slice``) is never trusted, it depends on the viewer's sort.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.colors import color_for_index
from segio.contours import Contour, ContourKind, PlanarContours
from segio.errors import ReadError
from segio.geometry import Geometry
from segio.model import UNPLACED, UNPLACED_ROIS, Segment, Segmentation
from segio.points import PointAnnotation, check_count
from segio.representations import Representation

from .rois import Roi, kind_of, type_name

#: How far (mm) a contour may lie from the plane of the image it cites before a warning.
PLANE_TOLERANCE = 0.01


def _uid_slices(series: Any) -> dict[str, int | None]:
    """SOP Instance UID -> slice k; None for a multi-frame instance (ROIs name no frame)."""
    result: dict[str, int | None] = {}
    for k, frame in enumerate(series.frames):
        if frame is not None:
            uid = frame.sop_instance_uid
            result[uid] = None if uid in result else k
    return result


def place(roi: Roi, series: Any, path: Path, slices: dict[str, int | None]) -> NDArray[np.float64]:
    """The ROI's points in LPS mm (see the module docstring for the rules)."""
    if roi.points_mm is not None and len(roi.points_mm):
        return roi.points_mm
    if roi.points_px is None or not len(roi.points_px):
        return np.zeros((0, 3))
    if series is None:
        raise ReadError(
            "these ROIs hold pixel coordinates only; they can be placed only on the image "
            "they were drawn on",
            path=path,
            hint="pass --reference SERIES_FOLDER (reference= in Python)",
        )
    geometry: Geometry = series.geometry
    if roi.image_uid is not None:
        if roi.image_uid not in slices:
            raise ReadError(
                f"ROI {roi.name!r} was drawn on image {roi.image_uid}, which is not in the "
                "reference series",
                path=path,
                hint="pass the series that holds that image",
            )
        found = slices[roi.image_uid]
        if found is None:
            raise ReadError(
                f"ambiguous image reference: ROI {roi.name!r} cites image {roi.image_uid}, "
                "a multi-frame instance, without a frame number",
                path=path,
                hint="pass the single frame (or a single-frame series) it was drawn on",
            )
        k = found
    elif geometry.shape[0] == 1:
        k = 0
    else:
        raise ReadError(
            "this export names no image for its pixel coordinates (the viewer's slice "
            "number depends on its sort order, so segio does not use it)",
            path=path,
            hint="pass --reference with the one image file the ROI was drawn on (reference= in "
            "Python)",
        )
    px = roi.points_px
    ijk = np.column_stack([px[:, 0] - 0.5, px[:, 1] - 0.5, np.full(len(px), float(k))])
    return geometry.ijk_to_points(ijk)


def _check_one_image(rois: list[Roi], series: Any, path: Path) -> None:
    """ReadError when pixel-only ROIs of a ROI-window export lie on several images.

    Their viewer index (``Slice``) is not trusted to place them, but distinct values do
    say they were drawn on distinct images: on a one-image reference they would all be
    piled onto it (spec §1.4).
    """
    if series is None or series.geometry.shape[0] != 1:
        return
    indices = {
        roi.slice
        for roi in rois
        if roi.slice is not None and roi.image_uid is None and roi.points_mm is None
    }
    if len(indices) > 1:
        raise ReadError(
            f"the ROIs span several images (Slice {', '.join(map(str, sorted(indices)))}) "
            "but the reference is one image",
            path=path,
            hint="export the ROIs of one image at a time, or use Export ROIs (which names "
            "each image)",
        )


def build(rois: list[Roi], path: Path, series: Any = None) -> Segmentation:
    """One segment per ROI name (first-seen order), its ROIs as contours in LPS mm.

    Point ROIs become point annotations (not segments); a name with nothing but points
    has no segment. Without ``series``, ROIs in pixel coordinates cannot be placed: the
    segmentation is then *unplaced* (:data:`segio.model.UNPLACED`), listing its ROIs for
    ``segio info`` and refused by any conversion or write.
    """
    by_name: dict[str, list[Contour]] = {}
    colors: dict[str, tuple[float, float, float]] = {}
    points: list[tuple[str, NDArray[np.float64], str | None, tuple[float, float, float] | None]]
    points = []
    counts = dict.fromkeys(("lines", "empty", "off_plane", "brushes", "duplicates"), 0)
    unplaced: list[Roi] = []
    slices = _uid_slices(series) if series is not None else {}
    _check_one_image(rois, series, path)
    seen: set[tuple[str, str | None, bytes]] = set()
    order: dict[str, int] = {}  # every name, first seen first: the palette index
    for roi in rois:
        name = roi.name or "Unnamed"
        order.setdefault(name, len(order))
        if roi.color is not None:
            colors.setdefault(name, roi.color)
        if roi.brush_bitmap:
            by_name.setdefault(name, [])
            counts["brushes"] += 1
            continue
        if series is None and not roi.has_mm and roi.point_count:
            if kind_of(roi, roi.point_count) is not ContourKind.POINT:
                by_name.setdefault(name, [])
            unplaced.append(roi)
            continue
        placed = place(roi, series, path, slices)
        kind = kind_of(roi, len(placed))
        if kind is not ContourKind.POINT:
            by_name.setdefault(name, [])
        if not len(placed):
            counts["empty"] += 1
            continue
        # Fused viewers export the same ROI twice; under even-odd the copies would cancel.
        key = (name, roi.image_uid, np.round(placed, 3).tobytes())
        if key in seen:
            counts["duplicates"] += 1
            continue
        seen.add(key)
        drawn_on = slices.get(roi.image_uid) if roi.image_uid is not None else None
        if series is not None and drawn_on is not None:
            k = series.geometry.points_to_ijk(placed)[:, 2] - drawn_on
            if float(np.max(np.abs(k))) * float(series.geometry.spacing[2]) > PLANE_TOLERANCE:
                counts["off_plane"] += 1
        if kind is ContourKind.POINT:
            check_count(len(points) + len(placed), path)
            points += [(name, p, roi.image_uid, roi.color) for p in placed]
            continue
        if kind is not ContourKind.CLOSED_PLANAR:
            counts["lines"] += 1
        by_name[name].append(Contour(placed, kind, roi.image_uid))
    if not order:
        raise ReadError("the export holds no ROI", path=path)
    _report(rois, path, series, slices, counts)
    segments, contours = [], {}
    for index, name in enumerate(by_name):
        segment_id = f"Segment_{index + 1}"
        color = colors.get(name, color_for_index(order[name]))
        segments.append(Segment(segment_id, name, color))
        contours[segment_id] = PlanarContours(by_name[name])
    annotations = [
        PointAnnotation(name, p, color or colors.get(name, color_for_index(order[name])), None, uid)
        for name, p, uid, color in points
    ]
    provenance = {}
    if series is not None:
        provenance["ReferencedSeriesInstanceUID"] = series.series_instance_uid
    segmentation = Segmentation(
        segments,
        source_representation=Representation.PLANAR_CONTOURS,
        contours=contours,
        provenance=provenance,
        reference_geometry=series.geometry if series is not None else None,
        points=annotations,
    )
    if unplaced:
        _mark_unplaced(segmentation, rois, len(unplaced), path)
    return segmentation


def _report(
    rois: list[Roi], path: Path, series: Any, slices: dict[str, int | None], counts: dict[str, int]
) -> None:
    """One warning for each kind of ROI that was skipped, moved or kept aside."""
    messages = {
        "empty": "ROI(s) without points skipped",
        "brushes": "brush ROI(s) skipped: brush bitmap not decoded (the archive stores a "
        "brush as a bitmap, whose layout is not public)",
        "duplicates": "duplicate ROI(s) (same name, image and points, as fused viewers "
        "export them) dropped; they would cancel out under even-odd",
        "lines": "line ROI(s) kept as annotations (OPEN_PLANAR contours, not part of any volume)",
        "off_plane": f"ROI(s) lie more than {PLANE_TOLERANCE} mm from the plane of the image "
        "they cite; they are placed by their coordinates",
    }
    for key, message in messages.items():
        if counts[key]:
            warnings.warn(f"{path.name}: {counts[key]} {message}", stacklevel=4)
    cited = {roi.image_uid for roi in rois if roi.image_uid}
    if series is not None and cited and not cited & slices.keys():
        warnings.warn(
            f"{path.name}: the ROIs cite images that are not in the reference series; "
            "they are placed by their coordinates",
            stacklevel=4,
        )


def _mark_unplaced(segmentation: Segmentation, rois: list[Roi], count: int, path: Path) -> None:
    """Say why the segmentation cannot be written, and list every ROI for ``segio info``."""
    reason = (
        f"{path.name}: {count} ROI(s) hold pixel coordinates only; they can be placed only "
        "on the image series they were drawn on (reference=<series>, --reference)"
    )
    listing = [
        {
            "name": roi.name or "Unnamed",
            "type": type_name(roi.type),
            "image_uid": roi.image_uid,
            "points": roi.point_count,
        }
        for roi in rois
    ]
    segmentation.provenance[UNPLACED] = reason
    segmentation.provenance[UNPLACED_ROIS] = json.dumps(listing)
    warnings.warn(f"{reason}: listed, not placed", stacklevel=4)
