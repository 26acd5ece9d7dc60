"""Binary labelmap -> planar contours, voxel-exact (the reverse is
:mod:`segio.converters.contours_to_labelmap`).

The 2D work (crack tracing, keyholes, simplification) is in
:mod:`segio.converters.mask_to_polygons`; this module walks each segment's bounding box
slice by slice and maps the pixel polygons back to LPS millimetres on the segment's grid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from segio.contours import Contour, ContourKind, PlanarContours
from segio.converters.mask_to_polygons import polygons_from_mask
from segio.errors import ValidationError
from segio.model import Segment, Segmentation
from segio.representations import Representation

#: Contour modes: ``midpoint`` and ``edge`` re-rasterise exactly, ``centre`` runs just
#: outside the boundary pixels' centres, ``smooth`` is midpoint simplified by at most half
#: a pixel (see :mod:`segio.converters.mask_to_polygons`).
MODES = ("midpoint", "edge", "centre", "smooth")


def mask_polygons(
    mask: NDArray[np.bool_], mode: str = "midpoint", *, keyhole: bool = False
) -> dict[int, list[NDArray[np.float64]]]:
    """``{k: pixel polygons}`` of a 3D mask, slice by slice (only slices with voxels).

    ``mode`` is ``"midpoint"`` or ``"edge"`` (exact) or ``"smooth"``: midpoint simplified
    by at most half a pixel, for smaller files where exactness does not matter.
    """
    if mode not in MODES:
        raise ValidationError(f"contour mode must be one of {', '.join(MODES)}, got {mode!r}")
    base, tolerance = ("midpoint", 0.5) if mode == "smooth" else (mode, 0.0)
    result: dict[int, list[NDArray[np.float64]]] = {}
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        result[int(k)] = polygons_from_mask(
            mask[k], mode=base, tolerance=tolerance, keyhole=keyhole
        )
    return result


def _segment_boxes(
    segmentation: Segmentation,
) -> Iterator[tuple[Segment, NDArray[np.intp], NDArray[np.bool_]]]:
    """Each segment, the ``(k, j, i)`` start of its bounding box and its mask within it.

    The boxes of a layer come from one pass over it (``ndimage.find_objects``), so a
    segment costs its box, not a comparison over the whole volume.
    """
    from scipy import ndimage

    boxes = {
        index: ndimage.find_objects(layer.array)
        for index, layer in enumerate(segmentation.layers)
        if not layer.is_fractional
    }
    origin = np.zeros(3, dtype=np.intp)
    for segment in segmentation.segments.values():
        found = boxes.get(segment.layer)
        if found is None or segment.label_value < 1:  # fractional: the whole mask
            yield segment, origin, segmentation.mask(segment.id)
        elif segment.label_value > len(found) or found[segment.label_value - 1] is None:
            yield segment, origin, np.zeros((0, 0, 0), dtype=bool)
        else:
            box = found[segment.label_value - 1]
            array = segmentation.layers[segment.layer].array
            start = np.array([s.start for s in box], dtype=np.intp)
            yield segment, start, np.asarray(array[box] == segment.label_value)


def to_contours(
    segmentation: Segmentation, mode: str = "midpoint", *, keyhole: bool = False
) -> Segmentation:
    """Every segment as closed planar contours on the slices of its grid, in LPS mm.

    ``"midpoint"`` and ``"edge"`` contours re-rasterise to exactly the same voxels (they
    never pass through a voxel centre); see :func:`mask_polygons`.
    """
    grid = segmentation.require_geometry()
    contours: dict[str, PlanarContours] = {}
    for segment, start, mask in _segment_boxes(segmentation):
        items: list[Contour] = []
        for k, polygons in mask_polygons(mask, mode, keyhole=keyhole).items():
            for xy in polygons:
                ijk = np.column_stack([xy + start[:0:-1], np.full(len(xy), float(k + start[0]))])
                items.append(Contour(grid.ijk_to_points(ijk), ContourKind.CLOSED_PLANAR))
        contours[segment.id] = PlanarContours(items)
    contained = [*segmentation.contained_representations, segmentation.source_representation]
    return Segmentation(
        [dataclasses.replace(s, layer=0, label_value=1) for s in segmentation.segments.values()],
        source_representation=Representation.PLANAR_CONTOURS,
        conversion_parameters=segmentation.conversion_parameters.copy(),
        reference_geometry=grid,
        contained_representations=list(dict.fromkeys(contained)),
        provenance=segmentation.provenance,
        extras=segmentation.extras,
        contours=contours,
    )
