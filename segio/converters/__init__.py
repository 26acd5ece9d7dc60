"""Representation converters and grid operations.

(Named ``converters`` so that it does not shadow the ``segio.convert`` verb.)

Converters are declared like formats (``segio_converters`` hook, see
``segio.converters.register``) and chained by cost through the registry, so a writer that
takes binary labelmaps accepts a fractional segmentation without knowing how to convert it.
"""

from __future__ import annotations

from collections.abc import Iterable

from segio.geometry import Geometry
from segio.model import Segmentation
from segio.registry import Registry, default_registry, load
from segio.representations import Representation

#: Representations on a grid: what a converter given a ``geometry`` rasterises onto it.
LABELMAPS = frozenset({Representation.BINARY_LABELMAP, Representation.FRACTIONAL_LABELMAP})


def to_representation(
    segmentation: Segmentation,
    targets: Iterable[Representation],
    *,
    registry: Registry | None = None,
    geometry: Geometry | None = None,
) -> Segmentation:
    """``segmentation`` in the cheapest of ``targets`` (itself if its source is one).

    ``geometry`` is the grid a converter that makes a labelmap puts it on (a writer's
    reference): contours and surfaces are rasterised on it directly, never on a grid of
    their own that is then resampled.
    """
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
    points = segmentation.points  # converters build new segmentations: points ride along
    for spec in chain:
        function = load(spec.function, requires=spec.requires, extra=spec.extra)
        if geometry is not None and spec.target in LABELMAPS and spec.source not in LABELMAPS:
            segmentation = function(segmentation, geometry)
        else:
            segmentation = function(segmentation)
    segmentation.points = list(points)
    return segmentation
