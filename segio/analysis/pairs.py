"""The voxels of segment pairs, for :mod:`segio.analysis.comparison`: counts and outlines.

A pair's overlap needs three counts (|A|, |B|, |A∩B| on one lattice) and its distances
need, per side, the boundary voxel centres (in LPS mm), which of them lie inside the other
segment, and the other voxels that lie outside it (an :class:`Outline`). Two ways to get
them, with the same results:

* :class:`GridPairs`, both sides on one grid (the common case): every layer is read once,
  its non-zero voxels sorted by label (a radix sort for 8- and 16-bit labels) and their
  boundary flags found from their six neighbours; a pair then costs its voxels, not its
  bounding box. A hundred segments whose boxes add up to four times the image cost one
  pass over the image.
* :class:`LatticePairs`, grids that share a lattice (one cropped, padded, permuted or
  flipped) or, for distances, two different grids: each segment is cut from its layer in
  the pair's joint box (views, no copy of the layer), and "inside the other" is looked up
  in the other mask, or on another grid at the voxel holding the point.

:func:`measure` turns two outlines into distances with k-d trees over boundary points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.analysis.distances import SurfaceDistances, boundary_voxels
from segio.geometry import Geometry, IndexMap
from segio.model import Layer, Segmentation

__all__ = ["GridPairs", "LatticePairs", "Outline", "PairVoxels", "measure"]

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
#: Voxels of a lattice: first index and one past the last, per array axis (k, j, i).
Box = tuple[IntArray, IntArray]


@dataclass(frozen=True)
class Outline:
    """One segment of a pair as its distances need it (points in LPS mm)."""

    boundary: FloatArray  #: boundary voxel centres, (N, 3)
    boundary_inside: BoolArray  #: per boundary point: inside the other segment
    interior_outside: FloatArray  #: other voxel centres outside the other segment, (M, 3)
    #: per boundary point: also a boundary voxel of the other (0 apart: no search), or None
    shared: BoolArray | None = None


@dataclass(frozen=True)
class PairVoxels:
    """Counts of a pair (own grids, and on the overlap lattice) and its outlines (None
    when a side is empty)."""

    voxels_a: int
    voxels_b: int
    overlap_a: int
    overlap_b: int
    both: int
    outlines: tuple[Outline, Outline] | None


def measure(first: Outline, second: Outline) -> tuple[float, SurfaceDistances]:
    """The Hausdorff distance between the voxel sets, and the boundary distances.

    A voxel centre outside the other segment is nearest to one of the other's boundary
    voxels (a step towards it from an interior voxel would be closer), so boundary points
    are the only targets. The boundary's own distances give a lower bound first; the few
    interior voxels outside the other (under a cavity of the other) are searched only
    beyond it.
    """
    from scipy.spatial import cKDTree

    tree_a, tree_b = cKDTree(first.boundary), cKDTree(second.boundary)
    a_to_b, b_to_a = _nearest(first, tree_b), _nearest(second, tree_a)
    hausdorff = max(_directed(first, a_to_b, tree_b), _directed(second, b_to_a, tree_a))
    return hausdorff, SurfaceDistances(a_to_b, b_to_a)


def _nearest(outline: Outline, tree: Any) -> FloatArray:
    """Distance from each boundary point to the nearest point of ``tree``; points shared
    with the other boundary are 0 without a search."""
    if outline.shared is None:
        return np.asarray(tree.query(outline.boundary)[0], dtype=np.float64)
    distances = np.zeros(len(outline.boundary), dtype=np.float64)
    apart = ~outline.shared
    distances[apart] = tree.query(outline.boundary[apart])[0]
    return distances


def _directed(outline: Outline, distances: FloatArray, tree: Any) -> float:
    best = float(distances[~outline.boundary_inside].max(initial=0.0))
    points = outline.interior_outside
    if not len(points):
        return best
    found, _ = tree.query(points, distance_upper_bound=best * (1 + 1e-9) + 1e-9)
    beyond = ~np.isfinite(found)
    if beyond.any():
        farther, _ = tree.query(points[beyond])
        best = max(best, float(np.max(farther)))
    return best


# -- both sides on one grid --------------------------------------------------------------------


class _Flat:
    """A labelmap's segments as flat voxel indices sorted by label, with boundary flags."""

    def __init__(self, segmentation: Segmentation) -> None:
        self.grid = segmentation.require_geometry()
        self.flat: list[NDArray[np.integer[Any]]] = []
        self.voxels: dict[str, IntArray] = {}
        self.edges: dict[str, BoolArray] = {}
        self.values: dict[str, tuple[int, int]] = {}
        members: dict[int, list[str]] = {}
        for segment in segmentation.segments.values():
            members.setdefault(segment.layer, []).append(segment.id)
        for index, layer in enumerate(segmentation.layers):
            labels = _labels(layer)
            flat = labels.reshape(-1)
            self.flat.append(flat)
            ids = members.get(index, [])
            if not ids:
                continue
            where = np.flatnonzero(flat)
            found = flat[where]
            order = np.argsort(found, kind="stable")  # a radix sort for 8 and 16 bits
            where, found = where[order], found[order]
            edges = _edges(labels).reshape(-1)[where]
            runs = _runs(found)
            for key in ids:
                value = 1 if layer.is_fractional else segmentation.segments[key].label_value
                low, high = runs.get(value, (0, 0))
                self.voxels[key] = where[low:high]
                self.edges[key] = edges[low:high]
                self.values[key] = (index, value)

    def inside(self, key: str, where: IntArray) -> BoolArray:
        index, value = self.values[key]
        return np.asarray(self.flat[index][where] == value)

    def points(self, where: IntArray) -> FloatArray:
        _, rows, columns = self.grid.shape
        i = where % columns
        rest = where // columns
        ijk = np.column_stack([i, rest % rows, rest // rows])
        return self.grid.ijk_to_points(ijk)


def _labels(layer: Layer) -> NDArray[np.integer[Any]]:
    """A layer's label array, C-ordered (a fractional layer as 0/1: at least half in)."""
    if layer.max_fraction is None:
        return np.ascontiguousarray(layer.array)
    half = (layer.array.astype(np.int64) * 2 >= layer.max_fraction) & (layer.array > 0)
    return half.view(np.uint8)


def _runs(values: NDArray[np.integer[Any]]) -> dict[int, tuple[int, int]]:
    """Each value of a sorted array and the positions it spans, ``[first, last + 1)``."""
    if not len(values):
        return {}
    starts = np.flatnonzero(values[1:] != values[:-1]) + 1
    firsts = np.concatenate([[0], starts])
    lasts = np.concatenate([starts, [len(values)]])
    return {
        int(value): (int(first), int(last))
        for value, first, last in zip(values[firsts], firsts, lasts, strict=True)
    }


def _edges(labels: NDArray[np.integer[Any]]) -> BoolArray:
    """Voxels with a face neighbour of another value, or on the image border: the
    boundary voxels of every label at once (three comparisons of the whole array)."""
    edges = np.zeros(labels.shape, dtype=bool)
    for axis in range(3):
        low = [slice(None)] * 3
        high = [slice(None)] * 3
        low[axis], high[axis] = slice(None, -1), slice(1, None)
        differs = labels[tuple(low)] != labels[tuple(high)]
        edges[tuple(low)] |= differs
        edges[tuple(high)] |= differs
        first = [slice(None)] * 3
        last = [slice(None)] * 3
        first[axis], last[axis] = slice(0, 1), slice(-1, None)
        edges[tuple(first)] = True
        edges[tuple(last)] = True
    return edges


class GridPairs:
    """Pairs of two labelmaps on one grid, from one pass over each layer."""

    def __init__(self, a: Segmentation, b: Segmentation) -> None:
        self.a, self.b = _Flat(a), _Flat(b)
        #: Volume of one voxel of A's and of B's grid (mm3).
        self.voxel_volumes = (self.a.grid.voxel_volume, self.b.grid.voxel_volume)

    def count_a(self, key: str) -> int:
        return len(self.a.voxels[key])

    def count_b(self, key: str) -> int:
        return len(self.b.voxels[key])

    def pair(self, key_a: str, key_b: str) -> PairVoxels:
        where_a, where_b = self.a.voxels[key_a], self.b.voxels[key_b]
        in_b, in_a = self.b.inside(key_b, where_a), self.a.inside(key_a, where_b)
        size_a, size_b = len(where_a), len(where_b)
        both = int(np.count_nonzero(in_b))
        outlines = None
        if size_a and size_b:
            edge_a, edge_b = self.a.edges[key_a], self.b.edges[key_b]
            rim_a, rim_b = where_a[edge_a], where_b[edge_b]  # sorted flat indices
            outlines = (
                Outline(
                    self.a.points(rim_a),
                    in_b[edge_a],
                    self.a.points(where_a[~edge_a & ~in_b]),
                    _among(rim_a, rim_b),
                ),
                Outline(
                    self.b.points(rim_b),
                    in_a[edge_b],
                    self.b.points(where_b[~edge_b & ~in_a]),
                    _among(rim_b, rim_a),
                ),
            )
        return PairVoxels(size_a, size_b, size_a, size_b, both, outlines)


def _among(values: IntArray, sorted_values: IntArray) -> BoolArray:
    """Which of ``values`` are in ``sorted_values`` (ascending), by a sorted search."""
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return np.asarray(sorted_values[at] == values)


# -- grids that share a lattice, or not ---------------------------------------------------------


class _Side:
    """A labelmap's layers as views on ``frame``'s lattice, and each segment's box there.

    A grid sharing ``frame``'s lattice differs only by axis order, directions and an
    offset, so each layer is a transposed, flipped view of its array (no copy) placed at
    an integer offset; masks are cut from those views box by box.
    """

    def __init__(self, segmentation: Segmentation, frame: Geometry) -> None:
        self.segmentation = segmentation
        self.frame = frame
        self.views: list[tuple[NDArray[np.integer[Any]], IntArray, Layer]] = []
        self.boxes: dict[str, Box | None] = {}
        if segmentation.geometry is None:
            return
        mapping = frame.index_map(segmentation.geometry)
        if mapping is None:
            raise ValueError("a side's grid must share the frame's lattice")
        for layer in segmentation.layers:
            view, offset = _aligned(layer.array, mapping)
            self.views.append((view, offset, layer))
        for key, extent in segmentation.extents().items():
            if extent is None:
                self.boxes[key] = None
                continue
            _, offset, layer = self.views[segmentation.segments[key].layer]
            low, high = _view_box(extent, layer.array.shape, mapping)
            self.boxes[key] = (low + offset, high + offset)

    def mask(self, key: str, box: Box) -> BoolArray:
        """The segment's voxels in ``box`` (frame indices), False outside its grid."""
        segment = self.segmentation.segments[key]
        view, offset, layer = self.views[segment.layer]
        low, high = box
        out = np.zeros(tuple(int(n) for n in high - low), dtype=bool)
        start = np.maximum(low - offset, 0)
        stop = np.minimum(high - offset, view.shape)
        if np.any(stop <= start):
            return out
        source = tuple(slice(int(s), int(e)) for s, e in zip(start, stop, strict=True))
        target = tuple(
            slice(int(s + o - lo), int(e + o - lo))
            for s, e, o, lo in zip(start, stop, offset, low, strict=True)
        )
        values = view[source]
        if layer.max_fraction is not None:  # at least half inside, as Segmentation.mask
            out[target] = (values.astype(np.int64) * 2 >= layer.max_fraction) & (values > 0)
        else:
            out[target] = values == segment.label_value
        return out

    def count(self, key: str) -> int:
        box = self.boxes.get(key)
        return 0 if box is None else int(np.count_nonzero(self.mask(key, box)))

    def grid(self, box: Box) -> Geometry:
        low, high = box
        return self.frame.cropped(low.tolist(), (high - low).tolist())


def _aligned(
    array: NDArray[np.integer[Any]], mapping: IndexMap
) -> tuple[NDArray[np.integer[Any]], IntArray]:
    """``array`` as a view along the frame's axes, and the frame index of its voxel 0."""
    order = [mapping.axes.index(p) for p in range(3)]  # view axis p is array axis order[p]
    view = np.transpose(array, order)
    offset = np.zeros(3, dtype=np.int64)
    for p, q in enumerate(order):
        if mapping.steps[q] < 0:
            view = np.flip(view, p)
            offset[p] = mapping.starts[q] - (array.shape[q] - 1)
        else:
            offset[p] = mapping.starts[q]
    return view, offset


def _view_box(
    extent: tuple[tuple[int, int], ...], shape: tuple[int, ...], mapping: IndexMap
) -> tuple[IntArray, IntArray]:
    """An inclusive index box of an array as a half-open box of its aligned view."""
    low = np.zeros(3, dtype=np.int64)
    high = np.zeros(3, dtype=np.int64)
    for p in range(3):
        q = mapping.axes.index(p)
        first, last = extent[q]
        if mapping.steps[q] < 0:
            first, last = shape[q] - 1 - last, shape[q] - 1 - first
        low[p], high[p] = first, last + 1
    return low, high


def _union(first: Box | None, second: Box | None) -> Box | None:
    if first is None:
        return second
    if second is None:
        return first
    return np.minimum(first[0], second[0]), np.maximum(first[1], second[1])


class _Patch:
    """One segment's mask in a box of a grid, and its boundary."""

    def __init__(self, mask: BoolArray, grid: Geometry) -> None:
        self.mask = mask
        self.grid = grid
        self.boundary = boundary_voxels(mask)

    def inside(self, kji: IntArray, other: _Patch) -> BoolArray:
        """Which of these voxels (indices in this box) lie in a voxel of ``other``."""
        if self.grid.is_close(other.grid):
            return np.asarray(other.mask[tuple(kji.T)], dtype=bool)
        transform = other.grid.lps_to_ijk @ self.grid.ijk_to_lps
        ijk = kji[:, ::-1] @ transform[:3, :3].T + transform[:3, 3]
        index = np.floor(ijk[:, ::-1] + 0.5).astype(np.int64)
        valid = np.all((index >= 0) & (index < np.array(other.mask.shape)), axis=1)
        found = np.zeros(len(kji), dtype=bool)
        found[valid] = other.mask[tuple(index[valid].T)]
        return found

    def outline(self, other: _Patch) -> Outline:
        edge = np.argwhere(self.boundary)
        interior = self.mask & ~self.boundary
        shared = None
        if self.grid.is_close(other.grid):
            rest = np.argwhere(interior & ~other.mask)
            shared = np.asarray(other.boundary[tuple(edge.T)], dtype=bool)
        else:
            rest = np.argwhere(interior)
            rest = rest[~self.inside(rest, other)]
        return Outline(
            self.grid.ijk_to_points(edge[:, ::-1]),
            self.inside(edge, other),
            self.grid.ijk_to_points(rest[:, ::-1]),
            shared,
        )


class LatticePairs:
    """Pairs cut box by box from layers on ``frame``'s lattice.

    ``a`` and ``b`` share ``frame``'s lattice. When B's own grid does not (``own_b``
    given), ``b`` is B resampled onto the lattice and counts only for the overlap; the
    distances then take B's voxels from ``own_b``, on its own grid.
    """

    def __init__(
        self,
        a: Segmentation,
        b: Segmentation,
        frame: Geometry,
        own_b: Segmentation | None = None,
    ) -> None:
        self.a, self.b = _Side(a, frame), _Side(b, frame)
        self.own_b = self.b if own_b is None else _Side(own_b, own_b.require_geometry())
        #: Volume of one voxel of A's and of B's grid (mm3).
        self.voxel_volumes = (frame.voxel_volume, self.own_b.frame.voxel_volume)

    def count_a(self, key: str) -> int:
        return self.a.count(key)

    def count_b(self, key: str) -> int:
        return self.own_b.count(key)

    def pair(self, key_a: str, key_b: str) -> PairVoxels:
        joint = _union(self.a.boxes.get(key_a), self.b.boxes.get(key_b))
        if joint is None:
            return PairVoxels(0, self.count_b(key_b), 0, 0, 0, None)
        mask_a, mask_b = self.a.mask(key_a, joint), self.b.mask(key_b, joint)
        size_a, size_b = int(np.count_nonzero(mask_a)), int(np.count_nonzero(mask_b))
        both = int(np.count_nonzero(mask_a & mask_b))
        same = self.own_b is self.b
        own_box = self.own_b.boxes.get(key_b)
        own_size = size_b if same else self.count_b(key_b)
        if not size_a or own_box is None:
            return PairVoxels(size_a, own_size, size_a, size_b, both, None)
        grid = self.a.grid(joint)
        first = _Patch(mask_a, grid)
        if same:
            second = _Patch(mask_b, grid)
        else:
            second = _Patch(self.own_b.mask(key_b, own_box), self.own_b.grid(own_box))
        outlines = (first.outline(second), second.outline(first))
        return PairVoxels(size_a, own_size, size_a, size_b, both, outlines)
