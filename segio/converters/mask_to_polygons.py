"""2D mask -> polygons: crack tracing, exact (conventions in :mod:`segio.converters.polygons`).

Boundary cracks are followed with the inside on the left, then placed at pixel sides
(``edge``), between centres (``midpoint``) or just outside the boundary centres
(``centre``); holes may be joined to their outline (keyholes) and contours simplified
within a tolerance without ever crossing.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from segio.converters.polygons import (
    BoolArray,
    FloatArray,
    IntArray,
    cross,
    crossing_polygons,
    expand,
    polygon_area,
)

#: Unit steps (dx, dy) of the four crack directions; code + 1 (mod 4) turns left.
_STEP = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.intp)
#: (row, col) of the inside pixel relative to a crack's start corner, per direction.
_INSIDE = np.array([[0, 0], [0, -1], [-1, -1], [-1, 0]], dtype=np.intp)
_MODES = ("midpoint", "edge", "centre")
#: How far (pixels) a ``"centre"`` contour passes outside the centres of the boundary pixels:
#: dyadic, so collinear runs stay exactly collinear; far above DS rounding and
#: :data:`~segio.converters.polygons.ON_EDGE`, far below the half pixel at which rounding
#: would change the pixel.
CENTRE_MARGIN = 1 / 32


def _trace(mask: BoolArray) -> tuple[FloatArray, IntArray, IntArray, IntArray, IntArray]:
    """Boundary cracks in contour order, inside on the left.

    Returns the start corners ``(x, y)``, direction codes, the inside pixel ``(row, col)``,
    the contour of each crack and the start offset of each contour.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[r0:r1].any(axis=0))
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    p = np.zeros((r1 - r0 + 2, c1 - c0 + 2), dtype=bool)
    p[1:-1, 1:-1] = mask[r0:r1, c0:c1]
    # Cracks between vertical neighbours run along x, between horizontal ones along y.
    ha, hb = np.nonzero(p[1:] != p[:-1])
    down = p[ha + 1, hb]
    va, vb = np.nonzero(p[:, 1:] != p[:, :-1])
    left = p[va, vb]
    start_r = np.concatenate([ha + 1, va + ~left])
    start_c = np.concatenate([hb + ~down, vb + 1])
    code = np.concatenate([np.where(down, 0, 2), np.where(left, 1, 3)])
    n, stride = len(code), p.shape[1] + 1
    start = start_r * stride + start_c
    end = start + _STEP[code, 1] * stride + _STEP[code, 0]
    # Successor: the crack leaving the end corner; at a saddle (two leave) the left turn.
    order = np.argsort(start, kind="stable")
    pos = np.searchsorted(start[order], end)
    succ = order[pos]
    alt = order[np.minimum(pos + 1, n - 1)]
    take = (start[alt] == end) & (code[alt] == (code + 1) % 4)
    succ = np.where(take, alt, succ)
    # Pointer doubling: the smallest crack index on each cycle, and the steps to reach it.
    label, dist, jump, span = np.arange(n), np.zeros(n, np.intp), succ, 1
    while True:
        ahead = label[jump]
        better = ahead < label
        if not better.any():
            break
        label = np.where(better, ahead, label)
        dist = np.where(better, dist[jump] + span, dist)
        jump, span = jump[jump], 2 * span
    is_rep = label == np.arange(n)
    contour = np.cumsum(is_rep)[label] - 1
    length = np.bincount(contour)
    offset = np.cumsum(length) - length
    ordered = np.empty(n, np.intp)
    ordered[offset[contour] + (length[contour] - dist) % length[contour]] = np.arange(n)
    corner = np.stack([start_c[ordered] - 1.5 + c0, start_r[ordered] - 1.5 + r0], axis=1)
    code = code[ordered]
    inside = np.stack([start_r[ordered], start_c[ordered]], axis=1) + _INSIDE[code] - 1
    return corner, code, inside + np.array([r0, c0]), contour[ordered], offset


def _neighbour(offset: IntArray, contour: IntArray, shift: int) -> IntArray:
    """Index of the previous (shift -1) or next (+1) crack along each contour."""
    n = len(contour)
    length = np.diff(np.append(offset, n))[contour]
    q = np.arange(n) - offset[contour]
    return offset[contour] + (q + shift) % length


def polygons_from_mask(
    mask: ArrayLike,
    *,
    mode: str = "midpoint",
    tolerance: float = 0.0,
    keyhole: bool = False,
) -> list[FloatArray]:
    """Closed polygons whose even-odd fill is exactly ``mask`` (see module doc).

    ``mode="midpoint"``: marching squares through the midpoints between inside and outside
    centres; ``"edge"``: along pixel sides; ``"centre"``: just outside the centres of the
    boundary pixels (:data:`CENTRE_MARGIN`), the convention of readers that round vertices
    to pixels and fill the traced pixels (OpenCV ``fillPoly``, rt-utils), which lose half a
    pixel on the other modes (qurit/rt-utils#86); its polygons enclose about half a pixel
    less area per unit of perimeter, so volumes computed from contour areas are smaller.
    Collinear vertices are merged. Outlines and
    holes are separate polygons unless ``keyhole``, which joins each hole to the contour
    above it by a zero-width channel through the region, so every 4-connected region is
    one polygon (still exact). ``tolerance > 0`` simplifies (Douglas-Peucker; no vertex
    moves the outline by more than ``tolerance`` pixels, no polygon crosses itself or
    another, a polygon keeps at least four vertices); the read-back is then close, not
    exact (mean Dice 0.997 at 0.5 px on CT-sized blobs).
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2D, got shape {m.shape}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    m = m.astype(bool, copy=False)
    if not m.any():
        return []
    corner, code, inside, contour, offset = _trace(m)
    prev, nxt = code[_neighbour(offset, contour, -1)], code[_neighbour(offset, contour, 1)]
    if mode == "edge":
        vertices, keep = corner, code != prev
    elif mode == "centre":
        centre = inside[:, ::-1].astype(np.float64)  # (x, y) of each crack's inside pixel
        vertices = centre + (2 * CENTRE_MARGIN) * (corner + 0.5 * _STEP[code] - centre)
        before = vertices[_neighbour(offset, contour, -1)]
        after = vertices[_neighbour(offset, contour, 1)]
        keep = cross(vertices - before, after - vertices) != 0
    else:
        vertices = corner + 0.5 * _STEP[code]
        s_in, s_out = _STEP[prev] + _STEP[code], _STEP[code] + _STEP[nxt]
        keep = cross(s_in, s_out) != 0
    counts = np.bincount(contour[keep], minlength=len(offset))
    polygons = np.split(vertices[keep], np.cumsum(counts)[:-1])
    if tolerance > 0:
        polygons = _simplify(polygons, tolerance)
    if keyhole:
        from scipy import ndimage

        r0, c0 = inside.min(axis=0)  # label the bounding box only
        labels = ndimage.label(m[r0 : inside[:, 0].max() + 1, c0 : inside[:, 1].max() + 1])[0]
        regions = labels[inside[offset, 0] - r0, inside[offset, 1] - c0]
        polygons = _join_holes(polygons, regions)
    return polygons


def _join_holes(polygons: list[FloatArray], regions: IntArray) -> list[FloatArray]:
    """Join every hole by a zero-width channel from its top vertex to a vertex of its region.

    The vertex is the one first seen from the top vertex upwards (Eberly's hole bridging,
    ray towards -y), so channels cross nothing; edges are never split, so the fill is
    bit-for-bit that of the separate contours (a channel is an edge there and back).
    """
    holes = [h for h, p in enumerate(polygons) if polygon_area(p) < 0]
    if not holes:
        return polygons
    sizes = np.array([len(p) for p in polygons])
    owner, index = expand(sizes)
    by_region = np.argsort(regions[owner], kind="stable")  # vertices grouped by region
    owner, index = owner[by_region], index[by_region]
    bounds = np.searchsorted(regions[owner], [regions, regions + 1])
    a = np.concatenate(polygons)[by_region]
    b = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])[by_region]
    inserts: dict[int, list[tuple[int, int]]] = {}
    start: dict[int, int] = {}
    order = sorted(holes, key=lambda h: -float(polygons[h][:, 1].min()))
    for h in order:
        top = int(np.lexsort((polygons[h][:, 0], polygons[h][:, 1]))[0])
        m = polygons[h][top]
        r = slice(bounds[0, h], bounds[1, h])
        ra, rb, mine = a[r], b[r], owner[r] == h
        # The nearest edge met by the ray x = m.x, y < m.y (vertical edges at their low end).
        dx = rb[:, 0] - ra[:, 0]
        frac = np.where(dx != 0, (m[0] - ra[:, 0]) / np.where(dx != 0, dx, 1), ra[:, 1] < rb[:, 1])
        y = ra[:, 1] + frac * (rb[:, 1] - ra[:, 1])
        spans = (np.minimum(ra[:, 0], rb[:, 0]) <= m[0]) & (m[0] <= np.maximum(ra[:, 0], rb[:, 0]))
        y = np.where(spans & (y < m[1]) & ~mine, y, -np.inf)
        e = int(np.argmax(y)) if len(y) else 0
        if not len(y) or y[e] == -np.inf:  # no enclosing contour: leave the hole separate
            continue
        hit, upper = np.array([m[0], y[e]]), ra[e] if ra[e, 1] <= rb[e, 1] else rb[e]
        # Vertices in the triangle (m, hit, upper end): the one nearest the ray is visible.
        turn = np.array([cross(q - p, ra - p) for p, q in ((m, hit), (hit, upper), (upper, m))])
        inside = ~mine & (ra[:, 1] < m[1]) & ((turn >= 0).all(axis=0) | (turn <= 0).all(axis=0))
        slope = np.abs(ra[:, 0] - m[0]) / np.maximum(m[1] - ra[:, 1], 1e-300)
        best = np.lexsort((m[1] - ra[:, 1], np.where(inside, slope, np.inf)))[0]
        inserts.setdefault(int(owner[r][best]), []).append((int(index[r][best]), h))
        start[h] = top

    def spliced(c: int) -> FloatArray:
        """Vertices of contour ``c`` from its channel vertex, the holes below it joined."""
        s, n = start.get(c, 0), len(polygons[c])
        ring = np.roll(polygons[c], -s, axis=0)
        at: dict[int, list[tuple[float, int]]] = {}
        for k, h in inserts.get(c, []):
            k = (k - s) % n
            out, d = ring[(k + 1) % n] - ring[k], polygons[h][start[h]] - ring[k]
            angle = np.arctan2(cross(out, d), out @ d) % (2 * np.pi)
            at.setdefault(k, []).append((-float(angle), h))  # from the incoming side round
        pieces, done_to = [], 0
        for k in sorted(at):
            pieces.append(ring[done_to : k + 1])
            for _, h in sorted(at[k]):
                pieces += [done.pop(h), polygons[h][start[h]][None], ring[k][None]]
            done_to = k + 1
        joined = np.concatenate([*pieces, ring[done_to:]])
        return joined[np.any(joined != np.roll(joined, -1, axis=0), axis=1)]

    # A hole's top is strictly below that of the contour it joins: children come first.
    done: dict[int, FloatArray] = {}
    for h in (h for h in order if h in start):
        done[h] = spliced(h)
    return [spliced(c) for c in range(len(polygons)) if c not in start]


def _simplify(polygons: list[FloatArray], tolerance: float) -> list[FloatArray]:
    """Douglas-Peucker per polygon, retried tighter, then undone, where polygons would cross.

    Only crossings that simplification made count: ``"edge"`` contours may already touch.
    """
    result, tol = list(polygons), tolerance
    todo = np.arange(len(polygons))
    for _ in range(4):
        for i, poly in zip(todo, _douglas_peucker([polygons[i] for i in todo], tol), strict=True):
            result[i] = poly
        changed = np.array([len(r) != len(p) for r, p in zip(result, polygons, strict=True)])
        todo = np.flatnonzero(crossing_polygons(result) & changed)
        if not len(todo):
            return result
        tol /= 4
    while len(todo):  # back to the exact contours where it still crosses
        for i in todo:
            result[i] = polygons[i]
        changed[todo] = False
        todo = np.flatnonzero(crossing_polygons(result) & changed)
    return result


def _douglas_peucker(polygons: list[FloatArray], tolerance: float) -> list[FloatArray]:
    """All polygons at once; each keeps at least four vertices (or all it has)."""
    if not polygons:
        return []
    sizes = np.array([len(p) for p in polygons])
    base = np.cumsum(sizes + 1) - (sizes + 1)
    pts = np.concatenate([np.concatenate([p, p[:1]]) for p in polygons])
    # Split each ring at vertex 0 and its farthest vertex into two chains.
    far = np.array([int(np.argmax(((p - p[0]) ** 2).sum(axis=1))) for p in polygons])
    s = np.concatenate([base, base + far])
    e = np.concatenate([base + far, base + sizes])
    keep = np.zeros(len(pts), dtype=bool)
    keep[s] = True
    forced = True
    while True:
        live = e - s >= 2
        s, e = s[live], e[live]
        if not len(s):
            break
        rng, step = expand(e - s - 1)
        first = np.flatnonzero(step == 0)
        idx = s[rng] + 1 + step
        a, b, q = pts[s[rng]], pts[e[rng]], pts[idx]
        ab = b - a
        t = np.clip(((q - a) * ab).sum(axis=1) / np.maximum((ab * ab).sum(axis=1), 1e-300), 0, 1)
        d = np.hypot(*(q - a - t[:, None] * ab).T)
        dmax = np.maximum.reduceat(d, first)
        k = np.minimum.reduceat(np.where(d == dmax[rng], idx, len(pts)), first)
        split, forced = np.full(len(s), True) if forced else dmax > tolerance, False
        keep[k[split]] = True
        s, e = np.concatenate([s[split], k[split]]), np.concatenate([k[split], e[split]])
    return [pts[o : o + n][keep[o : o + n]] for o, n in zip(base, sizes, strict=True)]
