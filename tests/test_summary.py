"""summarize: a JSON-ready description with counts, volumes, extents, colours and codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segio.analysis.summary import summarize
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.terminology import Code, Terminology

GRID = Geometry.from_spacing((3, 4, 5), (0.5, 0.8, 2.0), (-10.0, 20.0, 30.0))
REFERENCE = Geometry.from_spacing((6, 8, 10), (0.25, 0.4, 1.0), (-10.0, 20.0, 30.0))
LESION = Terminology(
    category=Code("SCT", "49755003", "Morphologically Altered Structure"),
    type=Code("SCT", "4147007", "Mass"),
    region=Code("SCT", "23451007", "Adrenal gland"),
    region_modifier=Code("SCT", "24028007", "Right"),
)


@pytest.fixture
def segmentation() -> Segmentation:
    first = np.zeros(GRID.shape, np.uint8)  # (k, j, i) = (3, 4, 5)
    first[1, 0:3, 4] = 1  # 3 voxels: i 4..4, j 0..2, k 1..1
    first[0:3, 3, 0:2] = 2  # 6 voxels: i 0..1, j 3..3, k 0..2
    second = np.zeros(GRID.shape, np.uint16)
    second[1, 1, 4] = 7  # overlaps segment 1
    segments = [
        Segment("s1", "Lesion", color=(1.0, 0.5, 0.0), terminology=LESION, label_value=1),
        Segment("s2", "Liver", color=(0.0, 0.0, 1.0), label_value=2, properties={"k": "v"}),
        Segment("s3", "Empty", label_value=3),
        Segment("s4", "Other", color=(0.2, 0.4, 0.6), layer=1, label_value=7),
    ]
    return Segmentation(
        segments,
        [Layer(first, GRID), Layer(second, GRID)],
        reference_geometry=REFERENCE,
        provenance={"source_path": "/data/in.seg.nrrd", "format": "seg.nrrd"},
    )


def test_summary_is_json_serialisable(segmentation: Segmentation) -> None:
    summary = summarize(segmentation)
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == summary


def test_top_level_fields(segmentation: Segmentation) -> None:
    summary = summarize(segmentation)
    assert summary["file"] == "/data/in.seg.nrrd"
    assert summary["format"] == "seg.nrrd"
    assert summary["source_representation"] == "Binary labelmap"
    assert summary["layers"] == 2
    assert summary["overlapping"] is True
    assert [s["id"] for s in summary["segments"]] == ["s1", "s2", "s3", "s4"]


def test_geometry_fields(segmentation: Segmentation) -> None:
    geometry = summarize(segmentation)["geometry"]
    assert geometry["size_ijk"] == [5, 4, 3]
    assert geometry["spacing"] == pytest.approx([0.5, 0.8, 2.0])
    assert geometry["origin_lps"] == [-10.0, 20.0, 30.0]
    assert np.allclose(geometry["directions_lps"], np.eye(3))
    assert np.allclose(geometry["ijk_to_lps"], GRID.ijk_to_lps)
    reference = summarize(segmentation)["reference_geometry"]
    assert reference["size_ijk"] == [10, 8, 6]
    assert reference["spacing"] == pytest.approx([0.25, 0.4, 1.0])


def test_directions_are_the_axes_as_rows() -> None:
    axes = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # columns i, j, k
    grid = Geometry.from_spacing((1, 1, 1), direction=axes)
    s = Segmentation([], [Layer(np.zeros((1, 1, 1), np.uint8), grid)])
    directions = summarize(s)["geometry"]["directions_lps"]
    assert directions[0] == pytest.approx([0.0, 1.0, 0.0])  # the i axis
    assert directions[1] == pytest.approx([-1.0, 0.0, 0.0])  # the j axis


def test_counts_volumes_and_extents(segmentation: Segmentation) -> None:
    by_id = {s["id"]: s for s in summarize(segmentation)["segments"]}
    voxel_volume = 0.5 * 0.8 * 2.0
    assert GRID.voxel_volume == pytest.approx(voxel_volume)
    expected = {"s1": 3, "s2": 6, "s3": 0, "s4": 1}
    for segment_id, voxels in expected.items():
        assert by_id[segment_id]["voxels"] == voxels
        assert by_id[segment_id]["volume_mm3"] == pytest.approx(voxels * voxel_volume)
    assert by_id["s1"]["extent"] == {"i": [4, 4], "j": [0, 2], "k": [1, 1]}
    assert by_id["s2"]["extent"] == {"i": [0, 1], "j": [3, 3], "k": [0, 2]}
    assert by_id["s3"]["extent"] is None
    assert by_id["s4"]["extent"] == {"i": [4, 4], "j": [1, 1], "k": [1, 1]}
    assert (by_id["s4"]["layer"], by_id["s4"]["label"]) == (1, 7)


def test_colours(segmentation: Segmentation) -> None:
    by_id = {s["id"]: s for s in summarize(segmentation)["segments"]}
    assert by_id["s1"]["color"] == [1.0, 0.5, 0.0]
    assert by_id["s1"]["color_hex"] == "#ff8000"
    assert by_id["s2"]["color_hex"] == "#0000ff"
    assert by_id["s3"]["color_hex"] == "#808080"  # the 0.5 grey default
    assert by_id["s4"]["color_hex"] == "#336699"


def test_terminology_and_properties(segmentation: Segmentation) -> None:
    by_id = {s["id"]: s for s in summarize(segmentation)["segments"]}
    assert by_id["s1"]["terminology"] == {
        "category": ["SCT", "49755003", "Morphologically Altered Structure"],
        "type": ["SCT", "4147007", "Mass"],
        "region": ["SCT", "23451007", "Adrenal gland"],
        "region_modifier": ["SCT", "24028007", "Right"],
    }
    assert by_id["s2"]["terminology"] is None
    assert by_id["s2"]["properties"] == {"k": "v"}
    assert by_id["s1"]["properties"] == {}
    assert (by_id["s1"]["name"], by_id["s2"]["name"]) == ("Lesion", "Liver")


def test_summary_does_not_alias_the_segmentation(segmentation: Segmentation) -> None:
    summary = summarize(segmentation)
    summary["segments"][1]["properties"]["k"] = "changed"
    summary["segments"][0]["color"][0] = 0.0
    assert segmentation.segments["s2"].properties == {"k": "v"}
    assert segmentation.segments["s1"].color == (1.0, 0.5, 0.0)


def test_summary_of_an_empty_segmentation() -> None:
    summary = summarize(Segmentation())
    assert summary["geometry"] is None
    assert summary["reference_geometry"] is None
    assert summary["segments"] == []
    assert summary["layers"] == 0
    assert summary["overlapping"] is False
    assert summary["file"] is None
    assert json.loads(json.dumps(summary)) == summary


def test_single_layer_is_not_overlapping() -> None:
    array = np.zeros(GRID.shape, np.uint8)
    array[0, 0, 0] = 1
    s = Segmentation([Segment("a", "A")], [Layer(array, GRID)])
    summary = summarize(s)
    assert summary["overlapping"] is False
    assert summary["segments"][0]["voxels"] == 1
    assert summary["segments"][0]["extent"] == {"i": [0, 0], "j": [0, 0], "k": [0, 0]}


def test_summary_of_surfaces_has_triangles_not_layers() -> None:
    from segio.representations import Representation
    from segio.surfaces import Surface

    tetra = Surface(
        [[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]], [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]
    )
    seg = Segmentation(
        [Segment("a", "A")],
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={"a": tetra},
    )
    (row,) = summarize(seg)["segments"]
    assert (row["layer"], row["label"], row["voxels"]) == (None, None, 0)
    assert row["triangles"] == 4 and row["surface_volume_mm3"] == pytest.approx(36.0)
