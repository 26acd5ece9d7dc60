"""Planar contours <-> masks: exact read-back, even-odd, tie rule, orientation, smoothing."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import ndimage

from segio.analysis.overlap import dice
from segio.converters import polygons_to_mask
from segio.converters.mask_to_polygons import polygons_from_mask
from segio.converters.polygons import crossing_polygons, polygon_area
from segio.converters.polygons_to_mask import contains, rasterize, rasterize_many
from segio.testing.synthetic import synthetic_segmentation

Mask = NDArray[np.bool_]
Polygons = list[NDArray[np.float64]]
MODES = ("midpoint", "edge", "centre")
EIGHT = np.ones((3, 3), dtype=bool)


def _components(mask: Mask) -> int:
    return int(ndimage.label(mask)[1])  # 4-connected, as the contours


def _holes(mask: Mask) -> int:
    """Background regions (8-connected) not reaching the border."""
    return int(ndimage.label(~np.pad(mask, 1), structure=EIGHT)[1]) - 1


def _segments_cross(polygons: Polygons, *, proper: bool = False) -> bool:
    """Brute force, independent of the module: do two edges meet (other than adjacent
    edges at their shared vertex)? ``proper``: do two edges cross at an inner point?"""
    a = np.concatenate(polygons)
    b = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    d, e = b - a, a[None, :, :] - a[:, None, :]
    f = b[None, :, :] - a[:, None, :]
    # straddle[i, j] <= 0: edge j touches or crosses the line of edge i.
    straddle = np.sign(d[:, None, 0] * e[..., 1] - d[:, None, 1] * e[..., 0]) * np.sign(
        d[:, None, 0] * f[..., 1] - d[:, None, 1] * f[..., 0]
    )
    if proper:
        return bool(((straddle < 0) & (straddle.T < 0)).any())
    owner = np.concatenate([np.full(len(p), n) for n, p in enumerate(polygons)])
    local = np.concatenate([np.arange(len(p)) for p in polygons])
    size = np.concatenate([np.full(len(p), len(p)) for p in polygons])
    gap = np.abs(local[:, None] - local[None, :])
    near = (owner[:, None] == owner[None, :]) & ((gap <= 1) | (gap == size[:, None] - 1))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    boxes = np.all((lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None]), axis=2)
    return bool(((straddle <= 0) & (straddle.T <= 0) & boxes & ~near).any())


def _check_exact(mask: Mask) -> None:
    for mode in MODES:
        polygons = polygons_from_mask(mask, mode=mode)
        assert np.array_equal(rasterize(polygons, mask.shape), mask), mode
        areas = np.array([polygon_area(p) for p in polygons])
        assert (areas > 0).sum() == _components(mask), mode
        assert (areas < 0).sum() == _holes(mask), mode
        if mode == "midpoint" and polygons:  # never touch, let alone cross
            assert not _segments_cross(polygons)
        joined = polygons_from_mask(mask, mode=mode, keyhole=True)
        assert np.array_equal(rasterize(joined, mask.shape), mask), f"{mode} keyhole"
        assert len(joined) == _components(mask), f"{mode} keyhole"
        assert not any(_segments_cross([p], proper=True) for p in joined), f"{mode} keyhole"


@st.composite
def masks(draw: st.DrawFn) -> Mask:
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["random", "random", "random", "checker", "single"]))
    if kind == "checker":
        parity: int = draw(st.integers(0, 1))
        checker: Mask = np.add.outer(np.arange(h), np.arange(w)) % 2 == parity
        return checker
    if kind == "single":
        mask = np.zeros((h, w), dtype=bool)
        mask[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
        return mask
    density = draw(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).random((h, w)) < density


@settings(max_examples=300, deadline=None)
@given(masks())
def test_exact_read_back(mask: Mask) -> None:
    _check_exact(mask)


@pytest.mark.parametrize(
    "rows",
    [
        ["111", "101", "111"],  # ring, one-pixel hole
        ["1111111", "1000001", "1011101", "1010101", "1011101", "1000001", "1111111"],
        ["10", "01"],  # saddle: two regions
        ["01", "10"],
        ["1111", "1111", "1111"],  # touches every border
        ["11111", "10101", "11111"],  # two holes side by side
        ["1", "1", "1", "1"],  # one-pixel-wide line
        ["010", "101", "010"],  # diamond of corners: four regions
    ],
)
def test_hand_cases(rows: list[str]) -> None:
    mask = np.array([[c == "1" for c in row] for row in rows])
    _check_exact(mask)


def test_island_in_hole_in_island() -> None:
    mask = np.zeros((9, 9), dtype=bool)
    mask[1:8, 1:8] = True
    mask[2:7, 2:7] = False
    mask[4, 4] = True
    for mode in MODES:
        polygons = polygons_from_mask(mask, mode=mode)
        assert sorted(np.sign([polygon_area(p) for p in polygons])) == [-1, 1, 1]
        assert len(polygons_from_mask(mask, mode=mode, keyhole=True)) == 2
    _check_exact(mask)


def test_hand_drawn_keyhole() -> None:
    # Outline 0.5..9.5, channel down x = 5 (through pixel centres), hole 3.5..6.5.
    outline = [(0.5, 0.5), (5, 0.5), (5, 3.5)]  # down the channel
    hole = [(3.5, 3.5), (3.5, 6.5), (6.5, 6.5), (6.5, 3.5)]  # round the hole
    rest = [(5, 3.5), (5, 0.5), (9.5, 0.5), (9.5, 9.5), (0.5, 9.5)]  # back up, round
    keyhole = np.array(outline + hole + rest)
    expected = np.zeros((11, 11), dtype=bool)
    expected[1:10, 1:10] = True
    expected[4:7, 4:7] = False
    assert np.array_equal(rasterize([keyhole], (11, 11)), expected)
    centres = np.stack(np.meshgrid(np.arange(11), np.arange(11)), axis=-1)
    assert np.array_equal(contains([keyhole], centres), expected)


def test_sub_pixel_and_outside_vertices() -> None:
    square = np.array([(0.4, 0.4), (2.6, 0.4), (2.6, 2.6), (0.4, 2.6)])
    expected = np.zeros((4, 4), dtype=bool)
    expected[1:3, 1:3] = True
    assert np.array_equal(rasterize([square], (4, 4)), expected)
    huge = np.array([(-1e6, -1e6), (1e6, -1e6), (1e6, 1e6), (-1e6, 1e6)])
    assert rasterize([huge], (3, 5)).all()
    left = np.array([(-3.0, -7.0), (2.5, -7.0), (2.5, 1.5), (-3.0, 1.5)])
    expected = np.zeros((3, 5), dtype=bool)
    expected[:2, :3] = True
    assert np.array_equal(rasterize([left], (3, 5)), expected)
    assert not rasterize([square + 100], (4, 4)).any()
    assert not rasterize([], (4, 4)).any()


def test_tie_rule() -> None:
    """Centres on an edge count as moved by (+e, +e**2): low x / low y sides in."""
    square = np.array([(1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0)])
    expected = np.zeros((5, 5), dtype=bool)
    expected[1:3, 1:3] = True
    assert np.array_equal(rasterize([square], (5, 5)), expected)
    assert np.array_equal(rasterize([square[::-1]], (5, 5)), expected)  # winding ignored
    grid = np.stack(np.meshgrid(np.arange(5), np.arange(5)), axis=-1)
    assert np.array_equal(contains([square], grid), expected)
    diamond = np.array([(3.0, 0.0), (6.0, 3.0), (3.0, 6.0), (0.0, 3.0)])
    centres = np.stack(np.meshgrid(np.arange(8), np.arange(8)), axis=-1).astype(float)
    nudged = contains([diamond], centres + np.array([1e-6, 1e-12]))
    assert np.array_equal(rasterize([diamond], (8, 8)), nudged)
    assert np.array_equal(contains([diamond], centres), nudged)
    # Two polygons sharing an edge make one region, the shared edge counted once.
    halves = [square[[0, 1, 2, 3]] * (0.5, 1) + (0.5, 0), square * (0.5, 1) + (1.5, 0)]
    assert np.array_equal(rasterize(halves, (5, 5)), expected)


def test_orientation() -> None:
    mask = np.zeros((7, 7), dtype=bool)
    mask[1:6, 1:6] = True
    mask[3, 3] = False
    mid = polygons_from_mask(mask)
    assert [np.sign(polygon_area(p)) for p in mid] == [1, -1]
    assert polygon_area(polygons_from_mask(mask[3:4, 2:3])[0]) == 0.5  # a diamond
    edge = polygons_from_mask(mask, mode="edge")
    assert sum(polygon_area(p) for p in edge) == mask.sum()
    square = edge[0]
    assert square.tolist() == [[0.5, 0.5], [5.5, 0.5], [5.5, 5.5], [0.5, 5.5]]  # y down: +x first


def test_errors() -> None:
    with pytest.raises(ValueError):
        polygons_from_mask(np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError):
        polygons_from_mask(np.ones((2, 2), bool), mode="center")
    with pytest.raises(ValueError):
        rasterize([np.zeros((3, 3))], (2, 2))
    assert polygons_from_mask(np.zeros((3, 3), bool)) == []


def _expanded(blocks: list[tuple[int, int, Mask]], shape: tuple[int, int]) -> list[Mask]:
    result = []
    for row, col, block in blocks:
        full = np.zeros(shape, dtype=bool)
        full[row : row + block.shape[0], col : col + block.shape[1]] = block
        assert full.sum() == block.sum(), "a block reaches beyond the image"
        result.append(full)
    return result


def _random_plane(rng: np.random.Generator, shape: tuple[int, int]) -> Polygons:
    """A few polygons: random stars, axis-aligned boxes on the tie lines, far outside,
    sub-pixel, degenerate (collinear, repeated vertices), or none."""
    h, w = shape
    polygons: Polygons = []
    for _ in range(int(rng.integers(0, 4))):
        kind = rng.integers(0, 5)
        centre = rng.uniform(-0.3, 1.3, 2) * (w, h)
        if kind == 0:  # star, maybe self-crossing
            n = int(rng.integers(3, 12))
            angle = (
                np.sort(rng.uniform(0, 2 * np.pi, n))
                if rng.random() < 0.5
                else rng.uniform(0, 2 * np.pi, n)
            )
            radius = rng.uniform(0.2, 1.0, n) * rng.uniform(0.5, max(h, w))
            polygons.append(
                centre + np.column_stack([np.cos(angle), np.sin(angle)]) * radius[:, None]
            )
        elif kind == 1:  # a box with integer or half-integer corners: ties everywhere
            x0, y0 = np.round(centre * 2) / 2
            dx, dy = rng.integers(0, 6, 2) / 2
            polygons.append(np.array([(x0, y0), (x0 + dx, y0), (x0 + dx, y0 + dy), (x0, y0 + dy)]))
        elif kind == 2:  # tiny
            polygons.append(centre + rng.uniform(-0.4, 0.4, (int(rng.integers(3, 6)), 2)))
        elif kind == 3:  # degenerate: on a line, repeated vertices
            t = rng.uniform(0, 3, 4)
            polygons.append(centre + np.outer(t, rng.normal(size=2)))
        else:  # huge, around the image
            polygons.append(np.array([(-1e5, -1e5), (1e5, -2e5), (3e5, 1e5), (-1e5, 1e5)]))
    return polygons


def test_rasterize_many_is_rasterize_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    for trial in range(60):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        planes = [_random_plane(rng, shape) for _ in range(int(rng.integers(0, 12)))]
        blocks = rasterize_many(planes, shape)
        assert len(blocks) == len(planes)
        for polygons, got in zip(planes, _expanded(blocks, shape), strict=True):
            assert np.array_equal(got, rasterize(polygons, shape)), trial
        inclusive = rasterize_many(planes, shape, boundary=True)
        for polygons, got in zip(planes, _expanded(inclusive, shape), strict=True):
            assert np.array_equal(got, rasterize(polygons, shape, boundary=True)), trial


def test_boundary_rule_keeps_the_voxels_a_contour_runs_through() -> None:
    """Contours traced through boundary voxel centres (OpenCV, rt-utils) read back whole.

    A 6 x 7 block with a 2 x 3 hole, traced through the centres of its outer and inner
    boundary voxels, plus a diamond whose slanted sides pass through centres: the half-open
    rule loses the right and bottom sides, the boundary rule keeps every traced voxel,
    within DS rounding of the vertices.
    """
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:8, 3:10] = True
    mask[4:6, 5:8] = False
    outline = np.array([(3, 2), (9, 2), (9, 7), (3, 7)], dtype=np.float64)
    hole = np.array([(4, 3), (4, 6), (8, 6), (8, 3)], dtype=np.float64)
    polygons = [outline + 4e-4, hole - 4e-4]
    assert np.array_equal(rasterize(polygons, mask.shape, boundary=True), mask)
    assert rasterize(polygons, mask.shape).sum() < mask.sum()
    diamond = np.array([(5, 1), (8, 4), (5, 7), (2, 4)], dtype=np.float64)
    yy, xx = np.mgrid[0:10, 0:12]
    expected = np.abs(xx - 5) + np.abs(yy - 4) <= 3
    assert np.array_equal(rasterize([diamond], (10, 12), boundary=True), expected)
    # Contours that avoid centres (ours) are unaffected.
    for mode in MODES:
        ours = polygons_from_mask(mask, mode=mode)
        assert np.array_equal(rasterize(ours, mask.shape, boundary=True), mask), mode


def test_rasterize_many_on_exact_contours() -> None:
    """Contours of masks (holes, islands) of many planes at once read back exactly."""
    rng = np.random.default_rng(5)
    masks = [rng.random((23, 31)) < d for d in (0.1, 0.3, 0.5, 0.7, 0.9, 0.0, 1.0)]
    planes = [polygons_from_mask(m, mode=mode) for m in masks for mode in MODES]
    got = _expanded(rasterize_many(planes, (23, 31)), (23, 31))
    assert all(
        np.array_equal(g, m) for g, m in zip(got, [m for m in masks for _ in MODES], strict=True)
    )


def test_rasterize_many_edge_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    square = np.array([(0.5, 0.5), (20.5, 0.5), (20.5, 3.5), (0.5, 3.5)])
    assert rasterize_many([], (4, 4)) == []
    for shape in ((0, 4), (4, 0)):
        ((_, _, block),) = rasterize_many([[square]], shape)
        assert not block.any()
    with pytest.raises(ValueError):
        rasterize_many([[square], [np.zeros((3, 3))]], (2, 2))
    with pytest.raises(ValueError):
        rasterize_many([[np.full((3, 2), np.nan)]], (2, 2))
    expected = [rasterize([square], (5, 30)), rasterize([], (5, 30))]
    assert all(
        map(np.array_equal, _expanded(rasterize_many([[square], []], (5, 30)), (5, 30)), expected)
    )
    # The running XOR has a byte-wise fallback for big-endian machines.
    monkeypatch.setattr(polygons_to_mask.sys, "byteorder", "big")
    got = _expanded(rasterize_many([[square], [square + 1.7]], (5, 30)), (5, 30))
    assert np.array_equal(got[0], expected[0])
    assert np.array_equal(got[1], rasterize([square + 1.7], (5, 30)))


def _realistic_slices(step: int, *, crop: bool = False) -> list[Mask]:
    """Every ``step``-th non-empty slice of each segment of a CT-sized synthetic volume
    (optionally cropped to the segment with a margin of 2, but not beyond the image)."""
    segmentation = synthetic_segmentation(shape=(200, 512, 512), n_segments=24)
    slices = []
    for segment_id in segmentation.segments:
        mask = segmentation.mask(segment_id)
        for k in np.flatnonzero(mask.any(axis=(1, 2)))[::step]:
            m = mask[k]
            if crop:
                j, i = np.nonzero(m)
                m = m[max(j.min() - 2, 0) : j.max() + 3, max(i.min() - 2, 0) : i.max() + 3]
            slices.append(m)
    return slices


def test_smooth() -> None:
    tolerance, scores, vertices = 0.5, [], [0, 0]
    slices = _realistic_slices(step=6, crop=True)
    for n, mask in enumerate(slices):
        exact = polygons_from_mask(mask)
        smooth = polygons_from_mask(mask, tolerance=tolerance)
        assert len(smooth) == len(exact)
        vertices[0] += sum(len(p) for p in exact)
        vertices[1] += sum(len(p) for p in smooth)
        back = rasterize(smooth, mask.shape)
        scores.append(dice(back, mask))
        assert _components(back) == _components(mask)
        assert _holes(back) == _holes(mask)
        assert not crossing_polygons(smooth).any()
        if n % 10 == 0:
            assert not _segments_cross(smooth)
        for before, after in zip(exact, smooth, strict=True):  # no vertex moved > tolerance
            a, b = after, np.roll(after, -1, axis=0)
            ab = b - a
            t = ((before[:, None] - a) * ab).sum(axis=2) / (ab * ab).sum(axis=1)
            gap = before[:, None] - a - np.clip(t, 0, 1)[..., None] * ab
            assert np.hypot(gap[..., 0], gap[..., 1]).min(axis=1).max() <= tolerance + 1e-9
        assert np.array_equal(
            rasterize(polygons_from_mask(mask, tolerance=tolerance, keyhole=True), mask.shape),
            back,
        )
    assert len(slices) > 200
    assert np.mean(scores) >= 0.995
    assert vertices[1] < 0.6 * vertices[0]


def test_smooth_keeps_crossing_free_near_contacts() -> None:
    # Saddles and one-pixel gaps put contours 0.7 px apart: smoothing must not join them.
    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = ndimage.gaussian_filter(rng.random((48, 48)), 1.2) > 0.5
        for mode in MODES:
            smooth = polygons_from_mask(mask, mode=mode, tolerance=0.5)
            if mode == "midpoint":
                assert not crossing_polygons(smooth).any()
            assert len(smooth) == len(polygons_from_mask(mask, mode=mode))


def _blob_slice() -> Mask:
    """512 x 512 with 20 wobbly blobs, each with a hole, every third with an island in it."""
    rng = np.random.default_rng(0)
    j, i = np.mgrid[:512, :512]
    mask = np.zeros((512, 512), dtype=bool)
    for n in range(20):
        cy, cx, r = (
            64 + 128 * (n // 5) + rng.uniform(-8, 8),
            51 + 102 * (n % 5),
            rng.uniform(25, 45),
        )
        wobble = 1 + 0.15 * np.sin(5 * np.arctan2(j - cy, i - cx) + rng.uniform(0, 6))
        d = np.hypot(j - cy, i - cx) / wobble
        mask |= (d < r) & ~((d < 0.5 * r) & (d > (0.2 * r if n % 3 == 0 else -1)))
    return mask


@pytest.mark.slow
def test_timing() -> None:
    mask = _blob_slice()
    assert (_components(mask), _holes(mask)) == (27, 20)
    start = time.perf_counter()
    polygons = polygons_from_mask(mask)
    middle = time.perf_counter()
    assert np.array_equal(rasterize(polygons, mask.shape), mask)
    slice_times = (middle - start, time.perf_counter() - middle)
    assert sum(slice_times) < 0.1
    contour_time = raster_time = 0.0
    for m in _realistic_slices(step=1):
        start = time.perf_counter()
        polygons = polygons_from_mask(m)
        middle = time.perf_counter()
        back = rasterize(polygons, m.shape)
        raster_time += time.perf_counter() - middle
        contour_time += middle - start
        assert np.array_equal(back, m)
    print(
        f"slice: {slice_times}; volume: contours {contour_time:.2f} s, raster {raster_time:.2f} s"
    )
    assert contour_time < 2.0
    assert raster_time < 2.0


def test_contours_with_vertices_near_the_float_limit_are_dropped_quietly() -> None:
    """A vertex at 1.7e308 mm (a crafted file) cannot be rasterised: its contour is dropped
    as off the grid, with the one warning that says so, and no overflow on the way."""
    import warnings

    from segio.contours import Contour, PlanarContours
    from segio.converters.contours_to_labelmap import to_labelmap
    from segio.geometry import Geometry
    from segio.model import Segment, Segmentation
    from segio.representations import Representation

    grid = Geometry.from_spacing((3, 8, 8), (0.5, 0.5, 2.0), (0.0, 0.0, 0.0))
    square = np.array([[1.0, 1, 2], [3, 1, 2], [3, 3, 2], [1, 3, 2]])
    huge = np.array([[-1.7e308, 1.0, 2.0], [1.7e308, 2.0, 2.0], [3.0, 1.7e308, 2.0]])
    far = square + np.array([2e9, 0.0, 0.0])  # on the slice, but a billion pixels away
    seg = Segmentation(
        [Segment("s", "S", (1.0, 0.0, 0.0))],
        source_representation=Representation.PLANAR_CONTOURS,
        contours={"s": PlanarContours([Contour(square), Contour(huge), Contour(far)])},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = to_labelmap(seg, grid).layers[0].array
    assert [str(w.message) for w in caught] == [
        "2 contour(s) lie outside the grid and were dropped"
    ]
    assert labels.sum() == 25  # the square alone, traced through centres: 5 x 5 pixels
