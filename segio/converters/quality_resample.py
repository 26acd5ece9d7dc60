"""Quality resampling of labelmap layers: through overlap fractions, so thin structures
survive a coarser grid (the rule is stated in full in ``docs/resampling.md``).

Nearest neighbour asks one point per target voxel, its centre: a plate one source voxel
thick on a grid twice as coarse falls between the centres and vanishes, or survives,
depending on half a voxel of alignment. Here every target voxel asks how much of it each
segment covers (the fractional representation on the target grid):

1. a segment keeps a target voxel that it covers more than half of; one it covers exactly
   half of (common on aligned grids, twice as coarse) when the voxel's centre is in it, as
   nearest neighbour would decide (keeping every half would dilate, none would erode);
2. so that nothing vanishes, a source voxel of the segment whose centre is farther than
   one target voxel (along some axis, in target voxels) from the centre of each voxel the
   segment kept adds the target voxel holding its centre, its *trace*. A structure thinner
   than a target voxel keeps a trace one voxel thick; a thick one is not dilated (its edge
   voxels are within a voxel of what it kept). Traces are painted after every segment of
   the layer has kept its voxels, in segment order, over whatever is there: a thick
   neighbour loses an edge voxel, where the thin structure would lose everything.

Layers are resampled one by one, so segments that overlap keep overlapping and those that
do not still do not, with their label values. Fractions are exact (products of interval
overlaps, one axis at a time) when the target's axes run along the source's
(:meth:`Geometry.axis_scales`: another spacing or origin, axes permuted or reversed);
otherwise each source voxel is sampled at ``n``\\ ³ sub-points. Work runs over slabs of the
target, and within a slab over each segment's box there (``scipy.ndimage.find_objects``):
its cost follows the segments' voxels and memory stays bounded, whatever the grid.
A fractional layer takes the mean of its fractions over each target voxel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from segio.geometry import Geometry
from segio.labels.values import compact_labels

#: Source voxels read per slab (bounded memory: a few float32 copies of a slab at most).
SLAB_VOXELS = 1 << 22
#: Source voxels sampled at a time on the general (leaning) path.
CHUNK_SAMPLES = 1 << 21
#: Fractions are sums of products of float32 overlaps: this much below 1/2 is 1/2.
TOLERANCE = 1e-5
#: Sub-points per target voxel side sampled on the general path (n from the spacings).
SAMPLES_PER_TARGET = 3
#: Sub-points per source voxel side on the general path, at most.
MAX_SUBDIVISION = 6

FloatArray = NDArray[np.float64]
Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class _Plan:
    """How target voxels relate to source voxels, computed once per resampling."""

    source: Geometry
    target: Geometry
    #: Source (i, j, k) continuous index of target (i, j, k): 4x4.
    to_source: FloatArray
    #: Target (i, j, k) continuous index of source (i, j, k): 4x4.
    to_target: FloatArray
    #: Per target axis (i, j, k): source axis, first source index and weights of each
    #: target index (separable path); None on the general path.
    tables: tuple[tuple[int, NDArray[np.int64], NDArray[np.float32]], ...] | None
    #: Sub-points per source axis (i, j, k), general path.
    subdivision: tuple[int, int, int]

    @classmethod
    def make(cls, source: Geometry, target: Geometry) -> _Plan:
        to_source = source.lps_to_ijk @ target.ijk_to_lps
        to_target = target.lps_to_ijk @ source.ijk_to_lps
        scales = source.axis_scales(target)
        tables = None
        if scales is not None:
            tables = tuple(
                (axis, *_overlaps(scale, offset, target.size_ijk[a], source.size_ijk[axis]))
                for a, (axis, scale, offset) in enumerate(
                    zip(scales.axes, scales.scales, scales.offsets, strict=True)
                )
            )
        # A source step moves |column| target voxels: sample about 3 points per target voxel.
        reach = np.abs(to_target[:3, :3]).max(axis=0)
        counts = np.clip(np.ceil(SAMPLES_PER_TARGET * reach), 2, MAX_SUBDIVISION).astype(int)
        subdivision = (int(counts[0]), int(counts[1]), int(counts[2]))
        return cls(source, target, to_source, to_target, tables, subdivision)

    @property
    def weight(self) -> float:
        """Share of a target voxel one sub-point of a source voxel stands for."""
        parts = math.prod(self.subdivision)
        return self.source.voxel_volume / (parts * self.target.voxel_volume)


def _overlaps(
    scale: float, offset: float, targets: int, sources: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """For each target index along one axis, the first source index it overlaps and the
    share of the target voxel each of the next ``m`` source voxels covers (zero beyond the
    source grid). Voxel ``n`` spans ``[n - 1/2, n + 1/2]`` on either grid."""
    t = np.arange(targets, dtype=np.float64)
    ends = np.sort(np.stack([scale * (t - 0.5) + offset, scale * (t + 0.5) + offset]), axis=0)
    low, high = ends[0], ends[1]
    first = np.floor(low + 0.5).astype(np.int64)
    m = math.ceil(abs(scale) - 1e-9) + 1
    index = first[:, np.newaxis] + np.arange(m)[np.newaxis, :]
    covered = np.minimum(high[:, np.newaxis], index + 0.5) - np.maximum(
        low[:, np.newaxis], index - 0.5
    )
    share = np.clip(covered, 0.0, None) / abs(scale)
    share[(index < 0) | (index >= sources)] = 0.0
    return first, share.astype(np.float32)


# -- labelmap layers ---------------------------------------------------------------------


def labelmap(array: NDArray[np.integer], labels: Sequence[int], plan: _Plan) -> np.ndarray:
    """A labelmap layer on ``plan.target`` by the rule of the module docstring."""
    out = np.zeros(plan.target.shape, dtype=array.dtype)
    wanted = [v for v in labels if v <= np.iinfo(array.dtype).max]
    if not wanted or not array.any():
        return out
    for region, start, slab in _target_slabs(array, plan):
        compact, values = compact_labels(region, list(wanted))
        objects = _objects(compact, values)
        for label, value in zip(wanted, values, strict=True):
            box = objects.get(value)
            if box is None:
                continue
            mask = compact[box] == value
            corner = tuple(start[n] + box[n].start for n in range(3))
            window, share = _fractions(mask, corner, slab, plan)
            if share is None:
                continue
            view = out[window]
            keep = share > 0.5 + TOLERANCE
            tied = np.abs(share - 0.5) <= TOLERANCE
            if tied.any():
                keep[tied] = _centre_in(array, label, window, tied, plan)
            view[keep & (view == 0)] = label
    traces = _traces(array, wanted, out, plan)
    flat = out.reshape(-1)
    for label, voxels in zip(wanted, traces, strict=True):
        flat[voxels] = label
    return out


def _centre_in(
    array: np.ndarray, label: int, window: Box, tied: NDArray[np.bool_], plan: _Plan
) -> NDArray[np.bool_]:
    """Whether the centre of each ``tied`` voxel of the target ``window`` lies in the
    segment: an exact half is broken as nearest neighbour breaks it, so ties on the
    near and far sides of a structure go opposite ways and its volume is not biased."""
    k, j, i = np.nonzero(tied)
    ijk = np.column_stack([i + window[2].start, j + window[1].start, k + window[0].start])
    source = np.floor(ijk @ plan.to_source[:3, :3].T + plan.to_source[:3, 3] + 0.5 + ON)
    source = source.astype(np.int64)
    inside = np.all((source >= 0) & (source < np.array(plan.source.size_ijk)), axis=1)
    found = np.zeros(len(source), dtype=bool)
    where = source[inside]
    found[inside] = array[where[:, 2], where[:, 1], where[:, 0]] == label
    return found


def fractional(array: NDArray[np.integer], maximum: int, plan: _Plan) -> np.ndarray:
    """A fractional layer on ``plan.target``: each voxel the mean fraction over it."""
    out = np.zeros(plan.target.shape, dtype=array.dtype)
    for region, start, slab in _target_slabs(array, plan):
        boxes = _objects((region > 0).view(np.uint8), [1])
        box = boxes.get(1)
        if box is None:
            continue
        values = region[box].astype(np.float32) / np.float32(maximum)
        corner = tuple(start[n] + box[n].start for n in range(3))
        window, share = _fractions(values, corner, slab, plan)
        if share is not None:
            out[window] = np.clip(np.rint(share * maximum), 0, maximum).astype(array.dtype)
    return out


def _objects(labels: np.ndarray, values: Sequence[int]) -> dict[int, Box]:
    from scipy import ndimage

    found = ndimage.find_objects(labels, max_label=max(values))
    return {v: found[v - 1] for v in values if 0 < v <= len(found) and found[v - 1] is not None}


def _target_slabs(
    array: np.ndarray, plan: _Plan
) -> Iterator[tuple[np.ndarray, tuple[int, int, int], tuple[int, int]]]:
    """Slabs of target slices (k range) with the box of source voxels that reach them:
    ``(source region, its start (k, j, i), (first, stop) target slice)``. Every target
    voxel is computed in one slab, from every source voxel that overlaps it."""
    target = plan.target
    slabs = -(-max(array.size, math.prod(target.shape)) // SLAB_VOXELS)
    step = -(-target.shape[0] // slabs)
    for k0 in range(0, target.shape[0], step):
        k1 = min(target.shape[0], k0 + step)
        low, high = _source_box(plan, (k0, k1))
        if np.any(high <= low):
            continue
        box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
        yield array[box], (int(low[0]), int(low[1]), int(low[2])), (k0, k1)


def _source_box(plan: _Plan, slab: tuple[int, int]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Source index box (k, j, i; stop exclusive) of the voxels overlapping target slices
    ``slab``, clipped to the source grid."""
    size = plan.target.size_ijk
    bounds = [(-0.5, size[0] - 0.5), (-0.5, size[1] - 0.5), (slab[0] - 0.5, slab[1] - 0.5)]
    corners = np.array(np.meshgrid(*bounds, indexing="ij")).reshape(3, -1).T
    ijk = corners @ plan.to_source[:3, :3].T + plan.to_source[:3, 3]
    low = np.floor(ijk.min(axis=0) - 0.5 + 1e-6) + 1  # voxel s overlaps when s + 1/2 > low
    high = np.ceil(ijk.max(axis=0) + 0.5 - 1e-6)
    extent = np.array(plan.source.size_ijk)
    low, high = np.clip(low, 0, extent), np.clip(high, 0, extent)
    return low[::-1].astype(np.int64), high[::-1].astype(np.int64)


def _target_window(
    plan: _Plan, corner: Sequence[int], shape: Sequence[int], slab: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Target index box (i, j, k; stop exclusive) of the voxels that a source box
    ``corner``, ``shape`` (k, j, i) overlaps, clipped to the grid and the slab."""
    first = np.array(corner[::-1], dtype=np.float64)
    last = first + np.array(shape[::-1], dtype=np.float64) - 1
    bounds = [(first[a] - 0.5, last[a] + 0.5) for a in range(3)]
    corners = np.array(np.meshgrid(*bounds, indexing="ij")).reshape(3, -1).T
    ijk = corners @ plan.to_target[:3, :3].T + plan.to_target[:3, 3]
    low = np.floor(ijk.min(axis=0) - 0.5 + 1e-6) + 1
    high = np.ceil(ijk.max(axis=0) + 0.5 - 1e-6)
    size = np.array(plan.target.size_ijk)
    low, high = np.clip(low, 0, size), np.clip(high, 0, size)
    low[2], high[2] = max(low[2], slab[0]), min(high[2], slab[1])
    return low.astype(np.int64), high.astype(np.int64)


def _fractions(
    values: np.ndarray, corner: Sequence[int], slab: tuple[int, int], plan: _Plan
) -> tuple[Box, NDArray[np.float32] | None]:
    """The share of each target voxel covered by ``values`` (a mask or fractions 0..1 on
    the source box at ``corner``), over the window of the target it reaches."""
    low, high = _target_window(plan, corner, values.shape, slab)
    window = (slice(low[2], high[2]), slice(low[1], high[1]), slice(low[0], high[0]))
    if np.any(high <= low):
        return window, None
    if plan.tables is not None:
        return window, _separable(values, corner, low, high, plan)
    return window, _sampled(values, corner, low, high, plan)


def _separable(
    values: np.ndarray,
    corner: Sequence[int],
    low: NDArray[np.int64],
    high: NDArray[np.int64],
    plan: _Plan,
) -> NDArray[np.float32]:
    """Exact shares, one axis at a time: each target index along an axis takes the
    overlap-weighted sum of the source indices it covers along the matching source axis.
    Axes that shrink go first, so the later passes run on the smaller array."""
    assert plan.tables is not None
    array: np.ndarray = values
    tables = plan.tables
    # Shrinking axes first: the later passes run on the smaller array.
    order = sorted(range(3), key=lambda a: (high[a] - low[a]) / values.shape[2 - tables[a][0]])
    for a in order:
        axis, first, share = tables[a]
        position = 2 - axis  # array axis of the source axis
        begin = corner[position]
        index = first[low[a] : high[a], np.newaxis] + np.arange(share.shape[1]) - begin
        weight = np.where(
            (index >= 0) & (index < array.shape[position]), share[low[a] : high[a]], 0
        )
        index = np.clip(index, 0, array.shape[position] - 1)
        shape = [1, 1, 1]
        shape[position] = high[a] - low[a]
        total = np.zeros(
            tuple(high[a] - low[a] if n == position else array.shape[n] for n in range(3)),
            dtype=np.float32,
        )
        for q in range(share.shape[1]):
            column = weight[:, q].astype(np.float32)
            if not column.any():
                continue
            taken = np.take(array, index[:, q], axis=position)
            total += column.reshape(shape) * taken
        array = total
    # The target's array axis n (its ijk axis 2 - n) sits where its source axis was.
    return np.transpose(array, [2 - tables[2 - n][0] for n in range(3)])


def _sampled(
    values: np.ndarray,
    corner: Sequence[int],
    low: NDArray[np.int64],
    high: NDArray[np.int64],
    plan: _Plan,
) -> NDArray[np.float32]:
    """Approximate shares for leaning grids: every source voxel with a value is sampled at
    ``n``\\ ³ sub-points, each counted in the target voxel holding it."""
    size = high - low
    total = np.zeros(int(np.prod(size)), dtype=np.float64)
    n = plan.subdivision
    grids = np.meshgrid(*[(np.arange(m) + 0.5) / m - 0.5 for m in n], indexing="ij")
    offsets = np.stack([g.reshape(-1) for g in grids], axis=1)  # (n³, 3) in source i, j, k
    k, j, i = np.nonzero(values)
    weights = values[k, j, i].astype(np.float64) * plan.weight
    centres = np.column_stack([i + corner[2], j + corner[1], k + corner[0]]).astype(np.float64)
    step = max(1, CHUNK_SAMPLES // len(offsets))
    matrix, shift = plan.to_target[:3, :3], plan.to_target[:3, 3]
    for start in range(0, len(centres), step):
        points = (centres[start : start + step, np.newaxis, :] + offsets).reshape(-1, 3)
        where = np.floor(points @ matrix.T + shift + 0.5).astype(np.int64) - low
        inside = np.all((where >= 0) & (where < size), axis=1)
        flat = (where[:, 2] * size[1] + where[:, 1]) * size[0] + where[:, 0]
        repeat = np.repeat(weights[start : start + step], len(offsets))
        total += np.bincount(flat[inside], repeat[inside], minlength=total.size)
    return total.reshape(size[2], size[1], size[0]).astype(np.float32)


# -- traces ------------------------------------------------------------------------------

#: Positions within this many voxels of a voxel centre or boundary count as on it.
ON = 1e-6


def _traces(
    array: np.ndarray, labels: Sequence[int], out: np.ndarray, plan: _Plan
) -> list[NDArray[np.int64]]:
    """Flat target indices of the traces of each segment (rule 2 of the module docstring),
    given what every segment of the layer kept in ``out``; source slabs at a time."""
    found: list[list[NDArray[np.int64]]] = [[] for _ in labels]
    rows = max(1, SLAB_VOXELS // max(1, array[0].size))
    size = np.array(plan.target.size_ijk)
    matrix, shift = plan.to_target[:3, :3], plan.to_target[:3, 3]
    for k0 in range(0, array.shape[0], rows):
        compact, values = compact_labels(array[k0 : k0 + rows], list(labels))
        objects = _objects(compact, values)
        for n, value in enumerate(values):
            box = objects.get(value)
            if box is None:
                continue
            k, j, i = np.nonzero(compact[box] == value)
            ijk = np.column_stack([i + box[2].start, j + box[1].start, k + box[0].start + k0])
            position = ijk.astype(np.float64) @ matrix.T + shift
            # Beyond half a voxel outside the grid: no kept voxel near, no trace inside.
            position = position[np.all((position > -1.5) & (position < size + 0.5), axis=1)]
            if not len(position):
                continue
            lost = ~_near(position, labels[n], out, size)
            if not lost.any():
                continue
            # The voxel holding the centre; a centre on a boundary goes to the higher index.
            nearest = np.floor(position[lost] + 0.5 + ON).astype(np.int64)
            nearest = nearest[np.all((nearest >= 0) & (nearest < size), axis=1)]
            found[n].append((nearest[:, 2] * size[1] + nearest[:, 1]) * size[0] + nearest[:, 0])
    return [np.unique(np.concatenate(f)) if f else np.zeros(0, np.int64) for f in found]


def _near(
    position: FloatArray, label: int, out: np.ndarray, size: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Whether a voxel of ``label`` in ``out`` has its centre within one voxel of each
    target ``position`` (i, j, k) along every axis.

    Those are the 2 x 2 x 2 voxels around a position, checked at once on a block-wise
    "any" of the kept voxels; along an axis where the position is on a voxel centre, the
    voxel one below is at exactly one voxel too, checked for the few positions left.
    """
    below = np.floor(position + ON).astype(np.int64)
    low = below.min(axis=0) - 1
    high = below.max(axis=0) + 2  # exclusive
    kept = _window(out, label, low, high, size)
    block = kept[1:] | kept[:-1]
    block = block[:, 1:] | block[:, :-1]
    block = block[:, :, 1:] | block[:, :, :-1]  # block[x] = any kept in x .. x + 1 (shifted)
    at = below - low
    near = np.asarray(block[at[:, 2], at[:, 1], at[:, 0]])
    centred = np.abs(position - below) < ON
    again = np.flatnonzero(~near & centred.any(axis=1))
    for d in (
        np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T
    ):
        if not len(again) or not np.any(d < 0):
            continue
        usable = np.all((d >= 0) | centred[again], axis=1)
        probe = at[again[usable]] + d
        hit = kept[probe[:, 2], probe[:, 1], probe[:, 0]]
        near[again[usable][hit]] = True
        again = again[~near[again]]
    return near


def _window(
    out: np.ndarray,
    label: int,
    low: NDArray[np.int64],
    high: NDArray[np.int64],
    size: NDArray[np.int64],
) -> NDArray[np.bool_]:
    """``out == label`` over the index box ``low`` .. ``high`` (i, j, k, exclusive), False
    beyond the grid."""
    kept = np.zeros(tuple((high - low)[::-1]), dtype=bool)
    inner_low, inner_high = np.clip(low, 0, size), np.clip(high, 0, size)
    if np.all(inner_high > inner_low):
        part = out[
            inner_low[2] : inner_high[2], inner_low[1] : inner_high[1], inner_low[0] : inner_high[0]
        ]
        place = inner_low - low
        kept[
            place[2] : place[2] + part.shape[0],
            place[1] : place[1] + part.shape[1],
            place[0] : place[0] + part.shape[2],
        ] = part == label
    return kept
