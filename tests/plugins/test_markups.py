"""3D Slicer markups JSON (``.mrk.json``): point annotations written as one fiducial list.

The files are checked field by field against Slicer's markups schema v1.0.3
(``Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json`` in Slicer/Slicer):
``jsonschema`` is not a dependency, so the constraints the schema states for what segio
writes (required keys, types, enums, sizes, ranges) are checked explicitly here.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import segio
from segio.errors import WriteError
from segio.points import PointAnnotation
from segio.testing.synthetic import grid, small_segmentation

COMMITTED = Path(__file__).resolve().parents[2] / "fixtures" / "legacy"
EXPECTED = json.loads((COMMITTED / "expected.json").read_text())["osirix"]
#: What Slicer's reader accepts as the schema id (vtkMRMLMarkupsJsonStorageNode).
ACCEPTED_SCHEMA = re.compile(r".*markups-schema-v1\.[0-9]+\.[0-9]+\.json#*$")
GLYPHS = {
    *("Vertex2D", "Dash2D", "Cross2D", "ThickCross2D", "Triangle2D", "Square2D", "Circle2D"),
    *("Diamond2D", "Arrow2D", "ThickArrow2D", "HookedArrow2D", "StarBurst2D", "Sphere3D"),
    "Diamond3D",
}


def _numbers(value: Any, count: int, low: float = -np.inf, high: float = np.inf) -> bool:
    return (
        isinstance(value, list)
        and len(value) == count
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(low <= v <= high for v in value)
    )


def check_markups_schema(document: Any) -> None:
    """The constraints of markups-schema-v1.0.3 on every key segio writes."""
    assert isinstance(document, dict) and {"@schema", "markups"} <= set(document)
    assert isinstance(document["@schema"], str)
    assert ACCEPTED_SCHEMA.match(document["@schema"].lower())
    assert isinstance(document["markups"], list)
    for markup in document["markups"]:
        assert isinstance(markup, dict) and "type" in markup
        assert markup["type"] in {"Fiducial", "Line", "Angle", "Curve", "ClosedCurve", "Plane"}
        assert isinstance(markup.get("name", ""), str)
        assert markup.get("coordinateSystem", "LPS") in {"LPS", "RAS"}
        assert markup.get("coordinateUnits", "mm") in {"mm", "um"}
        for key in ("locked", "fixedNumberOfControlPoints"):
            assert isinstance(markup.get(key, False), bool)
        assert isinstance(markup.get("labelFormat", ""), str)
        assert isinstance(markup.get("controlPoints", []), list)
        for point in markup.get("controlPoints", []):
            assert isinstance(point, dict)
            for key in ("id", "label", "description", "associatedNodeID"):
                assert isinstance(point.get(key, ""), str), key
            assert _numbers(point["position"], 3)
            assert _numbers(point.get("orientation", [0.0] * 9), 9)
            for key in ("selected", "locked", "visibility"):
                assert isinstance(point.get(key, True), bool), key
            assert point.get("positionStatus", "defined") in {"undefined", "preview", "defined"}
        assert isinstance(markup.get("measurements", []), list)
        display = markup.get("display", {})
        assert isinstance(display, dict)
        for key in ("color", "selectedColor", "activeColor"):
            if key in display:
                assert _numbers(display[key], 3, 0.0, 1.0), key
        assert 0.0 <= display.get("opacity", 1.0) <= 1.0
        assert display.get("glyphType", "Sphere3D") in GLYPHS
        for key in ("visibility", "pointLabelsVisibility"):
            assert isinstance(display.get(key, True), bool)


def test_osirix_points_to_markups() -> None:
    """The committed OsiriX export (oblique series): its point ROI, as Slicer reads it."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "marks.mrk.json"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            written = segio.convert(COMMITTED / "export_rois.json", out)
        document = json.loads(out.read_text(encoding="utf-8"))
    assert written == [out]
    messages = [str(w.message) for w in caught]
    assert any("3 segment(s) not written to marks.mrk.json" in m for m in messages)
    assert not any("point annotation(s) not written" in m for m in messages)
    check_markups_schema(document)
    (markup,) = document["markups"]
    assert (markup["type"], markup["coordinateSystem"], markup["name"]) == (
        "Fiducial",
        "LPS",
        "Marker",
    )
    (point,) = markup["controlPoints"]
    assert point["label"] == "Marker" and point["positionStatus"] == "defined"
    np.testing.assert_allclose(point["position"], EXPECTED["points"]["Marker"][0], atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (marker,) = segio.read(COMMITTED / "export_rois.json").points
    assert markup["display"]["selectedColor"] == list(marker.color)


def test_points_of_several_names_and_colours(tmp_path: Path) -> None:
    geometry = grid("oblique", (3, 5, 7))
    where = geometry.ijk_to_points(np.array([[1.0, 2.0, 0.0], [3.5, 1.0, 2.0], [0.0, 0.0, 1.0]]))
    seg = small_segmentation(kind="oblique")
    seg.points = [
        PointAnnotation("Iso", where[0], (1.0, 0.0, 0.0)),
        PointAnnotation("Seed é", where[1], (0.0, 1.0, 0.0)),
        PointAnnotation("Seed é", where[2], (0.0, 1.0, 0.0)),
    ]
    out = tmp_path / "case 1.mrk.json"
    with pytest.warns(UserWarning) as caught:
        segio.write(seg, out)
    messages = [str(w.message) for w in caught]
    assert any("2 colours" in m for m in messages)
    assert any("segment(s) not written" in m for m in messages)
    document = json.loads(out.read_text(encoding="utf-8"))
    check_markups_schema(document)
    (markup,) = document["markups"]
    assert markup["name"] == "case 1"
    assert [p["label"] for p in markup["controlPoints"]] == ["Iso", "Seed é", "Seed é"]
    assert [p["id"] for p in markup["controlPoints"]] == ["1", "2", "3"]
    np.testing.assert_allclose([p["position"] for p in markup["controlPoints"]], where)
    assert markup["display"]["color"] == [1.0, 0.0, 0.0]
    with pytest.warns(UserWarning, match="segment"), pytest.warns(UserWarning, match="colours"):
        segio.write(seg, tmp_path / "named.mrk.json", name="Plan")
    named = json.loads((tmp_path / "named.mrk.json").read_text(encoding="utf-8"))
    assert named["markups"][0]["name"] == "Plan"


def test_a_segmentation_without_points_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "none.mrk.json"
    with pytest.raises(WriteError, match="no point annotation"):
        segio.write(small_segmentation(kind="oblique"), out)
    assert not out.exists()


def test_cli_writes_an_sr_folder_point_with_its_reference(tmp_path: Path) -> None:
    """A folder of OsiriX ROI SR objects: placed on its series, its point to .mrk.json."""
    from segio.cli import cli

    out = tmp_path / "sr.mrk.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(
            cli,
            [
                "convert",
                str(COMMITTED / "roi_sr_folder"),
                str(out),
                "-I",
                f"reference={COMMITTED / 'series'}",
            ],
        )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    check_markups_schema(document)
    positions = [p["position"] for p in document["markups"][0]["controlPoints"]]
    np.testing.assert_allclose(positions, EXPECTED["points"]["Marker"], atol=1e-6)


def test_the_schema_check_can_fail() -> None:
    """The explicit schema check rejects what the schema rejects."""
    good = {"@schema": "x/markups-schema-v1.0.3.json#", "markups": []}
    check_markups_schema(good)
    bad_documents: list[Any] = [
        {"markups": []},
        {"@schema": "x/other.json", "markups": []},
        {**good, "markups": [{"type": "Point"}]},
        {**good, "markups": [{"type": "Fiducial", "coordinateSystem": "XYZ"}]},
        {**good, "markups": [{"type": "Fiducial", "controlPoints": [{"position": [1, 2]}]}]},
        {**good, "markups": [{"type": "Fiducial", "display": {"color": [2.0, 0.0, 0.0]}}]},
        {
            **good,
            "markups": [
                {
                    "type": "Fiducial",
                    "controlPoints": [{"position": [1, 2, 3], "positionStatus": "placed"}],
                }
            ],
        },
    ]
    for bad in bad_documents:
        with pytest.raises(AssertionError):
            check_markups_schema(bad)
