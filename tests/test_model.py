"""The canonical model: segments, layers, segmentations, packing and statistics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from segio.colors import color_for_index
from segio.contours import PlanarContours
from segio.errors import GeometryError, SegioError, ValidationError
from segio.geometry import Geometry
from segio.labels.packing import FirstFitPacker
from segio.labels.values import label_histogram
from segio.model import (
    Layer,
    Segment,
    Segmentation,
    SegmentMap,
    unique_id,
)
from segio.points import PointAnnotation
from segio.representations import ConversionParameters, Representation
from segio.surfaces import LPS_TO_RAS, Surface
from segio.terminology import DEFAULT_TISSUE

GRID = Geometry.from_spacing((2, 3, 4), (0.5, 0.5, 2.0), (10.0, -20.0, 5.0))
LINE = Geometry.from_spacing((1, 1, 10))


def layer(values: list[int], dtype: type = np.uint8) -> Layer:
    """A layer on LINE (1 x 1 x 10) from up to ten values."""
    array = np.zeros(10, dtype=dtype)
    array[: len(values)] = values
    return Layer(array.reshape(1, 1, 10), LINE)


def seg(id_: str, layer: int = 0, label: int = 1, **kwargs: object) -> Segment:
    return Segment(id_, id_, layer=layer, label_value=label, **kwargs)  # type: ignore[arg-type]


def line_mask(*indices: int) -> np.ndarray:
    mask = np.zeros((1, 1, 10), dtype=bool)
    mask[0, 0, list(indices)] = True
    return mask


def signature(s: Segmentation) -> list[tuple[str, int, int]]:
    return [(x.id, x.layer, x.label_value) for x in s.segments.values()]


# -- Segment --------------------------------------------------------------------------------


def test_segment_defaults_and_normalisation() -> None:
    s = Segment("liver", "Liver", color=[1, 0, 0.25])  # type: ignore[arg-type]
    assert s.color == (1.0, 0.0, 0.25)
    assert isinstance(s.color, tuple)
    assert (s.layer, s.label_value) == (0, 1)
    assert s.terminology is None
    assert s.properties == {}
    t = Segment("x", "x", layer=np.int64(2), label_value=np.uint16(300), terminology=DEFAULT_TISSUE)
    assert (type(t.layer), type(t.label_value)) == (int, int)
    assert (t.layer, t.label_value) == (2, 300)
    assert Segment("a", "a").properties is not Segment("b", "b").properties


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"id": ""}, id="empty-id"),
        pytest.param({"id": 3}, id="int-id"),
        pytest.param({"name": None}, id="none-name"),
        pytest.param({"color": (1.01, 0.0, 0.0)}, id="colour-above-1"),
        pytest.param({"color": (0.0, -0.1, 0.0)}, id="colour-negative"),
        pytest.param({"color": (0.0, math.nan, 0.0)}, id="colour-nan"),
        pytest.param({"color": (0.0, 0.5)}, id="colour-two"),
        pytest.param({"color": (0.0, 0.5, 0.5, 1.0)}, id="colour-four"),
        pytest.param({"color": (255, 0, 0)}, id="colour-0-255"),
        pytest.param({"label_value": 0}, id="label-0"),
        pytest.param({"label_value": -2}, id="label-negative"),
        pytest.param({"label_value": 1.5}, id="label-fraction"),
        pytest.param({"layer": -1}, id="layer-negative"),
        pytest.param({"layer": 0.5}, id="layer-fraction"),
        pytest.param({"properties": {"Description": 3}}, id="property-int-value"),
        pytest.param({"properties": {1: "a"}}, id="property-int-key"),
        pytest.param({"properties": {"a": None}}, id="property-none"),
        pytest.param({"terminology": "SCT^85756007^Tissue"}, id="terminology-text"),
    ],
)
def test_segment_validation(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"id": "s", "name": "S"}
    fields.update(kwargs)
    with pytest.raises(ValidationError):
        Segment(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"color": ("r", "g", "b")}, id="colour-text"),
        pytest.param({"color": None}, id="colour-none"),
        pytest.param({"label_value": "x"}, id="label-text"),
        pytest.param({"layer": None}, id="layer-none"),
    ],
)
def test_segment_validation_of_non_numbers(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Segment("s", "S", **kwargs)  # type: ignore[arg-type]


def test_segment_revalidates_after_edit() -> None:
    s = Segment("s", "S")
    s.label_value = 0
    with pytest.raises(ValidationError, match="label value"):
        s.validate()


# -- Layer ----------------------------------------------------------------------------------


def test_layer_needs_an_integer_array_of_the_grid_shape() -> None:
    with pytest.raises(ValidationError, match="integer numpy array"):
        Layer(np.zeros(GRID.shape, np.float32), GRID)
    with pytest.raises(ValidationError, match="integer numpy array"):
        Layer(np.zeros(GRID.shape, bool), GRID)
    with pytest.raises(ValidationError, match="integer numpy array"):
        Layer([[[0]]], GRID)  # type: ignore[arg-type]
    with pytest.raises(GeometryError, match="differs from its geometry"):
        Layer(np.zeros((4, 3, 2), np.uint8), GRID)
    assert "uint8" in repr(Layer(np.zeros(GRID.shape, np.uint8), GRID))


# -- Segmentation validation ------------------------------------------------------------------


def test_empty_segmentation() -> None:
    s = Segmentation()
    assert s.geometry is None
    assert len(s.segments) == 0
    assert s.voxel_counts() == {}
    assert s.extents() == {}
    assert not s.overlaps()
    assert s.source_representation is Representation.BINARY_LABELMAP
    assert list(s.conversion_parameters) == list(ConversionParameters.slicer_defaults())
    with pytest.raises(ValidationError, match="no labelmap layer"):
        s.require_geometry()


def test_segmentation_copies_provenance_and_extras() -> None:
    provenance = {"format": "nrrd"}
    extras = {"nrrd": {"space": "left-posterior-superior"}}
    s = Segmentation(provenance=provenance, extras=extras)
    provenance["format"] = "changed"
    extras["nrrd"]["space"] = "changed"
    assert s.provenance == {"format": "nrrd"}
    assert s.extras == {"nrrd": {"space": "left-posterior-superior"}}


def test_same_label_in_different_layers_is_allowed() -> None:
    s = Segmentation([seg("a", 0, 1), seg("b", 1, 1)], [layer([1]), layer([1])])
    assert s.geometry == LINE
    assert s.require_geometry() == LINE
    assert [x.id for x in s.segments_in_layer(1)] == ["b"]


def test_two_segments_claiming_one_label() -> None:
    with pytest.raises(ValidationError, match="both claim label 2 of layer 0"):
        Segmentation([seg("a", 0, 2), seg("b", 0, 2)], [layer([2])])


def test_segment_in_a_missing_layer() -> None:
    with pytest.raises(ValidationError, match="layer 1, but the segmentation has 1 layer"):
        Segmentation([seg("a", 1, 1)], [layer([1])])
    with pytest.raises(ValidationError, match="has 0 layer"):
        Segmentation([seg("a")])


def test_label_must_fit_the_layer_dtype() -> None:
    with pytest.raises(ValidationError, match="does not fit the uint8"):
        Segmentation([seg("a", 0, 256)], [layer([0])])
    with pytest.raises(ValidationError, match="does not fit the int16"):
        Segmentation([seg("a", 0, 40000)], [layer([0], np.int16)])
    ok = Segmentation([seg("a", 0, 256)], [layer([256], np.uint16)])
    assert ok.voxel_counts() == {"a": 1}


def test_layers_on_different_grids() -> None:
    shifted = Geometry.from_spacing((1, 1, 10), origin=(0.0, 0.0, 0.5))
    with pytest.raises(GeometryError, match="layer 1 is on another grid"):
        Segmentation([], [layer([1]), Layer(np.zeros((1, 1, 10), np.uint8), shifted)])
    # Within the tolerance of Geometry.is_close, the grids are the same.
    nearly = Geometry.from_spacing((1, 1, 10), origin=(0.0, 0.0, 1e-9))
    Segmentation([], [layer([1]), Layer(np.zeros((1, 1, 10), np.uint8), nearly)])


def test_duplicate_ids() -> None:
    with pytest.raises(ValidationError, match="share the id 'a'"):
        Segmentation([seg("a", 0, 1), seg("a", 0, 2)], [layer([1, 2])])


def tetrahedron() -> Surface:
    return Surface(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]
    )


def test_surface_source_needs_one_surface_per_segment() -> None:
    closed = Representation.CLOSED_SURFACE
    segmentation = Segmentation(
        [Segment("a", "A", layer=0)], source_representation=closed, surfaces={"a": tetrahedron()}
    )
    assert segmentation.surfaces["a"].volume() == pytest.approx(1 / 6)
    with pytest.raises(ValidationError, match="segment 'b' has no closed surfaces"):
        Segmentation([Segment("b", "B")], source_representation=closed)
    with pytest.raises(ValidationError, match="unknown segment"):
        Segmentation(source_representation=closed, surfaces={"x": tetrahedron()})
    with pytest.raises(ValidationError, match="has no labelmap layers"):
        Segmentation([seg("a", 0, 1)], [layer([1])], source_representation=closed)
    with pytest.raises(ValidationError, match="kept only when they are the source"):
        Segmentation([seg("a", 0, 1)], [layer([1])], surfaces={"a": tetrahedron()})


def test_surface_checks_and_transforms() -> None:
    with pytest.raises(ValidationError, match=r"outside 0\.\.2"):
        Surface(np.zeros((3, 3)), [[0, 1, 3]])
    with pytest.raises(ValidationError, match="NaN"):
        Surface([[np.nan, 0, 0]], np.zeros((0, 3)))
    mirrored = tetrahedron().transformed(np.diag([-1.0, 1.0, 1.0, 1.0]))
    assert mirrored.volume() == pytest.approx(1 / 6)  # winding flipped with the handedness
    ras = tetrahedron().transformed(LPS_TO_RAS)
    assert ras.bounds.tolist() == [[-1, -1, 0], [0, 0, 1]]
    assert Surface(np.zeros((0, 3)), np.zeros((0, 3))).volume() == 0.0


@pytest.mark.parametrize(
    ("vertices", "faces", "match"),
    [
        (np.zeros(7), np.zeros((0, 3)), "multiples of 3"),
        (np.zeros((3, 3)), [0, 1, 2, 0], "multiples of 3"),
        (np.zeros((3, 3)), [[0.0, 1.5, 2.0]], "whole numbers"),
        (np.zeros((3, 3)), [[0.0, np.nan, 2.0]], "whole numbers"),
    ],
)
def test_surface_shapes_and_face_types(vertices: object, faces: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Surface(vertices, faces)  # type: ignore[arg-type]


def test_surface_accepts_whole_float_faces() -> None:
    surface = Surface(np.zeros((3, 3)), [[0.0, 1.0, 2.0]])
    assert surface.faces.dtype == np.int64 and surface.faces.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize(
    "matrix",
    [
        np.zeros((4, 4)),
        np.diag([1.0, 1.0, 0.0, 1.0]),
        np.array([[1.0, 2.0, 0, 0], [0.5, 1.0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),  # rank 2
    ],
)
def test_surface_transform_must_be_invertible(matrix: np.ndarray) -> None:
    with pytest.raises(ValidationError, match="singular"):
        tetrahedron().transformed(matrix)


def test_surface_transform_in_metres_is_not_singular() -> None:
    """mm -> m gives a determinant of 1e-9: small, but an invertible scale."""
    metres = tetrahedron().transformed(np.diag([1e-3, 1e-3, 1e-3, 1.0]))
    assert metres.volume() == pytest.approx(1e-9 / 6)


def test_validation_errors_are_segio_errors() -> None:
    assert issubclass(ValidationError, SegioError)
    assert issubclass(GeometryError, SegioError)


# -- SegmentMap -------------------------------------------------------------------------------


def test_segment_map_lookup() -> None:
    liver = Segment("s1", "Liver")
    spleen = Segment("s2", "Spleen", label_value=2)
    other = Segment("Liver", "Kidney", label_value=3)
    twin = Segment("s4", "Spleen", label_value=4)
    segments = SegmentMap([liver, spleen, other, twin])
    assert list(segments) == ["s1", "s2", "Liver", "s4"]
    assert len(segments) == 4
    assert segments["s1"] is liver
    assert segments["Kidney"] is other  # by unique name
    assert segments["Liver"] is other  # an id wins over a name
    with pytest.raises(KeyError, match="2 segments are named 'Spleen'"):
        segments["Spleen"]
    with pytest.raises(KeyError):
        segments["nothing"]
    assert "Kidney" in segments
    assert "Spleen" not in segments  # ambiguous
    assert 3 not in segments
    assert segments.get("nothing") is None
    assert "Liver" in repr(segments)


def test_segment_map_add_and_remove() -> None:
    segments = SegmentMap()
    segments.add(Segment("a", "Alpha"))
    with pytest.raises(ValidationError):
        segments.add(Segment("a", "Again"))
    assert segments.remove("Alpha").id == "a"
    assert len(segments) == 0
    with pytest.raises(KeyError):
        segments.remove("a")


# -- add_mask and mask ------------------------------------------------------------------------


def test_first_mask_needs_a_geometry() -> None:
    with pytest.raises(GeometryError, match="needs its geometry"):
        Segmentation().add_mask(line_mask(0), "a")


def test_add_mask_first_fit_layers_and_labels() -> None:
    s = Segmentation()
    a = s.add_mask(line_mask(0, 1), "Liver", geometry=LINE)
    assert (a.id, a.name, a.layer, a.label_value) == ("Liver", "Liver", 0, 1)
    assert a.color == color_for_index(0)
    assert s.layers[0].array.dtype == np.uint8
    b = s.add_mask(line_mask(2), "Spleen")  # no overlap: same layer, next label
    assert (b.layer, b.label_value, b.color) == (0, 2, color_for_index(1))
    c = s.add_mask(line_mask(1, 5), "Tumour")  # overlaps Liver: new layer
    assert (c.layer, c.label_value) == (1, 1)
    d = s.add_mask(line_mask(0, 6), "Vessel")  # overlaps layer 0 only: first fit is layer 1
    assert (d.layer, d.label_value) == (1, 2)
    e = s.add_mask(line_mask(1, 2), "Lesion")  # overlaps layers 0 and 1
    assert (e.layer, e.label_value) == (2, 1)
    f = s.add_mask(line_mask(9), "Liver")  # free in layer 0; id made unique
    assert (f.id, f.layer, f.label_value) == ("Liver_1", 0, 3)
    assert len(s.layers) == 3
    assert s.layers[0].array.ravel().tolist() == [1, 1, 2, 0, 0, 0, 0, 0, 0, 3]
    assert s.layers[1].array.ravel().tolist() == [2, 1, 0, 0, 0, 1, 2, 0, 0, 0]
    assert s.layers[2].array.ravel().tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    for segment, indices in [(a, (0, 1)), (c, (1, 5)), (e, (1, 2)), (f, (9,))]:
        assert np.array_equal(s.mask(segment.id), line_mask(*indices))
    assert s.overlaps()
    s.validate()


def test_add_mask_takes_the_smallest_free_label() -> None:
    s = Segmentation()
    for n in range(4):
        s.add_mask(line_mask(n), f"s{n}", geometry=LINE)
    removed = s.segments.remove("s1")
    s.layers[0].array[s.layers[0].array == removed.label_value] = 0
    new = s.add_mask(line_mask(8), "new")
    assert (new.layer, new.label_value) == (0, 2)
    assert s.add_mask(line_mask(9), "next").label_value == 5


def test_add_mask_widens_the_layer_dtype() -> None:
    grid = Geometry.from_spacing((1, 16, 17))
    s = Segmentation()
    flat = np.zeros(grid.shape, dtype=bool).ravel()
    for n in range(256):
        mask = flat.copy()
        mask[n] = True
        s.add_mask(mask.reshape(grid.shape), f"s{n}", geometry=grid)
    assert len(s.layers) == 1
    array = s.layers[0].array
    assert array.dtype == np.uint16
    assert s.segments["s255"].label_value == 256
    assert array.ravel()[:256].tolist() == list(range(1, 257))
    assert not array.ravel()[256:].any()
    assert set(s.voxel_counts().values()) == {1}


def test_add_mask_options_and_checks() -> None:
    s = Segmentation()
    integers = np.zeros((1, 1, 10), dtype=np.int32)
    integers[0, 0, 3] = 7
    segment = s.add_mask(
        integers,
        "Left lung",
        segment_id="lung-1",
        color=(0.1, 0.2, 0.3),
        terminology=DEFAULT_TISSUE,
        properties={"Description": "d"},
        geometry=LINE,
    )
    assert (segment.id, segment.color) == ("lung-1", (0.1, 0.2, 0.3))
    assert segment.terminology is DEFAULT_TISSUE
    assert segment.properties == {"Description": "d"}
    assert np.array_equal(s.mask("Left lung"), line_mask(3))
    assert s.mask("lung-1").dtype == bool
    assert s.add_mask(line_mask(4), "Left lung").id == "Left_lung"
    with pytest.raises(GeometryError, match="mask shape"):
        s.add_mask(np.zeros((1, 1, 9), bool), "short")
    shifted = Geometry.from_spacing((1, 1, 10), origin=(1.0, 0.0, 0.0))
    with pytest.raises(GeometryError, match="resample first"):
        s.add_mask(line_mask(5), "elsewhere", geometry=shifted)
    with pytest.raises(ValidationError, match="share the id"):
        s.add_mask(line_mask(6), "x", segment_id="lung-1")
    with pytest.raises(KeyError):
        s.mask("nothing")


# -- statistics -------------------------------------------------------------------------------


def make_mixed() -> Segmentation:
    """Three layers of dtypes uint8, uint16 and int16, with values no segment owns."""
    rng = np.random.default_rng(3)
    shape = GRID.shape
    l0 = rng.choice(np.array([0, 1, 2, 7, 200], dtype=np.uint8), size=shape)
    l1 = rng.choice(np.array([0, 300, 1000, 65535], dtype=np.uint16), size=shape)
    l2 = rng.choice(np.array([-3, 0, 4, 9, -32768], dtype=np.int16), size=shape)
    segments = [
        seg("a", 0, 1),
        seg("b", 0, 2),
        seg("c", 1, 300),
        seg("d", 1, 5),
        seg("e", 2, 4),
        seg("f", 2, 2),
    ]
    return Segmentation(segments, [Layer(a, GRID) for a in (l0, l1, l2)])


def test_voxel_counts_for_each_dtype() -> None:
    s = make_mixed()
    expected = {
        x.id: int(np.count_nonzero(s.layers[x.layer].array == x.label_value))
        for x in s.segments.values()
    }
    assert expected["a"] > 0 and expected["c"] > 0 and expected["e"] > 0
    assert expected["d"] == 0 and expected["f"] == 0
    counts = s.voxel_counts()
    assert counts == expected
    assert list(counts) == ["a", "b", "c", "d", "e", "f"]
    assert all(type(v) is int for v in counts.values())
    # The values above the top label (7, 200, 1000, 65535, 9) and negatives are in the
    # arrays but are nobody's voxels.
    assert sum(counts.values()) < sum(int(np.count_nonzero(x.array)) for x in s.layers)


def test_voxel_counts_of_a_wide_unsigned_layer() -> None:
    array = np.zeros((1, 1, 10), np.uint32)
    array[0, 0, :4] = [1, 1, 70000, 4_000_000_000]
    s = Segmentation([seg("a", 0, 1), seg("b", 0, 70000)], [Layer(array, LINE)])
    assert s.voxel_counts() == {"a": 2, "b": 1}


def test_extents() -> None:
    array = np.zeros(GRID.shape, np.int16)
    array[1, 0:3, 3] = 5
    array[0, 1, 1] = 2
    array[1, 2, 0] = -4
    array[0, 0, 0] = 99  # nobody's
    s = Segmentation([seg("box", 0, 5), seg("dot", 0, 2), seg("empty", 0, 3)], [Layer(array, GRID)])
    extents = s.extents()
    assert extents == {
        "box": ((1, 1), (0, 2), (3, 3)),
        "dot": ((0, 0), (1, 1), (1, 1)),
        "empty": None,
    }
    box = extents["box"]
    assert box is not None
    assert all(type(v) is int for pair in box for v in pair)


def test_extents_across_layers_keep_segment_order() -> None:
    s = Segmentation([seg("b", 1, 1), seg("a", 0, 1)], [layer([0, 1]), layer([0, 0, 0, 1, 1])])
    assert list(s.extents()) == ["b", "a"]
    assert s.extents() == {"b": ((0, 0), (0, 0), (3, 4)), "a": ((0, 0), (0, 0), (1, 1))}


def test_overlaps() -> None:
    assert not Segmentation([seg("a"), seg("b", 0, 2)], [layer([1, 2])]).overlaps()
    apart = Segmentation([seg("a"), seg("b", 1, 1)], [layer([1, 0]), layer([0, 1])])
    assert not apart.overlaps()
    touching = Segmentation([seg("a"), seg("b", 1, 1)], [layer([1, 1]), layer([0, 1])])
    assert touching.overlaps()
    # Voxels that no segment owns do not overlap anything.
    orphan = Segmentation([seg("a"), seg("b", 1, 1)], [layer([1, 9]), layer([0, 1])])
    assert not orphan.overlaps()
    # Layers without segments are skipped.
    skipped = Segmentation([seg("a"), seg("b", 2, 1)], [layer([1]), layer([1]), layer([0, 1])])
    assert not skipped.overlaps()


# -- copy -------------------------------------------------------------------------------------


def test_copy_is_independent() -> None:
    s = Segmentation(
        [seg("a", properties={"k": "v"})],
        [layer([1, 1])],
        provenance={"format": "nrrd"},
        extras={"nrrd": {"x": "1"}},
        reference_geometry=GRID,
    )
    c = s.copy()
    c.layers[0].array[0, 0, 0] = 0
    c.segments["a"].name = "renamed"
    c.segments["a"].properties["k"] = "changed"
    c.segments.add(Segment("b", "b", label_value=2))
    c.provenance["format"] = "nifti"
    c.extras["nrrd"]["x"] = "2"
    c.conversion_parameters.set("Smoothing factor", "0.1")
    c.layers.append(layer([]))
    assert s.layers[0].array.ravel().tolist()[:3] == [1, 1, 0]
    assert s.segments["a"].name == "a"
    assert s.segments["a"].properties == {"k": "v"}
    assert list(s.segments) == ["a"]
    assert s.provenance == {"format": "nrrd"}
    assert s.extras == {"nrrd": {"x": "1"}}
    assert s.conversion_parameters.value("Smoothing factor") == "0.5"
    assert len(s.layers) == 1
    assert c.reference_geometry == GRID


# -- pack_layers ------------------------------------------------------------------------------


def make_unpacked() -> Segmentation:
    segments = [
        seg("A", 0, 5),
        seg("B", 0, 9),
        seg("C", 1, 1),  # overlaps A: a new layer
        seg("D", 1, 2),  # free in layer 0: joins it with label 10
        seg("E", 2, 3),  # overlaps A and C: another new layer
        seg("F", 2, 1),  # overlaps D in layer 0; free in packed layer 1
        seg("G", 2, 7),  # empty: fits layer 0
    ]
    layers = [
        layer([5, 5, 9]),
        layer([1, 0, 0, 0, 0, 2, 2]),
        layer([3, 3, 0, 0, 0, 1]),
    ]
    return Segmentation(segments, layers)


def test_pack_layers_first_fit() -> None:
    s = make_unpacked()
    p = s.pack_layers()
    assert signature(p) == [
        ("A", 0, 5),
        ("B", 0, 9),
        ("C", 1, 1),
        ("D", 0, 10),
        ("E", 2, 1),
        ("F", 1, 2),
        ("G", 0, 11),
    ]
    assert [x.array.ravel().tolist() for x in p.layers] == [
        [5, 5, 9, 0, 0, 10, 10, 0, 0, 0],
        [1, 0, 0, 0, 0, 2, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    ]
    for x in s.segments.values():
        assert np.array_equal(p.mask(x.id), s.mask(x.id)), x.id
    assert (
        p.voxel_counts()
        == s.voxel_counts()
        == {
            "A": 2,
            "B": 1,
            "C": 1,
            "D": 2,
            "E": 2,
            "F": 1,
            "G": 0,
        }
    )
    assert p.extents()["G"] is None
    assert all(x.geometry == LINE for x in p.layers)


def test_pack_layers_keeps_layer_0_values() -> None:
    s = make_unpacked()
    p = s.pack_layers()
    original = s.layers[0].array
    kept = original != 0
    assert np.array_equal(p.layers[0].array[kept], original[kept])
    assert (p.segments["A"].label_value, p.segments["B"].label_value) == (5, 9)


def test_pack_layers_does_not_modify_the_original() -> None:
    s = make_unpacked()
    arrays = [x.array.copy() for x in s.layers]
    before = signature(s)
    p = s.pack_layers()
    assert p is not s
    assert signature(s) == before
    assert all(np.array_equal(x.array, a) for x, a in zip(s.layers, arrays, strict=True))
    assert all(p.layers[n].array is not s.layers[n].array for n in range(len(p.layers)))
    p.layers[0].array[:] = 0
    assert np.array_equal(s.layers[0].array, arrays[0])


def test_pack_layers_merges_disjoint_layers_into_one() -> None:
    s = Segmentation(
        [seg("a", 0, 1), seg("b", 1, 1), seg("c", 2, 4)],
        [layer([1]), layer([0, 1]), layer([0, 0, 4, 4])],
    )
    p = s.pack_layers()
    assert len(p.layers) == 1
    assert signature(p) == [("a", 0, 1), ("b", 0, 2), ("c", 0, 3)]
    assert p.layers[0].array.ravel().tolist()[:5] == [1, 2, 3, 3, 0]
    assert not p.overlaps()


def test_pack_layers_needs_a_new_layer_for_overlaps() -> None:
    s = Segmentation(
        [seg("a", 0, 1), seg("b", 1, 1), seg("c", 2, 1)],
        [layer([1, 1]), layer([0, 1, 1]), layer([0, 1])],
    )
    p = s.pack_layers()
    assert len(p.layers) == 3
    assert signature(p) == [("a", 0, 1), ("b", 1, 1), ("c", 2, 1)]
    assert p.overlaps()
    for x in s.segments.values():
        assert np.array_equal(p.mask(x.id), s.mask(x.id))


def test_pack_layers_with_only_empty_segments_after_layer_0() -> None:
    s = Segmentation(
        [seg("a", 0, 1), seg("b", 1, 1), seg("c", 2, 3)], [layer([1]), layer([]), layer([])]
    )
    p = s.pack_layers()
    assert len(p.layers) == 1
    assert signature(p) == [("a", 0, 1), ("b", 0, 2), ("c", 0, 3)]
    assert p.voxel_counts() == {"a": 1, "b": 0, "c": 0}


def test_pack_layers_widens_layer_0() -> None:
    grid = Geometry.from_spacing((1, 1, 256))
    zero = np.zeros((1, 1, 256), np.uint8)
    zero[0, 0, :255] = np.arange(1, 256)
    one = np.zeros((1, 1, 256), np.uint8)
    one[0, 0, 255] = 1
    segments = [seg(f"s{n}", 0, n) for n in range(1, 256)] + [seg("last", 1, 1)]
    s = Segmentation(segments, [Layer(zero, grid), Layer(one, grid)])
    p = s.pack_layers()
    assert len(p.layers) == 1
    assert p.layers[0].array.dtype == np.uint16
    assert p.segments["last"].label_value == 256
    assert p.layers[0].array.ravel().tolist() == list(range(1, 257))


def test_pack_layers_of_one_layer_is_a_copy() -> None:
    s = Segmentation([seg("a")], [layer([1, 1])])
    p = s.pack_layers()
    assert p is not s
    assert p.layers[0].array is not s.layers[0].array
    assert np.array_equal(p.layers[0].array, s.layers[0].array)
    assert signature(p) == signature(s)
    assert Segmentation().pack_layers().layers == []


def test_pack_layers_is_lossless_on_random_layers() -> None:
    rng = np.random.default_rng(11)
    grid = Geometry.from_spacing((6, 7, 8))
    segments: list[Segment] = []
    layers: list[Layer] = []
    for n in range(6):
        array = np.zeros(grid.shape, np.uint8)
        for label in (1, 2, 3):
            k, j, i = (int(v) for v in rng.integers(0, 5, size=3))
            box = array[k : k + 2, j : j + 3, i : i + 3]
            box[box == 0] = label
            segments.append(seg(f"L{n}s{label}", n, label))
        layers.append(Layer(array, grid))
    s = Segmentation(segments, layers)
    p = s.pack_layers()
    assert len(p.layers) <= len(s.layers)
    for x in s.segments.values():
        assert np.array_equal(p.mask(x.id), s.mask(x.id)), x.id
    assert p.voxel_counts() == s.voxel_counts()
    p.validate()
    assert signature(p)[:3] == signature(s)[:3]  # layer 0 untouched


@pytest.mark.parametrize("moved", [[0, 0, 0, 1], []], ids=["non-empty", "empty"])
def test_pack_layers_does_not_adopt_orphan_voxels(moved: list[int]) -> None:
    # Layer 0 holds value 2 at index 2 that no segment owns (e.g. after segments.remove).
    s = Segmentation([seg("a", 0, 1), seg("b", 1, 1)], [layer([1, 0, 2]), layer(moved)])
    before = {x: s.mask(x).copy() for x in ("a", "b")}
    p = s.pack_layers()
    for x, mask in before.items():
        assert np.array_equal(p.mask(x), mask), x


# -- helpers ----------------------------------------------------------------------------------


def test_unique_id() -> None:
    assert unique_id("Liver", []) == "Liver"
    assert unique_id("Liver", ["Liver"]) == "Liver_1"
    assert unique_id("Liver", ["Liver", "Liver_1", "Liver_3"]) == "Liver_2"
    assert unique_id("Left  lung\t", []) == "Left_lung"
    assert unique_id("Left lung", ["Left_lung"]) == "Left_lung_1"
    assert unique_id("", []) == "Segment"
    assert unique_id("   ", ["Segment"]) == "Segment_1"
    assert unique_id("Liver_1", ["Liver_1"]) == "Liver_1_1"
    taken = iter(["a", "a_1"])  # any iterable, consumed once
    assert unique_id("a", taken) == "a_2"


def test_label_histogram_in_slabs_equals_bincount() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 300, size=(48, 256, 256), dtype=np.uint16)
    labels[0, 0, :5] = [65535, 65535, 299, 250, 251]
    top = 250
    expected = np.bincount(labels.ravel(), minlength=65536)[: top + 1]
    result = label_histogram(labels, top)
    assert result.shape == (top + 1,)
    assert result.dtype == np.int64
    assert np.array_equal(result, expected)
    # Values above ``top`` are ignored, not piled on the last bin.
    assert result.sum() == np.count_nonzero(labels <= top)


def signed_labels() -> np.ndarray:
    rng = np.random.default_rng(6)
    return rng.integers(-20, 40, size=(5, 300, 700), dtype=np.int16)


def test_label_histogram_of_signed_labels_counts_every_label() -> None:
    labels = signed_labels()
    result = label_histogram(labels, 30)
    valid = labels[(labels >= 0) & (labels <= 30)]
    assert np.array_equal(result[1:], np.bincount(valid, minlength=31)[1:])


def test_label_histogram_ignores_negative_values_in_bin_0() -> None:
    labels = signed_labels()
    assert label_histogram(labels, 30)[0] == np.count_nonzero(labels == 0)


def test_label_histogram_of_uint8_within_range() -> None:
    labels = np.array([[[0, 1, 1, 3, 3, 3]]], np.uint8)
    assert label_histogram(labels, 3).tolist() == [1, 2, 0, 3]
    assert label_histogram(labels, 5).tolist() == [1, 2, 0, 3, 0, 0]


# -- huge label values: memory follows the voxels, not the values ------------------------------

HUGE_LABELS = """
import numpy as np
from segio.geometry import Geometry
from segio.labels.segments import present_labels
from segio.labels.values import label_counts
from segio.model import Layer, Segment, Segmentation
from segio.analysis.summary import summarize

grid = Geometry.from_spacing((2, 3, 4))
for dtype, top in [("uint32", 2**32 - 1), ("int32", 2**31 - 1), ("int64", 2**62),
                   ("uint64", 2**64 - 1)]:
    array = np.zeros(grid.shape, dtype)
    array[0, 0, :3] = [top, top, 7]
    array[1, 2, 3] = top - 1
    if dtype.startswith("int"):
        array[1, 1, 1] = -5  # nobody's voxel
    segments = [Segment("big", "big", label_value=top), Segment("seven", "seven", label_value=7),
                Segment("none", "none", label_value=top - 2)]
    s = Segmentation(segments, [Layer(array, grid)])
    assert s.voxel_counts() == {"big": 2, "seven": 1, "none": 0}, s.voxel_counts()
    extents = s.extents()
    assert extents["big"] == ((0, 0), (0, 0), (0, 1)) and extents["none"] is None, extents
    assert present_labels(array) == [7, top - 1, top]
    assert label_counts(array, [top - 1, 3, top]).tolist() == [1, 0, 2]
    info = summarize(s)
    assert [x["voxels"] for x in info["segments"]] == [2, 1, 0]
    two = Segmentation(segments[:1] + [Segment("b", "b", layer=1, label_value=top)],
                       [Layer(array, grid), Layer(array.copy(), grid)])
    assert two.overlaps()
print("ok")
"""


def test_huge_label_values_allocate_nothing_sized_by_the_value() -> None:
    """4294967295 in a uint32 layer: counts, extents and ``info`` stay within 1.5 GB."""
    import os
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, resource.RLIM_INFINITY))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", HUGE_LABELS],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_label_histogram_refuses_a_top_beyond_the_memory_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from segio.errors import LimitError

    monkeypatch.setenv("SEGIO_MAX_MEMORY", "64MiB")
    with pytest.raises(LimitError, match="SEGIO_MAX_MEMORY"):
        label_histogram(np.array([[[2**32 - 1]]], np.uint32), 2**32 - 1)


def test_label_counts_of_small_and_signed_values() -> None:
    from segio.labels.values import label_counts

    labels = np.array([[[0, 1, 1, 3, -2, 5000000]]], np.int32)
    assert label_counts(labels, [3, 1, 2]).tolist() == [1, 2, 0]
    assert label_counts(labels, [5000000, 1]).tolist() == [1, 2]
    assert label_counts(labels.astype(np.uint8), [300]).tolist() == [0]


@pytest.mark.parametrize("form", ["voxels", "box"])
def test_first_fit_with_run_counts_gives_the_layers_of_testing_every_layer(form: str) -> None:
    """The layer search that starts where a mask's voxels say it must gives the layers of
    the plain first fit (every layer tested in order), on random overlapping masks, past
    255 layers (where the one-byte run counts widen)."""
    rng = np.random.default_rng(7)
    shape = (3, 6, 5)
    size = int(np.prod(shape))
    packer = FirstFitPacker(shape, np.uint16)
    plain: list[NDArray[np.uint16]] = []
    for number in range(1, 1200):  # most masks crowd into eight voxels: many layers
        voxels = np.unique(rng.integers(0, 8 if number % 4 else size, rng.integers(1, 6)))
        expected = next((n for n, a in enumerate(plain) if not a[voxels].any()), len(plain))
        if expected == len(plain):
            plain.append(np.zeros(size, dtype=np.uint16))
        plain[expected][voxels] = number
        if form == "voxels":
            assert packer.place_voxels(voxels, number) == expected
        else:
            mask = np.zeros(size, dtype=bool)
            mask[voxels] = True
            k = int(voxels[0]) // 30  # a box of whole slices from the first voxel's slice
            box = (slice(k, 3),)
            assert packer.place([(box, mask.reshape(shape)[box])], number) == (expected, number)
    assert len(packer.layers) == len(plain) > 256
    for got, want in zip(packer.layers, plain, strict=True):
        assert np.array_equal(got.reshape(-1), want)


# -- point annotations and unplaced segmentations ------------------------------------------------


def _point(
    name: str = "Iso", where: tuple[float, float, float] = (1.0, -2.0, 3.5)
) -> PointAnnotation:
    return PointAnnotation(name, where, (0.0, 1.0, 0.0), properties={"DICOM.ROINumber": "4"})


def test_point_annotation_rules() -> None:
    point = PointAnnotation("Iso", [-0.0, 2.0, 3.0])
    assert point.position.tolist() == [0.0, 2.0, 3.0] and not np.signbit(point.position[0])
    assert point.color == (0.5, 0.5, 0.5) and point.image_uid is None
    with pytest.raises(ValueError, match="read-only"):
        point.position[0] = 5.0
    for bad in ([1.0, 2.0], [1.0, np.nan, 2.0], [np.inf, 0.0, 0.0], "abc"):
        with pytest.raises(ValidationError, match="position"):
            PointAnnotation("x", bad)
    with pytest.raises(ValidationError, match="colour"):
        PointAnnotation("x", (0, 0, 0), (2.0, 0.0, 0.0))
    with pytest.raises(ValidationError, match="properties"):
        PointAnnotation("x", (0, 0, 0), properties={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="name"):
        PointAnnotation(3, (0, 0, 0))  # type: ignore[arg-type]


def test_points_live_beside_segments_with_any_representation() -> None:
    labelmap = Segmentation([seg("a")], [layer([1, 1])], points=[_point()])
    contours = Segmentation(
        source_representation=Representation.PLANAR_CONTOURS,
        points=[_point("A"), _point("B")],
    )
    assert [p.name for p in contours.points] == ["A", "B"] and not contours.segments
    copied = labelmap.copy()
    copied.points[0] = _point("other")
    assert labelmap.points[0].name == "Iso"
    with pytest.raises(ValidationError, match="PointAnnotation"):
        Segmentation(points=[(1.0, 2.0, 3.0)])  # type: ignore[list-item]


def test_conversions_carry_the_points() -> None:
    """Every converter builds a new segmentation: ``to_representation`` hands the points on."""
    from segio.converters import to_representation
    from segio.testing.synthetic import small_segmentation

    source = small_segmentation(kind="oblique")
    source.points = [_point()]
    contours = to_representation(source, [Representation.PLANAR_CONTOURS])
    assert contours.source_representation is Representation.PLANAR_CONTOURS
    back = to_representation(contours, [Representation.BINARY_LABELMAP])
    assert [p.name for p in back.points] == ["Iso"]
    np.testing.assert_array_equal(back.points[0].position, [1.0, -2.0, 3.5])


def test_a_labelmap_format_leaves_points_out_with_one_warning(tmp_path: Path) -> None:
    import segio
    from segio.testing.synthetic import small_segmentation

    source = small_segmentation(kind="oblique")
    source.points = [_point("Iso"), _point("Seed"), _point("Seed")]
    out = tmp_path / "out.nii.gz"
    with pytest.warns(UserWarning) as caught:
        segio.write(source, out)
    messages = [str(w.message) for w in caught if "point" in str(w.message)]
    assert messages == [
        "3 point annotation(s) not written ('Iso', 'Seed'): the nifti format holds no points; "
        "write them to RTSTRUCT or to 3D Slicer markups (.mrk.json)"
    ]
    back = segio.read(out)
    assert [s.name for s in back.segments.values()] == [s.name for s in source.segments.values()]


def test_an_unplaced_segmentation_is_described_but_never_converted() -> None:
    """A reader that could not place its shapes says why in the provenance: validate(),
    which every write runs first, and every converter and selection refuse it."""
    import segio
    from segio.model import UNPLACED

    unplaced = Segmentation(
        [seg("a")],
        source_representation=Representation.PLANAR_CONTOURS,
        contours={"a": PlanarContours()},
    )
    unplaced.provenance[UNPLACED] = "x.dcm: 1 ROI(s) hold pixel coordinates only"
    with pytest.raises(ValidationError, match="pixel coordinates only"):
        unplaced.validate()
    with pytest.raises(ValidationError, match="pixel coordinates only"):
        segio.select_segments(unplaced, ["a"])
    with pytest.raises(ValidationError, match="pixel coordinates only"):
        from segio.converters.contours_to_labelmap import to_labelmap

        to_labelmap(unplaced, GRID)
