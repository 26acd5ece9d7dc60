"""Synthetic segmentations that look like anatomy, traps included.

segio promises lossless conversion: not a voxel, a name, a colour or a coded term may be
lost. That promise is only as good as the inputs it is tested with, and hand-made fixtures
are too kind: axis-aligned 1 mm grids, a handful of solid cubes, ASCII names, colours that
are multiples of 1/255. Real segmentations have oblique anisotropic grids, shells with
cavities, structures split into islands, structures cut by the image border, overlapping
segments in several layers, empty segments, names in any script, and colours stored with
full precision. This module makes such segmentations, reproducibly from a seed and fast
enough for 512x512x200 volumes with 104 segments (every ellipsoid is evaluated only inside
its own bounding box):

* :func:`grid` gives test grids, each a trap for a different geometry bug;
* :func:`synthetic_segmentation` and :func:`small_segmentation` give labelmaps;
* :func:`surface_segmentation` gives closed surfaces (ellipsoids and a torus), the source
  representation of mesh formats.

Names, colours and terminology come from :mod:`segio.testing.catalogue`. The module imports
no format library and not pytest: benchmarks and the demo use it too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike, NDArray

from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.surfaces import Surface
from segio.testing.catalogue import segment_colors, segment_names, segment_terminology

__all__ = [
    "FULL_SHAPE",
    "GRID_KINDS",
    "grid",
    "relabeled",
    "small_segmentation",
    "surface_segmentation",
    "synthetic_segmentation",
]

FloatArray = NDArray[np.float64]
Box = tuple[slice, slice, slice]


#: The grids :func:`grid` knows, each a trap for a different geometry bug.
GRID_KINDS: tuple[str, ...] = ("axial", "oblique", "anisotropic", "lps_flipped")

#: Small non-square default shapes ``(k, j, i)``: a transposed axis changes the shape.
_GRID_SHAPES: dict[str, tuple[int, int, int]] = {
    "axial": (12, 24, 20),
    "oblique": (7, 13, 11),
    "anisotropic": (10, 18, 22),
    "lps_flipped": (9, 20, 16),
}

#: Shape of a full-size CT segmentation, the default of :func:`synthetic_segmentation`.
FULL_SHAPE: tuple[int, int, int] = (200, 512, 512)

#: Inner/outer radius ratio of the cavity of a hollow segment.
_HOLE_RATIO = 0.5
#: Smallest radius (voxels) an ellipsoid needs before a cavity is carved into it.
_HOLE_MIN_RADIUS = 3.0


# -- grids -----------------------------------------------------------------------------


def _rotation(axis: Sequence[float] | FloatArray, degrees: float) -> FloatArray:
    """Rotation matrix about ``axis`` (Rodrigues' formula)."""
    unit = np.asarray(axis, dtype=np.float64)
    unit = unit / np.linalg.norm(unit)
    angle = math.radians(degrees)
    cross = np.array([[0.0, -unit[2], unit[1]], [unit[2], 0.0, -unit[0]], [-unit[1], unit[0], 0.0]])
    matrix = np.eye(3) + math.sin(angle) * cross + (1.0 - math.cos(angle)) * (cross @ cross)
    return np.asarray(matrix, dtype=np.float64)


def grid(kind: str = "axial", shape: Sequence[int] | None = None) -> Geometry:
    """A test grid of one of the :data:`GRID_KINDS`.

    ``"axial"``
        Identity directions, 1 mm voxels, origin (-100, -120, 50).
    ``"oblique"``
        Axes rotated by 25° about a non-principal axis, voxels 0.7 x 0.9 x 2.5 mm and a
        non-round origin: catches dropped directions, swapped spacings and rounding.
    ``"anisotropic"``
        Axis-aligned, voxels 0.4 x 0.6 x 3.0 mm: catches spacings applied to the wrong axis.
    ``"lps_flipped"``
        Directions diag(-1, -1, 1), as an image whose RAS matrix is the identity: catches
        LPS/RAS sign errors.

    ``shape`` is ``(k, j, i)``; by default a small non-square shape that differs per kind.
    """
    if kind not in _GRID_SHAPES:
        raise ValueError(f"unknown grid kind {kind!r}; expected one of {', '.join(GRID_KINDS)}")
    dims = _GRID_SHAPES[kind] if shape is None else tuple(int(n) for n in shape)
    if kind == "axial":
        return Geometry.from_spacing(dims, (1.0, 1.0, 1.0), (-100.0, -120.0, 50.0))
    if kind == "oblique":
        return Geometry.from_spacing(
            dims, (0.7, 0.9, 2.5), (-101.25, 37.5, -12.3), _rotation((1.0, 2.0, 3.0), 25.0)
        )
    if kind == "anisotropic":
        return Geometry.from_spacing(dims, (0.4, 0.6, 3.0), (-80.2, -64.8, 112.5))
    return Geometry.from_spacing(
        dims, (0.75, 0.75, 2.0), (120.5, 95.25, -40.0), np.diag([-1.0, -1.0, 1.0])
    )


# -- blobs -----------------------------------------------------------------------------------


@dataclass
class _Blob:
    """A (possibly hollow) ellipsoid in index space, confined to a box of voxels."""

    center: FloatArray  # (k, j, i), continuous
    radii: FloatArray  # along the rotated axes, voxels
    rotation: FloatArray  # columns: the ellipsoid axes in (k, j, i)
    low: NDArray[np.int64]  # first voxel the blob may occupy, per axis
    high: NDArray[np.int64]  # last voxel the blob may occupy (inclusive)
    hollow: bool = False
    force_center: bool = True  # guarantee a voxel even when the blob is tiny

    @property
    def extent(self) -> FloatArray:
        """Half-size of the axis-aligned box around the ellipsoid, per axis."""
        spread = (self.rotation * self.radii**2) @ self.rotation.T
        return np.asarray(np.sqrt(np.diag(spread)), dtype=np.float64)

    def evaluate(self) -> tuple[Box, NDArray[np.bool_]]:
        """The blob as a boolean mask over its bounding box, evaluated only in that box."""
        center = self.center
        extent = self.extent
        start = np.maximum(np.floor(center - extent), self.low).astype(np.int64)
        stop = np.minimum(np.ceil(center + extent), self.high).astype(np.int64) + 1
        nearest = np.clip(np.round(center).astype(np.int64), self.low, self.high)
        start = np.minimum(start, nearest)
        stop = np.maximum(stop, nearest + 1)
        deltas = [
            np.arange(start[a], stop[a], dtype=np.float32) - np.float32(center[a]) for a in range(3)
        ]
        dk = deltas[0][:, np.newaxis, np.newaxis]
        dj = deltas[1][np.newaxis, :, np.newaxis]
        di = deltas[2][np.newaxis, np.newaxis, :]
        quadric = (self.rotation / self.radii**2) @ self.rotation.T
        qkk, qjj, qii = (float(quadric[a, a]) for a in range(3))
        qkj, qki, qji = (2.0 * float(quadric[a, b]) for a, b in ((0, 1), (0, 2), (1, 2)))
        # The k and j terms broadcast to an (nk, nj, 1) array; only the i terms fill the box.
        q = qkk * dk * dk + qkj * dk * dj + qjj * dj * dj
        q = q + di * (qki * dk + qji * dj)
        q += qii * di * di
        mask = q < 1.0
        if self.hollow:
            mask &= q >= _HOLE_RATIO**2
        if self.force_center and not self.hollow:
            k, j, i = (int(v) for v in nearest - start)
            mask[k, j, i] = True
        box = (
            slice(int(start[0]), int(stop[0])),
            slice(int(start[1]), int(stop[1])),
            slice(int(start[2]), int(stop[2])),
        )
        return box, mask


def _random_rotation(rng: np.random.Generator, max_degrees: float = 40.0) -> FloatArray:
    axis = rng.normal(size=3)
    return _rotation(axis, float(rng.uniform(0.0, max_degrees)))


def _cell_counts(shape: Sequence[int], n: int) -> tuple[int, int, int]:
    """Cells per axis (at least ``n`` in all), kept near cubic and at least 2 voxels wide."""
    counts = [1, 1, 1]
    while counts[0] * counts[1] * counts[2] < n:
        fits = [a for a in range(3) if shape[a] // (counts[a] + 1) >= 2]
        if not fits:
            raise ValueError(
                f"a grid of shape {tuple(shape)} has no room for {n} separate blobs; "
                "use a larger shape or fewer segments"
            )
        axis = max(fits, key=lambda a: shape[a] / counts[a])
        counts[axis] += 1
    return (counts[0], counts[1], counts[2])


def _spread(items: Sequence[int], m: int) -> list[int]:
    """``m`` distinct items picked evenly through ``items``."""
    size = len(items)
    return [items[int((t + 0.5) * size / m)] for t in range(m)] if m else []


def _make_blob(
    rng: np.random.Generator,
    low: NDArray[np.int64],
    high: NDArray[np.int64],
    size: tuple[float, float],
) -> _Blob:
    """A randomly sized, oriented and placed ellipsoid that fits in ``[low, high]``."""
    half = (high - low + 1).astype(np.float64) / 2.0
    radii = half * rng.uniform(size[0], size[1], size=3)
    rotation = _random_rotation(rng)
    blob = _Blob(np.zeros(3), radii, rotation, low, high)
    extent = blob.extent
    blob.radii = radii * min(1.0, float(np.min(half / extent)))
    extent = blob.extent
    first = low - 0.5 + extent
    last = high + 0.5 - extent
    blob.center = np.where(
        first < last, rng.uniform(first, np.maximum(first, last)), low + half - 0.5
    )
    return blob


def synthetic_segmentation(
    shape: Sequence[int] | None = None,
    n_segments: int = 24,
    *,
    geometry: Geometry | None = None,
    overlapping: bool = False,
    empty_segments: int = 0,
    unicode_names: bool = False,
    terminology: bool = True,
    seed: int = 0,
    dtype: DTypeLike | None = None,
) -> Segmentation:
    """A reproducible segmentation whose segments look like anatomy, traps included.

    Parameters
    ----------
    shape:
        ``(k, j, i)``; by default the grid's shape, or 200 x 512 x 512 (a CT volume).
    n_segments:
        Number of segments, empty ones and overlapping ones included.
    geometry:
        The grid; by default ``grid("axial", shape)``.
    overlapping:
        Make a few segments (about one in six, at least two) overlap others. They go to
        extra layers: two of them share a voxel with each other and with the segment
        under them, so the segmentation needs three layers.
    empty_segments:
        How many of the segments have no voxel at all (they still get a label value).
    unicode_names:
        Names in many scripts (see :func:`segment_names`) instead of anatomical ones.
    terminology:
        Give segments SNOMED CT terminology (one with a laterality modifier, one lesion
        with an anatomic region and region modifier).
    seed:
        Same seed, same segmentation.
    dtype:
        Integer dtype of the layers; by default uint8, or uint16 beyond 255 labels.

    Every segment with voxels is made of ellipsoids placed in separate cells of the
    volume, so segments never touch unless ``overlapping``. In segment order among the
    non-overlapping ones: the first is cut by the ``i = 0`` face of the volume, the last
    by the ``k = K-1`` face, every third (from the second) is hollow when big enough (a
    fully enclosed cavity), and every fourth (from the third) consists of 2 or 3
    disconnected islands. Colours are distinct full-precision floats; every other segment
    has the property ``Segmentation.Status = completed``. Segment ids are ``Segment_1``,
    ``Segment_2``, ... so that ids and names always differ.
    """
    if geometry is None:
        dims = tuple(int(n) for n in (shape if shape is not None else FULL_SHAPE))
        geometry = grid("axial", dims)
    elif shape is not None and tuple(int(n) for n in shape) != geometry.shape:
        raise ValueError(f"shape {tuple(shape)} differs from the geometry's {geometry.shape}")
    dims3 = geometry.shape
    n = int(n_segments)
    if n < 0:
        raise ValueError(f"n_segments must be >= 0, got {n}")
    if not 0 <= empty_segments <= n:
        raise ValueError(f"empty_segments must be between 0 and {n}, got {empty_segments}")
    rng = np.random.default_rng(seed)

    # -- roles, in segment order --------------------------------------------------------
    n_filled = n - empty_segments
    n_overlap = 0
    if overlapping:
        if n_filled < 2:
            raise ValueError("overlapping segments need at least two segments with voxels")
        n_overlap = min(n_filled - 1, max(2, round(n_filled / 6)))
    roles = ["base"] * n
    rest = list(range(1, n)) if n_filled > 0 else list(range(n))
    for position in _spread(rest, empty_segments):
        roles[position] = "empty"
    rest = [p for p in rest if roles[p] == "base"]
    for position in _spread(rest, n_overlap):
        roles[position] = "overlap"
    bases = [p for p in range(n) if roles[p] == "base"]

    # -- label values and dtype -----------------------------------------------------------
    layer_of = [0] * n
    label_of = [0] * n
    next_label = 0
    for position in range(n):
        if roles[position] != "overlap":
            next_label += 1
            label_of[position] = next_label
    top = max(next_label, n_overlap, 1)
    array_dtype = np.dtype(dtype) if dtype is not None else np.dtype(np.min_scalar_type(top))
    if not np.issubdtype(array_dtype, np.integer):
        raise ValueError(f"dtype must be an integer type, got {array_dtype}")
    if top > np.iinfo(array_dtype).max:
        raise ValueError(f"{top} labels do not fit {array_dtype}")

    # -- blobs of the non-overlapping segments, each blob in a cell of its own ----------------
    blob_counts = []
    for b in range(len(bases)):
        if b % 4 == 2:
            blob_counts.append(2 if b % 8 == 2 else 3)
        else:
            blob_counts.append(1)
    layers = [np.zeros(dims3, dtype=array_dtype)]
    hosts: list[tuple[_Blob, int]] = []  # painted blobs and their label, for overlaps
    total = sum(blob_counts)
    if total:
        counts = _cell_counts(dims3, total)
        edges = [
            np.floor(np.linspace(0, dims3[a], counts[a] + 1)).astype(np.int64) for a in range(3)
        ]
        cells = [
            (ck, cj, ci)
            for ck in range(counts[0])
            for cj in range(counts[1])
            for ci in range(counts[2])
        ]
        order = [cells[int(t)] for t in rng.permutation(len(cells))]
        last_k = counts[0] - 1

        def take(prefer: Callable[[tuple[int, int, int]], bool]) -> tuple[int, int, int]:
            chosen = next((c for c in order if prefer(c)), order[0])
            order.remove(chosen)
            return chosen

        # The border blobs choose first; the first avoids the k-border cells if it can.
        plan: list[list[tuple[int, int, int]]] = [[] for _ in bases]
        plan[0].append(take(lambda c: c[2] == 0 and (c[0] != last_k or last_k == 0)))
        if len(bases) > 1:
            plan[-1].append(take(lambda c: c[0] == last_k))
        for b, count in enumerate(blob_counts):
            while len(plan[b]) < count:
                plan[b].append(take(lambda c: True))

        for b, position in enumerate(bases):
            label = label_of[position]
            for island, cell in enumerate(plan[b]):
                low = np.array([edges[a][cell[a]] for a in range(3)], dtype=np.int64)
                high = np.array(
                    [
                        edges[a][cell[a] + 1] - (1 if cell[a] == counts[a] - 1 else 2)
                        for a in range(3)
                    ],
                    dtype=np.int64,
                )
                size = (0.55, 0.95) if island == 0 else (0.35, 0.7)
                blob = _make_blob(rng, low, high, size)
                if island == 0 and b == 0 and cell[2] == 0:  # cut by the i = 0 face
                    blob.center[2] = float(rng.uniform(0.0, 0.45))
                elif island == 0 and b == len(bases) - 1 and cell[0] == last_k:
                    blob.center[0] = dims3[0] - 1 - float(rng.uniform(0.0, 0.45))
                blob.hollow = b % 3 == 1 and float(np.min(blob.radii)) >= _HOLE_MIN_RADIUS
                box, mask = blob.evaluate()
                layers[0][box][mask] = label
                hosts.append((blob, label))

    # -- overlapping segments: centred on a voxel of a host, in the host's cell ---------------
    overlap_positions = [p for p in range(n) if roles[p] == "overlap"]
    layer_labels = [0]
    shared_center: FloatArray | None = None
    for t, position in enumerate(overlap_positions):
        host, host_label = hosts[0] if t < 2 else hosts[int(rng.integers(len(hosts)))]
        if t == 1 and shared_center is not None:
            center = shared_center
        else:
            box, _ = host.evaluate()
            voxels = np.argwhere(layers[0][box] == host_label)
            pick = voxels[int(rng.integers(len(voxels)))]
            center = np.array([box[a].start + pick[a] for a in range(3)], dtype=np.float64)
            shared_center = center
        blob = _make_blob(rng, host.low, host.high, (0.3, 0.6))
        blob.center = center.copy()
        box, mask = blob.evaluate()
        target = next(
            (index for index, arr in enumerate(layers) if not np.any(arr[box][mask])),
            len(layers),
        )
        if target == len(layers):
            layers.append(np.zeros(dims3, dtype=array_dtype))
            layer_labels.append(0)
        layer_labels[target] += 1
        layers[target][box][mask] = layer_labels[target]
        layer_of[position] = target
        label_of[position] = layer_labels[target]

    # -- segments ---------------------------------------------------------------------------
    names = segment_names(n, unicode_names=unicode_names)
    colors = segment_colors(n, rng)
    segments = [
        Segment(
            id=f"Segment_{position + 1}",
            name=names[position],
            color=colors[position],
            terminology=segment_terminology(position) if terminology else None,
            layer=layer_of[position],
            label_value=label_of[position],
            properties={"Segmentation.Status": "completed"} if position % 2 == 0 else {},
        )
        for position in range(n)
    ]
    return Segmentation(segments, [Layer(array, geometry) for array in layers])


def small_segmentation(
    kind: str = "oblique",
    overlapping: bool = False,
    *,
    n_segments: int = 5,
    empty_segment: bool = False,
    unicode_names: bool = False,
    terminology: bool = True,
    seed: int = 0,
    dtype: DTypeLike | None = None,
) -> Segmentation:
    """A tiny segmentation on ``grid(kind)`` (5 segments by default), for fast tests.

    The oblique default grid is 7 x 13 x 11 voxels. With ``empty_segment`` one of the
    segments has no voxel.
    """
    return synthetic_segmentation(
        n_segments=n_segments,
        geometry=grid(kind),
        overlapping=overlapping,
        empty_segments=int(empty_segment),
        unicode_names=unicode_names,
        terminology=terminology,
        seed=seed,
        dtype=dtype,
    )


def relabeled(segmentation: Segmentation, values: Sequence[int], dtype: DTypeLike) -> Segmentation:
    """A copy whose segments take ``values`` (in segment order) as label values.

    For cases a generator does not make directly, such as label values above 255 in a
    ``uint16`` layer.
    """
    result = segmentation.copy()
    wanted = np.dtype(dtype)
    arrays = []
    for index, layer in enumerate(result.layers):
        members = result.segments_in_layer(index)
        lut = np.zeros(int(layer.array.max(initial=0)) + 1, dtype=wanted)
        for segment in members:
            new = values[list(result.segments).index(segment.id)]
            if segment.label_value < lut.size:
                lut[segment.label_value] = new
            segment.label_value = new
        arrays.append(lut[layer.array])
    result.layers = [
        Layer(arr, layer.geometry) for arr, layer in zip(arrays, result.layers, strict=True)
    ]
    result.validate()
    return result


# -- closed surfaces ---------------------------------------------------------------------


def _sphere(center: FloatArray, radii: FloatArray, rotation: FloatArray, rings: int = 8) -> Surface:
    """A closed UV ellipsoid (poles + rings), counter-clockwise seen from outside."""
    sectors = 2 * rings
    theta = np.pi * np.arange(1, rings) / rings
    phi = 2 * np.pi * np.arange(sectors) / sectors
    t, p = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)
    body = unit.reshape(-1, 3)
    points = np.concatenate([[[0, 0, 1]], body, [[0, 0, -1]]]) * np.asarray(radii)
    south = len(points) - 1
    faces = []
    for j in range(sectors):
        k = (j + 1) % sectors
        faces.append((0, 1 + j, 1 + k))
        for i in range(rings - 2):
            a, b = 1 + i * sectors + j, 1 + i * sectors + k
            c, d = a + sectors, b + sectors
            faces += [(a, c, d), (a, d, b)]
        last = 1 + (rings - 2) * sectors
        faces.append((south, last + k, last + j))
    return Surface(points @ rotation.T + np.asarray(center), faces)


def _torus(center: FloatArray, radius: float, tube: float, rotation: FloatArray) -> Surface:
    """A closed torus (genus 1: a segment with a hole), outward winding."""
    n, m = 16, 8
    u = 2 * np.pi * np.arange(n) / n
    v = 2 * np.pi * np.arange(m) / m
    uu, vv = np.meshgrid(u, v, indexing="ij")
    ring = radius + tube * np.cos(vv)
    points = np.stack([ring * np.cos(uu), ring * np.sin(uu), tube * np.sin(vv)], axis=-1)
    i, j = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    a = (i * m + j).ravel()
    b = (((i + 1) % n) * m + j).ravel()
    c = (((i + 1) % n) * m + (j + 1) % m).ravel()
    d = (i * m + (j + 1) % m).ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return Surface(points.reshape(-1, 3) @ rotation.T + np.asarray(center), faces)


def surface_segmentation(
    n_segments: int = 3, *, unicode_names: bool = False, seed: int = 0
) -> Segmentation:
    """Closed surfaces in LPS mm: oblique ellipsoids and a torus (a hole), one per segment.

    For the mesh formats, whose source representation is the closed surface. Colours have
    full precision, the third segment is half transparent (property ``opacity``), all have
    terminology. Coordinates are off-centre (about -150..150 mm), as in a CT.
    """
    rng = np.random.default_rng(seed)
    names = segment_names(n_segments, unicode_names=unicode_names)
    colors = segment_colors(n_segments, rng)
    segments, surfaces = [], {}
    for n in range(n_segments):
        rotation = _random_rotation(rng)
        center = rng.uniform(-150.0, 150.0, 3)
        if n % 3 == 2:
            surface = _torus(center, 12.0 + n, 4.0, rotation)
        else:
            surface = _sphere(center, rng.uniform(5.0, 30.0, 3), rotation)
        segment = Segment(
            id=f"Segment_{n + 1}",
            name=names[n],
            color=colors[n],
            terminology=segment_terminology(n),
            label_value=n + 1,
            properties={"opacity": "0.5"} if n % 3 == 2 else {},
        )
        segments.append(segment)
        surfaces[segment.id] = surface
    return Segmentation(
        segments, source_representation=Representation.CLOSED_SURFACE, surfaces=surfaces
    )
