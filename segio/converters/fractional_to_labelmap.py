"""Fractional labelmap -> binary labelmap: a voxel is in when at least half of it is."""

from __future__ import annotations

from segio.model import Segmentation
from segio.representations import Representation


def to_binary(segmentation: Segmentation) -> Segmentation:
    """Threshold every fractional segment at half its maximum (Slicer's 0.5 default).

    Segments that do not overlap after thresholding share layers (first fit), so the
    result is as compact as a labelmap reader would make it.
    """
    result = Segmentation(
        conversion_parameters=segmentation.conversion_parameters.copy(),
        reference_geometry=segmentation.reference_geometry,
        contained_representations=[
            *segmentation.contained_representations,
            Representation.FRACTIONAL_LABELMAP,
        ],
        provenance=segmentation.provenance,
        extras=segmentation.extras,
    )
    geometry = segmentation.geometry
    for segment in segmentation.segments.values():
        result.add_mask(
            segmentation.mask(segment.id),
            segment.name,
            segment_id=segment.id,
            color=segment.color,
            terminology=segment.terminology,
            properties=segment.properties,
            geometry=geometry,
        )
    return result
