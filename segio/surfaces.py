"""The closed-surface representation: one triangle mesh per segment, in LPS millimetres.

Mesh formats (STL, OBJ, PLY, glTF, 3MF, VTK) store a segment this way, and 3D Slicer's
"Closed surface" is what it renders in 3D. The mesh is plain numpy, so the core never needs
VTK or trimesh: the converters in :mod:`segio.converters.labelmap_to_surface` and the mesh plugins
import those only when a surface is built or a file is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segio.errors import ValidationError
from segio.geometry import LPS_TO_RAS

__all__ = [
    "LPS_TO_RAS",
    "OPACITY",
    "Surface",
    "compacted",
    "face_normals",
    "parse_opacity",
    "vertex_normals",
]

#: The segment property that holds its display opacity (0..1), as mesh files carry it.
OPACITY = "opacity"


def parse_opacity(text: str | None, segment_id: str) -> float:
    """A segment's display opacity from its :data:`OPACITY` property text (1 when it has
    none); a value outside 0..1 is refused rather than clamped into a file."""
    if text is None:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValidationError(f"segment {segment_id!r}: opacity must be in 0..1, got {text!r}")
    return value


@dataclass(frozen=True, eq=False)
class Surface:
    """A triangle mesh: ``vertices`` ``(N, 3)`` float64 LPS mm, ``faces`` ``(M, 3)`` int64.

    Faces are counter-clockwise seen from outside (outward normals by the right-hand rule),
    as every mesh format and trimesh expect. ``normals`` are optional per-vertex unit
    normals (float32), kept because smoothing-aware normals are expensive to recompute.
    """

    vertices: NDArray[np.float64]
    faces: NDArray[np.int64]
    normals: NDArray[np.float32] | None = None

    def __init__(
        self, vertices: ArrayLike, faces: ArrayLike, normals: ArrayLike | None = None
    ) -> None:
        points = np.array(vertices, dtype=np.float64, copy=True)
        given = np.asarray(faces)
        if points.size % 3 or given.size % 3:
            raise ValidationError(
                f"a surface needs (N, 3) vertices and (M, 3) faces, got {points.size} "
                f"coordinates and {given.size} face indices (not multiples of 3)"
            )
        if given.dtype.kind == "f" and not np.array_equal(given, np.round(given)):
            # int64 would truncate 1.5 to 1 silently (and NaN to garbage).
            raise ValidationError("a surface has face indices that are not whole numbers")
        points = points.reshape(-1, 3)
        triangles = np.array(given, dtype=np.int64, copy=True).reshape(-1, 3)
        if not np.all(np.isfinite(points)):
            raise ValidationError("a surface has NaN or infinite vertex coordinates")
        if triangles.size and (triangles.min() < 0 or triangles.max() >= len(points)):
            raise ValidationError(f"a surface face refers to a vertex outside 0..{len(points) - 1}")
        unit: NDArray[np.float32] | None = None
        if normals is not None:
            unit = np.array(normals, dtype=np.float32, copy=True)
            if unit.size != points.size:
                raise ValidationError(
                    f"a surface has {unit.size / 3:g} normals for {len(points)} vertices"
                )
            unit = unit.reshape(-1, 3)
            unit.flags.writeable = False
        points.flags.writeable = False
        triangles.flags.writeable = False
        object.__setattr__(self, "vertices", points)
        object.__setattr__(self, "faces", triangles)
        object.__setattr__(self, "normals", unit)

    @property
    def is_empty(self) -> bool:
        return len(self.faces) == 0

    @property
    def bounds(self) -> NDArray[np.float64]:
        """``[[min x, y, z], [max x, y, z]]`` in LPS mm (zeros for an empty surface)."""
        if not len(self.vertices):
            return np.zeros((2, 3))
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    @cached_property
    def _edge_balance(self) -> tuple[int, bool]:
        """Boundary edges, and whether the winding is consistent (computed once).

        Every triangle side is an edge from one vertex to the next. An undirected edge
        used by an odd number of triangles is a boundary: the mesh has a hole there. The
        winding is consistent when every directed edge is matched by the reverse edge as
        often (four triangles on one edge, as where two voxels touch along an edge only,
        still balance). One sort of ``3 M`` integer codes: no loop over triangles.
        """
        if self.is_empty:
            return 0, True
        faces = _welded_faces(self.vertices, self.faces)
        start = faces.ravel()
        end = faces[:, [1, 2, 0]].ravel()
        low, high = np.minimum(start, end), np.maximum(start, end)
        codes = low * np.int64(len(self.vertices)) + high
        order = np.argsort(codes, kind="stable")
        edges = codes[order]
        first = np.flatnonzero(np.concatenate([[True], edges[1:] != edges[:-1]]))
        uses = np.diff(np.append(first, len(edges)))
        boundary = int(np.count_nonzero(uses % 2))
        # +1 for a side running from its lower to its higher vertex, -1 the other way.
        sign = np.where(start < end, 1, -1)[order]
        balanced = not np.any(np.add.reduceat(sign, first))
        return boundary, bool(balanced)

    @property
    def boundary_edges(self) -> int:
        """Edges bounding only one side of the mesh (used by an odd number of triangles)."""
        return self._edge_balance[0]

    @property
    def is_closed(self) -> bool:
        """No boundary edge: the mesh encloses a volume (an empty surface is closed)."""
        return self.boundary_edges == 0

    def volume(self) -> float:
        """Enclosed volume in mm³ (divergence theorem), whichever way the faces turn.

        Only a closed, consistently wound mesh encloses a volume: for an open one (a sheet,
        a box without a lid) or one with triangles turned over, the divergence sum is a
        number without meaning, so a ValidationError says which, rather than a negative or
        wrong "volume".
        """
        if self.is_empty:
            return 0.0
        boundary, consistent = self._edge_balance
        if boundary:
            raise ValidationError(
                f"the surface is open ({boundary} boundary edges): it encloses no volume",
                hint="close the holes in a mesh editor",
            )
        if not consistent:
            raise ValidationError(
                "the surface is closed but its triangles are not consistently wound: its "
                "volume is unknown",
                hint="reorient the faces in a mesh editor",
            )
        a, b, c = (self.vertices[self.faces[:, n]] for n in range(3))
        return abs(float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0))

    def transformed(self, matrix: ArrayLike) -> Surface:
        """The surface under a 4x4 affine (LPS <-> RAS, mm <-> m); winding kept upright."""
        affine = np.asarray(matrix, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValidationError(f"a surface transform must be a finite 4x4 matrix, got {affine}")
        determinant = float(np.linalg.det(affine[:3, :3]))
        scale = float(np.abs(affine[:3, :3]).max())
        if scale == 0.0 or abs(determinant) <= 1e-12 * scale**3:
            raise ValidationError(
                "a surface transform is singular (it flattens the mesh); "
                "give an invertible 4x4 matrix"
            )
        points = self.vertices @ affine[:3, :3].T + affine[:3, 3]
        faces = self.faces
        normals = None
        if determinant < 0:
            faces = faces[:, ::-1]
        if self.normals is not None:
            inverse_t = np.linalg.inv(affine[:3, :3]).T
            rotated = self.normals.astype(np.float64) @ inverse_t.T
            length = np.linalg.norm(rotated, axis=1, keepdims=True)
            normals = rotated / np.where(length == 0, 1.0, length)
        return Surface(points, faces, normals)

    def __repr__(self) -> str:
        return f"Surface({len(self.vertices)} vertices, {len(self.faces)} faces)"


def _welded_faces(vertices: NDArray[np.float64], faces: NDArray[np.int64]) -> NDArray[np.int64]:
    """``faces`` renumbered so that vertices at the same position are one vertex.

    Many files repeat a vertex where two triangles meet at a seam (glTF and OBJ split
    vertices for normals and texture coordinates, surface nets where two sheets touch):
    the mesh is closed in space though its indices say otherwise. Rows are compared as
    bytes (``-0.0`` made ``0.0`` first): one 1-D ``unique``, no loop.
    """
    points = np.ascontiguousarray(vertices) + 0.0
    rows = points.view(np.dtype((np.void, points.itemsize * 3))).ravel()
    _, inverse = np.unique(rows, return_inverse=True)
    return np.asarray(inverse.reshape(-1)[faces], dtype=np.int64)


def face_normals(
    vertices: NDArray[np.float64], faces: NDArray[np.int64], *, unit: bool = False
) -> NDArray[np.float64]:
    """``(b - a) x (c - a)`` per triangle: outward for counter-clockwise faces, twice the
    triangle's area long (the weight :func:`vertex_normals` wants), or of unit length with
    ``unit`` (degenerate triangles get a zero normal, as STL writers do).

    Written out per axis rather than with ``np.cross``, which is several times slower on
    millions of triangles, on contiguous columns (one coordinate of every vertex, one corner
    of every face) rather than on rows of three: the same products, value for value, in
    60 % of the time.
    """
    x, y, z = (np.ascontiguousarray(vertices[:, axis]) for axis in range(3))
    first, second, third = (np.ascontiguousarray(faces[:, corner]) for corner in range(3))
    ux, uy, uz = (c[second] - c[first] for c in (x, y, z))
    vx, vy, vz = (c[third] - c[first] for c in (x, y, z))
    normals = np.empty((len(faces), 3), ux.dtype)
    normals[:, 0] = uy * vz - uz * vy
    normals[:, 1] = uz * vx - ux * vz
    normals[:, 2] = ux * vy - uy * vx
    if unit:
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        normals /= np.where(length > 0, length, 1.0)
    return normals


def vertex_normals(
    vertices: NDArray[np.float64],
    faces: NDArray[np.int64],
    weights: NDArray[np.float64] | None = None,
) -> NDArray[np.float32]:
    """Unit normals per vertex: the area-weighted mean of the normals of its triangles.

    What ``vtkPolyDataNormals`` gives without splitting on a consistently wound mesh, and
    outward because the faces are. ``weights`` are the :func:`face_normals` when the caller
    has them already. A vertex without a usable triangle gets +z rather than a zero vector,
    because formats such as glTF require unit normals on every vertex. One ``bincount`` per
    axis: several times faster than ``np.add.at`` or the VTK filter.
    """
    normals = np.zeros((len(vertices), 3))
    if len(faces):
        if weights is None:
            weights = face_normals(vertices, faces)
        corners = faces.ravel()
        for axis in range(3):
            normals[:, axis] = np.bincount(
                corners, np.repeat(weights[:, axis], 3), minlength=len(vertices)
            )
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    unit = np.where(length > 0, normals / np.where(length > 0, length, 1.0), [0.0, 0.0, 1.0])
    return unit.astype(np.float32)


def compacted(points: NDArray[Any], faces: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Only the points ``faces`` use, renumbered (one segment cut out of a shared table)."""
    used, inverse = np.unique(faces, return_inverse=True)
    return points[used], inverse.reshape(-1, 3).astype(np.int64)
