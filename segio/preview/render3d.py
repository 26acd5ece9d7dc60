"""A small software renderer for the 3D panel: closed surfaces, z-buffered, shaded.

Why not VTK's off-screen window: the VTK wheel renders without a display only through
EGL (a GPU driver library) or OSMesa, which a headless server or a CI container may lack,
and its pictures differ with the driver. This renderer needs numpy alone, runs anywhere,
and gives the same pixels everywhere, so the tests can read them.

Orthographic projection; the camera looks at the patient from the front, turned
:data:`AZIMUTH` degrees towards the patient's left and raised :data:`ELEVATION` degrees,
with superior up and the patient's left on the image right (as the slices). Triangles
are rasterised at pixel centres, all at once per chunk (candidate pixels of each
triangle's bounding box, barycentric inside test, nearest depth kept per pixel), and
shaded with a headlight (Lambert, two-sided, interpolated vertex normals). Each segment's
silhouette is then outlined in its exact colour, as on the slices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from segio.surfaces import Surface, vertex_normals

__all__ = ["AZIMUTH", "ELEVATION", "render_surfaces"]

#: Camera turn about the superior axis, towards the patient's left (degrees).
AZIMUTH = 30.0
#: Camera raised above the axial plane (degrees).
ELEVATION = 20.0
#: Candidate pixels examined at once (memory: about 100 bytes each).
_CHUNK = 1 << 20
#: Triangles prepared at once (bounding boxes, edges).
_BLOCK = 1 << 18
AMBIENT = 0.3


def _camera() -> NDArray[np.float64]:
    """Rows: LPS directions of the image right, image down and away from the viewer."""
    a, e = np.radians(AZIMUTH), np.radians(ELEVATION)
    # From the front (viewer at anterior): right = +L (x), down = -S, depth = +P (y).
    right = np.array([np.cos(a), np.sin(a), 0.0])
    away = np.array([-np.sin(a), np.cos(a), 0.0])
    away = np.cos(e) * away - np.sin(e) * np.array([0.0, 0.0, 1.0])
    down = np.cross(away, right)
    return np.stack([right, down, away])


def render_surfaces(
    surfaces: Sequence[Surface],
    colors: Sequence[tuple[int, int, int]],
    size: int,
    background: tuple[int, int, int] = (0, 0, 0),
    *,
    cull: bool = False,
) -> NDArray[np.uint8]:
    """A ``size`` x ``size`` RGB image of ``surfaces`` in their 8-bit ``colors``.

    ``cull``: skip the faces turned away from the eye, half the work; only for closed
    surfaces wound outwards (the derived ones), else a badly wound file would show holes.
    """
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = background
    meshes = [(s, c) for s, c in zip(surfaces, colors, strict=True) if not s.is_empty]
    if not meshes:
        return image
    camera = _camera()
    vertices = np.concatenate([s.vertices for s, _ in meshes]) @ camera.T
    offsets = np.cumsum([0] + [len(s.vertices) for s, _ in meshes])
    faces = np.concatenate([s.faces + offsets[n] for n, (s, _) in enumerate(meshes)])
    owner = np.repeat(np.arange(1, len(meshes) + 1), [len(s.faces) for s, _ in meshes])
    normals = np.concatenate(
        [
            s.normals if s.normals is not None else vertex_normals(s.vertices, s.faces)
            for s, _ in meshes
        ]
    )
    shade = AMBIENT + (1 - AMBIENT) * np.abs(normals.astype(np.float64) @ camera[2])
    low, high = vertices[:, :2].min(axis=0), vertices[:, :2].max(axis=0)
    scale = 0.92 * size / max(float(np.max(high - low)), 1e-9)
    centre = (low + high) / 2
    xy = (vertices[:, :2] - centre) * scale + size / 2
    owner_of, light = _rasterise(xy, vertices[:, 2], shade, faces, owner, size, cull)
    palette = np.array([background] + [c for _, c in meshes], dtype=np.float64)
    drawn = owner_of > 0
    image[drawn] = np.rint(palette[owner_of[drawn]] * light[drawn, np.newaxis]).astype(np.uint8)
    from segio.preview.slices import boundary

    edge = boundary(owner_of)
    image[edge] = palette[owner_of[edge]].astype(np.uint8)
    return image


def _rasterise(
    xy: NDArray[np.float64],
    depth: NDArray[np.float64],
    shade: NDArray[np.float64],
    faces: NDArray[np.int64],
    owner: NDArray[np.int64],
    size: int,
    cull: bool,
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Owner (0: none) and light of the nearest triangle at every pixel centre."""
    zbuffer = np.full(size * size, np.inf)
    owners = np.zeros(size * size, dtype=np.int32)
    light = np.zeros(size * size)
    for start in range(0, len(faces), _BLOCK):  # bounded memory: ~200 bytes a triangle
        block = slice(start, start + _BLOCK)
        buffers = (zbuffer, owners, light)
        _rasterise_block(xy, depth, shade, faces[block], owner[block], size, cull, buffers)
    return owners.reshape(size, size), light.reshape(size, size)


def _rasterise_block(
    xy: NDArray[np.float64],
    depth: NDArray[np.float64],
    shade: NDArray[np.float64],
    faces: NDArray[np.int64],
    owner: NDArray[np.int64],
    size: int,
    cull: bool,
    buffers: tuple[NDArray[np.float64], NDArray[np.int32], NDArray[np.float64]],
) -> None:
    """Draw the triangles ``faces`` into the flat ``buffers`` (depth, owner, light)."""
    zbuffer, owners, light = buffers
    tri = xy[faces]  # (F, 3, 2)
    # Pairwise minimum/maximum: a reduction over an axis of 3 is several times slower.
    xs, ys = (np.ascontiguousarray(tri[:, :, axis].T) for axis in (0, 1))
    low_x, high_x = (
        np.minimum(np.minimum(xs[0], xs[1]), xs[2]),
        np.maximum(np.maximum(xs[0], xs[1]), xs[2]),
    )
    low_y, high_y = (
        np.minimum(np.minimum(ys[0], ys[1]), ys[2]),
        np.maximum(np.maximum(ys[0], ys[1]), ys[2]),
    )
    x0 = np.clip(np.ceil(low_x - 0.5), 0, size).astype(np.int64)
    x1 = np.clip(np.floor(high_x - 0.5), -1, size - 1).astype(np.int64)
    y0 = np.clip(np.ceil(low_y - 0.5), 0, size).astype(np.int64)
    y1 = np.clip(np.floor(high_y - 0.5), -1, size - 1).astype(np.int64)
    nx, ny = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
    edge1, edge2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = edge1[:, 0] * edge2[:, 1] - edge1[:, 1] * edge2[:, 0]
    # Outward faces turned away from the eye (area > 0 in these right-handed screen
    # axes) are hidden by the front of a closed surface: skipped when ``cull``.
    facing = area < -1e-12 if cull else np.abs(area) > 1e-12
    count = np.where(facing, nx * ny, 0)
    keep = np.flatnonzero(count)
    ends = np.cumsum(count[keep])
    start = 0
    while start < len(keep):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + _CHUNK, "right"))
        stop = max(stop, start + 1)
        chunk = keep[start:stop]
        start = stop
        n = count[chunk]
        which = np.repeat(chunk, n)
        local = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        px = x0[which] + local % nx[which]
        py = y0[which] + local // nx[which]
        a = tri[which, 0]
        dx, dy = px + 0.5 - a[:, 0], py + 0.5 - a[:, 1]
        e1, e2, d = edge1[which], edge2[which], area[which]
        l1 = (dx * e2[:, 1] - dy * e2[:, 0]) / d
        l2 = (e1[:, 0] * dy - e1[:, 1] * dx) / d
        l0 = 1.0 - l1 - l2
        inside = (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9)
        which, l0, l1, l2 = which[inside], l0[inside], l1[inside], l2[inside]
        pixel = (py * size + px)[inside]
        corner = faces[which]
        z = l0 * depth[corner[:, 0]] + l1 * depth[corner[:, 1]] + l2 * depth[corner[:, 2]]
        order = np.lexsort((z, pixel))
        pixel, z, which = pixel[order], z[order], which[order]
        first = np.flatnonzero(np.r_[True, pixel[1:] != pixel[:-1]])
        pixel, z, which = pixel[first], z[first], which[first]
        nearer = z < zbuffer[pixel]
        pixel, z, which = pixel[nearer], z[nearer], which[nearer]
        chosen = order[first][nearer]
        weights = np.stack([l0, l1, l2], axis=1)[chosen]
        zbuffer[pixel] = z
        owners[pixel] = owner[which]
        light[pixel] = np.einsum("ij,ij->i", weights, shade[faces[which]])
