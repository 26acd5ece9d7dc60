"""A plain-data description of a segmentation, for ``segio info`` and for programs.

Everything is JSON-ready (lists, numbers, text), so the same dictionary feeds the rich
table on a terminal and ``--json`` output.
"""

from __future__ import annotations

import json
from typing import Any

from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.model import UNPLACED, UNPLACED_ROIS, Segmentation
from segio.points import PointAnnotation
from segio.surfaces import Surface
from segio.terminology import Terminology


def summarize(segmentation: Segmentation) -> dict[str, Any]:
    counts = segmentation.voxel_counts()
    extents = segmentation.extents()
    grid = segmentation.geometry
    voxel_volume = grid.voxel_volume if grid is not None else 0.0
    segments = []
    for segment in segmentation.segments.values():
        box = extents[segment.id]
        contours = segmentation.contours.get(segment.id)
        surface = segmentation.surfaces.get(segment.id)
        segments.append(
            {
                "id": segment.id,
                "name": segment.name,
                # Contours and surfaces have no voxels: no layer, no label value.
                "layer": segment.layer if segmentation.layers else None,
                "label": segment.label_value if segmentation.layers else None,
                "color": list(segment.color),
                "color_hex": "#" + "".join(f"{round(c * 255):02x}" for c in segment.color),
                "terminology": _terminology(segment.terminology),
                "voxels": counts[segment.id],
                "volume_mm3": counts[segment.id] * voxel_volume,
                "extent": None
                if box is None
                else {"i": list(box[2]), "j": list(box[1]), "k": list(box[0])},
                "properties": dict(segment.properties),
                "contours": None if contours is None else len(contours.closed),
                "annotations": None if contours is None else len(contours.annotations),
                # The images its contours were drawn on (OsiriX ROIs, RTSTRUCT), when cited.
                "images": None
                if contours is None
                else len({c.image_uid for c in contours if c.image_uid}),
                "triangles": None if surface is None else len(surface.faces),
                # An open (or inconsistently wound) mesh encloses no volume: None, not a
                # negative number.
                "surface_closed": None if surface is None else surface.is_closed,
                "surface_volume_mm3": _surface_volume(surface),
            }
        )
    return {
        "file": segmentation.provenance.get("source_path"),
        "format": segmentation.provenance.get("format"),
        "source_representation": segmentation.source_representation.value,
        "layers": len(segmentation.layers),
        "overlapping": segmentation.overlaps(),
        "geometry": _geometry(grid),
        "reference_geometry": _geometry(segmentation.reference_geometry),
        "segments": segments,
        "points": [_point(point) for point in segmentation.points],
        "unplaced": _unplaced(segmentation),
    }


def _point(point: PointAnnotation) -> dict[str, Any]:
    return {
        "name": point.name,
        "position_lps": point.position.tolist(),
        "color": list(point.color),
        "color_hex": "#" + "".join(f"{round(c * 255):02x}" for c in point.color),
        "terminology": _terminology(point.terminology),
        "image_uid": point.image_uid,
        "properties": dict(point.properties),
    }


def _unplaced(segmentation: Segmentation) -> dict[str, Any] | None:
    """Why the shapes have no position, and the ROIs the file holds (name, type, image,
    points), for a segmentation a reader could list but not place."""
    reason = segmentation.provenance.get(UNPLACED)
    if not reason:
        return None
    try:
        rois = json.loads(segmentation.provenance.get(UNPLACED_ROIS, "[]"))
    except ValueError:
        rois = []
    return {"reason": reason, "rois": rois if isinstance(rois, list) else []}


def _surface_volume(surface: Surface | None) -> float | None:
    if surface is None:
        return None
    try:
        return surface.volume()
    except ValidationError:
        return None


def _geometry(geometry: Geometry | None) -> dict[str, Any] | None:
    if geometry is None:
        return None
    return {
        "size_ijk": list(geometry.size_ijk),
        "spacing": geometry.spacing.tolist(),
        "origin_lps": geometry.origin.tolist(),
        "directions_lps": geometry.direction.T.tolist(),
        "ijk_to_lps": geometry.ijk_to_lps.tolist(),
    }


def _terminology(terminology: Terminology | None) -> dict[str, Any] | None:
    if terminology is None:
        return None
    fields = {
        "category": terminology.category,
        "type": terminology.type,
        "type_modifier": terminology.type_modifier,
        "region": terminology.region,
        "region_modifier": terminology.region_modifier,
    }
    return {
        name: [code.scheme, code.value, code.meaning]
        for name, code in fields.items()
        if code is not None
    }
