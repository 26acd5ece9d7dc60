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
            function="segio.converters.fractional:to_binary",
            cost=100,
            parameters={"Threshold fraction": "0.5"},
        ),
        # Slicer goes planar contour -> closed surface -> binary labelmap (700 + 500); the
        # direct even-odd rasterisation costs less but keeps Slicer's ranking of paths.
        ConverterSpec(
            name="planar-contours-to-binary",
            source=Representation.PLANAR_CONTOURS,
            target=Representation.BINARY_LABELMAP,
            function="segio.converters.contours:to_labelmap",
            cost=1200,
            parameters={"Contour rasterization spacing": "1.0", "Default slice thickness": "1.0"},
        ),
        # SlicerRT exports a labelmap to RTSTRUCT by way of a closed surface (500 + 700).
        ConverterSpec(
            name="binary-to-planar-contours",
            source=Representation.BINARY_LABELMAP,
            target=Representation.PLANAR_CONTOURS,
            function="segio.converters.contours:to_contours",
            cost=1200,
        ),
        # Slicer's closed-surface rules (vtkSegmentationCore): labelmap <-> surface 500 each.
        ConverterSpec(
            name="binary-to-closed-surface",
            source=Representation.BINARY_LABELMAP,
            target=Representation.CLOSED_SURFACE,
            function="segio.converters.surfaces:to_closed_surface",
            cost=500,
            parameters={
                "Smoothing factor": "0.5",
                "Decimation factor": "0.0",
                "Compute surface normals": "1",
                "Conversion method": "0",
                "SurfaceNets smoothing": "0",
                "Joint smoothing": "0",
            },
            requires=("vtk",),
            extra="mesh",
        ),
        ConverterSpec(
            name="closed-surface-to-binary",
            source=Representation.CLOSED_SURFACE,
            target=Representation.BINARY_LABELMAP,
            function="segio.converters.surfaces:to_labelmap",
            cost=500,
            parameters={
                "Oversampling factor": "1",
                "Crop to reference image geometry": "0",
                "Collapse labelmaps": "1",
                "Surface rasterization spacing": "1.0",
            },
            requires=("vtk",),
            extra="mesh",
        ),
        # Slicer prices its 216-stencil rule at 7000; segio's slab-wise sampling is closer
        # to one rasterisation, and the binary path stays cheaper either way.
        ConverterSpec(
            name="closed-surface-to-fractional",
            source=Representation.CLOSED_SURFACE,
            target=Representation.FRACTIONAL_LABELMAP,
            function="segio.converters.surfaces:to_fractional",
            cost=600,
            parameters={
                "Fractional labelmap oversampling factor": "1",
                "Crop to reference image geometry": "0",
                "Surface rasterization spacing": "1.0",
            },
            requires=("vtk",),
            extra="mesh",
        ),
    ]
