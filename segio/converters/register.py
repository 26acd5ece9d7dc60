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
    ]
