"""``segio snapshot``: exact outline colours, the 3D view, orientation, aspect, options, errors.

Pictures are read back as pixels: each view's region comes from
:func:`segio.preview.snapshot.panel_boxes`, colours from :func:`segio.preview.slices.rgb8`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.typing import NDArray
from PIL import Image

import segio
from segio.cli import cli
from segio.errors import MissingDependencyError, ValidationError
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.preview import snapshot, snapshot_image
from segio.preview.render3d import _camera, render_surfaces
from segio.preview.slices import NEUTRAL, rgb8
from segio.preview.snapshot import _GAP, panel_boxes
from segio.surfaces import Surface
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, small_segmentation, synthetic_segmentation

SIZE = 192
RED, GREEN = (0.9, 0.1, 0.1), (0.1, 0.8, 0.2)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["snapshot", *args])
    return result.exit_code, result.stdout, result.stderr


def _pixels(picture: Image.Image | Path) -> NDArray[np.uint8]:
    if isinstance(picture, Path):
        with Image.open(picture) as image:
            assert image.format == "PNG"
            return np.asarray(image.convert("RGB"))
    return np.asarray(picture.convert("RGB"))


def _view(pixels: NDArray[np.uint8], name: str, size: int = SIZE) -> NDArray[np.uint8]:
    left, top, right, bottom = panel_boxes(size)[name]
    return pixels[top:bottom, left:right]


def _colours(pixels: NDArray[np.uint8]) -> set[tuple[int, int, int]]:
    flat = pixels.reshape(-1, 3)
    return {tuple(int(v) for v in c) for c in np.unique(flat, axis=0)}


def _where(pixels: NDArray[np.uint8], color: tuple[float, float, float]) -> NDArray[np.bool_]:
    return np.asarray(np.all(pixels == np.array(rgb8(color), dtype=np.uint8), axis=2))


def _spheres(
    geometry: Geometry, centres: list[tuple[float, float, float]], radius: float
) -> Segmentation:
    """Spheres at LPS offsets from the grid's centre, one segment each (red, green, ...)."""
    k, j, i = geometry.shape
    index = np.stack(np.meshgrid(np.arange(i), np.arange(j), np.arange(k), indexing="ij"), -1)
    points = geometry.ijk_to_points(index.reshape(-1, 3)).reshape(i, j, k, 3).transpose(2, 1, 0, 3)
    corners = geometry.ijk_to_points([[0, 0, 0], [i - 1, j - 1, k - 1]])
    middle = corners.mean(axis=0)
    labels = np.zeros(geometry.shape, dtype=np.uint8)
    segments = []
    for n, offset in enumerate(centres, start=1):
        inside = np.linalg.norm(points - (middle + offset), axis=-1) <= radius
        labels[inside] = n
        color = (RED, GREEN, (0.2, 0.3, 0.95))[n - 1]
        segments.append(Segment(id=f"s{n}", name=f"sphere {n}", color=color, label_value=n))
    return Segmentation(segments, [Layer(labels, geometry)])


@pytest.fixture(scope="module")
def many() -> Segmentation:
    return synthetic_segmentation(shape=(24, 48, 56), n_segments=24)


@pytest.fixture(scope="module")
def many_picture(many: Segmentation) -> NDArray[np.uint8]:
    return _pixels(snapshot_image(many, size=SIZE))


def test_every_segment_colour_is_drawn_exactly(
    many: Segmentation, many_picture: NDArray[np.uint8]
) -> None:
    views = _colours(np.concatenate([_view(many_picture, n) for n in panel_boxes(SIZE)]))
    missing = [s.name for s in many.segments.values() if rgb8(s.color) not in views]
    assert not missing, f"colours not in the views: {missing}"


def test_slice_outlines_are_exact_and_one_pixel_thin(
    many: Segmentation, many_picture: NDArray[np.uint8]
) -> None:
    """Exact colour on the boundary only; inside, a blend of colour and background."""
    axial = _view(many_picture, "axial")
    outlined = 0
    for segment in many.segments.values():
        edge = _where(axial, segment.color)
        if not edge.any():
            continue
        outlined += 1
        padded = np.pad(edge, 1)
        interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        assert not (edge & interior).any(), f"{segment.name}: a filled region, not an outline"
    assert outlined >= 8


def test_3d_view_is_not_blank(many: Segmentation, many_picture: NDArray[np.uint8]) -> None:
    view = _view(many_picture, "3d")
    drawn = np.any(view != 0, axis=2).mean()
    assert 0.1 < drawn < 0.9
    assert len(_colours(view)) > 200  # shaded, not flat
    silhouettes = sum(rgb8(s.color) in _colours(view) for s in many.segments.values())
    assert silhouettes == len(many.segments)


def test_runs_without_a_display(tmp_path: Path) -> None:
    source = segio.write(small_segmentation("oblique"), tmp_path / "s.seg.nrrd")[0]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        [sys.executable, "-m", "segio", "snapshot", str(source), "-o", str(tmp_path / "s.png")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert _pixels(tmp_path / "s.png").any()


@pytest.mark.parametrize("kind", ["oblique", "lps_flipped", "anisotropic"])
def test_radiological_orientation(kind: str) -> None:
    """A sphere left, anterior and superior of the centre: image right and top on the
    axial and coronal views, image left (anterior) and top on the sagittal view."""
    geometry = grid(kind, (16, 60, 56) if kind == "anisotropic" else (16, 40, 48))
    segmentation = _spheres(geometry, [(6.0, -6.0, 7.0)], 4.0)
    pixels = _pixels(snapshot_image(segmentation, position="sphere 1", size=SIZE))
    for name, right, top in (
        ("axial", True, True),
        ("coronal", True, True),
        ("sagittal", False, True),
    ):
        rows, columns = np.nonzero(_where(_view(pixels, name), RED))
        assert len(rows), name
        # The grid's centre is near the panel's centre (the panel covers the grid).
        assert (columns.mean() > SIZE / 2) == right, name
        assert (rows.mean() < SIZE / 2) == top, name


def test_aspect_follows_the_spacing() -> None:
    """A sphere on 0.4 x 0.6 x 3 mm voxels is round on all three views."""
    geometry = grid("anisotropic", (12, 50, 70))
    segmentation = _spheres(geometry, [(0.0, 0.0, 0.0)], 8.0)
    pixels = _pixels(snapshot_image(segmentation, size=SIZE))
    for name in ("axial", "coronal", "sagittal"):
        rows, columns = np.nonzero(_where(_view(pixels, name), RED))
        ratio = (np.ptp(rows) + 1) / (np.ptp(columns) + 1)
        assert 0.75 < ratio < 1.3, (name, ratio)


def test_oblique_grid_is_cut_along_patient_planes() -> None:
    """On a rotated grid the axial view still shows a sphere round and the grid as a
    tilted polygon (its neutral grey does not fill the panel's box)."""
    geometry = grid("oblique", (16, 40, 48))
    pixels = _pixels(snapshot_image(_spheres(geometry, [(0.0, 0.0, 0.0)], 7.0), size=SIZE))
    axial = _view(pixels, "axial")
    rows, columns = np.nonzero(_where(axial, RED))
    assert 0.75 < (np.ptp(rows) + 1) / (np.ptp(columns) + 1) < 1.3
    grey_rows, grey_columns = np.nonzero(np.all(axial == NEUTRAL, axis=2))
    box = (np.ptp(grey_rows) + 1) * (np.ptp(grey_columns) + 1)
    assert len(grey_rows) < 0.9 * box


def test_segment_subset_shows_only_those(tmp_path: Path, many: Segmentation) -> None:
    source = segio.write(many, tmp_path / "m.seg.nrrd")[0]
    names = [s.name for s in many.segments.values()]
    code, _, err = _run(str(source), "-o", str(tmp_path / "s.png"), "-s", names[2], "-s", names[5])
    assert code == 0, err
    pixels = _pixels(tmp_path / "s.png")
    everywhere = _colours(pixels)
    for segment in many.segments.values():
        assert (rgb8(segment.color) in everywhere) == (segment.name in names[2:6:3]), segment.name


@pytest.mark.parametrize("size", [64, 150, 400])
def test_size_sets_the_views(size: int, tmp_path: Path) -> None:
    source = segio.write(small_segmentation("axial"), tmp_path / "s.seg.nrrd")[0]
    code, _, err = _run(str(source), "-o", str(tmp_path / "s.png"), "--size", str(size))
    assert code == 0, err
    height, width, _ = _pixels(tmp_path / "s.png").shape
    assert height == 2 * size + 3 * _GAP
    assert width > 2 * size + 3 * _GAP


def test_position_moves_the_slices(tmp_path: Path) -> None:
    geometry = grid("axial", (40, 40, 40))
    segmentation = _spheres(geometry, [(-8.0, 0.0, -8.0), (8.0, 0.0, 8.0)], 4.0)
    middle = geometry.ijk_to_points([[19.5, 19.5, 19.5]])[0]
    low = np.add(middle, [0.0, 0.0, -8.0]).tolist()
    pixels = _pixels(snapshot_image(segmentation, position=low))
    axial = _view(pixels, "axial", 320)
    assert _where(axial, RED).any() and not _where(axial, GREEN).any()
    source = segio.write(segmentation, tmp_path / "s.seg.nrrd")[0]
    code, _, err = _run(str(source), "-o", str(tmp_path / "s.png"), "-p", "sphere 2")
    assert code == 0, err
    axial = _view(_pixels(tmp_path / "s.png"), "axial", 320)
    assert _where(axial, GREEN).any() and not _where(axial, RED).any()


def test_reference_series_under_the_outlines(tmp_path: Path) -> None:
    segmentation = small_segmentation("oblique")
    source = segio.write(segmentation, tmp_path / "s.seg.nrrd")[0]
    series = reference_series(segmentation.require_geometry(), tmp_path / "ct")
    code, _, err = _run(str(source), "-o", str(tmp_path / "s.png"), "-r", str(series))
    assert code == 0, err
    pixels = _pixels(tmp_path / "s.png")
    axial = _view(pixels, "axial", 320)
    assert np.all(axial == 2 * NEUTRAL, axis=2).any()  # a flat image: mid grey
    assert np.all(axial[:, 2] == 0)  # black outside the image (the grid is tilted)
    views = _colours(np.concatenate([_view(pixels, n, 320) for n in panel_boxes(320)]))
    for segment in segmentation.segments.values():
        assert rgb8(segment.color) in views, segment.name


def test_reference_values_are_windowed() -> None:
    """Values rising towards the patient's left grow brighter to the image right; an
    explicit window maps its ends to black and white."""
    geometry = grid("axial", (20, 30, 40))
    segmentation = _spheres(geometry, [(0.0, 0.0, 0.0)], 3.0)
    values = np.broadcast_to(np.arange(40, dtype=np.float32) * 10, geometry.shape).copy()
    axial = _view(_pixels(snapshot_image(segmentation, reference=(values, geometry))), "axial", 320)
    row = axial[40, :, 0].astype(int)
    inside = row[row > 0]
    assert inside[-1] > inside[0] + 200 and np.all(np.diff(inside) >= 0)
    windowed = snapshot_image(segmentation, reference=(values, geometry), window=(100.0, 200.0))
    row = _view(_pixels(windowed), "axial", 320)[40, :, 0].astype(int)
    assert row.max() == 255 and (row[(row > 0) & (row < 255)]).size < 0.4 * (row > 0).sum()


def test_surface_source_is_rasterised() -> None:
    from segio.testing.synthetic import surface_segmentation

    segmentation = surface_segmentation()
    pixels = _pixels(snapshot_image(segmentation, size=128))
    views = _colours(np.concatenate([_view(pixels, n, 128) for n in panel_boxes(128)]))
    for segment in segmentation.segments.values():
        assert rgb8(segment.color) in views, segment.name


def test_nearer_surface_hides_the_farther() -> None:
    """Two spheres one behind the other along the camera's axis: the front one's colour
    fills the middle of the view."""
    camera = _camera()
    sphere = _unit_sphere()
    front = Surface(sphere.vertices * 10, sphere.faces)
    back = Surface(sphere.vertices * 12 + camera[2] * 40, sphere.faces)
    for order in ((front, back), (back, front)):
        colors = [(200, 0, 0), (0, 0, 200)] if order[0] is front else [(0, 0, 200), (200, 0, 0)]
        image = render_surfaces(list(order), colors, 101)
        centre = image[45:56, 45:56].reshape(-1, 3)
        assert np.all(centre[:, 0] > 0) and np.all(centre[:, 2] == 0)


def _unit_sphere() -> Surface:
    from segio.testing.synthetic import _sphere

    return _sphere(np.zeros(3), np.ones(3), np.eye(3), rings=16)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "1000,0,0"], "outside the image"),
        (["-p", "1,2"], "is not three numbers"),
        (["-p", "nope"], "'nope'"),
        (["-s", "nope"], "'nope'"),
        (["--size", "10"], "outside 64..4096"),
        (["--window", "5,1"], "LOW must be below HIGH"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    source = segio.write(small_segmentation("axial"), tmp_path / "s.seg.nrrd")[0]
    code, _, err = _run(str(source), "-o", str(tmp_path / "s.png"), *args)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("segio: error:") and message in err
    assert not (tmp_path / "s.png").exists()


def test_output_errors(tmp_path: Path) -> None:
    source = segio.write(small_segmentation("axial"), tmp_path / "s.seg.nrrd")[0]
    code, _, err = _run(str(source), "-o", str(tmp_path / "missing" / "s.png"))
    assert code == 1 and "output folder does not exist" in err and err.count("\n") == 1
    target = tmp_path / "s.png"
    target.write_bytes(b"old")
    code, _, err = _run(str(source), "-o", str(target))
    assert code == 1 and "exists" in err and target.read_bytes() == b"old"
    code, _, err = _run(str(source), "-o", str(target), "--force")
    assert code == 0, err
    assert _pixels(target).any()


def test_empty_segment_as_position_is_refused() -> None:
    segmentation = small_segmentation("axial", empty_segment=True)
    empty = next(k for k, n in segmentation.voxel_counts().items() if n == 0)
    with pytest.raises(ValidationError, match="is empty"):
        snapshot_image(segmentation, position=empty)


def test_missing_pillow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(MissingDependencyError, match=r"segio\[preview\]"):
        snapshot(small_segmentation("axial"), tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()


def test_fractional_layer_is_outlined_where_half_inside() -> None:
    """A fractional segment shows where at least half of a voxel is inside (Slicer's
    threshold): the outline covers the 200-valued box, not the 100-valued rim."""
    from segio.representations import Representation

    geometry = grid("axial", (20, 30, 40))
    fractions = np.zeros(geometry.shape, dtype=np.uint8)
    fractions[2:18, 4:26, 5:35] = 100
    fractions[5:15, 10:20, 10:30] = 200
    segment = Segment(id="f", name="fractional", color=RED)
    segmentation = Segmentation(
        [segment],
        [Layer(fractions, geometry, max_fraction=255)],
        source_representation=Representation.FRACTIONAL_LABELMAP,
    )
    axial = _view(_pixels(snapshot_image(segmentation, size=SIZE)), "axial")
    rows, columns = np.nonzero(_where(axial, RED))
    # 20 x 10 mm of a 40 x 30 mm image fitted into SIZE pixels: 4.8 pixels per mm.
    scale = SIZE / 40
    assert abs((np.ptp(columns) + 1) - 20 * scale) <= 2
    assert abs((np.ptp(rows) + 1) - 10 * scale) <= 2


def test_only_empty_segments_still_draw() -> None:
    segmentation = small_segmentation("axial", empty_segment=True)
    empty = [k for k, n in segmentation.voxel_counts().items() if n == 0]
    pixels = _pixels(snapshot_image(segmentation, segments=empty, size=96))
    assert not np.any(_view(pixels, "3d", 96)[24:])  # below its title: black, nothing to render
    assert pixels.shape[0] == 2 * 96 + 3 * _GAP


def test_culling_the_back_faces_changes_no_pixel(many: Segmentation) -> None:
    """Closed surfaces wound outwards: skipping the faces turned away from the eye gives
    the same picture (with the wrong sign, the far sides would be lit instead)."""
    from segio.representations import Representation

    surfaces = many.representation(Representation.CLOSED_SURFACE).surfaces
    meshes = [surfaces[key] for key in many.segments]
    colors = [rgb8(s.color) for s in many.segments.values()]
    whole = render_surfaces(meshes, colors, 160)
    culled = render_surfaces(meshes, colors, 160, cull=True)
    assert np.any(whole)
    assert np.count_nonzero(np.any(whole != culled, axis=2)) <= 2  # ties at shared edges
