"""Planar contours -> binary labelmap, voxel-exact (the reverse is
:mod:`segio.converters.labelmap_to_contours`).

The 2D work (even-odd filling) is in :mod:`segio.converters.polygons_to_mask`; this module
does the 3D part: it maps each plane's polygons in LPS millimetres to the pixel grid of one
slice and packs the rasterised segments into labelmap layers.

Why contours are matched to slices *geometrically* (by their position along the slice
axis) and never by the image UID they cite: that reference is optional in DICOM
(ContourImageSequence is Type 3), is often dangling (MIM exports) and breaks readers that
rely on it (qurit/rt-utils#49). Why slices are found per contour and not by an averaged
spacing: irregular z spacing is common and averaging misplaces planes
(pyplati/platipy#314).

Coordinates come from files, so the grid a conversion allocates is checked against
``SEGIO_MAX_MEMORY`` first (:func:`segio.fileio.limits.check_grid`): one vertex 1e5 mm away
would otherwise make a grid of gigabytes.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from numpy.typing import NDArray

from segio import progress
from segio.contours import PlanarContours, all_points
from segio.converters.polygons_to_mask import rasterize_many
from segio.errors import GeometryError, ValidationError
from segio.fileio.limits import check_grid
from segio.geometry import Geometry, slice_grid
from segio.labels.packing import FirstFitPacker
from segio.model import Layer, Segmentation
from segio.representations import Representation

#: Conversion parameter: pixel size (mm) of a grid derived from the contours alone.
SPACING_PARAMETER = "Contour rasterization spacing"
#: Conversion parameter (SlicerRT's name): slice spacing when all contours lie on one plane.
THICKNESS_PARAMETER = "Default slice thickness"
#: A contour whose distance to its slice is below this (in slices) is on it: DS rounding.
ON_PLANE = 1e-3
#: Contours farther than this from every slice (in slices) are dropped, nearer ones snapped.
SNAP_LIMIT = 0.5
#: Contours with a vertex farther than this (in pixels) from the grid are dropped as off it:
#: no genuine contour reaches so far, and the edge arithmetic of coordinates near 1e308
#: would overflow.
FAR = 1e9


def _plane_axes(normal: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """In-plane row and column unit vectors for ``normal`` (the patient axes when axial)."""
    n = normal / np.linalg.norm(normal)
    if abs(n[2]) > 1 - 1e-6:
        row = np.array([1.0, 0.0, 0.0])
    else:
        seed = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        row = seed - (seed @ n) * n
        row /= np.linalg.norm(row)
    col = np.cross(n, row)
    if n[2] < 0:  # keep k increasing along the normal as given
        col = -col
    return row, col


def _newell_normal(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Normal of a (nearly) planar polygon; zero vector when degenerate."""
    a, b = points, np.roll(points, -1, axis=0)
    return np.array(
        [
            np.sum((a[:, 1] - b[:, 1]) * (a[:, 2] + b[:, 2])),
            np.sum((a[:, 2] - b[:, 2]) * (a[:, 0] + b[:, 0])),
            np.sum((a[:, 0] - b[:, 0]) * (a[:, 1] + b[:, 1])),
        ]
    )


def derive_grid(segmentation: Segmentation) -> Geometry:
    """A grid holding every closed contour, with one slice per contour plane.

    Used only when neither a grid nor a reference geometry is known. The plane normal is
    the area-weighted normal of the largest contour; the in-plane pixel size is the
    conversion parameter :data:`SPACING_PARAMETER` (default 1 mm).
    """
    params = segmentation.conversion_parameters
    spacing = params.number(SPACING_PARAMETER)
    thickness = params.number(THICKNESS_PARAMETER)
    if not spacing > 0 or not thickness > 0:
        raise ValidationError(f"{SPACING_PARAMETER!r} and {THICKNESS_PARAMETER!r} must be > 0")
    closed = [c for group in segmentation.contours.values() for c in group.closed]
    if not closed:
        raise GeometryError("no closed contour to derive a grid from; give a reference grid")
    with np.errstate(over="ignore", invalid="ignore"):  # coordinates near 1e308
        normals = [_newell_normal(c.points) for c in closed]
        lengths = np.array([np.linalg.norm(v) for v in normals])
    if not np.all(np.isfinite(lengths)):  # so far away that not even the plane is a number
        check_grid((1, np.inf, np.inf), 1, "a grid derived from the contours' coordinates")
    normal = normals[int(np.argmax(lengths))]
    if not np.linalg.norm(normal) > 0:
        raise GeometryError("the contours are degenerate (zero area); no plane to rasterise on")
    normal = normal / np.linalg.norm(normal)
    if normal @ np.array([1.0, 1.0, 1.0]) < 0:
        normal = -normal
    row, col = _plane_axes(normal)
    points = all_points(segmentation.contours.values())
    with np.errstate(over="ignore", invalid="ignore"):
        u, v = points @ row, points @ col
    u0, v0 = float(u.min()) - spacing, float(v.min()) - spacing
    extent = (float(v.max()) - v0) / spacing + 2, (float(u.max()) - u0) / spacing + 2
    # A vertex far away spans a huge plane: refused before its size is even an integer.
    check_grid((1, *extent), 1, "a grid derived from the contours' coordinates")
    columns, rows = int(np.ceil(extent[1])), int(np.ceil(extent[0]))
    offsets = np.array([offset for offset, _ in PlanarContours(closed).by_plane(normal, 1e-3)])
    origin = u0 * row + v0 * col
    positions = origin[np.newaxis, :] + offsets[:, np.newaxis] * normal[np.newaxis, :]
    grid, _ = slice_grid(
        positions,
        np.concatenate([row, col]),
        (spacing, spacing),
        (rows, columns),
        default_spacing=thickness,
    )
    return grid


def slice_polygons(
    contours: PlanarContours, grid: Geometry
) -> tuple[dict[int, list[NDArray[np.float64]]], int, int]:
    """Closed contours as ``{k: [(N, 2) pixel (x=i, y=j) polygons]}`` on ``grid``.

    Returns also how many contours were snapped (more than :data:`ON_PLANE` but at most
    :data:`SNAP_LIMIT` slices off their nearest slice) and how many were dropped (off the
    grid along k, or with a vertex :data:`FAR` pixels away).
    """
    closed = contours.closed
    by_slice: dict[int, list[NDArray[np.float64]]] = {}
    if not closed:
        return by_slice, 0, 0
    sizes = np.array([len(c.points) for c in closed])
    starts = np.cumsum(sizes) - sizes
    with np.errstate(over="ignore", invalid="ignore"):  # vertices near 1e308: dropped below
        ijk = grid.points_to_ijk(np.concatenate([c.points for c in closed]))
        k_mean = np.add.reduceat(ijk[:, 2], starts) / sizes
        k_min = np.minimum.reduceat(ijk[:, 2], starts)
        k_max = np.maximum.reduceat(ijk[:, 2], starts)
        nearest = np.round(k_mean)
        off = np.maximum(np.abs(k_max - nearest), np.abs(k_min - nearest))
        reach = np.maximum.reduceat(np.abs(ijk[:, :2]).max(axis=1), starts)
    inside = (nearest >= 0) & (nearest < grid.shape[0]) & (off <= SNAP_LIMIT + ON_PLANE)
    inside &= reach <= FAR + max(grid.shape)
    snapped = int(np.count_nonzero(inside & (off > ON_PLANE)))
    dropped = int(np.count_nonzero(~inside))
    for n in np.flatnonzero(inside):
        xy = ijk[starts[n] : starts[n] + sizes[n], :2]
        by_slice.setdefault(int(nearest[n]), []).append(xy)
    return by_slice, snapped, dropped


def contours_on_grid(contours: PlanarContours, grid: Geometry) -> tuple[int, int]:
    """How many closed contours lie on ``grid`` and how many off it: beyond its slices
    (as :func:`slice_polygons` drops them) or beside its box within their slice."""
    planes, _, dropped = slice_polygons(contours, grid)
    rows, columns = grid.shape[1], grid.shape[2]
    beside = 0
    for polygons in planes.values():
        for xy in polygons:
            low, high = xy.min(axis=0), xy.max(axis=0)
            if high[0] < -0.5 or high[1] < -0.5 or low[0] > columns - 0.5 or low[1] > rows - 0.5:
                beside += 1
    off = dropped + beside
    return len(contours.closed) - off, off


def to_labelmap(segmentation: Segmentation, geometry: Geometry | None = None) -> Segmentation:
    """Rasterise every segment's closed contours (even-odd per plane) onto a grid.

    The grid is ``geometry``, else the segmentation's reference geometry, else one derived
    from the contours (:func:`derive_grid`). Open contours and points are annotations and
    are not rasterised. Segments are packed first-fit into as few layers as possible (as
    :meth:`Segmentation.add_mask` would, but one slice at a time, without full-volume masks).
    """
    if segmentation.source_representation is not Representation.PLANAR_CONTOURS:
        raise ValidationError("to_labelmap needs a planar-contour segmentation")
    grid = geometry or segmentation.reference_geometry or derive_grid(segmentation)
    rows, cols = grid.shape[1], grid.shape[2]
    packer = FirstFitPacker(grid.shape)
    segments = []
    snapped = dropped = 0
    for segment in progress.track(segmentation.segments.values(), "rasterising contours"):
        # Room for one more layer, should this segment overlap every layer so far.
        check_grid(grid.shape, len(packer.layers) + 1, "the labelmap layers of the contours")
        planes, s, d = slice_polygons(segmentation.contours[segment.id], grid)
        snapped, dropped = snapped + s, dropped + d
        order = sorted(planes)
        blocks = rasterize_many([planes[k] for k in order], (rows, cols), boundary=True)
        # Each plane as the block its crossings span (everything else is False).
        regions = [
            ((k, slice(r, r + m.shape[0]), slice(c, c + m.shape[1])), m)
            for k, (r, c, m) in zip(order, blocks, strict=True)
            if m.any()
        ]
        target, label = packer.place(regions)
        segments.append(dataclasses.replace(segment, layer=target, label_value=label))
    layers = packer.layers or [np.zeros(grid.shape, dtype=np.uint8)]
    if snapped:
        warnings.warn(
            f"{snapped} contour(s) were off their slice plane by up to {SNAP_LIMIT} slice and "
            "were moved onto the nearest slice",
            stacklevel=2,
        )
    if dropped:
        warnings.warn(f"{dropped} contour(s) lie outside the grid and were dropped", stacklevel=2)
    contained = [*segmentation.contained_representations, Representation.PLANAR_CONTOURS]
    return Segmentation(
        segments,
        [Layer(array, grid) for array in layers],
        conversion_parameters=segmentation.conversion_parameters.copy(),
        reference_geometry=geometry or segmentation.reference_geometry or grid,
        contained_representations=list(dict.fromkeys(contained)),
        provenance=segmentation.provenance,
        extras=segmentation.extras,
    )
