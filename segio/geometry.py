"""Image grids in patient space.

Conventions, stated once for all of segio:

* Voxel arrays are numpy arrays indexed ``[k, j, i]`` (slice, row, column): C order, the
  order DICOM frames and NRRD/NIfTI payloads are stored in, so no reader has to transpose.
* ``ijk_to_lps`` maps the homogeneous index ``(i, j, k, 1)`` (column, row, slice) to the
  centre of that voxel in LPS millimetres (DICOM patient coordinates). RAS appears only at
  the edges (NIfTI, Slicer's in-memory matrices) through :meth:`Geometry.ijk_to_ras`.
* ``shape`` is the array shape, ``(k, j, i)``.

A :class:`Geometry` is immutable; its matrix is copied and validated on construction
(the lesson of nibabel's ``SpatialImage``), so a geometry that exists is a usable one.

:func:`slice_grid` is the one rule that turns slice positions (DICOM frames, contour
planes) into a grid. The row direction (first orientation vector) is the i axis with the
column spacing (PixelSpacing[1]); the column direction is the j axis with the row spacing
(PixelSpacing[0]). Slices are sorted along the normal; irregular spacing is allowed when
every slice falls on a multiple of the smallest gap (the missing slices become empty
grid slices, as highdicom does), otherwise it is a :class:`GeometryError`. The span of the
positions is checked against ``SEGIO_MAX_MEMORY`` before anything is allocated on it: one
frame placed millions of slices away is a refusal, not a terabyte array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segio.errors import GeometryError
from segio.fileio.limits import check_grid

FloatArray = NDArray[np.float64]

#: Flips x and y: LPS <-> RAS (its own inverse).
LPS_TO_RAS: FloatArray = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_TO_RAS.flags.writeable = False


class IndexMap(NamedTuple):
    """Where the voxels of one grid are on another's lattice (:meth:`Geometry.index_map`):
    per array axis (k, j, i) of the first, the other's array axis, the step along it
    (+1 or -1) and the index there of the first grid's voxel 0."""

    axes: tuple[int, int, int]
    steps: tuple[int, int, int]
    starts: tuple[int, int, int]


class AxisScales(NamedTuple):
    """How another grid's axes run along this grid's (:meth:`Geometry.axis_scales`): for
    each of the other's axes (i, j, k), this grid's axis (0 = i, 1 = j, 2 = k) it runs along,
    and ``scale`` and ``offset`` with ``this index = scale * other index + offset`` there."""

    axes: tuple[int, int, int]
    scales: tuple[float, float, float]
    offsets: tuple[float, float, float]


class Geometry:
    """A regular 3D grid: its ``(k, j, i)`` shape and its IJK -> LPS affine matrix."""

    __slots__ = ("_matrix", "_shape")

    def __init__(self, ijk_to_lps: ArrayLike, shape: Sequence[int]) -> None:
        matrix = np.array(ijk_to_lps, dtype=np.float64, copy=True)
        if matrix.shape != (4, 4):
            raise GeometryError(f"ijk_to_lps must be a 4x4 matrix, got shape {matrix.shape}")
        if not np.all(np.isfinite(matrix)):
            raise GeometryError("ijk_to_lps contains NaN or infinite values")
        if not np.allclose(matrix[3], (0.0, 0.0, 0.0, 1.0), atol=1e-9):
            raise GeometryError(f"ijk_to_lps last row must be (0, 0, 0, 1), got {matrix[3]}")
        matrix[3] = (0.0, 0.0, 0.0, 1.0)
        matrix += 0.0  # -0.0 -> 0.0, so equal grids hash alike
        if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
            raise GeometryError(
                "ijk_to_lps is singular: a voxel axis has zero length or two axes are parallel"
            )
        dims = tuple(int(n) for n in shape)
        if len(dims) != 3 or any(n < 1 or n != s for n, s in zip(dims, shape, strict=True)):
            raise GeometryError(f"shape must be three positive integers (k, j, i), got {shape}")
        matrix.flags.writeable = False
        self._matrix: FloatArray = matrix
        self._shape: tuple[int, int, int] = (dims[0], dims[1], dims[2])

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_spacing(
        cls,
        shape: Sequence[int],
        spacing: Sequence[float] = (1.0, 1.0, 1.0),
        origin: Sequence[float] = (0.0, 0.0, 0.0),
        direction: ArrayLike | None = None,
    ) -> Geometry:
        """Build from voxel size along (i, j, k), origin (LPS of voxel 0) and unit axes.

        ``direction`` holds the unit vectors of the i, j and k axes as *columns*.
        """
        axes = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
        if axes.shape != (3, 3):
            raise GeometryError(f"direction must be 3x3, got shape {axes.shape}")
        matrix = np.eye(4)
        matrix[:3, :3] = axes * np.asarray(spacing, dtype=np.float64)[np.newaxis, :]
        matrix[:3, 3] = origin
        return cls(matrix, shape)

    @classmethod
    def from_ras(cls, ijk_to_ras: ArrayLike, shape: Sequence[int]) -> Geometry:
        """Build from an IJK -> RAS affine (NIfTI, Slicer) and a ``(k, j, i)`` shape."""
        matrix = np.asarray(ijk_to_ras, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise GeometryError(f"ijk_to_ras must be a 4x4 matrix, got shape {matrix.shape}")
        return cls(LPS_TO_RAS @ matrix, shape)

    # -- views of the matrix -------------------------------------------------------------

    @property
    def ijk_to_lps(self) -> FloatArray:
        """The read-only 4x4 IJK -> LPS matrix."""
        return self._matrix

    @property
    def ijk_to_ras(self) -> FloatArray:
        """The 4x4 IJK -> RAS matrix (what NIfTI stores with i, j, k in that order)."""
        return LPS_TO_RAS @ self._matrix

    @property
    def lps_to_ijk(self) -> FloatArray:
        return np.asarray(np.linalg.inv(self._matrix), dtype=np.float64)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(k, j, i)``."""
        return self._shape

    @property
    def size_ijk(self) -> tuple[int, int, int]:
        """Number of voxels along i, j and k."""
        k, j, i = self._shape
        return (i, j, k)

    @property
    def spacing(self) -> FloatArray:
        """Voxel size in mm along i, j and k."""
        norms: FloatArray = np.linalg.norm(self._matrix[:3, :3], axis=0)
        return norms

    @property
    def direction(self) -> FloatArray:
        """Unit vectors of the i, j and k axes in LPS, as the columns of a 3x3 matrix."""
        return self._matrix[:3, :3] / self.spacing[np.newaxis, :]

    @property
    def origin(self) -> FloatArray:
        """LPS position of the centre of voxel (0, 0, 0)."""
        return self._matrix[:3, 3].copy()

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in mm³ (also right for sheared grids)."""
        return float(abs(np.linalg.det(self._matrix[:3, :3])))

    @property
    def is_orthogonal(self) -> bool:
        axes = self.direction
        return bool(np.allclose(axes.T @ axes, np.eye(3), atol=1e-6))

    # -- DICOM ---------------------------------------------------------------------------

    def image_orientation(self) -> FloatArray:
        """DICOM Image Orientation (Patient): the row (i) then column (j) unit vectors."""
        axes = self.direction
        return np.concatenate([axes[:, 0], axes[:, 1]])

    def slice_positions(self) -> FloatArray:
        """DICOM Image Position (Patient) of every slice k, shape ``(K, 3)``."""
        k = np.arange(self._shape[0], dtype=np.float64)
        return self._matrix[:3, 3][np.newaxis, :] + k[:, np.newaxis] * self._matrix[:3, 2]

    # -- points ----------------------------------------------------------------------------

    def ijk_to_points(self, ijk: ArrayLike) -> FloatArray:
        """LPS positions of ``(N, 3)`` continuous indices given as (i, j, k)."""
        idx = np.asarray(ijk, dtype=np.float64)
        return idx @ self._matrix[:3, :3].T + self._matrix[:3, 3]

    def points_to_ijk(self, points: ArrayLike) -> FloatArray:
        """Continuous (i, j, k) indices of ``(N, 3)`` LPS points."""
        pts = np.asarray(points, dtype=np.float64)
        inverse = self.lps_to_ijk
        return pts @ inverse[:3, :3].T + inverse[:3, 3]

    # -- sub-grids and comparison ------------------------------------------------------------

    def cropped(self, start: Sequence[int], shape: Sequence[int]) -> Geometry:
        """The grid of the box that begins at index ``start`` (k, j, i), same axes."""
        k, j, i = (int(v) for v in start)
        matrix = self._matrix.copy()
        matrix[:3, 3] = self.ijk_to_points([[i, j, k]])[0]
        return Geometry(matrix, shape)

    def grown_to(self, points: ArrayLike) -> Geometry:
        """This grid grown along its own lattice (same axes, spacing and voxel positions)
        until it holds the voxel nearest to every point; itself when it already does.

        What a contour or surface is rasterised on when this grid is its reference: the
        part outside the reference is then counted, not silently clipped.
        """
        from segio.fileio.limits import check_grid

        with np.errstate(over="ignore", invalid="ignore"):  # far vertices: refused below
            ijk = self.points_to_ijk(np.asarray(points, dtype=np.float64).reshape(-1, 3))
            if not len(ijk):
                return self
            size = np.array(self.size_ijk, dtype=np.float64)
            low = np.minimum(np.floor(ijk.min(axis=0) + 0.5), 0.0)
            high = np.maximum(np.ceil(ijk.max(axis=0) - 0.5), size - 1)
            if np.all(low == 0) and np.all(high == size - 1):
                return self
            check_grid((high - low + 1)[::-1], 1, "the reference grid grown to hold every point")
        start, extent = low.astype(np.int64), (high - low + 1).astype(np.int64)
        return self.cropped(
            (int(start[2]), int(start[1]), int(start[0])),
            (int(extent[2]), int(extent[1]), int(extent[0])),
        )

    def offset_in(self, other: Geometry, atol: float = 1e-4) -> tuple[int, int, int] | None:
        """Integer ``(k, j, i)`` index of this grid's first voxel in ``other``'s grid.

        None when the two grids are not aligned: different axes or spacing, or an origin
        that falls between voxel centres of ``other`` (beyond ``atol`` in voxel units).
        """
        if not np.allclose(self._matrix[:3, :3], other._matrix[:3, :3], atol=1e-6, rtol=1e-6):
            return None
        ijk = other.points_to_ijk(self._matrix[:3, 3][np.newaxis, :])[0]
        rounded = np.round(ijk)
        if not np.allclose(ijk, rounded, atol=atol):
            return None
        i, j, k = (int(v) for v in rounded)
        return (k, j, i)

    def index_map(self, other: Geometry, atol: float = 1e-3) -> IndexMap | None:
        """How the voxels of ``other`` sit on this grid's lattice, when every one of them
        is a voxel centre of this grid (extended beyond its box): None otherwise.

        For each array axis of ``other`` (k, j, i) the result gives the axis of this grid's
        array it runs along, its step there (+1 or -1) and the index on that axis of
        ``other``'s voxel 0. Such grids differ only by axis order, direction, cropping or
        padding, so moving voxels between them is exact (no interpolation). ``atol`` is in
        voxels of this grid, at the farthest voxel of ``other`` (so a long axis does not
        pile up a rounding error in the spacing).
        """
        transform = self.lps_to_ijk @ other._matrix  # other's (i, j, k) -> this grid's
        axes = transform[:3, :3]
        steps = np.round(axes)
        start = transform[:3, 3]
        first = np.round(start)
        far = np.array(other.size_ijk, dtype=np.float64) - 1
        error = np.abs(axes - steps) @ far + np.abs(start - first)
        used = np.abs(steps)
        if (
            np.any(error > atol)
            or not np.all(used.sum(axis=0) == 1)
            or not np.all(used.sum(axis=1) == 1)
        ):
            return None
        along, step, begin = [], [], []
        for axis in range(3):  # other's array axis (k, j, i) = its ijk column 2 - axis
            column = steps[:, 2 - axis]
            row = int(np.argmax(np.abs(column)))  # this grid's ijk row = array axis 2 - row
            along.append(2 - row)
            step.append(int(column[row]))
            begin.append(int(first[row]))
        return IndexMap(
            (along[0], along[1], along[2]),
            (step[0], step[1], step[2]),
            (begin[0], begin[1], begin[2]),
        )

    def axis_scales(self, other: Geometry, atol: float = 1e-3) -> AxisScales | None:
        """How ``other``'s axes run along this grid's when each runs along one of them
        (another spacing and origin, axes permuted or reversed): None when they lean.

        Grids related this way resample axis by axis (every voxel's overlap with another is
        a product of three interval overlaps). ``atol`` is in voxels of this grid, at the
        farthest voxel of ``other``.
        """
        transform = self.lps_to_ijk @ other._matrix  # other's (i, j, k) -> this grid's
        axes = transform[:3, :3]
        rows = np.argmax(np.abs(axes), axis=0)  # this grid's axis along each of other's
        if len(set(rows.tolist())) != 3:
            return None
        leaning = axes.copy()
        leaning[rows, np.arange(3)] = 0.0
        far = np.array(other.size_ijk, dtype=np.float64)
        if np.any(np.abs(leaning) @ far > atol):
            return None
        scales = axes[rows, np.arange(3)]
        offsets = transform[rows, 3]
        return AxisScales(
            (int(rows[0]), int(rows[1]), int(rows[2])),
            (float(scales[0]), float(scales[1]), float(scales[2])),
            (float(offsets[0]), float(offsets[1]), float(offsets[2])),
        )

    def with_spacing(self, spacing: Sequence[float]) -> Geometry:
        """This grid at another voxel size (mm along i, j, k): same axes, the first voxel's
        outer corner where it was, and as many voxels as cover the old extent.

        Voxel centres sit half a voxel inside the corner, so the origin (the first centre)
        moves by half the change of spacing. An extent that is not a whole number of new
        voxels is rounded up: the new grid covers every old voxel, reaching past the far
        side by less than one new voxel (a rounding error of 1e-6 voxel is not a voxel).
        """
        new = np.asarray(spacing, dtype=np.float64).reshape(-1)
        if new.shape != (3,) or not np.all(np.isfinite(new)) or not np.all(new > 0):
            raise GeometryError(f"a spacing is three positive numbers (mm), got {spacing!r}")
        old = self.spacing
        with np.errstate(over="ignore"):
            counts = np.maximum(np.ceil(np.array(self.size_ijk) * old / new - 1e-6), 1.0)
        check_grid(counts[::-1], 1, f"the grid of {_mm(new)} mm voxels")
        matrix = self._matrix.copy()
        matrix[:3, :3] = self._matrix[:3, :3] * (new / old)[np.newaxis, :]
        corner = self.ijk_to_points([[-0.5, -0.5, -0.5]])[0]
        matrix[:3, 3] = corner + matrix[:3, :3] @ np.full(3, 0.5)
        return Geometry(matrix, (int(counts[2]), int(counts[1]), int(counts[0])))

    def permutation_to(
        self, other: Geometry, atol: float = 1e-3
    ) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]] | None:
        """The axis permutation and flips that make this grid's array ``other``'s, when the
        two grids hold the same voxel centres (only their axis order or directions differ):
        ``np.flip(np.transpose(array, axes), [a for a in range(3) if flips[a]])``. None
        when they do not (another spacing, a shift, a rotation or another box)."""
        mapping = self.index_map(other, atol)
        if mapping is None:
            return None
        for axis in range(3):
            source = mapping.axes[axis]
            size = self._shape[source]
            expected = 0 if mapping.steps[axis] > 0 else size - 1
            if other._shape[axis] != size or mapping.starts[axis] != expected:
                return None
        flips = tuple(step < 0 for step in mapping.steps)
        return mapping.axes, (flips[0], flips[1], flips[2])

    def is_close(self, other: Geometry, atol: float = 1e-6) -> bool:
        """Same shape and a matrix equal within ``atol`` (mm, or mm per voxel)."""
        return self._shape == other._shape and bool(
            np.allclose(self._matrix, other._matrix, atol=atol, rtol=0.0)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Geometry):
            return NotImplemented
        return self._shape == other._shape and bool(np.array_equal(self._matrix, other._matrix))

    def __hash__(self) -> int:
        return hash((self._shape, self._matrix.tobytes()))

    def __repr__(self) -> str:
        spacing = ", ".join(f"{v:.4g}" for v in self.spacing)
        origin = ", ".join(f"{v:.4g}" for v in self.origin)
        return f"Geometry(shape={self._shape}, spacing=({spacing}), origin=({origin}))"


def _mm(values: ArrayLike) -> str:
    return " x ".join(f"{v:.4g}" for v in np.asarray(values, dtype=np.float64).reshape(-1))


def common_grid(geometries: Sequence[Geometry]) -> Geometry:
    """One grid covering every grid of ``geometries``, in the first one's axes.

    When every grid lies on the first one's lattice (one image, cropped or padded, axes
    permuted or reversed: :meth:`Geometry.index_map`), the box around them on that lattice,
    so that their voxels move onto it exactly. Otherwise a new lattice with the first
    grid's axes and, along each, the finest spacing any grid has along its axis closest
    to it; its first voxel's outer corner is the first grid's, and it grows by whole voxels
    until every grid's outer voxel corners are inside.
    """
    grids = list(geometries)
    if not grids:
        raise GeometryError("no grid to cover", hint="give at least one segmentation")
    first = grids[0]
    if all(first.index_map(grid) is not None for grid in grids):
        ends = []
        for grid in grids:
            far = np.array(grid.size_ijk, dtype=np.float64) - 1.0
            centres = grid.ijk_to_points(np.stack([np.zeros(3), far]))
            ends.append(np.round(first.points_to_ijk(centres)))
        low, high = np.min(np.concatenate(ends), axis=0), np.max(np.concatenate(ends), axis=0)
        shape = (high - low + 1)[::-1]
        check_grid(shape, 1, "the grid covering every segmentation")
        start = low[::-1].astype(np.int64)
        return first.cropped(start.tolist(), shape.astype(np.int64).tolist())
    axes = first.direction
    spacing = np.array(
        [
            min(float(g.spacing[np.argmax(np.abs(g.direction.T @ axes[:, a]))]) for g in grids)
            for a in range(3)
        ]
    )
    step = axes * spacing[np.newaxis, :]
    corner = first.ijk_to_points([[-0.5, -0.5, -0.5]])[0]
    corners = []
    for grid in grids:
        bounds = [(-0.5, n - 0.5) for n in grid.size_ijk]
        box = np.array(np.meshgrid(*bounds, indexing="ij")).reshape(3, -1).T
        corners.append(grid.ijk_to_points(box))
    # Corners in voxels of the new lattice, counted from the first grid's outer corner.
    units = np.linalg.solve(step, (np.concatenate(corners) - corner).T).T
    low = np.floor(units.min(axis=0) + 1e-6)
    high = np.ceil(units.max(axis=0) - 1e-6)
    counts = np.maximum(high - low, 1.0)
    check_grid(counts[::-1], 1, "the grid covering every segmentation")
    matrix = np.eye(4)
    matrix[:3, :3] = step
    matrix[:3, 3] = corner + step @ (low + 0.5)
    return Geometry(matrix, (int(counts[2]), int(counts[1]), int(counts[0])))


#: Relative tolerance on slice positions, as a fraction of the slice step.
POSITION_TOLERANCE = 0.01


def slice_grid(
    positions: ArrayLike,
    orientation: ArrayLike,
    pixel_spacing: Sequence[float],
    shape_2d: tuple[int, int],
    *,
    default_spacing: float = 1.0,
) -> tuple[Geometry, NDArray[np.intp]]:
    """The regular grid through ``positions`` (N x 3 IPP) and each position's slice index k.

    Positions that coincide (frames of several segments at one place) share an index.
    ``shape_2d`` is (rows, columns); ``default_spacing`` is used along k for one slice.
    """
    points = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    iop = np.asarray(orientation, dtype=np.float64).reshape(6)
    spacing = np.asarray(pixel_spacing, dtype=np.float64)
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(iop))):
        raise GeometryError("an image position or orientation is not a finite number")
    if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0)):
        raise GeometryError(f"pixel spacing {spacing.tolist()} is not two positive numbers")
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
        raise GeometryError(f"image orientation {iop.tolist()} is not two orthogonal unit vectors")
    distance = points @ normal
    order = np.argsort(distance, kind="stable")
    unique = [order[0]]
    for index in order[1:]:
        if distance[index] - distance[unique[-1]] > 1e-4:
            unique.append(index)
    levels = distance[unique]
    if len(unique) == 1:
        check_grid((1, *shape_2d), 1, "the image plane")
        step = normal * default_spacing
        indices = np.zeros(len(points), dtype=np.intp)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # positions near 1e308: inf,
            gaps = np.diff(levels)  # refused just below as an unbounded grid
            unit = float(gaps.min())
            slot = np.round((levels - levels[0]) / unit)
        # A frame far away, or two a hair apart, make a grid of millions of slices.
        check_grid(
            (float(slot[-1]) + 1, *shape_2d),
            1,
            f"a grid of {float(slot[-1]) + 1:.4g} slices of {unit:.4g} mm through the positions "
            f"{levels[0]:.6g} to {levels[-1]:.6g} mm",
        )
        if np.any(np.abs(levels - levels[0] - slot * unit) > POSITION_TOLERANCE * unit):
            raise GeometryError(
                "the slices are not on a regular grid (gaps "
                + ", ".join(f"{g:.4g}" for g in np.unique(np.round(gaps, 4)))
                + " mm)",
                hint="segio places slices on a grid whose spacing divides every gap",
            )
        # The step follows the slices (it may lean, for a tilted gantry), not the normal.
        first, last = points[unique[0]], points[unique[-1]]
        step = (last - first) / slot[-1]
        predicted = first + np.outer(slot, step)
        if np.any(np.linalg.norm(points[unique] - predicted, axis=1) > POSITION_TOLERANCE * unit):
            raise GeometryError("the slice positions do not lie on one straight line")
        indices = np.round((distance - levels[0]) / unit).astype(np.intp)
    matrix = np.eye(4)
    matrix[:3, 0] = row * float(pixel_spacing[1])
    matrix[:3, 1] = col * float(pixel_spacing[0])
    matrix[:3, 2] = step
    matrix[:3, 3] = points[unique[0]]
    rows, columns = shape_2d
    return Geometry(matrix, (int(indices.max()) + 1, rows, columns)), indices
