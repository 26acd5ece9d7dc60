"""The closed-surface representation: one triangle mesh per segment, in LPS millimetres.

Mesh formats (STL, OBJ, PLY, glTF, 3MF, VTK) store a segment this way, and 3D Slicer's
"Closed surface" is what it renders in 3D. The mesh is plain numpy, so the core never needs
VTK or trimesh: the converters in :mod:`segio.converters.surfaces` and the mesh plugins
import those only when a surface is built or a file is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segio.errors import ValidationError


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
        points = np.array(vertices, dtype=np.float64, copy=True).reshape(-1, 3)
        triangles = np.array(faces, dtype=np.int64, copy=True).reshape(-1, 3)
        if not np.all(np.isfinite(points)):
            raise ValidationError("a surface has NaN or infinite vertex coordinates")
        if triangles.size and (triangles.min() < 0 or triangles.max() >= len(points)):
            raise ValidationError(f"a surface face refers to a vertex outside 0..{len(points) - 1}")
        unit: NDArray[np.float32] | None = None
        if normals is not None:
            unit = np.array(normals, dtype=np.float32, copy=True).reshape(-1, 3)
            if unit.shape != points.shape:
                raise ValidationError(
                    f"a surface has {len(unit)} normals for {len(points)} vertices"
                )
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

    def volume(self) -> float:
        """Enclosed volume in mm³ (divergence theorem; exact for a closed, outward mesh)."""
        if self.is_empty:
            return 0.0
        a, b, c = (self.vertices[self.faces[:, n]] for n in range(3))
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)

    def transformed(self, matrix: ArrayLike) -> Surface:
        """The surface under a 4x4 affine (LPS <-> RAS, mm <-> m); winding kept upright."""
        affine = np.asarray(matrix, dtype=np.float64)
        points = self.vertices @ affine[:3, :3].T + affine[:3, 3]
        faces = self.faces
        normals = None
        if np.linalg.det(affine[:3, :3]) < 0:
            faces = faces[:, ::-1]
        if self.normals is not None:
            inverse_t = np.linalg.inv(affine[:3, :3]).T
            rotated = self.normals.astype(np.float64) @ inverse_t.T
            length = np.linalg.norm(rotated, axis=1, keepdims=True)
            normals = rotated / np.where(length == 0, 1.0, length)
        return Surface(points, faces, normals)

    def __repr__(self) -> str:
        return f"Surface({len(self.vertices)} vertices, {len(self.faces)} faces)"


#: LPS <-> RAS: the same matrix both ways (negate x and y).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
