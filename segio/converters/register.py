"""Entry point of segio's built-in representation converters (declarations only)."""

from __future__ import annotations

from segio.hookspecs import ConverterSpec, hookimpl
from segio.representations import Representation


@hookimpl
def segio_converters() -> list[ConverterSpec]:
    return [
        ConverterSpec(
            name="fractional-to-binary",
            source=Representation.FRACTIONAL_LABELMAP,
            target=Representation.BINARY_LABELMAP,
            function="segio.converters.fractional_to_labelmap:to_binary",
            cost=100,
        ),
        # Slicer goes planar contour -> closed surface -> binary labelmap (700 + 500); the
        # direct even-odd rasterisation costs less but keeps Slicer's ranking of paths.
        ConverterSpec(
            name="planar-contours-to-binary",
            source=Representation.PLANAR_CONTOURS,
            target=Representation.BINARY_LABELMAP,
            function="segio.converters.contours_to_labelmap:to_labelmap",
            cost=1200,
        ),
        # SlicerRT exports a labelmap to RTSTRUCT by way of a closed surface (500 + 700).
        ConverterSpec(
            name="binary-to-planar-contours",
            source=Representation.BINARY_LABELMAP,
            target=Representation.PLANAR_CONTOURS,
            function="segio.converters.labelmap_to_contours:to_contours",
            cost=1200,
        ),
        # Slicer's closed-surface rules (vtkSegmentationCore): labelmap <-> surface 500 each.
        ConverterSpec(
            name="binary-to-closed-surface",
            source=Representation.BINARY_LABELMAP,
            target=Representation.CLOSED_SURFACE,
            function="segio.converters.labelmap_to_surface:to_closed_surface",
            cost=500,
            requires=("vtk",),
            extra="mesh",
        ),
        ConverterSpec(
            name="closed-surface-to-binary",
            source=Representation.CLOSED_SURFACE,
            target=Representation.BINARY_LABELMAP,
            function="segio.converters.surface_to_labelmap:to_labelmap",
            cost=500,
            requires=("vtk",),
            extra="mesh",
        ),
        # Slicer prices its 216-stencil rule at 7000; segio's slab-wise sampling is closer
        # to one rasterisation, and the binary path stays cheaper either way.
        ConverterSpec(
            name="closed-surface-to-fractional",
            source=Representation.CLOSED_SURFACE,
            target=Representation.FRACTIONAL_LABELMAP,
            function="segio.converters.surface_to_labelmap:to_fractional",
            cost=600,
            requires=("vtk",),
            extra="mesh",
        ),
    ]
