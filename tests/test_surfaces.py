"""Closed surfaces <-> labelmaps (``segio.converters.labelmap_to_surface`` and
``surface_to_labelmap``), checked with trimesh.

The 24-segment case is ``synthetic_segmentation``'s default set (holes, islands, one
segment cut by the i = 0 face, one by the k = K-1 face), both on a smaller grid and at the
full 512 x 512 x 200 size; the full size runs in CI on purpose (not marked slow), because
the 24-segment case must be tested at the size the issue gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import segio
from segio.analysis.overlap import dice
from segio.converters import to_representation
from segio.converters.labelmap_to_surface import to_closed_surface
from segio.converters.surface_to_labelmap import (
    FRACTION_SAMPLES,
    automatic_grid,
    rasterize,
    refined,
    to_fractional,
    to_labelmap,
)
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.surfaces import Surface
from segio.testing.synthetic import grid, synthetic_segmentation

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("vtk")

CI_SHAPE = (60, 128, 112)


def _with(segmentation: Segmentation, **parameters: str) -> Segmentation:
    """A copy with conversion parameters set (keyword names use _ for spaces)."""
    result = segmentation.copy()
    for name, value in parameters.items():
        result.conversion_parameters.set(name.replace("_", " "), value)
    return result


def _mesh(surface: Surface) -> trimesh.Trimesh:
    return trimesh.Trimesh(surface.vertices, surface.faces, process=False)


def _closed_and_outward(surface: Surface) -> bool:
    """trimesh's strict test: manifold, watertight, consistently wound, positive volume."""
    mesh = _mesh(surface)
    return bool(mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0)


def _closed_oriented(surface: Surface) -> bool:
    """Closed and consistently wound, also where voxels touch along an edge only (there
    surface nets puts four faces on one edge): every directed edge, by vertex position, is
    matched by the reverse edge as often."""
    _, ids = np.unique(surface.vertices, axis=0, return_inverse=True)
    faces = ids.reshape(-1)[surface.faces]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    forward, count_f = np.unique(edges, axis=0, return_counts=True)
    backward, count_b = np.unique(edges[:, ::-1], axis=0, return_counts=True)
    return bool(
        np.array_equal(forward, backward)
        and np.array_equal(count_f, count_b)
        and surface.volume() > 0
    )


def _volume_errors(segmentation: Segmentation, surfaces: Segmentation) -> dict[str, float]:
    """Relative difference between each surface's volume and its voxel volume."""
    voxel = segmentation.require_geometry().voxel_volume
    counts = segmentation.voxel_counts()
    return {
        key: surfaces.surfaces[key].volume() / (count * voxel) - 1.0
        for key, count in counts.items()
        if count
    }


def _dices(a: Segmentation, b: Segmentation) -> list[float]:
    return [dice(a.mask(key), b.mask(key)) for key in a.segments]


def _voxel_centroid(segmentation: Segmentation, key: str) -> NDArray[np.float64]:
    ijk = np.argwhere(segmentation.mask(key))[:, ::-1].astype(np.float64)
    return np.asarray(segmentation.require_geometry().ijk_to_points(ijk).mean(axis=0))


@pytest.fixture(scope="module")
def case24() -> Segmentation:
    return synthetic_segmentation(CI_SHAPE, n_segments=24)


def _border_segments(segmentation: Segmentation) -> list[str]:
    """Segments with voxels on the faces of the image."""
    extents = segmentation.extents()
    shape = segmentation.require_geometry().shape
    return [
        key
        for key, extent in extents.items()
        if extent is not None
        and any(lo == 0 or hi == n - 1 for (lo, hi), n in zip(extent, shape, strict=True))
    ]


def _check_24(segmentation: Segmentation, smoothing: str, volume: float, mean: float) -> None:
    source = _with(segmentation, Smoothing_factor=smoothing)
    surfaces = to_closed_surface(source)
    assert surfaces.source_representation is Representation.CLOSED_SURFACE
    assert not surfaces.layers
    bad = [k for k, s in surfaces.surfaces.items() if not _closed_and_outward(s)]
    assert not bad, f"not watertight, consistently wound and outward: {bad}"
    errors = _volume_errors(source, surfaces)
    worst = max(errors, key=lambda k: abs(errors[k]))
    assert abs(errors[worst]) <= volume, f"{worst}: volume off by {errors[worst]:.2%}"
    assert len(_border_segments(source)) >= 2  # the border-cut segments are in `errors`
    back = to_labelmap(surfaces)
    assert back.require_geometry().is_close(source.require_geometry())
    scores = _dices(source, back)
    assert np.mean(scores) >= mean, f"mean Dice {np.mean(scores):.4f}"


@pytest.mark.parametrize(("smoothing", "volume", "mean"), [("0.5", 0.04, 0.97), ("0", 0.02, 0.99)])
def test_24_segments_closed_volume_and_round_trip(
    case24: Segmentation, smoothing: str, volume: float, mean: float
) -> None:
    _check_24(case24, smoothing, volume, mean)


@pytest.mark.parametrize(("smoothing", "volume", "mean"), [("0.5", 0.04, 0.97), ("0", 0.02, 0.99)])
def test_24_segments_full_size(smoothing: str, volume: float, mean: float) -> None:
    _check_24(synthetic_segmentation(n_segments=24), smoothing, volume, mean)


def test_segments_metadata_and_parameters_are_kept(case24: Segmentation) -> None:
    source = _with(case24, Decimation_factor="0.1")
    surfaces = to_closed_surface(source)
    assert surfaces.reference_geometry == source.geometry
    assert surfaces.conversion_parameters.value("Decimation factor") == "0.1"
    for a, b in zip(source.segments.values(), surfaces.segments.values(), strict=True):
        assert (a.id, a.name, a.color, a.properties) == (b.id, b.name, b.color, b.properties)
        assert b.terminology == a.terminology
    assert Representation.BINARY_LABELMAP in surfaces.contained_representations
    back = to_labelmap(surfaces)
    assert [s.name for s in back.segments.values()] == [s.name for s in source.segments.values()]


def test_surfaces_match_slicer_smoothing_parameters() -> None:
    from segio.converters.labelmap_to_surface import SurfaceSettings

    settings = SurfaceSettings.from_parameters(segio.ConversionParameters.slicer_defaults())
    assert (settings.pass_band, settings.iterations) == (pytest.approx(0.01), 40)
    assert settings.smooths and settings.normals and not settings.joint
    params = segio.ConversionParameters.slicer_defaults()
    params.set("Smoothing factor", "-0.5")  # Slicer's "off" (the sign is the switch)
    assert not SurfaceSettings.from_parameters(params).smooths
    params.set("Smoothing factor", "1")
    assert SurfaceSettings.from_parameters(params).nets_iterations == 24


@pytest.mark.parametrize("kind", ["oblique", "anisotropic", "lps_flipped"])
def test_grids_give_the_axial_result_in_their_own_space(kind: str) -> None:
    shape = (24, 40, 36)
    axial = synthetic_segmentation(n_segments=6, geometry=grid("axial", shape))
    other = synthetic_segmentation(n_segments=6, geometry=grid(kind, shape))
    np.testing.assert_array_equal(axial.layers[0].array, other.layers[0].array)
    a, b = to_closed_surface(axial), to_closed_surface(other)
    flat_b = to_closed_surface(_with(other, Smoothing_factor="0"))
    for key in axial.segments:
        sa, sb = a.surfaces[key], b.surfaces[key]
        # Same triangles in index space: the grid's matrix is applied exactly once.
        np.testing.assert_allclose(
            axial.require_geometry().points_to_ijk(sa.vertices),
            other.require_geometry().points_to_ijk(sb.vertices),
            atol=1e-4,
        )
        assert _closed_and_outward(sb)
        assert sb.volume() / sa.volume() == pytest.approx(
            other.require_geometry().voxel_volume / axial.require_geometry().voxel_volume,
            rel=1e-6,
        )
        # In LPS, where the voxels are: the centroids agree within a fraction of a voxel
        # (smoothing, done in index space as Slicer does, moves small segments a little).
        spacing = float(other.require_geometry().spacing.min())
        offset = _mesh(sb).center_mass - _voxel_centroid(other, key)
        assert np.linalg.norm(offset) < 0.5 * spacing
        flat = flat_b.surfaces[key]
        offset = _mesh(flat).center_mass - _voxel_centroid(other, key)
        assert np.linalg.norm(offset) < 0.15 * spacing
        assert sb.normals is not None
    assert _dices(other, to_labelmap(b)) == pytest.approx(_dices(axial, to_labelmap(a)))


def test_normals_are_unit_outward_and_optional(case24: Segmentation) -> None:
    surfaces = to_closed_surface(case24)
    surface = surfaces.surfaces["Segment_1"]
    assert surface.normals is not None
    np.testing.assert_allclose(np.linalg.norm(surface.normals, axis=1), 1.0, atol=1e-5)
    reference = _mesh(surface).vertex_normals
    assert float(np.mean(np.sum(reference * surface.normals, axis=1))) > 0.99
    plain = to_closed_surface(_with(case24, Compute_surface_normals="0"))
    assert all(s.normals is None for s in plain.surfaces.values())


def test_decimation_reduces_triangles(case24: Segmentation) -> None:
    full = to_closed_surface(case24)
    half = to_closed_surface(_with(case24, Decimation_factor="0.5"))
    for key in ("Segment_1", "Segment_5", "Segment_12"):
        assert len(half.surfaces[key].faces) < 0.6 * len(full.surfaces[key].faces)
        assert _closed_and_outward(half.surfaces[key])


def test_surface_nets_builds_every_segment_in_one_pass(case24: Segmentation) -> None:
    flat = to_closed_surface(_with(case24, Conversion_method="1", Smoothing_factor="0"))
    # Unsmoothed surface nets encloses exactly the voxels' volume.
    errors = _volume_errors(case24, flat)
    assert max(abs(e) for e in errors.values()) < 1e-9
    smooth = to_closed_surface(_with(case24, Conversion_method="1"))
    assert all(_closed_oriented(s) for s in smooth.surfaces.values())
    assert max(abs(e) for e in _volume_errors(case24, smooth).values()) < 0.04
    assert np.mean(_dices(case24, to_labelmap(smooth))) >= 0.97
    joint = _with(case24, Conversion_method="1", Joint_smoothing="1", Decimation_factor="0.3")
    decimated = to_closed_surface(joint)
    assert all(_closed_oriented(s) for s in decimated.surfaces.values())
    assert sum(len(s.faces) for s in decimated.surfaces.values()) < 0.8 * sum(
        len(s.faces) for s in smooth.surfaces.values()
    )
    own = to_closed_surface(_with(case24, Conversion_method="1", SurfaceNets_smoothing="1"))
    assert all(_mesh(s).is_winding_consistent and s.volume() > 0 for s in own.surfaces.values())
    moved = [
        not np.array_equal(own.surfaces[k].vertices, flat.surfaces[k].vertices) for k in errors
    ]
    assert all(moved)


def _touching() -> Segmentation:
    """Two boxes sharing a face, plus one alone in a corner."""
    geometry = grid("oblique", (12, 14, 16))
    labels = np.zeros(geometry.shape, np.uint8)
    labels[2:9, 3:10, 2:7] = 1
    labels[2:9, 3:10, 7:13] = 2
    labels[8:12, 0:4, 0:4] = 3  # cut by three faces of the image
    segments = [Segment(f"s{n}", f"s{n}", label_value=n) for n in (1, 2, 3)]
    return Segmentation(segments, [Layer(labels, geometry)])


def test_joint_smoothing_with_surface_nets_shares_the_boundary() -> None:
    source = _touching()
    joint = to_closed_surface(_with(source, Conversion_method="1", Joint_smoothing="1"))
    separate = to_closed_surface(_with(source, Conversion_method="1"))

    def shared(result: Segmentation) -> int:
        a = {tuple(p) for p in result.surfaces["s1"].vertices}
        b = {tuple(p) for p in result.surfaces["s2"].vertices}
        return len(a & b)

    # Joint smoothing moves the common vertices together; separate smoothing pulls apart.
    assert shared(joint) >= 40
    assert shared(separate) < shared(joint)
    assert all(_closed_oriented(s) for s in joint.surfaces.values())


def test_joint_smoothing_with_flying_edges_matches_separate(case24: Segmentation) -> None:
    joint = to_closed_surface(_with(case24, Joint_smoothing="1"))
    separate = to_closed_surface(case24)
    for key, surface in joint.surfaces.items():
        assert _closed_and_outward(surface)
        # VTK gives each label its own points, so the meshes only differ by rounding.
        assert surface.volume() == pytest.approx(separate.surfaces[key].volume(), rel=1e-3)


def test_empty_segments_get_empty_surfaces_and_stay() -> None:
    source = synthetic_segmentation((20, 30, 30), n_segments=5, empty_segments=2)
    empty = [key for key, count in source.voxel_counts().items() if count == 0]
    assert len(empty) == 2
    surfaces = to_closed_surface(source)
    assert all(surfaces.surfaces[key].is_empty for key in empty)
    back = to_labelmap(surfaces)
    assert list(back.segments) == list(source.segments)
    assert all(not back.mask(key).any() for key in empty)
    assert min(_dices(source, back)) >= 0.9
    fractional = to_fractional(surfaces)
    assert all(not fractional.mask(key).any() for key in empty)
    assert len(fractional.layers) == len(source.segments)


def test_overlapping_segments_go_to_layers() -> None:
    source = synthetic_segmentation(CI_SHAPE, n_segments=12, overlapping=True)
    assert source.overlaps()
    back = to_labelmap(to_closed_surface(_with(source, Smoothing_factor="0")))
    assert len(back.layers) >= 2 and back.overlaps()
    assert min(_dices(source, back)) == 1.0
    flat = to_closed_surface(_with(source, Smoothing_factor="0", Collapse_labelmaps="0"))
    apart = to_labelmap(flat)
    assert len(apart.layers) == len(source.segments)
    assert [s.layer for s in apart.segments.values()] == list(range(len(source.segments)))
    assert min(_dices(source, apart)) == 1.0


def test_fractional_path_both_ways() -> None:
    source = _touching()
    flat = to_closed_surface(source)
    fractional = to_fractional(flat)
    assert fractional.source_representation is Representation.FRACTIONAL_LABELMAP
    assert all(layer.max_fraction == FRACTION_SAMPLES**3 for layer in fractional.layers)
    binary = to_labelmap(flat)
    voxel = fractional.require_geometry().voxel_volume
    for key, segment in fractional.segments.items():
        layer = fractional.layers[segment.layer]
        inside = layer.array.astype(np.float64).sum() / FRACTION_SAMPLES**3 * voxel
        assert inside == pytest.approx(flat.surfaces[key].volume(), rel=0.02)
        # At least half inside versus centre inside: the same surface, sampled two ways.
        assert dice(fractional.mask(key), binary.mask(key)) >= 0.95
    # Fractional -> surface goes through the binary labelmap (threshold 0.5).
    again = to_closed_surface(fractional)
    assert all(_closed_and_outward(s) for s in again.surfaces.values())
    finer = to_fractional(_with(flat, Fractional_labelmap_oversampling_factor="2"))
    assert finer.require_geometry().shape == tuple(2 * n for n in source.geometry.shape)


def test_automatic_grid_without_reference(case24: Segmentation) -> None:
    surfaces = to_closed_surface(_with(case24, Smoothing_factor="0"))
    surfaces.reference_geometry = None
    surfaces.conversion_parameters.set("Surface rasterization spacing", "0.5")
    back = to_labelmap(surfaces)
    geometry = back.require_geometry()
    np.testing.assert_allclose(geometry.spacing, 0.5)
    np.testing.assert_allclose(geometry.direction, np.eye(3))
    for key in ("Segment_1", "Segment_9"):
        volume = float(back.mask(key).sum()) * geometry.voxel_volume
        assert volume == pytest.approx(surfaces.surfaces[key].volume(), rel=0.03)
    surfaces.conversion_parameters.set("Surface rasterization spacing", "40")
    with pytest.warns(UserWarning, match="enclose no voxel centre"):
        to_labelmap(surfaces)
    with pytest.raises(segio.GeometryError, match="empty"):
        automatic_grid([Surface(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))], 1.0)


def test_reference_grid_grows_unless_cropped() -> None:
    source = _touching()
    surfaces = to_closed_surface(_with(source, Smoothing_factor="0"))
    small = source.require_geometry().cropped((3, 3, 3), (5, 6, 7))
    surfaces.reference_geometry = small
    grown = to_labelmap(surfaces)
    assert grown.require_geometry().is_close(source.require_geometry()) is False
    assert small.offset_in(grown.require_geometry()) is not None
    assert min(_dices(source, _resampled(grown, source.require_geometry()))) == 1.0
    surfaces.conversion_parameters.set("Crop to reference image geometry", "1")
    with pytest.warns(UserWarning, match=r"came out empty: s3"):  # s3 is outside `small`
        cropped = to_labelmap(surfaces)
    assert cropped.require_geometry() == small
    assert cropped.mask("s1").any() and not cropped.mask("s3").any()


def _resampled(segmentation: Segmentation, geometry: Geometry) -> Segmentation:
    from segio.converters.resample import resample

    return resample(segmentation, geometry)


def test_oversampling_uses_the_sub_voxel_majority(case24: Segmentation) -> None:
    surfaces = to_closed_surface(case24)
    plain = to_labelmap(surfaces)
    twice = to_labelmap(_with(surfaces, Oversampling_factor="2"))
    assert twice.require_geometry() == plain.require_geometry()
    assert np.mean(_dices(case24, twice)) >= 0.97
    assert any(not np.array_equal(plain.mask(k), twice.mask(k)) for k in case24.segments)
    thrice = to_labelmap(_with(surfaces, Oversampling_factor="3"))
    assert np.mean(_dices(twice, thrice)) >= 0.99
    fine = refined(case24.require_geometry(), 2)
    # Corners stay: the first fine voxel centre is a quarter voxel inside the coarse one.
    expected = case24.require_geometry().ijk_to_points([[-0.25, -0.25, -0.25]])[0]
    np.testing.assert_allclose(fine.origin, expected)
    for bad in ("A", "1.5", "0"):
        with pytest.raises(segio.ValidationError, match="Oversampling factor"):
            to_labelmap(_with(surfaces, Oversampling_factor=bad))


def test_rasterize_samples_voxel_centres() -> None:
    geometry = Geometry.from_spacing((6, 6, 6))
    # A cube from 0.5 to 3.5 (index space = mm here): centres 1, 2, 3 are inside.
    corners = np.array([[x, y, z] for z in (0.5, 3.5) for y in (0.5, 3.5) for x in (0.5, 3.5)])
    cube = trimesh.convex.convex_hull(corners)
    mask = rasterize(Surface(cube.vertices, cube.faces), geometry)
    expected = np.zeros((6, 6, 6), bool)
    expected[1:4, 1:4, 1:4] = True
    np.testing.assert_array_equal(mask, expected)


def test_bad_input_is_refused(case24: Segmentation) -> None:
    with pytest.raises(segio.ValidationError, match="Conversion method"):
        to_closed_surface(_with(case24, Conversion_method="2"))
    with pytest.raises(segio.ValidationError, match="Decimation factor"):
        to_closed_surface(_with(case24, Decimation_factor="1.5"))
    with pytest.raises(segio.ValidationError, match="closed-surface"):
        to_labelmap(case24)


def test_converter_chain_both_ways(case24: Segmentation) -> None:
    surfaces = to_representation(case24, [Representation.CLOSED_SURFACE])
    assert surfaces.source_representation is Representation.CLOSED_SURFACE
    back = to_representation(surfaces, [Representation.BINARY_LABELMAP])
    assert np.mean(_dices(case24, back)) >= 0.97
    fractional = to_representation(surfaces, [Representation.FRACTIONAL_LABELMAP])
    assert fractional.source_representation is Representation.FRACTIONAL_LABELMAP


def test_converters_are_declared_with_slicer_costs() -> None:
    from segio.registry import default_registry

    registry = default_registry()
    binary, surface = Representation.BINARY_LABELMAP, Representation.CLOSED_SURFACE
    (forward,) = registry.conversion_path(binary, surface)
    (backward,) = registry.conversion_path(surface, binary)
    assert (forward.cost, backward.cost) == (500, 500)
    assert forward.requires == ("vtk",) and forward.extra == "mesh"
    assert forward.install == "pip install 'segio[mesh]'"  # from the core's distribution
    assert backward.function == "segio.converters.surface_to_labelmap:to_labelmap"


@pytest.mark.parametrize("method", ["0", "1"])
def test_mirrored_grid_keeps_outward_winding(method: str) -> None:
    # A left-handed grid (negative determinant) turns index-space winding inside out.
    mirrored = Geometry.from_spacing((16, 20, 18), (0.8, 0.8, 2.0), (5.0, -3.0, 40.0))
    mirrored = Geometry(mirrored.ijk_to_lps @ np.diag([1.0, 1.0, -1.0, 1.0]), mirrored.shape)
    assert np.linalg.det(mirrored.ijk_to_lps[:3, :3]) < 0
    source = synthetic_segmentation(n_segments=4, geometry=mirrored)
    surfaces = to_closed_surface(_with(source, Conversion_method=method, Smoothing_factor="0"))
    for key, surface in surfaces.surfaces.items():
        assert _closed_oriented(surface) and _mesh(surface).is_winding_consistent
        assert surface.normals is not None
        assert float(np.sum(surface.normals * _mesh(surface).vertex_normals)) > 0
        offset = _mesh(surface).center_mass - _voxel_centroid(source, key)
        assert np.linalg.norm(offset) < 0.15 * float(mirrored.spacing.min())
    assert min(_dices(source, to_labelmap(surfaces))) == 1.0


def test_threads_do_not_change_the_result(case24: Segmentation) -> None:
    serial = to_closed_surface(case24, threads=1)
    parallel = to_closed_surface(case24, threads=3)
    for key, surface in serial.surfaces.items():
        np.testing.assert_array_equal(surface.vertices, parallel.surfaces[key].vertices)
        np.testing.assert_array_equal(surface.faces, parallel.surfaces[key].faces)
    back_serial = to_labelmap(serial, threads=1)
    back_parallel = to_labelmap(serial, threads=3)
    for key in case24.segments:
        np.testing.assert_array_equal(back_serial.mask(key), back_parallel.mask(key))


# -- hostile meshes: grids sized by coordinates (issue 11, item 3) -----------------------


def _tetrahedron(offset: float = 0.0, far: float | None = None) -> Surface:
    """A small closed tetrahedron; ``far`` moves one vertex that far along every axis."""
    vertices = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float) + offset
    if far is not None:
        vertices[3] = far
    return Surface(vertices, [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def _surfaces(*surfaces: Surface, source: str = "far.stl") -> Segmentation:
    segments = [Segment(id=f"s{n}", name=f"s{n}") for n in range(len(surfaces))]
    return Segmentation(
        segments,
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={f"s{n}": s for n, s in enumerate(surfaces)},
        provenance={"source_path": source},
    )


@pytest.mark.parametrize("far", [1e5, -1e5, 1e300])
def test_a_far_vertex_does_not_size_the_automatic_grid(
    far: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    segmentation = _surfaces(_tetrahedron(far=far))
    for convert in (to_labelmap, to_fractional):
        with pytest.raises(segio.LimitError, match=r"far\.stl: the labelmap grid") as caught:
            convert(segmentation)
        assert "SEGIO_MAX_MEMORY" in str(caught.value) and "\n" not in str(caught.value)


def test_a_far_vertex_does_not_grow_a_reference_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    segmentation = _surfaces(_tetrahedron(), _tetrahedron(far=1e5))
    reference = Geometry.from_spacing((20, 20, 20))
    with pytest.raises(segio.LimitError, match="grown to hold the surfaces"):
        to_labelmap(segmentation, reference)
    cropped = _with(segmentation, Crop_to_reference_image_geometry="1")
    result = to_labelmap(cropped, reference)  # cropped: the far vertex only clips
    assert result.require_geometry().shape == (20, 20, 20)
    assert result.mask("s0").any()


def test_one_layer_per_segment_counts_in_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """50 segments on a 400³ grid: 3.2 GB as separate layers, 64 MB collapsed."""
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    reference = Geometry.from_spacing((400, 400, 400))
    segmentation = _surfaces(*[_tetrahedron(offset=n) for n in range(50)])
    with pytest.raises(segio.LimitError, match=r"3\.2 GB"):
        to_fractional(segmentation, reference)
    with pytest.raises(segio.LimitError, match=r"3\.2 GB"):
        to_labelmap(_with(segmentation, Collapse_labelmaps="0"), reference)


def test_converting_a_mesh_with_a_far_vertex_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    mesh = segio.write(_surfaces(_tetrahedron(far=1e5)), tmp_path / "far.stl")[0]
    with pytest.raises(segio.LimitError) as caught:
        segio.convert(mesh, tmp_path / "out.seg.nrrd")
    assert str(caught.value).startswith(str(mesh)), caught.value
    assert not list(tmp_path.glob("out*"))


# -- open surfaces (issue 12, item 7) ---------------------------------------------------------


def _cube(size: float = 3.0) -> Surface:
    box = trimesh.creation.box(extents=(size, size, size))
    return Surface(box.vertices, box.faces)


def _open_cube() -> Surface:
    """The cube without its two +z triangles: a box without a lid (4 boundary edges)."""
    cube = _cube()
    top = np.all(cube.vertices[cube.faces][:, :, 2] > 0, axis=1)
    return Surface(cube.vertices, cube.faces[~top])


def test_an_open_surface_says_so_and_has_no_volume() -> None:
    cube = _cube()
    assert cube.is_closed and cube.boundary_edges == 0
    assert cube.volume() == pytest.approx(27.0)
    # Wound inside out the cube still encloses 27 mm³: no negative volume.
    assert Surface(cube.vertices, cube.faces[:, ::-1]).volume() == pytest.approx(27.0)
    lid_off = _open_cube()
    assert not lid_off.is_closed and lid_off.boundary_edges == 4
    with pytest.raises(segio.ValidationError, match=r"open \(4 boundary edges\)"):
        lid_off.volume()
    # Closed, but one triangle turned over: the divergence sum means nothing.
    faces = cube.faces.copy()
    faces[0] = faces[0, ::-1]
    flipped = Surface(cube.vertices, faces)
    assert flipped.is_closed
    with pytest.raises(segio.ValidationError, match="not consistently wound"):
        flipped.volume()
    assert Surface(np.zeros((0, 3)), np.zeros((0, 3))).is_closed


def test_info_reports_an_open_surface_without_a_volume() -> None:
    from segio.analysis.summary import summarize

    segmentation = _surfaces_named(("Cube", _cube()), ("Sheet", _open_cube()))
    rows = {row["name"]: row for row in summarize(segmentation)["segments"]}
    assert rows["Cube"]["surface_closed"] is True
    assert rows["Cube"]["surface_volume_mm3"] == pytest.approx(27.0)
    assert rows["Sheet"]["surface_closed"] is False
    assert rows["Sheet"]["surface_volume_mm3"] is None


def _surfaces_named(*named: tuple[str, Surface]) -> Segmentation:
    return Segmentation(
        [Segment(f"s{n}", name) for n, (name, _) in enumerate(named)],
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={f"s{n}": surface for n, (_, surface) in enumerate(named)},
    )


def test_voxelising_an_open_surface_is_refused_naming_the_segment() -> None:
    segmentation = _surfaces_named(("Cube", _cube()), ("Sheet", _open_cube()))
    for convert in (to_labelmap, to_fractional):
        with pytest.raises(segio.ValidationError, match="'Sheet'") as caught:
            convert(segmentation)
        message = str(caught.value)
        assert "open" in message and "Cube" not in message and "\n" not in message


def test_converting_an_open_stl_names_the_file_and_segment_and_writes_nothing(
    tmp_path: Path,
) -> None:
    mesh = segio.write(_surfaces_named(("Sheet", _open_cube())), tmp_path / "lid.stl")[0]
    with pytest.raises(segio.ValidationError) as caught:
        segio.convert(mesh, tmp_path / "out.seg.nrrd")
    assert str(caught.value).startswith(str(mesh))
    assert "'lid_Sheet'" in str(caught.value) and "open" in str(caught.value)
    assert not list(tmp_path.glob("out*"))


def test_info_shows_an_open_mesh_as_open(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from segio.cli import cli

    mesh = segio.write(_surfaces_named(("Sheet", _open_cube())), tmp_path / "lid.stl")[0]
    result = CliRunner().invoke(cli, ["info", str(mesh)])
    assert result.exit_code == 0, result.output
    assert "10 triangles, open" in result.output
