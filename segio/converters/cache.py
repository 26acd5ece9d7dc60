"""Derived representations kept with their source segmentation (Slicer's rule).

A labelmap written to GLB and then to 3MF needs its closed surfaces twice; building them
is most of either write. So what a chain of converters derives is cached in the source
segmentation, each step keyed by the conversion parameters (all of them: any may be
read by a converter), the converters so far and the grid a labelmap is rasterised on.
Intermediate steps are kept too: a fractional labelmap written as NRRD and as STL is
thresholded once.

The cache is dropped when the source changes, as in 3D Slicer
(``vtkSegmentation``): through :meth:`Segmentation.modified`, which the model's methods
call, or when the state compared here differs (an array, a surface or contour set, a
segment's label or layer replaced, segments added or removed). An edit inside a numpy
array is invisible; the user calls :meth:`~segio.model.Segmentation.modified` after one.

What a caller gets is a segmentation of its own: fresh lists and dicts, the metadata the
source has *now* (a segment renamed after its surfaces were built is written with its new
name, without building them again), and the shapes shared with the cache, read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence

from segio.geometry import Geometry
from segio.hookspecs import ConverterSpec
from segio.model import Layer, Segmentation
from segio.registry import load
from segio.representations import Representation

_LABELMAPS = frozenset({Representation.BINARY_LABELMAP, Representation.FRACTIONAL_LABELMAP})


class _Same:
    """Compares equal to a wrapper of the very same object (numpy arrays, meshes), so a
    state holding it is compared without reading the arrays; the reference it holds keeps
    the object's id from being reused."""

    __slots__ = ("item",)

    def __init__(self, item: object) -> None:
        self.item = item

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.item is self.item

    __hash__ = None  # type: ignore[assignment]


def source_state(segmentation: Segmentation) -> tuple[object, ...]:
    """What of the source every derived representation depends on, read in O(segments)."""
    return (
        segmentation.source_representation,
        segmentation.reference_geometry,
        tuple((s.id, s.layer, s.label_value) for s in segmentation.segments.values()),
        tuple(
            (_Same(layer.array), layer.geometry, layer.max_fraction)
            for layer in segmentation.layers
        ),
        tuple((key, _Same(value)) for key, value in segmentation.contours.items()),
        tuple((key, _Same(value)) for key, value in segmentation.surfaces.items()),
    )


def derive(
    owner: Segmentation,
    source: Segmentation,
    chain: Sequence[ConverterSpec],
    geometry: Geometry | None,
) -> Segmentation:
    """``source`` (``owner``, or a view of it with other conversion parameters) through
    ``chain``, each step taken from ``owner``'s cache or computed and cached there."""
    state = source_state(owner)
    if owner._derived_from != state:
        owner.modified()
        owner._derived_from = state
    current: Segmentation = source
    key: tuple[Hashable, ...] = (_parameters(source),)
    for spec in chain:
        grid = geometry if spec.target in _LABELMAPS and spec.source not in _LABELMAPS else None
        key = (*key, (spec.function, grid))
        derived = owner._derived.get(key)
        if derived is None:
            function = load(spec.function, requires=spec.requires, install=spec.install)
            derived = function(current, grid) if grid is not None else function(current)
            _freeze(derived, owner)
            owner._derived[key] = derived
        current = derived
    return _fresh(current, owner, source)


def _parameters(segmentation: Segmentation) -> tuple[tuple[str, str], ...]:
    """Every conversion parameter's value: converters read them from the segmentation
    (:data:`segio.representations.PARAMETERS`), so any of them may change the result."""
    return tuple((p.name, p.value) for p in segmentation.conversion_parameters.values())


def _freeze(derived: Segmentation, owner: Segmentation) -> None:
    """Make the shared arrays read-only: an edit would change what the cache hands out
    (surfaces are read-only already). An array a converter passed through from the
    source stays the source's to edit."""
    own = {id(layer.array) for layer in owner.layers}
    for layer in derived.layers:
        if id(layer.array) not in own:
            layer.array.flags.writeable = False


def _fresh(derived: Segmentation, owner: Segmentation, source: Segmentation) -> Segmentation:
    """A new segmentation with ``derived``'s shapes and ``owner``'s metadata as it is now:
    names, colours, terminology, properties, provenance, extras and points; conversion
    parameters of this derivation."""
    segments = []
    for segment in derived.segments.values():
        now = owner.segments._by_id.get(segment.id)
        kept = now if now is not None else segment
        segments.append(
            dataclasses.replace(
                kept,
                layer=segment.layer,
                label_value=segment.label_value,
                properties=dict(kept.properties),
            )
        )
    return Segmentation(
        segments,
        [Layer(x.array, x.geometry, max_fraction=x.max_fraction) for x in derived.layers],
        source_representation=derived.source_representation,
        conversion_parameters=source.conversion_parameters.copy(),
        reference_geometry=derived.reference_geometry,
        contained_representations=derived.contained_representations,
        provenance={**derived.provenance, **owner.provenance},
        extras={**derived.extras, **owner.extras},
        contours=derived.contours,
        surfaces=derived.surfaces,
        points=owner.points,
    )
