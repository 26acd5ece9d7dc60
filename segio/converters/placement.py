"""A segmentation made ready for a writer: in a representation it writes, on the grid of
the reference when there is one, and refused when nothing of it survived.

Why the reference grid is *the* grid: contours and surfaces rasterised on a grid of their
own and then resampled onto the reference by nearest neighbour lose and gain voxels at
every edge (882 of the 20,146 voxels of the MIM structure set in rt-utils' tests; issue 12
saw 89 of 14,624 on another vendor's). So they are rasterised
on the reference's own lattice, grown to hold every vertex, and cropped to the reference
by index: inside it they are exactly a direct rasterisation, and what lies outside is
counted per segment. A labelmap already on a grid is moved by index when the two grids
share a lattice (axes permuted or flipped, cropped, padded), and sampled otherwise, with
a warning (:func:`segio.converters.resample.onto_grid`).

An output in which every segment is empty although the input was not is refused unless
``allow_empty``: a reference that does not overlap the segmentation, or a grid too coarse
for it, would otherwise give a file that looks fine and holds nothing. An input that is
empty to begin with (an AI model that found nothing) is written as it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

from segio.converters import LABELMAPS, to_representation
from segio.converters.contours_to_labelmap import contours_on_grid
from segio.converters.resample import onto_grid
from segio.errors import WriteError
from segio.geometry import Geometry
from segio.model import Segmentation
from segio.reference import Reference
from segio.registry import Registry
from segio.representations import Representation

#: Hint of every refusal of an emptied output.
_ALLOW = "allow_empty=True (--allow-empty on the command line) writes it empty anyway"


def prepare(
    segmentation: Segmentation,
    writes: Iterable[Representation],
    reference: Reference | None,
    *,
    allow_empty: bool = False,
    registry: Registry | None = None,
) -> Segmentation:
    """``segmentation`` as a writer of ``writes`` takes it, on ``reference``'s grid if given.

    Raises :class:`WriteError` when every segment came out empty though the input was
    not, unless ``allow_empty`` (then it warns).
    """
    targets = frozenset(writes)
    had = has_content(segmentation)
    grid = reference.geometry if reference is not None else None
    what = f"the grid of the reference {reference.path.name}" if reference is not None else ""
    if had and grid is not None and _apart(segmentation, grid):
        # Said first and alone: every voxel is lost, what each step loses adds nothing.
        _refuse_empty(segmentation, segmentation, grid, what, allow_empty)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _placed(segmentation, targets, grid, what, registry)
    result = _placed(segmentation, targets, grid, what, registry)
    if had and not has_content(result, grid):
        _refuse_empty(segmentation, result, grid, what, allow_empty)
    return result


def _placed(
    segmentation: Segmentation,
    targets: frozenset[Representation],
    grid: Geometry | None,
    what: str,
    registry: Registry | None,
) -> Segmentation:
    """The conversion and the move onto ``grid`` of :func:`prepare`, with their warnings."""
    result = segmentation
    if result.source_representation not in targets:
        # Contours and surfaces go straight onto the reference's lattice (grown to hold
        # them, so that what lies outside is counted below, not clipped unseen).
        raster = rasterisation_grid(result, grid) if grid is not None else None
        result = to_representation(result, targets, registry=registry, geometry=raster)
    if grid is not None and result.source_representation in LABELMAPS and result.layers:
        result = onto_grid(result, grid, what=what)
        result.reference_geometry = grid
    elif grid is not None and result.source_representation is Representation.PLANAR_CONTOURS:
        _warn_contours_off(result, grid, what)
    return result


def refuse_emptied(
    source: Segmentation, reference: Reference, *, allow_empty: bool = False
) -> None:
    """Refuse ``source``, which has content, for coming out empty on ``reference`` (a
    reader placed it there; :func:`prepare` does the same for writers); with
    ``allow_empty``, warn."""
    name = f"the grid of the reference {reference.path.name}"
    _refuse_empty(source, source, reference.geometry, name, allow_empty)


def rasterisation_grid(segmentation: Segmentation, grid: Geometry) -> Geometry:
    """``grid`` grown along its lattice to hold every contour and surface vertex; ``grid``
    itself when they are inside it, or when none of them is near it (nothing would be
    rasterised, and a grid reaching far data could be huge)."""
    points = _vertices(segmentation)
    if not len(points):
        return grid
    with np.errstate(over="ignore", invalid="ignore"):
        ijk = grid.points_to_ijk(points)
        low = np.floor(ijk.min(axis=0) + 0.5)
        high = np.ceil(ijk.max(axis=0) - 0.5)
    size = np.array(grid.size_ijk, dtype=np.float64)
    if np.any(high < 0) or np.any(low > size - 1) or not np.all(np.isfinite(ijk)):
        return grid
    return grid.grown_to(points)


def has_content(segmentation: Segmentation, grid: Geometry | None = None) -> bool:
    """True when some segment has a voxel, a non-empty surface or a closed contour (one
    on ``grid``, when given). Point annotations are not content: no voxel holds them."""
    source = segmentation.source_representation
    if source is Representation.PLANAR_CONTOURS:
        groups = segmentation.contours.values()
        if grid is None:
            return any(group.closed for group in groups)
        return any(group.closed and contours_on_grid(group, grid)[0] for group in groups)
    if source is Representation.CLOSED_SURFACE:
        return any(not surface.is_empty for surface in segmentation.surfaces.values())
    for layer in segmentation.layers:
        if layer.max_fraction is None and layer.array.any():
            return True
        half = max(1, -(-(layer.max_fraction or 0) // 2))  # as Segmentation.mask counts
        if layer.max_fraction is not None and np.any(layer.array >= half):
            return True
    return False


def _vertices(segmentation: Segmentation) -> np.ndarray:
    """Every closed-contour vertex or surface vertex, ``(N, 3)`` LPS mm."""
    pieces = [c.points for group in segmentation.contours.values() for c in group.closed]
    pieces += [s.vertices for s in segmentation.surfaces.values() if not s.is_empty]
    return np.concatenate(pieces) if pieces else np.zeros((0, 3))


def _warn_contours_off(segmentation: Segmentation, grid: Geometry, what: str) -> None:
    """Contours written as they are (RTSTRUCT to RTSTRUCT) that miss the reference: the
    file keeps them, but they cite no image of it."""
    off = []
    for segment in segmentation.segments.values():
        group = segmentation.contours.get(segment.id)
        if group is None or not group.closed:
            continue
        on, missed = contours_on_grid(group, grid)
        if missed:
            off.append(f"{segment.name!r} {missed} of {on + missed}")
    if off:
        warnings.warn(
            f"{what} covers only part of the contours; these lie off its slices and cite "
            f"no image: {', '.join(off[:10])}" + (" and more" if len(off) > 10 else ""),
            stacklevel=5,
        )


def _refuse_empty(
    source: Segmentation,
    result: Segmentation,
    grid: Geometry | None,
    what: str,
    allow_empty: bool,
) -> None:
    if grid is None:
        reason = (
            f"every segment came out empty as {_name(result)}, though the input has "
            f"{_name(source)} content (too small for the grid?)"
        )
        hint = f"give a reference grid or a finer spacing; {_ALLOW}"
    elif _apart(source, grid):
        reason = f"{what} does not overlap the segmentation: every segment would be empty"
        hint = f"check that the reference is the image the segmentation was drawn on; {_ALLOW}"
    else:
        reason = (
            f"every segment came out empty on {what}, though the input has {_name(source)} "
            "content: the grid only touches the segmentation or is too coarse for it"
        )
        hint = f"check the reference image; {_ALLOW}"
    if not allow_empty:
        raise WriteError(reason, hint=hint)
    warnings.warn(f"{reason}; written empty as asked (allow_empty)", stacklevel=4)


def _apart(segmentation: Segmentation, grid: Geometry) -> bool:
    """True when the segmentation's box and the grid's box are disjoint (in grid voxels)."""
    source = segmentation.geometry
    if segmentation.layers and source is not None:
        boxes = [box for box in segmentation.extents().values() if box is not None]
        if not boxes:
            return False
        corners = np.array([[i, j, k] for (k, j, i) in _corners(boxes)], dtype=np.float64)
        points = source.ijk_to_points(corners)
    else:
        points = _vertices(segmentation)
    if not len(points):
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        ijk = grid.points_to_ijk(points)
    size = np.array(grid.size_ijk, dtype=np.float64)
    return bool(np.any(ijk.max(axis=0) < -0.5) or np.any(ijk.min(axis=0) > size - 0.5))


def _corners(
    boxes: list[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]],
) -> list[tuple[int, int, int]]:
    """The eight corners (k, j, i) of the box around every segment's box."""
    low = [min(box[axis][0] for box in boxes) for axis in range(3)]
    high = [max(box[axis][1] for box in boxes) for axis in range(3)]
    return [
        (k, j, i) for k in (low[0], high[0]) for j in (low[1], high[1]) for i in (low[2], high[2])
    ]


def _name(segmentation: Segmentation) -> str:
    return segmentation.source_representation.value.lower()
