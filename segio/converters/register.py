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
    ]
