"""Polygons -> 2D mask: even-odd filling, exact (conventions in :mod:`segio.converters.polygons`).

A plane's polygons are filled together: every crossing of an edge with a row of pixel
centres toggles the pixels to its right, and the parity of the toggles is the mask, so
separate holes, islands in holes and keyhole contours come out right without any winding
analysis.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from segio.converters.polygons import ON_EDGE, BoolArray, FloatArray, IntArray, expand


def _edges(polygons: Sequence[ArrayLike]) -> tuple[FloatArray, FloatArray]:
    """Edges of all polygons, each as (lower-y end, upper-y end)."""
    arrays = [np.asarray(p, dtype=np.float64) for p in polygons]
    for a in arrays:
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"a polygon must be an (N, 2) array of (x, y), got {a.shape}")
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        empty = np.empty((0, 2))
        return empty, empty
    xy = np.concatenate(arrays)
    if not np.isfinite(xy).all():
        raise ValueError("polygon vertices must be finite")
    counts = np.array([len(a) for a in arrays])
    ends = np.cumsum(counts)
    following = np.arange(1, len(xy) + 1)
    following[ends - 1] = ends - counts
    a, b = xy, xy[following]
    swap = (a[:, 1] > b[:, 1])[:, None]
    return np.where(swap, b, a), np.where(swap, a, b)


def _cross_x(lo: FloatArray, hi: FloatArray, y: FloatArray) -> FloatArray:
    """x where the edges cross the lines ``y`` (one formula everywhere: same rounding)."""
    dy = np.where(hi[..., 1] > lo[..., 1], hi[..., 1] - lo[..., 1], 1.0)
    return lo[..., 0] + (y - lo[..., 1]) * (hi[..., 0] - lo[..., 0]) / dy


def _on_edges(
    lo: FloatArray, hi: FloatArray, shape: tuple[int, int]
) -> tuple[IntArray, IntArray, IntArray]:
    """(edge, row, col) of every pixel centre on an edge traced through centres.

    Only edges whose two ends are pixel centres, or that run along a row or column of
    centres, count (within :data:`ON_EDGE`). Each is
    stepped along its major axis one whole pixel at a time (so horizontal and vertical
    edges are exact too), and a step whose other coordinate is within the tolerance of a
    whole pixel is a centre on the edge.
    """
    height, width = shape
    on_lo, on_hi = np.abs(lo - np.round(lo)) <= ON_EDGE, np.abs(hi - np.round(hi)) <= ON_EDGE
    # Centre to centre, or along a row or column of centres (a border run starts off-centre).
    traced = (on_lo & on_hi).all(axis=1) | (on_lo & on_hi & (np.abs(hi - lo) <= ON_EDGE)).any(
        axis=1
    )
    index = np.flatnonzero(traced)
    lo, hi = lo[index], hi[index]
    d = hi - lo
    steep = np.abs(d[:, 1]) >= np.abs(d[:, 0])  # step along y, else along x
    major = np.where(steep, 1, 0)
    a = np.take_along_axis(lo, major[:, None], axis=1)[:, 0]
    b = np.take_along_axis(hi, major[:, None], axis=1)[:, 0]
    start = np.ceil(np.minimum(a, b) - ON_EDGE)
    stop = np.floor(np.maximum(a, b) + ON_EDGE)
    limit = np.where(steep, height, width) - 1
    start = np.clip(start, 0, limit + 1).astype(np.intp)
    stop = np.clip(stop, -1, limit).astype(np.intp)
    count = np.maximum(stop - start + 1, 0)
    edge, step = expand(count)
    t = (start[edge] + step).astype(np.float64)
    da = np.where(steep, d[:, 1], d[:, 0])[edge]
    db = np.where(steep, d[:, 0], d[:, 1])[edge]
    a0 = np.where(steep, lo[:, 1], lo[:, 0])[edge]
    b0 = np.where(steep, lo[:, 0], lo[:, 1])[edge]
    other = b0 + (t - a0) * db / np.where(da == 0, 1.0, da)
    near = np.round(other)
    hit = np.abs(other - near) <= ON_EDGE
    other_limit = np.where(steep, width, height)[edge]
    hit &= (near >= 0) & (near < other_limit)
    t_i, near_i = t[hit].astype(np.intp), near[hit].astype(np.intp)
    on_steep = steep[edge][hit]
    rows = np.where(on_steep, t_i, near_i)
    cols = np.where(on_steep, near_i, t_i)
    return index[edge[hit]], rows, cols


def rasterize(
    polygons: Sequence[ArrayLike], shape: tuple[int, int], *, boundary: bool = False
) -> BoolArray:
    """Pixels whose centre is inside an odd number of ``polygons`` (even-odd, exact).

    An edge crosses scanline ``y = j`` when ``min(y) <= j < max(y)``; a crossing at ``x``
    toggles every pixel with ``i >= x``. Vertices may lie outside the image. With
    ``boundary``, centres on an edge are inside too (see the module's tie rule).
    """
    height, width = (int(n) for n in shape)
    out = np.zeros((height, width), dtype=bool)
    lo, hi = _edges(polygons)
    if not len(lo) or height <= 0 or width <= 0:
        return out
    if boundary:
        _, rows, cols = _on_edges(lo, hi, (height, width))
        out[rows, cols] = True
    first = np.maximum(np.ceil(np.clip(lo[:, 1], -1, height)).astype(np.intp), 0)
    last = np.minimum(np.ceil(np.clip(hi[:, 1], -1, height)).astype(np.intp) - 1, height - 1)
    count = np.maximum(last - first + 1, 0)
    total = int(count.sum())
    if not total:
        return out
    edge, step = expand(count)
    row = first[edge] + step
    x = _cross_x(lo[edge], hi[edge], row.astype(np.float64))
    col = np.ceil(np.clip(x, -1, width)).astype(np.intp).clip(0, width)
    r0, c0 = int(row.min()), int(col.min())
    h, w = int(row.max()) - r0 + 1, int(col.max()) - c0  # parity is even from col.max() on
    if w <= 0:
        return out
    toggles = np.bincount((row - r0) * (w + 1) + col - c0, minlength=h * (w + 1))
    out[r0 : r0 + h, c0 : c0 + w] |= (toggles.reshape(h, w + 1)[:, :w].cumsum(axis=1) & 1) > 0
    return out


def rasterize_many(
    planes: Sequence[Sequence[ArrayLike]], shape: tuple[int, int], *, boundary: bool = False
) -> list[tuple[int, int, BoolArray]]:
    """:func:`rasterize` of many planes at once, each as ``(row, col, block)``.

    ``block`` is the part of that plane's mask from ``(row, col)`` on (everything outside
    it is False; it may be empty), computed with exactly the arithmetic of
    :func:`rasterize`, so ``rasterize(polygons, shape)[row:, col:][:h, :w] == block`` bit
    for bit. One set of numpy calls for all the edges of all the planes instead of one
    per plane: the planes of a structure are many and small.
    """
    height, width = (int(n) for n in shape)
    empty: list[tuple[int, int, BoolArray]] = [(0, 0, np.zeros((0, 0), dtype=bool)) for _ in planes]
    if not len(planes) or height <= 0 or width <= 0:
        for polygons in planes:  # same validation as rasterize
            _edges(polygons)
        return empty
    # All edges at once: _edges of every polygon of every plane, in plane order.
    arrays = [[np.asarray(p, dtype=np.float64) for p in polygons] for polygons in planes]
    lo, hi = _edges([a for plane_arrays in arrays for a in plane_arrays])
    if not len(lo):
        return empty
    sizes = np.array([sum(len(a) for a in plane_arrays) for plane_arrays in arrays])
    plane_of_edge = np.repeat(np.arange(len(planes)), sizes)
    first = np.maximum(np.ceil(np.clip(lo[:, 1], -1, height)).astype(np.intp), 0)
    last = np.minimum(np.ceil(np.clip(hi[:, 1], -1, height)).astype(np.intp) - 1, height - 1)
    count = np.maximum(last - first + 1, 0)
    edge, step = expand(count)
    row = first[edge] + step
    x = _cross_x(lo[edge], hi[edge], row.astype(np.float64))
    col = np.ceil(np.clip(x, -1, width)).astype(np.intp).clip(0, width)
    plane = plane_of_edge[edge]  # non-decreasing: edges are grouped by plane
    if boundary:
        on_edge, on_row, on_col = _on_edges(lo, hi, (height, width))
        on_plane = plane_of_edge[on_edge]
    else:
        on_plane = on_row = on_col = np.zeros(0, dtype=np.intp)
    if not len(row) and not len(on_row):
        return empty
    # Each plane's box: rows r0..r1, columns c0..c1 - 1 (parity is even from c1 on).
    n = len(planes)
    r0, c0 = np.full(n, height, dtype=np.intp), np.full(n, width + 1, dtype=np.intp)
    r1, c1 = np.full(n, -1, dtype=np.intp), np.full(n, -1, dtype=np.intp)
    crossings = np.bincount(plane, minlength=n)
    crossed = crossings > 0
    starts = (np.cumsum(crossings) - crossings)[crossed]  # crossings are grouped by plane
    r0[crossed] = np.minimum.reduceat(row, starts)
    r1[crossed] = np.maximum.reduceat(row, starts)
    c0[crossed] = np.minimum.reduceat(col, starts)
    c1[crossed] = np.maximum.reduceat(col, starts)
    np.minimum.at(r0, on_plane, on_row)  # few: the centres on traced edges
    np.maximum.at(r1, on_plane, on_row)
    np.minimum.at(c0, on_plane, on_col)
    np.maximum.at(c1, on_plane, on_col + 1)
    hit = r1 >= r0
    h = np.where(hit, r1 - r0 + 1, 0)
    w = np.where(hit, np.maximum(c1 - c0, 0), 0)
    r0, c0 = np.where(hit, r0, 0), np.where(hit, c0, 0)
    cells = h * (w + 1)
    base = np.cumsum(cells) - cells
    key = base[plane] + (row - r0[plane]) * (w[plane] + 1) + col - c0[plane]
    # A closed ring crosses every row an even number of times (as often up as down, under
    # the half-open rule), so sorted crossings pair up into the runs [a, b) that the
    # running parity fills, and no run leaves its row: one running XOR over all the rows.
    key.sort()
    a, b = key[0::2], key[1::2]
    a, b = a[a < b], b[a < b]
    flat = _parity_runs(a, b, int(cells.sum()))
    on_key = base[on_plane] + (on_row - r0[on_plane]) * (w[on_plane] + 1) + on_col - c0[on_plane]
    flat[on_key] = True
    result = []
    for p in range(n):
        if w[p] <= 0:
            result.append(empty[p])
            continue
        block = flat[base[p] : base[p] + cells[p]].reshape(int(h[p]), int(w[p]) + 1)
        result.append((int(r0[p]), int(c0[p]), block[:, : w[p]]))
    return result


_BYTES = np.uint64(0x0101010101010101)


def _parity_runs(starts: IntArray, ends: IntArray, size: int) -> BoolArray:
    """A flat mask of ``size`` True on the disjoint sorted runs ``[starts, ends)``.

    A running parity of the run ends, eight bytes at a time (a byte-wise ``cumsum`` costs
    several times more, and this is the bulk of the rasterisation): multiplying a word of
    0/1 bytes by 0x0101...01 leaves in each byte the sum of it and the bytes before (at
    most 8: no carry), whose low bit is the parity within the word; the parity of the
    words before is one ``cumsum`` over an eighth of the cells.
    """
    words = -(-size // 8)
    toggles = np.zeros(words * 8, dtype=np.uint8)
    toggles[starts] = 1
    toggles[ends] ^= 1  # an end may be the next run's start: the two cancel
    if sys.byteorder != "little":
        return (np.cumsum(toggles[:size], dtype=np.uint8) & 1).astype(bool)
    x = toggles.view(np.uint64)
    np.multiply(x, _BYTES, out=x)
    word = (x >> np.uint64(56)).astype(np.uint8) & 1  # the parity of each whole word
    before = (np.cumsum(word, dtype=np.uint8) & 1) ^ word
    x &= _BYTES
    x ^= before.astype(np.uint64) * _BYTES
    return toggles[:size].view(bool)


def contains(polygons: Sequence[ArrayLike], points: ArrayLike) -> BoolArray:
    """Even-odd point test, same tie rule as :func:`rasterize`; ``points`` is ``(..., 2)``."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1:] != (2,):
        raise ValueError(f"points must have shape (..., 2), got {pts.shape}")
    flat = pts.reshape(-1, 2)
    lo, hi = _edges(polygons)
    out = np.zeros(len(flat), dtype=bool)
    step = max(1, 2_000_000 // max(1, len(lo)))
    for s in range(0, len(flat) if len(lo) else 0, step):
        p = flat[s : s + step, None, :]
        crosses = (lo[:, 1] <= p[..., 1]) & (p[..., 1] < hi[:, 1])
        left = _cross_x(lo, hi, p[..., 1]) <= p[..., 0]
        out[s : s + step] = (np.count_nonzero(crosses & left, axis=1) & 1) > 0
    return out.reshape(pts.shape[:-1])
