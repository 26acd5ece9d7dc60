"""Representations of a segment, and the parameters that convert between them.

A segmentation keeps one *source* representation, the one that was read or edited; the
others are derived from it by converters (``segio.converters``). The names are 3D Slicer's
(``vtkSegmentationConverter``), because ``.seg.nrrd`` files store them as text.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from segio.errors import ValidationError


class Representation(enum.Enum):
    """The four ways a segment can exist; values are Slicer's representation names."""

    BINARY_LABELMAP = "Binary labelmap"
    CLOSED_SURFACE = "Closed surface"
    PLANAR_CONTOURS = "Planar contour"
    FRACTIONAL_LABELMAP = "Fractional labelmap"

    @classmethod
    def from_name(cls, name: str) -> Representation:
        """Accept Slicer's names, the enum names and the plural "Planar contours"."""
        wanted = name.strip().lower()
        for member in cls:
            if wanted in (member.value.lower(), member.name.lower()):
                return member
        if wanted == "planar contours":
            return cls.PLANAR_CONTOURS
        raise ValidationError(
            f"unknown representation {name!r}",
            hint="expected one of " + ", ".join(repr(m.value) for m in cls),
        )


@dataclass(frozen=True, slots=True)
class ConversionParameter:
    """One named conversion setting, as Slicer stores it: value and description are text."""

    name: str
    value: str
    description: str = ""

    def __post_init__(self) -> None:
        for text in (self.name, self.value, self.description):
            if "&" in text or "|" in text:
                raise ValidationError(
                    f"conversion parameter {self.name!r} contains '&' or '|', which the "
                    "Slicer serialisation cannot hold"
                )


# Slicer's defaults with their fixed English descriptions, in rule registration order
# (Slicer vtkSegmentationCore and SlicerRT; the descriptions are written into files).
_DEFAULTS: tuple[tuple[str, str, str], ...] = (
    (
        "Decimation factor",
        "0.0",
        "Desired reduction in the total number of polygons. Range: 0.0 (no decimation) to "
        "1.0 (as much simplification as possible). Value of 0.8 typically reduces data set "
        "size by 80% without losing too much details.",
    ),
    (
        "Smoothing factor",
        "0.5",
        "Smoothing factor. Range: 0.0 (no smoothing) to 1.0 (strong smoothing).",
    ),
    (
        "Compute surface normals",
        "1",
        "Compute surface normals. 1 (default) = surface normals are computed. 0 = surface "
        "normals are not computed (slightly faster but produces less smooth surface display).",
    ),
    (
        "Conversion method",
        "0",
        "Conversion method. 0 (default) = vtkDiscreteFlyingEdges3D is used to generate closed "
        "surface.1 = vtkSurfaceNets3D (more performant than flying edges).",
    ),
    (
        "SurfaceNets smoothing",
        "0",
        "SurfaceNets smoothing. 0 (default) = Smoothing done by vtkWindowedSincPolyDataFilter1 "
        "= Smoothing done in surface nets filter.",
    ),
    ("Joint smoothing", "0", "Perform joint smoothing."),
    (
        "Reference image geometry",
        "",
        "Image geometry description string determining the geometry of the labelmap that is "
        "created in course of conversion. Can be copied from a volume, using the button.",
    ),
    (
        "Oversampling factor",
        "1",
        "Determines the oversampling of the reference image geometry. If it's a number, then "
        "all segments are oversampled with the same value (value of 1 means no oversampling). "
        'If it has the value "A", then automatic oversampling is calculated.',
    ),
    (
        "Crop to reference image geometry",
        "0",
        "Crop the model to the extent of reference geometry. 0 (default) = created labelmap "
        "will contain the entire model. 1 = created labelmap extent will be within reference "
        "image extent.",
    ),
    (
        "Collapse labelmaps",
        "1",
        "Merge the labelmaps into as few shared labelmaps as possible 1 = created labelmaps "
        "will be shared if possible without overwriting each other.",
    ),
    (
        "Fractional labelmap oversampling factor",
        "1",
        "Determines the oversampling of the reference image geometry. All segments are "
        "oversampled with the same value (value of 1 means no oversampling).",
    ),
    (
        "Threshold fraction",
        "0.5",
        "Determines the threshold that the closed surface is created at as a fractional "
        "value between 0 and 1.",
    ),
)


class ConversionParameters(Mapping[str, ConversionParameter]):
    """Ordered conversion parameters; names Slicer does not know are kept as they are.

    Lookup gives the :class:`ConversionParameter`; :meth:`value` gives its text and
    :meth:`number` its float value.
    """

    def __init__(self, parameters: Iterable[ConversionParameter] = ()) -> None:
        self._items: dict[str, ConversionParameter] = {}
        for parameter in parameters:
            self._items[parameter.name] = parameter

    @classmethod
    def slicer_defaults(cls) -> ConversionParameters:
        """The parameters a current 3D Slicer writes for a new segmentation."""
        return cls(ConversionParameter(*entry) for entry in _DEFAULTS)

    def __getitem__(self, name: str) -> ConversionParameter:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def value(self, name: str, default: str | None = None) -> str | None:
        parameter = self._items.get(name)
        return parameter.value if parameter is not None else default

    def number(self, name: str, default: float) -> float:
        """The parameter as a float, ``default`` when absent; ValidationError if not numeric."""
        text = self.value(name)
        if text is None:
            return default
        try:
            return float(text)
        except ValueError:
            raise ValidationError(
                f"conversion parameter {name!r} should be a number, got {text!r}"
            ) from None

    def set(self, name: str, value: str, description: str | None = None) -> None:
        """Set a value, keeping the known description unless a new one is given."""
        old = self._items.get(name)
        if description is None:
            description = old.description if old is not None else _default_description(name)
        self._items[name] = ConversionParameter(name, value, description)

    def remove(self, name: str) -> None:
        self._items.pop(name, None)

    def copy(self) -> ConversionParameters:
        return ConversionParameters(self._items.values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.name}={p.value!r}" for p in self._items.values())
        return f"ConversionParameters({inner})"


def _default_description(name: str) -> str:
    for known, _value, description in _DEFAULTS:
        if known == name:
            return description
    return ""
