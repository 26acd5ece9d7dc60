"""Representations of a segment, and the parameters that convert between them.

A segmentation keeps one *source* representation, the one that was read or edited; the
others are derived from it by converters (``segio.converters``). The names are 3D Slicer's
(``vtkSegmentationConverter``), because ``.seg.nrrd`` files store them as text.
"""

from __future__ import annotations

import enum
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from segio import options
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


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """A conversion parameter segio knows: its default, description and allowed values.

    Values are text, as Slicer stores them. A value is allowed when it is one of
    ``choices`` or ``words``, or (with ``low``/``high`` set) a finite number in that range;
    ``low_open`` makes the lower bound exclusive. ``geometry`` is Slicer's serialised image
    geometry (empty, or 22 numbers separated by ``;``). ``slicer`` says whether 3D Slicer
    itself writes the parameter into every segmentation
    (:meth:`ConversionParameters.slicer_defaults`).
    """

    name: str
    default: str
    description: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    geometry: bool = False
    slicer: bool = True

    @property
    def expected(self) -> str:
        """The allowed values in words, for messages."""
        if self.geometry:
            return "empty or Slicer's image geometry (22 numbers separated by ';')"
        if self.choices:
            return " or ".join(self.choices)
        if self.high is None:
            return "a number above 0" if self.low_open else f"a number from {self.low:g}"
        text = f"a number from {self.low:g} to {self.high:g}"
        if self.low_open:
            text = f"a number above {self.low:g}, at most {self.high:g}"
        return " or ".join([text, *(repr(w) for w in self.words)])

    def problem(self, value: str) -> str | None:
        """Why ``value`` is not allowed, or None when it is."""
        text = value.strip()
        if text in self.choices or text in self.words:
            return None
        if self.geometry:
            return None if not text or _is_geometry(text) else f"it must be {self.expected}"
        if self.low is None:
            return f"it must be {self.expected}"
        try:
            number = float(text)
        except ValueError:
            return f"it must be {self.expected}"
        high = math.inf if self.high is None else self.high
        above = number > self.low if self.low_open else number >= self.low
        if not (math.isfinite(number) and above and number <= high):
            return f"it must be {self.expected}"
        return None


def _is_geometry(text: str) -> bool:
    try:
        values = [float(v) for v in text.strip(";").split(";")]
    except ValueError:
        return False
    return len(values) == 22 and all(math.isfinite(v) for v in values)


_FLAG = ("0", "1")

#: Every conversion parameter segio knows, the one place their defaults live: 3D Slicer's
#: (``vtkSegmentationCore``, in its rule order, with its fixed English descriptions, which
#: are written into files), then SlicerRT's planar-contour ones and segio's own.
#:
#: Ranges are what Slicer's user interface offers: smoothing 0..1 (a negative factor is
#: Slicer's "smoothing off, value remembered", which its 3D button toggles, hence -1..1),
#: decimation and threshold 0..1, oversampling 0.05..20 as Slicer's geometry widget (or
#: "A", automatic), flags 0 or 1. Bounded ranges are what keep a file from asking VTK for
#: billions of smoothing iterations or a grid oversampled a million times.
PARAMETERS: dict[str, ParameterSpec] = {
    spec.name: spec
    for spec in (
        ParameterSpec(
            "Decimation factor",
            "0.0",
            "Desired reduction in the total number of polygons. Range: 0.0 (no decimation) to "
            "1.0 (as much simplification as possible). Value of 0.8 typically reduces data set "
            "size by 80% without losing too much details.",
            low=0.0,
            high=1.0,
        ),
        ParameterSpec(
            "Smoothing factor",
            "0.5",
            "Smoothing factor. Range: 0.0 (no smoothing) to 1.0 (strong smoothing).",
            low=-1.0,
            high=1.0,
        ),
        ParameterSpec(
            "Compute surface normals",
            "1",
            "Compute surface normals. 1 (default) = surface normals are computed. 0 = surface "
            "normals are not computed (slightly faster but produces less smooth surface "
            "display).",
            choices=_FLAG,
        ),
        ParameterSpec(
            "Conversion method",
            "0",
            "Conversion method. 0 (default) = vtkDiscreteFlyingEdges3D is used to generate "
            "closed surface.1 = vtkSurfaceNets3D (more performant than flying edges).",
            choices=_FLAG,
        ),
        ParameterSpec(
            "SurfaceNets smoothing",
            "0",
            "SurfaceNets smoothing. 0 (default) = Smoothing done by "
            "vtkWindowedSincPolyDataFilter1 = Smoothing done in surface nets filter.",
            choices=_FLAG,
        ),
        ParameterSpec("Joint smoothing", "0", "Perform joint smoothing.", choices=_FLAG),
        ParameterSpec(
            "Reference image geometry",
            "",
            "Image geometry description string determining the geometry of the labelmap that "
            "is created in course of conversion. Can be copied from a volume, using the button.",
            geometry=True,
        ),
        ParameterSpec(
            "Oversampling factor",
            "1",
            "Determines the oversampling of the reference image geometry. If it's a number, "
            "then all segments are oversampled with the same value (value of 1 means no "
            'oversampling). If it has the value "A", then automatic oversampling is '
            "calculated.",
            low=0.05,
            high=20.0,
            words=("A",),
        ),
        ParameterSpec(
            "Crop to reference image geometry",
            "0",
            "Crop the model to the extent of reference geometry. 0 (default) = created "
            "labelmap will contain the entire model. 1 = created labelmap extent will be "
            "within reference image extent.",
            choices=_FLAG,
        ),
        ParameterSpec(
            "Collapse labelmaps",
            "1",
            "Merge the labelmaps into as few shared labelmaps as possible 1 = created "
            "labelmaps will be shared if possible without overwriting each other.",
            choices=_FLAG,
        ),
        ParameterSpec(
            "Fractional labelmap oversampling factor",
            "1",
            "Determines the oversampling of the reference image geometry. All segments are "
            "oversampled with the same value (value of 1 means no oversampling).",
            low=0.05,
            high=20.0,
        ),
        ParameterSpec(
            "Threshold fraction",
            "0.5",
            "Determines the threshold that the closed surface is created at as a fractional "
            "value between 0 and 1.",
            low=0.0,
            high=1.0,
        ),
        # SlicerRT's planar-contour rules (written by Slicer when SlicerRT is installed).
        ParameterSpec(
            "Default slice thickness",
            "1.0",  # SlicerRT writes 0.0 ("none"); segio's contour grids need a thickness
            "Default thickness for contours if slice spacing cannot be calculated.",
            low=0.0,
            slicer=False,
        ),
        ParameterSpec(
            "End capping",
            "1",
            "Create end cap to close surface inside contours on the top and bottom of the "
            "structure. 0 = leave contours open on surface exterior. 1 (default) = close "
            "surface by generating smooth end caps. 2 = close surface by generating straight "
            "end caps.",
            choices=("0", "1", "2"),
            slicer=False,
        ),
        # segio's own: voxel sizes of the grids made when no reference grid is known.
        ParameterSpec(
            "Contour rasterization spacing",
            "1.0",
            "In-plane voxel size (mm) of the grid made from planar contours without a "
            "reference grid.",
            low=0.0,
            low_open=True,
            slicer=False,
        ),
        ParameterSpec(
            "Surface rasterization spacing",
            "1.0",
            "Voxel size (mm) of the grid made from closed surfaces without a reference grid.",
            low=0.0,
            low_open=True,
            slicer=False,
        ),
    )
}


def _unknown(name: str) -> str:
    """Message for a name segio does not know, with the closest known names."""
    lowered = {known.lower(): known for known in PARAMETERS}
    import difflib  # only for a misspelt name

    close = difflib.get_close_matches(name.strip().lower(), lowered, n=3, cutoff=0.6)
    hint = ", ".join(repr(lowered[c]) for c in close)
    return f"unknown conversion parameter {name!r}" + (f" (did you mean {hint}?)" if hint else "")


class ConversionParameters(Mapping[str, ConversionParameter]):
    """Ordered conversion parameters, checked against :data:`PARAMETERS`.

    Lookup gives the :class:`ConversionParameter`; :meth:`value` gives its text,
    :meth:`number` its float value and :meth:`flag` a 0/1 switch.

    Two ways in, two policies (readers are lenient, explicit requests strict):

    - :meth:`set` (``-P name=value``, ``segio.convert(parameters=...)``) refuses an unknown
      name (naming the close matches) and a value out of range with a
      :class:`~segio.errors.ValidationError`: the user asked for it and can fix it.
    - The constructor takes what a *file* stores (``source`` names it): a known parameter
      whose value is out of range falls back to its default with a warning, because the
      file can still be read and converted; a name segio does not know is kept as it is
      (Slicer extensions add their own, and a round trip to Slicer keeps them) but unused,
      with a warning only when it looks like a misspelt known name.
    """

    def __init__(
        self,
        parameters: Iterable[ConversionParameter] = (),
        *,
        source: str | os.PathLike[str] | None = None,
    ) -> None:
        self._items: dict[str, ConversionParameter] = {}
        problems: list[str] = []
        for parameter in parameters:
            self._items[parameter.name], problem = _stored(parameter)
            if problem is not None:
                problems.append(problem)
        if problems:  # one warning, however many a crafted file holds
            where = f"{os.fspath(source)}: " if source is not None else ""
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            warnings.warn(where + problems[0] + more, stacklevel=2)

    @classmethod
    def slicer_defaults(cls) -> ConversionParameters:
        """The parameters a current 3D Slicer writes for a new segmentation."""
        return cls(
            ConversionParameter(spec.name, spec.default, spec.description)
            for spec in PARAMETERS.values()
            if spec.slicer
        )

    def __getitem__(self, name: str) -> ConversionParameter:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def value(self, name: str, default: str | None = None) -> str | None:
        parameter = self._items.get(name)
        return parameter.value if parameter is not None else default

    def number(self, name: str) -> float:
        """The parameter as a float; when absent, its default in :data:`PARAMETERS` (the
        only place defaults live, so a caller cannot give another).

        A ValidationError when the text is not a number (Slicer's "A" oversampling).
        """
        text = self.value(name)
        if text is None:
            text = PARAMETERS[name].default
        try:
            return float(text)
        except ValueError:
            raise ValidationError(
                f"conversion parameter {name!r} should be a number, got {text!r}"
            ) from None

    def flag(self, name: str) -> bool:
        """A 0/1 parameter as a bool (its registered default when absent)."""
        return self.number(name) > 0

    def set(self, name: str, value: str, description: str | None = None) -> None:
        """Set a known parameter to an allowed value, keeping its known description.

        Unknown names and values out of range are a ValidationError; yes/no words are
        stored as Slicer's 1/0.
        """
        spec = PARAMETERS.get(name)
        if spec is None:
            message = _unknown(name)
            known = ", ".join(repr(n) for n in PARAMETERS)
            hint = None if "did you mean" in message else f"known parameters: {known}"
            raise ValidationError(message, hint=hint)
        text = str(value).strip()
        if spec.choices == _FLAG:
            switch = options.flag(text)
            text = text if switch is None else str(int(switch))
        problem = spec.problem(text)
        if problem is not None:
            raise ValidationError(f"conversion parameter {name!r} is {value!r}: {problem}")
        old = self._items.get(name)
        if description is None:
            description = old.description if old is not None else spec.description
        self._items[name] = ConversionParameter(name, text, description)

    def remove(self, name: str) -> None:
        self._items.pop(name, None)

    def copy(self) -> ConversionParameters:
        clone = ConversionParameters()
        clone._items = dict(self._items)  # already checked: no warning twice
        return clone

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.name}={p.value!r}" for p in self._items.values())
        return f"ConversionParameters({inner})"


def _stored(parameter: ConversionParameter) -> tuple[ConversionParameter, str | None]:
    """A parameter as a file stores it, and what is wrong with it: an out-of-range value
    falls back to the default; an unknown name is kept (a misspelt one is reported)."""
    spec = PARAMETERS.get(parameter.name)
    if spec is None:
        message = _unknown(parameter.name)
        return parameter, (
            f"{message}; it is kept but not used" if "did you mean" in message else None
        )
    problem = spec.problem(parameter.value)
    if problem is None:
        return parameter, None
    return ConversionParameter(parameter.name, spec.default, parameter.description), (
        f"stored conversion parameter {parameter.name!r} is {parameter.value[:40]!r}: "
        f"{problem}; using the default {spec.default!r}"
    )
