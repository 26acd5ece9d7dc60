"""Tests of ``segio.testing`` itself: the generator keeps its promises, the comparison bites.

Every conformance result rests on these two pieces. A generator that silently stopped making
holes, islands or overlaps would let lossy formats pass; a comparison that missed a voxel, a
colour bit or a 1 µm shift would hide the very losses segio exists to prevent. So the
comparison is tested here mostly for *failing* when it should.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from scipy import ndimage

from segio import Code, Geometry, Layer, Segmentation
from segio.testing.catalogue import segment_names
from segio.testing.compare import assert_same_segmentation
from segio.testing.conformance import conformance_cases
from segio.testing.synthetic import GRID_KINDS, grid, small_segmentation, synthetic_segmentation

FULL = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity: islands must not even touch diagonally


@pytest.fixture(scope="module")
def medium() -> Segmentation:
    """Big enough for cavities (a radius of 3 voxels or more) and islands."""
    return synthetic_segmentation((40, 64, 72), 12, seed=3)


@pytest.fixture(scope="module")
def overlapping() -> Segmentation:
    return synthetic_segmentation((30, 48, 56), 13, overlapping=True, seed=5)


def masks(segmentation: Segmentation) -> dict[str, np.ndarray]:
    return {key: segmentation.mask(key) for key in segmentation.segments}


# -- grids ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_grid_shapes_are_non_square(kind: str) -> None:
    geometry = grid(kind)
    assert len(set(geometry.shape)) == 3, "equal axis lengths would hide transpositions"
    assert geometry.is_orthogonal


def test_grid_kinds_have_their_traps() -> None:
    axial, oblique = grid("axial"), grid("oblique")
    anisotropic, flipped = grid("anisotropic"), grid("lps_flipped")
    np.testing.assert_array_equal(axial.direction, np.eye(3))
    np.testing.assert_allclose(axial.origin, (-100.0, -120.0, 50.0))

    assert oblique.shape == (7, 13, 11)
    np.testing.assert_allclose(oblique.spacing, (0.7, 0.9, 2.5))
    off_diagonal = oblique.direction[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off_diagonal) > 0.05), "every axis must be tilted towards every other"
    assert not np.allclose(oblique.origin, np.round(oblique.origin))

    np.testing.assert_allclose(anisotropic.spacing, (0.4, 0.6, 3.0))
    np.testing.assert_array_equal(anisotropic.direction, np.eye(3))
    np.testing.assert_allclose(flipped.direction, np.diag([-1.0, -1.0, 1.0]))


def test_grid_takes_a_shape_and_rejects_unknown_kinds() -> None:
    assert grid("oblique", (3, 4, 5)).shape == (3, 4, 5)
    with pytest.raises(ValueError, match="unknown grid kind"):
        grid("sagittal")


# -- what a synthetic segmentation promises -------------------------------------------------------


def test_segments_names_ids_and_labels(medium: Segmentation) -> None:
    segments = list(medium.segments.values())
    assert len(segments) == 12
    names = [s.name for s in segments]
    assert names[:3] == ["liver", "kidney_left", "spleen"]
    assert len(set(names)) == len(names)
    assert [s.id for s in segments] == [f"Segment_{n}" for n in range(1, 13)]
    assert [s.label_value for s in segments] == list(range(1, 13))
    assert len(medium.layers) == 1
    assert medium.layers[0].array.dtype == np.uint8
    assert all(count > 0 for count in medium.voxel_counts().values())
    medium.validate()


def test_many_names_follow_totalsegmentator_style() -> None:
    names = segment_names(110)
    assert len(set(names)) == 110
    assert "rib_left_1" in names and "vertebrae_L5" in names
    assert names[-1] == "structure_110"


def test_colours_are_distinct_full_precision(medium: Segmentation) -> None:
    colors = [s.color for s in medium.segments.values()]
    assert len(set(colors)) == len(colors)
    channels = np.array(colors)
    assert np.all((channels >= 0.0) & (channels <= 1.0))
    on_255_grid = np.abs(channels * 255 - np.round(channels * 255)) < 1e-6
    assert not np.any(on_255_grid), "a colour survives 8-bit storage only by accident"


def test_terminology_and_properties(medium: Segmentation) -> None:
    terms = [s.terminology for s in medium.segments.values()]
    assert all(t is not None for t in terms)
    codes = [code for t in terms if t is not None for code in t.codes()]
    assert {c.scheme for c in codes} == {"SCT"}
    assert any(t is not None and t.type_modifier == Code("SCT", "7771000", "Left") for t in terms)
    assert any(t is not None and t.region and t.region_modifier for t in terms)
    assert terms[0] is not None and terms[0].type.value == "10200004"  # liver

    statuses = [s.properties.get("Segmentation.Status") for s in medium.segments.values()]
    assert "completed" in statuses and None in statuses

    bare = synthetic_segmentation((20, 24, 28), 4, terminology=False)
    assert all(s.terminology is None for s in bare.segments.values())


def test_some_segments_are_hollow(medium: Segmentation) -> None:
    cavities = {
        key: int(ndimage.binary_fill_holes(mask).sum() - mask.sum())
        for key, mask in masks(medium).items()
    }
    assert sum(1 for voxels in cavities.values() if voxels > 0) >= 2, cavities


def test_some_segments_are_islands_and_segments_never_touch(medium: Segmentation) -> None:
    components = {key: ndimage.label(mask, FULL)[1] for key, mask in masks(medium).items()}
    assert max(components.values()) >= 2, components
    assert sorted(components.values()).count(1) >= 6, "most segments should be one blob"
    labels = medium.layers[0].array
    for key, mask in masks(medium).items():
        ring = ndimage.binary_dilation(mask, FULL) & ~mask
        assert not np.any(labels[ring]), f"{key} touches another segment"


def test_segments_touch_the_border(medium: Segmentation) -> None:
    extents = medium.extents()
    first, last = extents["Segment_1"], extents["Segment_12"]
    assert first is not None and first[2][0] == 0, "the first segment is cut by the i = 0 face"
    assert last is not None and last[0][1] == medium.layers[0].array.shape[0] - 1


def test_empty_segments() -> None:
    seg = synthetic_segmentation((20, 30, 26), 7, empty_segments=3)
    counts = seg.voxel_counts()
    assert sorted(counts.values()).count(0) == 3
    assert counts["Segment_1"] > 0
    assert len({s.label_value for s in seg.segments.values()}) == 7
    seg.validate()


def test_overlapping_segments_need_extra_layers(overlapping: Segmentation) -> None:
    overlapping.validate()
    assert overlapping.overlaps()
    assert len(overlapping.layers) == 3
    assert all(count > 0 for count in overlapping.voxel_counts().values())
    layers = [s.layer for s in overlapping.segments.values()]
    assert layers != sorted(layers), "layers should interleave in segment order"
    # Packing cannot merge what really overlaps.
    assert len(overlapping.pack_layers().layers) == 3


def test_reproducible_from_the_seed() -> None:
    a = synthetic_segmentation((20, 30, 26), 6, overlapping=True, seed=11)
    b = synthetic_segmentation((20, 30, 26), 6, overlapping=True, seed=11)
    assert_same_segmentation(a, b, check_layers=True)
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.array, lb.array)
    c = synthetic_segmentation((20, 30, 26), 6, overlapping=True, seed=12)
    with pytest.raises(AssertionError):
        assert_same_segmentation(a, c)


def test_unicode_names() -> None:
    names = segment_names(30, unicode_names=True)
    assert len(set(names)) == 30
    assert all(not name.isascii() or " " in name for name in names)
    assert not any(c in name for name in names for c in "|~^\n\r")
    assert any(ord(c) > 0xFFFF for name in names for c in name), "a 4-byte emoji"
    seg = synthetic_segmentation((16, 20, 24), 5, unicode_names=True)
    assert [s.name for s in seg.segments.values()] == names[:5]


def test_dtypes() -> None:
    assert synthetic_segmentation((16, 20, 24), 3, dtype=np.uint16).layers[0].array.dtype == (
        np.uint16
    )
    many = synthetic_segmentation((24, 96, 104), 300)
    assert many.layers[0].array.dtype == np.uint16
    assert int(many.layers[0].array.max()) == 300
    with pytest.raises(ValueError, match="integer"):
        synthetic_segmentation((16, 20, 24), 3, dtype=np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        synthetic_segmentation((16, 20, 24), 300, dtype=np.uint8)


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="empty_segments"):
        synthetic_segmentation((16, 20, 24), 2, empty_segments=3)
    with pytest.raises(ValueError, match="at least two"):
        synthetic_segmentation((16, 20, 24), 1, overlapping=True)
    with pytest.raises(ValueError, match="differs"):
        synthetic_segmentation((4, 5, 6), 2, geometry=grid("axial"))
    with pytest.raises(ValueError, match="no room"):
        synthetic_segmentation((3, 3, 3), 20)


def test_small_segmentation() -> None:
    seg = small_segmentation()
    assert seg.geometry is not None and seg.geometry.shape == (7, 13, 11)
    assert len(seg.segments) == 5
    assert all(count > 0 for count in seg.voxel_counts().values())
    with_empty = small_segmentation(empty_segment=True)
    assert sorted(with_empty.voxel_counts().values()).count(0) == 1


def test_conformance_cases_each_have_their_difficulty() -> None:
    cases = {name: build() for name, build in conformance_cases()}
    assert list(cases) == [
        "axial",
        "oblique",
        "anisotropic",
        "lps_flipped",
        "overlapping",
        "empty_segment",
        "unicode_names",
        "single_segment",
        "uint16_labels",
    ]
    for seg in cases.values():
        seg.validate()
    assert cases["oblique"].geometry == grid("oblique")
    assert cases["lps_flipped"].geometry == grid("lps_flipped")
    assert cases["overlapping"].overlaps()
    assert list(cases["empty_segment"].voxel_counts().values()).count(0) == 1
    assert not all(s.name.isascii() for s in cases["unicode_names"].segments.values())
    assert len(cases["single_segment"].segments) == 1
    uint16 = cases["uint16_labels"]
    assert uint16.layers[0].array.dtype == np.uint16
    assert min(s.label_value for s in uint16.segments.values()) > 255
    assert max(s.label_value for s in uint16.segments.values()) == 65535
    assert_same_segmentation(uint16, small_segmentation("axial"))  # same voxels, other labels


@pytest.mark.slow
@pytest.mark.parametrize(("n_segments", "budget_s"), [(24, 3.0), (104, 6.0)])
def test_full_size_generation_is_fast(n_segments: int, budget_s: float) -> None:
    start = time.perf_counter()
    seg = synthetic_segmentation((200, 512, 512), n_segments)
    elapsed = time.perf_counter() - start
    assert elapsed < budget_s, f"{n_segments} segments took {elapsed:.2f} s"
    assert len(seg.segments) == n_segments
    assert all(count > 0 for count in seg.voxel_counts().values())


# -- assert_same_segmentation -----------------------------------------------------------------


@pytest.fixture
def pair() -> tuple[Segmentation, Segmentation]:
    seg = small_segmentation("oblique")
    return seg, seg.copy()


def test_identical_segmentations_pass(pair: tuple[Segmentation, Segmentation]) -> None:
    assert_same_segmentation(*pair, check_layers=True)


def unpacked(seg: Segmentation, offset: int = 7) -> Segmentation:
    """Every segment in a layer of its own, with a different label value: same voxels."""
    geometry = seg.require_geometry()
    segments, layers = [], []
    for index, segment in enumerate(seg.segments.values()):
        label = index + offset
        array = np.where(seg.mask(segment.id), label, 0).astype(np.uint16)
        layers.append(Layer(array, geometry))
        segments.append(dataclasses.replace(segment, layer=index, label_value=label))
    return Segmentation(segments, layers)


def test_packing_and_label_values_do_not_matter(overlapping: Segmentation) -> None:
    other = unpacked(overlapping)
    assert len(other.layers) == len(overlapping.segments)
    assert_same_segmentation(overlapping, other)
    with pytest.raises(AssertionError, match="layer/label"):
        assert_same_segmentation(overlapping, other, check_layers=True)


def test_one_voxel_difference_is_caught(pair: tuple[Segmentation, Segmentation]) -> None:
    a, b = pair
    segment = b.segments["Segment_3"]
    voxels = np.argwhere(b.mask(segment.id))
    k, j, i = voxels[len(voxels) // 2]
    b.layers[0].array[k, j, i] = 0
    with pytest.raises(AssertionError) as info:
        assert_same_segmentation(a, b)
    message = str(info.value)
    assert "'spleen'" in message and "1 voxel(s) differ (1 only in a, 0 only in b" in message
    assert f"k, j, i = {k}, {j}, {i}" in message
    assert "Segment_1" not in message, "only the changed segment is reported"


def test_voxel_moved_between_segments_blames_both(pair: tuple[Segmentation, Segmentation]) -> None:
    a, b = pair
    k, j, i = np.argwhere(b.mask("Segment_2"))[0]
    b.layers[0].array[k, j, i] = b.segments["Segment_4"].label_value
    with pytest.raises(AssertionError) as info:
        assert_same_segmentation(a, b)
    message = str(info.value)
    assert "segment 1 ('kidney_left'" in message and "segment 3 ('kidney_left_mass'" in message
    assert "(0 only in a, 1 only in b" in message


def test_one_voxel_difference_across_layers_is_caught(overlapping: Segmentation) -> None:
    other = unpacked(overlapping)
    last = list(other.segments.values())[-1]
    array = other.layers[last.layer].array
    array[np.unravel_index(int(np.argmin(array)), array.shape)] = last.label_value
    with pytest.raises(AssertionError, match=r"1 voxel\(s\) differ \(0 only in a, 1 only in b"):
        assert_same_segmentation(overlapping, other)


def test_colour_change_is_caught(pair: tuple[Segmentation, Segmentation]) -> None:
    a, b = pair
    r, g, bl = b.segments["Segment_2"].color
    b.segments["Segment_2"].color = (r, g, bl + 1e-9 if bl < 0.5 else bl - 1e-9)
    with pytest.raises(AssertionError, match=r"segment 1 .* colour"):
        assert_same_segmentation(a, b)
    assert_same_segmentation(a, b, color_atol=1e-6)


def test_name_change_is_caught(pair: tuple[Segmentation, Segmentation]) -> None:
    a, b = pair
    b.segments["Segment_1"].name = "Liver"
    with pytest.raises(AssertionError, match="name 'liver' != 'Liver'"):
        assert_same_segmentation(a, b)
    assert_same_segmentation(a, b, check_names=False)


def test_terminology_change_is_caught(pair: tuple[Segmentation, Segmentation]) -> None:
    a, b = pair
    segment = b.segments["Segment_1"]
    original = segment.terminology
    assert original is not None
    segment.terminology = dataclasses.replace(original, type=Code("SCT", "78961009", "Spleen"))
    with pytest.raises(AssertionError, match=r"terminology .*10200004.* != .*78961009"):
        assert_same_segmentation(a, b)

    segment.terminology = dataclasses.replace(original, type=Code("SCT", "10200004", "Hepar"))
    with pytest.raises(AssertionError, match="type meaning 'Liver' != 'Hepar'"):
        assert_same_segmentation(a, b)

    segment.terminology = None
    with pytest.raises(AssertionError, match="!= none"):
        assert_same_segmentation(a, b)
    assert_same_segmentation(a, b, check_terminology=False)

    # The superseded "Anatomical Structure" code names the same concept: not a difference.
    category = Code("SCT", "91723000", "Anatomical Structure")
    segment.terminology = dataclasses.replace(original, category=category)
    assert_same_segmentation(a, b)


def test_property_and_id_changes_are_caught(pair: tuple[Segmentation, Segmentation]) -> None:
    a, b = pair
    b.segments["Segment_1"].properties["Segmentation.Status"] = "inprogress"
    with pytest.raises(AssertionError, match="'completed' != 'inprogress'"):
        assert_same_segmentation(a, b)
    assert_same_segmentation(a, b, check_properties=False)

    renamed = [dataclasses.replace(s, id=f"other_{n}") for n, s in enumerate(a.segments.values())]
    c = Segmentation(renamed, a.layers)
    with pytest.raises(AssertionError, match="id 'Segment_1' != 'other_0'"):
        assert_same_segmentation(a, c)
    assert_same_segmentation(a, c, check_ids=False)


def shifted(seg: Segmentation, offset_mm: float) -> Segmentation:
    geometry = seg.require_geometry()
    matrix = geometry.ijk_to_lps.copy()
    matrix[0, 3] += offset_mm
    moved = Geometry(matrix, geometry.shape)
    return Segmentation(
        list(seg.copy().segments.values()), [Layer(layer.array, moved) for layer in seg.layers]
    )


def test_geometry_shift_is_caught(pair: tuple[Segmentation, Segmentation]) -> None:
    a, _ = pair
    with pytest.raises(AssertionError, match=r"geometry differs by up to 0.001 mm"):
        assert_same_segmentation(a, shifted(a, 1e-3))
    assert_same_segmentation(a, shifted(a, 1e-7))
    assert_same_segmentation(a, shifted(a, 1e-3), atol_mm=1e-2)


def test_other_shape_is_reported_without_comparing_voxels() -> None:
    a = small_segmentation("axial")
    b = synthetic_segmentation(n_segments=5, geometry=grid("axial", (12, 20, 24)))
    with pytest.raises(AssertionError, match=r"grid shape \(k, j, i\) \(12, 24, 20\)"):
        assert_same_segmentation(a, b)


def test_segment_count_and_order(pair: tuple[Segmentation, Segmentation]) -> None:
    a, b = pair
    fewer = Segmentation(list(b.segments.values())[:-1], b.layers)
    with pytest.raises(AssertionError, match="5 segments vs 4"):
        assert_same_segmentation(a, fewer)
    swapped = list(b.segments.values())
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(AssertionError, match="id 'Segment_1' != 'Segment_2'"):
        assert_same_segmentation(a, Segmentation(swapped, b.layers))


def test_every_problem_is_listed(pair: tuple[Segmentation, Segmentation]) -> None:
    a, b = pair
    b.segments["Segment_1"].name = "changed"
    b.segments["Segment_5"].color = (0.0, 0.0, 0.0)
    with pytest.raises(AssertionError) as info:
        assert_same_segmentation(a, b)
    assert "segment 0" in str(info.value) and "segment 4" in str(info.value)
