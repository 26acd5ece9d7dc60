"""Representation conversion (fractional -> binary, chosen by the writer) and resampling."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import segio
from segio.converters import to_representation
from segio.converters.contours_to_labelmap import to_labelmap
from segio.converters.labelmap_to_contours import to_contours
from segio.converters.resample import onto_grid, resample, voxels_outside
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.testing.synthetic import grid, small_segmentation

FRACTIONAL = Representation.FRACTIONAL_LABELMAP
BINARY = Representation.BINARY_LABELMAP


def _fractional() -> Segmentation:
    geometry = grid("oblique")
    a = np.zeros(geometry.shape, np.uint8)
    a[1:4, 2:6, 2:6] = 255
    a[2, 3, 3] = 100  # below half: outside
    b = np.zeros(geometry.shape, np.uint8)
    b[3:5, 4:8, 4:8] = 128  # half: inside; overlaps a at k=3
    return Segmentation(
        [Segment("a", "a", layer=0), Segment("b", "b", layer=1, color=(0.1, 0.2, 0.3))],
        [Layer(a, geometry, max_fraction=255), Layer(b, geometry, max_fraction=255)],
        source_representation=FRACTIONAL,
    )


def test_fractional_layers_validate() -> None:
    geometry = grid("axial")
    with pytest.raises(segio.ValidationError, match="maximum"):
        Layer(np.zeros(geometry.shape, np.uint8), geometry, max_fraction=300)
    with pytest.raises(segio.ValidationError, match="is fractional but"):
        Segmentation(
            [Segment("a", "a")],
            [Layer(np.zeros(geometry.shape, np.uint8), geometry, max_fraction=255)],
        )
    with pytest.raises(segio.ValidationError, match="more than one segment"):
        Segmentation(
            [Segment("a", "a"), Segment("b", "b", label_value=2)],
            [Layer(np.zeros(geometry.shape, np.uint8), geometry, max_fraction=255)],
            source_representation=FRACTIONAL,
        )


def test_fractional_mask_counts_voxels_at_least_half_inside() -> None:
    segmentation = _fractional()
    assert segmentation.voxel_counts() == {"a": 3 * 4 * 4 - 1, "b": 2 * 4 * 4}
    assert segmentation.overlaps()
    with pytest.raises(segio.ValidationError, match="cannot be packed"):
        segmentation.pack_layers()


def test_to_binary_thresholds_and_packs() -> None:
    segmentation = _fractional()
    binary = to_representation(segmentation, [BINARY])
    assert binary.source_representation is BINARY
    assert FRACTIONAL in binary.contained_representations
    assert len(binary.layers) == 2  # a and b overlap at k=3
    for key in ("a", "b"):
        assert np.array_equal(binary.mask(key), segmentation.mask(key))
    assert binary.segments["b"].color == (0.1, 0.2, 0.3)
    assert to_representation(binary, [BINARY]) is binary


def test_writer_converts_a_source_it_cannot_store(tmp_path: Path) -> None:
    segmentation = _fractional()
    back = segio.read(segio.write(segmentation, tmp_path / "f.seg.nrrd")[0])
    assert back.source_representation is BINARY
    assert back.voxel_counts() == segmentation.voxel_counts()


def test_resample_onto_an_aligned_grid_is_exact_cropping_and_padding() -> None:
    segmentation = small_segmentation(kind="oblique")
    source = segmentation.require_geometry()
    bigger = source.cropped((-2, -1, -3), (source.shape[0] + 4, source.shape[1] + 2, 20))
    moved = resample(segmentation, bigger)
    assert moved.require_geometry() == bigger
    assert moved.voxel_counts() == segmentation.voxel_counts()
    back = resample(moved, source)
    for key in segmentation.segments:
        assert np.array_equal(back.mask(key), segmentation.mask(key))


def test_resample_nearest_neighbour_on_a_finer_grid() -> None:
    coarse = Geometry.from_spacing((2, 2, 2), (2.0, 2.0, 2.0))
    segmentation = Segmentation()
    mask = np.zeros((2, 2, 2), bool)
    mask[1, 0, 1] = True
    segmentation.add_mask(mask, "v", geometry=coarse)
    fine = Geometry.from_spacing((4, 4, 4), (1.0, 1.0, 1.0), origin=(-0.5, -0.5, -0.5))
    result = resample(segmentation, fine)
    expected = np.zeros((4, 4, 4), bool)
    expected[2:4, 0:2, 2:4] = True  # one coarse voxel = 2x2x2 fine voxels
    assert np.array_equal(result.mask("v"), expected)
    assert result.segments["v"].label_value == 1


def test_resample_onto_a_huge_grid_is_refused_before_allocating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reference grid read from a file may be as large as it claims: 3 layers of a
    2000 x 2000 x 1000 grid need 12 GB, refused under a 256 MiB limit."""
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    segmentation = small_segmentation(kind="oblique", overlapping=True)
    segmentation.provenance["source_path"] = "scan.seg.nrrd"
    assert len(segmentation.layers) == 3
    huge = segmentation.require_geometry().cropped((0, 0, 0), (1000, 2000, 2000))
    with pytest.raises(
        segio.LimitError, match=r"scan\.seg\.nrrd: the labelmap resampled .* would need 12\.0 GB"
    ):
        resample(segmentation, huge)


# -- issue 12: the reference grid is the grid ------------------------------------------------


def test_resample_onto_a_transposed_and_reversed_grid_moves_voxels_by_index() -> None:
    """Rows and columns swapped, columns reversed: every voxel keeps its place in space."""
    segmentation = small_segmentation(kind="oblique")
    source = segmentation.require_geometry()
    matrix = np.eye(4)
    matrix[:3, 0] = source.ijk_to_lps[:3, 1]  # new i runs along old j
    matrix[:3, 1] = -source.ijk_to_lps[:3, 0]  # new j runs backwards along old i
    matrix[:3, 2] = source.ijk_to_lps[:3, 2]
    k, j, i = 0, 0, source.shape[2] - 1
    matrix[:3, 3] = source.ijk_to_points([[i, j, k]])[0]
    target = Geometry(matrix, (source.shape[0], source.shape[2], source.shape[1]))
    assert source.permutation_to(target) == ((0, 2, 1), (False, True, False))
    moved = resample(segmentation, target)
    expected = np.flip(np.transpose(segmentation.layers[0].array, (0, 2, 1)), 1)
    assert np.array_equal(moved.layers[0].array, expected)
    assert moved.voxel_counts() == segmentation.voxel_counts()


def test_voxels_outside_counts_what_a_crop_loses_per_segment() -> None:
    segmentation = small_segmentation(kind="oblique", overlapping=True)
    source = segmentation.require_geometry()
    crop = source.cropped((2, -3, 4), (4, 20, 5))
    lost = voxels_outside(segmentation, crop)
    kept = resample(segmentation, crop).voxel_counts()
    before = segmentation.voxel_counts()
    assert lost == {key: before[key] - kept[key] for key in before}
    assert any(lost.values()) and not all(lost[k] == before[k] for k in before)
    assert voxels_outside(segmentation, source.cropped((-1, -1, -1), (9, 15, 13))) == dict.fromkeys(
        before, 0
    )


def test_onto_grid_warns_per_segment_only_for_what_it_loses() -> None:
    segmentation = small_segmentation(kind="oblique")
    source = segmentation.require_geometry()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a padded grid on the same lattice: nothing to say
        onto_grid(segmentation, source.cropped((-1, 0, -2), (9, 13, 15)))
    crop = source.cropped((2, 0, 0), (5, 13, 11))
    lost = voxels_outside(segmentation, crop)
    counts = segmentation.voxel_counts()
    with pytest.warns(UserWarning, match="voxels outside it are lost") as caught:
        onto_grid(segmentation, crop, what="the test grid")
    text = str(caught[0].message)
    for key, n in lost.items():
        name = segmentation.segments[key].name
        assert (f"{name!r} {n} of {counts[key]}" in text) == bool(n)


def test_contours_go_onto_a_given_grid_as_a_direct_rasterisation() -> None:
    """to_representation with a geometry rasterises there, not on a grid of its own."""
    contours = to_contours(small_segmentation(kind="oblique"))
    contours.reference_geometry = None  # as an RTSTRUCT of another tool: no grid stated
    target = _finer_oblique()
    direct = to_labelmap(contours, target)
    converted = to_representation(contours, [BINARY], geometry=target)
    assert converted.require_geometry() == target
    for key in contours.segments:
        assert np.array_equal(converted.mask(key), direct.mask(key))


def _finer_oblique() -> Geometry:
    """The oblique test grid's orientation and slices, finer non-square pixels in-plane."""
    base = grid("oblique")
    matrix = base.ijk_to_lps.copy()
    matrix[:3, 0] *= 0.45 / 0.7
    matrix[:3, 1] *= 0.55 / 0.9
    matrix[:3, 3] -= 0.3 * base.ijk_to_lps[:3, 0] + 0.2 * base.ijk_to_lps[:3, 1]
    return Geometry(matrix, (base.shape[0], 23, 19))
