"""Representation converters and grid operations.

(Named ``converters`` so that it does not shadow the ``segio.convert`` verb.)

Converters are declared like formats (``segio_converters`` hook, see
``segio.converters.register``) and chained by cost through the registry, so a writer that
takes binary labelmaps accepts a fractional segmentation without knowing how to convert it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

from segio.geometry import Geometry
from segio.model import Segmentation
from segio.registry import Registry, default_registry
from segio.representations import PARAMETERS, Representation

#: Representations on a grid: what a converter given a ``geometry`` rasterises onto it.
LABELMAPS = frozenset({Representation.BINARY_LABELMAP, Representation.FRACTIONAL_LABELMAP})


def to_representation(
    segmentation: Segmentation,
    targets: Iterable[Representation],
    *,
    registry: Registry | None = None,
    geometry: Geometry | None = None,
    parameters: Mapping[str, object] | None = None,
) -> Segmentation:
    """``segmentation`` in the cheapest of ``targets`` (itself if its source is one).

    ``geometry`` is the grid a converter that makes a labelmap puts it on (a writer's
    reference): contours and surfaces are rasterised on it directly, never on a grid of
    their own that is then resampled. ``parameters`` override conversion parameters for
    this derivation (see :meth:`Segmentation.representation`). What is derived is cached
    in ``segmentation`` (:mod:`segio.converters.cache`).
    """
    from segio.converters.cache import derive

    wanted = list(targets)
    if segmentation.source_representation in wanted:
        return segmentation
    registry = registry or default_registry()
    chains = []
    for target in wanted:
        try:
            chain = registry.conversion_path(segmentation.source_representation, target)
        except Exception:
            continue
        chains.append((sum(spec.cost for spec in chain), chain))
    if not chains:
        # Let the registry explain why the first target is unreachable.
        registry.conversion_path(segmentation.source_representation, wanted[0])
    _, chain = min(chains, key=lambda pair: pair[0])
    return derive(segmentation, with_parameters(segmentation, parameters or {}), chain, geometry)


def with_parameters(segmentation: Segmentation, parameters: Mapping[str, object]) -> Segmentation:
    """``segmentation`` itself, or a shallow view of it with ``parameters`` set (checked as
    ``-P`` is: an unknown name or a value out of range is a ValidationError). A name may
    be Slicer's or that name in snake case (``smoothing_factor``)."""
    if not parameters:
        return segmentation
    known = {name.lower().replace(" ", "_"): name for name in PARAMETERS}
    view = copy.copy(segmentation)
    view.conversion_parameters = segmentation.conversion_parameters.copy()
    for name, value in parameters.items():
        slicer = known.get(name.lower().replace(" ", "_"), name)
        view.conversion_parameters.set(slicer, _text(value))
    return view


def _text(value: object) -> str:
    """A parameter value as Slicer stores it: 1/0 for booleans, numbers as written."""
    return str(int(value)) if isinstance(value, bool) else str(value)
