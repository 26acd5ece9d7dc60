"""Geometry: validation, LPS/RAS, DICOM views, points, sub-grids and comparison."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import segio
from segio.errors import GeometryError, SegioError
from segio.geometry import LPS_TO_RAS, Geometry


def rotation(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    """Rodrigues' formula, written out so the test does not reuse the code under test."""
    x, y, z = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    t = math.radians(degrees)
    c, s, v = math.cos(t), math.sin(t), 1.0 - math.cos(t)
    return np.array(
        [
            [c + x * x * v, x * y * v - z * s, x * z * v + y * s],
            [y * x * v + z * s, c + y * y * v, y * z * v - x * s],
            [z * x * v - y * s, z * y * v + x * s, c + z * z * v],
        ]
    )


ROT = rotation((1.0, 2.0, 3.0), 20.0)
SPACING = np.array([0.7, 0.9, 2.5])
ORIGIN = np.array([-12.5, 40.25, 7.0])
SHAPE = (4, 6, 5)  # k, j, i


@pytest.fixture
def oblique() -> Geometry:
    return Geometry.from_spacing(SHAPE, SPACING, ORIGIN, ROT)


def oblique_matrix() -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = ROT * SPACING
    matrix[:3, 3] = ORIGIN
    return matrix


# -- construction ------------------------------------------------------------------------


def test_rotation_helper_is_a_proper_rotation() -> None:
    assert np.allclose(ROT.T @ ROT, np.eye(3))
    assert np.linalg.det(ROT) == pytest.approx(1.0)
    assert not np.allclose(ROT, np.eye(3))


def test_valid_construction() -> None:
    g = Geometry(oblique_matrix(), SHAPE)
    assert g.shape == SHAPE
    assert all(type(n) is int for n in g.shape)
    assert np.array_equal(g.ijk_to_lps, oblique_matrix())
    assert g.ijk_to_lps.dtype == np.float64


def test_shape_accepts_numpy_integers() -> None:
    g = Geometry(np.eye(4), np.array([2, 3, 4], dtype=np.int64))
    assert g.shape == (2, 3, 4)
    assert all(type(n) is int for n in g.shape)


@pytest.mark.parametrize(
    "matrix",
    [
        pytest.param(np.eye(3), id="3x3"),
        pytest.param(np.eye(4)[:3], id="3x4"),
        pytest.param(np.eye(5), id="5x5"),
        pytest.param(np.ones(16), id="flat16"),
    ],
)
def test_non_4x4_matrix_is_rejected(matrix: np.ndarray) -> None:
    with pytest.raises(GeometryError, match="4x4"):
        Geometry(matrix, (2, 2, 2))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_matrix_is_rejected(bad: float) -> None:
    matrix = np.eye(4)
    matrix[1, 3] = bad
    with pytest.raises(GeometryError, match="NaN or infinite"):
        Geometry(matrix, (2, 2, 2))


@pytest.mark.parametrize("row", [(0, 0, 1, 1), (0, 0, 0, 2), (0.1, 0, 0, 1), (0, 0, 0, 0)])
def test_bad_last_row_is_rejected(row: tuple[float, ...]) -> None:
    matrix = np.eye(4)
    matrix[3] = row
    with pytest.raises(GeometryError, match="last row"):
        Geometry(matrix, (2, 2, 2))


def test_last_row_within_tolerance_is_snapped() -> None:
    matrix = np.eye(4)
    matrix[3] = (1e-12, 0.0, 0.0, 1.0 + 1e-12)
    g = Geometry(matrix, (2, 2, 2))
    assert np.array_equal(g.ijk_to_lps[3], [0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize(
    "columns",
    [
        pytest.param([[1, 0, 0], [0, 0, 0], [0, 0, 1]], id="zero-j-axis"),
        pytest.param([[1, 2, 0], [0, 0, 0], [0, 0, 1]], id="parallel-i-j"),
        pytest.param([[1, 0, 1], [0, 1, 1], [0, 0, 0]], id="coplanar-axes"),
    ],
)
def test_singular_matrix_is_rejected(columns: list[list[float]]) -> None:
    matrix = np.eye(4)
    matrix[:3, :3] = columns
    with pytest.raises(GeometryError, match="singular"):
        Geometry(matrix, (2, 2, 2))


@pytest.mark.parametrize(
    "shape",
    [(2, 3), (1, 2, 3, 4), (0, 2, 2), (2, -1, 2), (2.5, 2, 2), (2, 2, 2.0001), ()],
)
def test_bad_shape_is_rejected(shape: tuple[float, ...]) -> None:
    with pytest.raises(GeometryError, match="shape"):
        Geometry(np.eye(4), shape)  # type: ignore[arg-type]


def test_from_spacing_rejects_bad_direction_and_zero_spacing() -> None:
    with pytest.raises(GeometryError, match="3x3"):
        Geometry.from_spacing((2, 2, 2), direction=np.eye(2))
    with pytest.raises(GeometryError, match="singular"):
        Geometry.from_spacing((2, 2, 2), spacing=(1.0, 0.0, 1.0))


def test_geometry_error_is_a_segio_error() -> None:
    with pytest.raises(SegioError):
        Geometry(np.zeros((4, 4)), (1, 1, 1))


def test_matrix_is_copied_and_read_only() -> None:
    source = oblique_matrix()
    g = Geometry(source, SHAPE)
    source[0, 3] = 999.0
    assert g.ijk_to_lps[0, 3] == ORIGIN[0]
    assert not g.ijk_to_lps.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        g.ijk_to_lps[0, 0] = 5.0
    # The derived arrays are fresh copies: changing them does not touch the geometry.
    origin = g.origin
    origin[0] = 1e6
    ras = g.ijk_to_ras
    ras[0, 0] = 1e6
    assert g.origin[0] == ORIGIN[0]
    assert np.array_equal(g.ijk_to_lps, oblique_matrix())


def test_lps_to_ras_constant_is_read_only() -> None:
    assert np.array_equal(LPS_TO_RAS, np.diag([-1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="read-only"):
        LPS_TO_RAS[0, 0] = 1.0


# -- constructors and RAS ----------------------------------------------------------------


def test_from_spacing_builds_columns_from_direction_times_spacing(oblique: Geometry) -> None:
    assert np.allclose(oblique.ijk_to_lps, oblique_matrix(), atol=1e-12)
    plain = Geometry.from_spacing((3, 4, 5))
    assert np.array_equal(plain.ijk_to_lps, np.eye(4))


def test_ijk_to_ras_flips_x_and_y(oblique: Geometry) -> None:
    ras = oblique.ijk_to_ras
    lps = oblique.ijk_to_lps
    assert np.allclose(ras[0], -lps[0])
    assert np.allclose(ras[1], -lps[1])
    assert np.allclose(ras[2:], lps[2:])
    # A voxel centre in RAS is its LPS position with x and y negated.
    ijk = np.array([3.0, 5.0, 2.0, 1.0])
    lps_point = lps @ ijk
    ras_point = ras @ ijk
    assert np.allclose(ras_point[:3], [-lps_point[0], -lps_point[1], lps_point[2]])


def test_from_ras_inverts_ijk_to_ras() -> None:
    ras = np.array(
        [
            [-0.8, 0.0, 0.0, 100.0],
            [0.0, -0.8, 0.0, 120.0],
            [0.0, 0.0, 3.0, -50.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    g = Geometry.from_ras(ras, (10, 20, 30))
    assert np.allclose(g.origin, [-100.0, -120.0, -50.0])
    assert np.allclose(g.direction, np.diag([1.0, 1.0, 1.0]))
    assert np.allclose(g.spacing, [0.8, 0.8, 3.0])
    assert np.allclose(g.ijk_to_ras, ras)
    assert g.shape == (10, 20, 30)


def test_from_ras_validates_values_like_the_constructor() -> None:
    ras = np.eye(4)
    ras[0, 0] = math.nan
    with pytest.raises(GeometryError, match="NaN"):
        Geometry.from_ras(ras, (2, 2, 2))
    with pytest.raises(GeometryError, match="shape"):
        Geometry.from_ras(np.eye(4), (2, 2))


@pytest.mark.parametrize("matrix", [np.eye(3), np.eye(4)[:3]], ids=["3x3", "3x4"])
def test_from_ras_rejects_a_non_4x4_matrix_with_geometry_error(matrix: np.ndarray) -> None:
    with pytest.raises(GeometryError, match="4x4"):
        Geometry.from_ras(matrix, (2, 2, 2))


# -- spacing, direction, origin, volume ----------------------------------------------------


def test_oblique_grid_properties(oblique: Geometry) -> None:
    assert oblique.shape == (4, 6, 5)
    assert oblique.size_ijk == (5, 6, 4)
    assert np.allclose(oblique.spacing, SPACING)
    assert np.allclose(oblique.direction, ROT)
    assert np.allclose(oblique.origin, ORIGIN)
    assert oblique.is_orthogonal
    assert oblique.voxel_volume == pytest.approx(0.7 * 0.9 * 2.5)
    assert np.allclose(oblique.lps_to_ijk @ oblique.ijk_to_lps, np.eye(4))


def test_voxel_volume_of_a_sheared_grid() -> None:
    matrix = np.eye(4)
    matrix[:3, :3] = [[1.0, 0.5, 0.0], [0.0, 2.0, 0.3], [0.0, 0.0, 3.0]]
    g = Geometry(matrix, (2, 2, 2))
    assert g.voxel_volume == pytest.approx(6.0)
    # The product of the axis lengths would be wrong for a sheared grid.
    assert float(np.prod(g.spacing)) > 6.1
    assert not g.is_orthogonal


def test_voxel_volume_is_positive_for_a_left_handed_grid() -> None:
    g = Geometry(np.diag([0.5, -2.0, 3.0, 1.0]), (1, 1, 1))
    assert g.voxel_volume == pytest.approx(3.0)


# -- DICOM ---------------------------------------------------------------------------------


def test_image_orientation_is_row_then_column_cosines(oblique: Geometry) -> None:
    iop = oblique.image_orientation()
    assert iop.shape == (6,)
    assert np.allclose(iop[:3], ROT[:, 0])
    assert np.allclose(iop[3:], ROT[:, 1])
    assert np.allclose(np.linalg.norm(iop[:3]), 1.0)
    assert np.allclose(np.linalg.norm(iop[3:]), 1.0)


def test_image_orientation_of_an_axial_grid() -> None:
    g = Geometry.from_spacing((3, 4, 5), (0.5, 0.5, 2.0), (-100.0, -80.0, 30.0))
    assert np.allclose(g.image_orientation(), [1, 0, 0, 0, 1, 0])
    assert np.allclose(g.slice_positions(), [[-100, -80, 30], [-100, -80, 32], [-100, -80, 34]])


def test_slice_positions_match_hand_computed_ipp(oblique: Geometry) -> None:
    positions = oblique.slice_positions()
    assert positions.shape == (4, 3)
    normal = np.cross(ROT[:, 0], ROT[:, 1])
    for k in range(4):
        expected = ORIGIN + k * 2.5 * ROT[:, 2]
        assert np.allclose(positions[k], expected)
        # Distance along the slice normal grows by the slice spacing.
        assert np.dot(positions[k] - ORIGIN, normal) == pytest.approx(2.5 * k)


# -- points -------------------------------------------------------------------------------


def test_ijk_to_points_hand_computed(oblique: Geometry) -> None:
    points = oblique.ijk_to_points([[0, 0, 0], [1, 0, 0], [0, 0, 1], [4, 5, 3]])
    assert points.shape == (4, 3)
    assert np.allclose(points[0], ORIGIN)
    assert np.allclose(points[1], ORIGIN + 0.7 * ROT[:, 0])
    assert np.allclose(points[2], ORIGIN + 2.5 * ROT[:, 2])
    expected = ORIGIN + 4 * 0.7 * ROT[:, 0] + 5 * 0.9 * ROT[:, 1] + 3 * 2.5 * ROT[:, 2]
    assert np.allclose(points[3], expected)


def test_points_to_ijk_inverts_ijk_to_points(oblique: Geometry) -> None:
    rng = np.random.default_rng(7)
    ijk = rng.uniform(-3, 8, size=(50, 3))
    points = oblique.ijk_to_points(ijk)
    assert np.allclose(oblique.points_to_ijk(points), ijk, atol=1e-9)
    lps = rng.uniform(-100, 100, size=(20, 3))
    assert np.allclose(oblique.ijk_to_points(oblique.points_to_ijk(lps)), lps, atol=1e-9)


# -- sub-grids ----------------------------------------------------------------------------


def test_cropped_moves_origin_by_start_along_the_axes(oblique: Geometry) -> None:
    sub = oblique.cropped((1, 2, 3), (2, 3, 2))  # k, j, i
    expected = ORIGIN + 3 * 0.7 * ROT[:, 0] + 2 * 0.9 * ROT[:, 1] + 1 * 2.5 * ROT[:, 2]
    assert np.allclose(sub.origin, expected)
    assert sub.shape == (2, 3, 2)
    assert np.allclose(sub.ijk_to_lps[:3, :3], oblique.ijk_to_lps[:3, :3])
    # Voxel (0, 0, 0) of the crop is voxel (i=3, j=2, k=1) of the original.
    assert np.allclose(sub.ijk_to_points([[0, 0, 0]]), oblique.ijk_to_points([[3, 2, 1]]))


def test_cropped_with_negative_start_grows_the_grid_outward(oblique: Geometry) -> None:
    sub = oblique.cropped((-1, 0, -2), (6, 6, 9))
    expected = ORIGIN - 2 * 0.7 * ROT[:, 0] - 1 * 2.5 * ROT[:, 2]
    assert np.allclose(sub.origin, expected)
    assert sub.offset_in(oblique) == (-1, 0, -2)
    assert oblique.offset_in(sub) == (1, 0, 2)


def test_cropped_rejects_a_bad_shape(oblique: Geometry) -> None:
    with pytest.raises(GeometryError):
        oblique.cropped((0, 0, 0), (0, 1, 1))


def test_offset_in_aligned_grid_is_an_integer_index(oblique: Geometry) -> None:
    sub = oblique.cropped((1, 2, 3), (2, 2, 2))
    offset = sub.offset_in(oblique)
    assert offset == (1, 2, 3)
    assert offset is not None and all(type(v) is int for v in offset)
    assert oblique.offset_in(oblique) == (0, 0, 0)


def test_offset_in_tolerates_tiny_rounding(oblique: Geometry) -> None:
    matrix = oblique.cropped((1, 2, 3), (2, 2, 2)).ijk_to_lps.copy()
    matrix[:3, 3] += 1e-7
    assert Geometry(matrix, (2, 2, 2)).offset_in(oblique) == (1, 2, 3)


def test_offset_in_half_voxel_shift_is_none(oblique: Geometry) -> None:
    matrix = oblique.ijk_to_lps.copy()
    matrix[:3, 3] += 0.5 * matrix[:3, 0]
    assert Geometry(matrix, SHAPE).offset_in(oblique) is None


def test_offset_in_different_spacing_or_axes_is_none(oblique: Geometry) -> None:
    finer = Geometry.from_spacing(SHAPE, (0.35, 0.9, 2.5), ORIGIN, ROT)
    assert finer.offset_in(oblique) is None
    turned = Geometry.from_spacing(SHAPE, SPACING, ORIGIN, rotation((1, 2, 3), 21.0))
    assert turned.offset_in(oblique) is None


def _reoriented(grid: Geometry, axes: tuple[int, int, int], flips: tuple[bool, ...]) -> Geometry:
    """The grid of ``np.flip(np.transpose(array, axes), flipped)``, built by hand: each
    array axis of the result steps along a (maybe reversed) axis of ``grid``, from the
    voxel at the start or the end of that axis."""
    columns = grid.ijk_to_lps[:3, :3]
    start = [0, 0, 0]  # k, j, i of the new voxel 0 in the old array
    matrix = np.eye(4)
    for axis in range(3):
        column = columns[:, 2 - axes[axis]]
        if flips[axis]:
            start[axes[axis]] = grid.shape[axes[axis]] - 1
            column = -column
        matrix[:3, 2 - axis] = column
    k, j, i = start
    matrix[:3, 3] = grid.ijk_to_points([[i, j, k]])[0]
    shape = tuple(grid.shape[a] for a in axes)
    return Geometry(matrix, shape)


@pytest.mark.parametrize("axes", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("flips", list(itertools.product([False, True], repeat=3)))
def test_permutation_to_finds_every_axis_order_and_flip(
    oblique: Geometry, axes: tuple[int, int, int], flips: tuple[bool, bool, bool]
) -> None:
    """Issue 12: a grid equal to another up to axis order and directions is the same set
    of voxel centres; the permutation and flips say how to move the array exactly."""
    other = _reoriented(oblique, axes, flips)
    assert oblique.permutation_to(other) == (axes, flips)
    array = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    moved = np.flip(np.transpose(array, axes), [a for a in range(3) if flips[a]])
    # Every voxel of the moved array sits where it sat: same LPS centre.
    k, j, i = (n - 2 for n in moved.shape)
    value = moved[k, j, i]
    ko, jo, io = np.argwhere(array == value)[0]
    assert np.allclose(other.ijk_to_points([[i, j, k]]), oblique.ijk_to_points([[io, jo, ko]]))


def test_permutation_to_is_none_for_a_grid_that_is_not_the_same_voxels(
    oblique: Geometry,
) -> None:
    assert oblique.permutation_to(oblique) == ((0, 1, 2), (False, False, False))
    assert oblique.permutation_to(oblique.cropped((1, 0, 0), (3, 6, 5))) is None  # cropped
    assert oblique.permutation_to(oblique.cropped((0, 0, 0), (5, 6, 5))) is None  # padded
    shifted = oblique.ijk_to_lps.copy()
    shifted[:3, 3] += 0.5 * shifted[:3, 0]
    assert oblique.permutation_to(Geometry(shifted, SHAPE)) is None
    finer = Geometry.from_spacing(SHAPE, (0.35, 0.9, 2.5), ORIGIN, ROT)
    assert oblique.permutation_to(finer) is None
    turned = Geometry.from_spacing(SHAPE, SPACING, ORIGIN, rotation((1, 2, 3), 21.0))
    assert oblique.permutation_to(turned) is None


def test_permutation_to_tolerates_ds_rounding_but_not_a_drift(oblique: Geometry) -> None:
    """DICOM stores positions as 16-character decimals: 1e-5 mm off is the same grid; a
    spacing off by 1e-3 moves the last voxel of a long axis by a visible amount."""
    matrix = oblique.ijk_to_lps.copy()
    matrix[:3, 3] += 1e-5
    assert oblique.permutation_to(Geometry(matrix, SHAPE)) is not None
    long = oblique.cropped((0, 0, 0), (4, 6, 2000))
    drift = long.ijk_to_lps.copy()
    drift[:3, 0] *= 1.000001  # 2000 voxels x 0.7 mm x 1e-6: 0.0014 mm, 0.002 voxel
    assert long.permutation_to(Geometry(drift, long.shape)) is None


def test_index_map_places_a_flipped_crop_on_the_lattice(oblique: Geometry) -> None:
    other = _reoriented(oblique, (0, 1, 2), (False, False, True)).cropped((1, 2, 1), (2, 3, 9))
    mapping = oblique.index_map(other)
    assert mapping is not None
    assert mapping.axes == (0, 1, 2) and mapping.steps == (1, 1, -1)
    # other's voxel (k, j, i) = (0, 0, 0) is oblique's (1, 2, 4 - 1 = 3).
    assert mapping.starts == (1, 2, 3)
    assert np.allclose(other.ijk_to_points([[0, 0, 0]]), oblique.ijk_to_points([[3, 2, 1]]))


def test_grown_to_holds_every_point_on_the_same_lattice(oblique: Geometry) -> None:
    assert oblique.grown_to(oblique.ijk_to_points([[0, 0, 0], [4, 5, 3]])) is oblique
    points = oblique.ijk_to_points([[-2.2, 1, 1], [7.4, 1, 1], [1, 1, 3.6]])
    grown = oblique.grown_to(points)
    assert grown.offset_in(oblique) == (0, 0, -2)
    assert grown.shape == (5, 6, 10)  # i from -2 to 7, k to round(3.6) = 4
    with pytest.raises(segio.LimitError):
        oblique.grown_to(oblique.ijk_to_points([[1e12, 0, 0]]))


# -- comparison ---------------------------------------------------------------------------


def test_is_close_tolerance(oblique: Geometry) -> None:
    matrix = oblique.ijk_to_lps.copy()
    matrix[0, 3] += 1e-8
    near = Geometry(matrix, SHAPE)
    matrix[0, 3] += 1e-3
    far = Geometry(matrix, SHAPE)
    assert near.is_close(oblique)
    assert near != oblique
    assert not far.is_close(oblique)
    assert far.is_close(oblique, atol=1e-2)
    other_shape = Geometry(oblique.ijk_to_lps, (4, 6, 6))
    assert not other_shape.is_close(oblique, atol=1.0)


def test_equality_and_hash(oblique: Geometry) -> None:
    same = Geometry(oblique_matrix(), SHAPE)
    twin = Geometry(oblique.ijk_to_lps, SHAPE)
    assert twin == oblique
    assert hash(twin) == hash(oblique)
    assert len({oblique, twin}) == 1
    assert Geometry(oblique.ijk_to_lps, (4, 6, 6)) != oblique
    assert Geometry.from_spacing(SHAPE) != oblique
    assert oblique != "not a geometry"
    assert oblique.__eq__(object()) is NotImplemented
    # from_spacing may differ from the literal matrix by rounding; equality is exact.
    assert same.is_close(oblique)


def test_equal_geometries_have_equal_hashes_with_negative_zero() -> None:
    matrix = np.eye(4)
    negated = matrix.copy()
    negated[0, 3] = -0.0  # what a reader gets by negating a zero RAS origin
    a, b = Geometry(matrix, (2, 2, 2)), Geometry(negated, (2, 2, 2))
    assert a == b
    assert hash(a) == hash(b)


def test_repr_mentions_shape_spacing_and_origin(oblique: Geometry) -> None:
    text = repr(oblique)
    assert "(4, 6, 5)" in text
    assert "0.7" in text and "2.5" in text
    assert "-12.5" in text


# -- property test ------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, database=None)
@given(
    quaternion=st.tuples(*[st.floats(-1.0, 1.0)] * 4).filter(
        lambda q: sum(v * v for v in q) > 0.01
    ),
    spacing=st.tuples(*[st.floats(0.05, 10.0)] * 3),
    origin=st.tuples(*[st.floats(-1000.0, 1000.0)] * 3),
    ijk=st.lists(st.tuples(*[st.floats(-50.0, 600.0)] * 3), min_size=1, max_size=8),
    shape=st.tuples(*[st.integers(1, 600)] * 3),
)
def test_points_and_ras_round_trip(
    quaternion: tuple[float, float, float, float],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    ijk: list[tuple[float, float, float]],
    shape: tuple[int, int, int],
) -> None:
    w, x, y, z = np.asarray(quaternion) / np.linalg.norm(quaternion)
    direction = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    g = Geometry.from_spacing(shape, spacing, origin, direction)
    assert np.allclose(g.spacing, spacing, rtol=1e-9)
    indices = np.asarray(ijk, dtype=float)
    back = g.points_to_ijk(g.ijk_to_points(indices))
    assert np.allclose(back, indices, rtol=0.0, atol=1e-6)
    assert Geometry.from_ras(g.ijk_to_ras, g.shape).is_close(g)
