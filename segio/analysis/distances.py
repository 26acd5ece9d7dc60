"""How far apart two segmentations' boundaries are, in millimetres.

Overlap (:mod:`segio.analysis.overlap`) says how much two masks share, not how far a
disagreement reaches: one stray island 5 cm away barely moves the Dice coefficient but is
the Hausdorff distance. Distances are measured between boundary points in patient space
(LPS mm) through the grid's geometry, so anisotropic and oblique grids measure correctly
where distances counted in voxels would not.

:func:`mask_surface_distances` compares two masks on one grid: their boundary voxels (in
the mask, with a face neighbour outside it or on the image border) as points at the voxel
centres. :func:`point_distances` compares two point sets, such as the vertices of two
meshes. Both give a :class:`SurfaceDistances`, from which the usual summaries follow
(Hausdorff distance, its 95th percentile, average symmetric surface distance). Nearest
points are found with a k-d tree over the boundary points only, so the cost follows the
boundary's size, not the volume's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segio.geometry import Geometry

__all__ = [
    "SurfaceDistances",
    "boundary_voxels",
    "mask_surface_distances",
    "point_distances",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class SurfaceDistances:
    """Distances (mm) from each boundary point of one side to the nearest of the other.

    ``a_to_b[n]`` is the distance from the n-th point of ``a`` to the nearest point of
    ``b``; ``b_to_a`` the other way. When one side has no point, every distance from the
    other side is infinite; when neither has, there is nothing to measure and every
    summary is 0.
    """

    a_to_b: FloatArray
    b_to_a: FloatArray

    @property
    def hausdorff(self) -> float:
        """Symmetric Hausdorff distance: the largest distance either way (mm)."""
        return max(_largest(self.a_to_b), _largest(self.b_to_a))

    def hausdorff_percentile(self, percent: float = 95.0) -> float:
        """The ``percent``-th percentile of each direction's distances, the larger of the
        two (mm): the Hausdorff distance without its most extreme outliers (HD95)."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"percent must be between 0 and 100, got {percent}")
        return max(
            float(np.percentile(side, percent)) if side.size else 0.0
            for side in (self.a_to_b, self.b_to_a)
        )

    @property
    def mean(self) -> float:
        """Average symmetric surface distance: the mean over both directions' points (mm)."""
        count = self.a_to_b.size + self.b_to_a.size
        if count == 0:
            return 0.0
        return float((self.a_to_b.sum() + self.b_to_a.sum()) / count)


def _largest(distances: FloatArray) -> float:
    return float(distances.max()) if distances.size else 0.0


def point_distances(a_points: ArrayLike, b_points: ArrayLike) -> SurfaceDistances:
    """Nearest-point distances between two ``(N, 3)`` point sets (mm), both ways."""
    a = np.asarray(a_points, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(b_points, dtype=np.float64).reshape(-1, 3)
    return SurfaceDistances(_nearest(a, b), _nearest(b, a))


def _nearest(points: FloatArray, targets: FloatArray) -> FloatArray:
    """Distance from each point to the nearest target (infinite without targets)."""
    if not len(points):
        return np.zeros(0, dtype=np.float64)
    if not len(targets):
        return np.full(len(points), np.inf)
    from scipy.spatial import cKDTree

    distances, _ = cKDTree(targets).query(points)
    return np.asarray(distances, dtype=np.float64)


def boundary_voxels(mask: ArrayLike) -> BoolArray:
    """The voxels of ``mask`` with a face neighbour outside it (or on the image border)."""
    inside = np.asarray(mask, dtype=bool)
    if inside.ndim != 3:
        raise ValueError(f"a mask has three axes (k, j, i), got shape {inside.shape}")
    padded = np.pad(inside, 1)
    interior = inside.copy()
    centre = slice(1, -1)
    for axis in range(3):
        for shifted in (slice(None, -2), slice(2, None)):
            window = [centre, centre, centre]
            window[axis] = shifted
            interior &= padded[tuple(window)]
    return np.asarray(inside & ~interior)


def _boundary_points(mask: BoolArray, geometry: Geometry) -> FloatArray:
    """LPS positions (mm) of the boundary voxels' centres, computed in the mask's box."""
    where = np.argwhere(mask)
    if not len(where):
        return np.zeros((0, 3), dtype=np.float64)
    low, high = where.min(axis=0), where.max(axis=0) + 1
    box = tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high, strict=True))
    kji = np.argwhere(boundary_voxels(mask[box])) + low
    return geometry.ijk_to_points(kji[:, ::-1])


def mask_surface_distances(
    a_mask: ArrayLike, b_mask: ArrayLike, geometry: Geometry
) -> SurfaceDistances:
    """Distances between the boundaries of two masks on ``geometry`` (mm), both ways.

    Boundary points are voxel centres, so identical masks are 0 apart and a mask moved by
    one voxel along an axis is that axis' spacing away; the resolution is the grid's.
    """
    a = np.asarray(a_mask, dtype=bool)
    b = np.asarray(b_mask, dtype=bool)
    for mask in (a, b):
        if mask.shape != geometry.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the grid's {geometry.shape}")
    return point_distances(_boundary_points(a, geometry), _boundary_points(b, geometry))
