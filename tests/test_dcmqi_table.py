"""dcmqi's segmentation metadata JSON as a label table (``dcmqi-json``).

What segio writes is what dcmqi's own ``itkimage2segimage`` takes with a NIfTI segio
wrote (on the oblique, anisotropic test grid), and the SEG dcmqi makes of them reads back
in segio with the names, colours and codes; dcmqi's example files read as the schema says;
hostile files are refused in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segio
from segio.converters.resample import resample
from segio.errors import ReadError, WriteError
from segio.labels.catalogue import lookup
from segio.labels.tables import (
    LabelEntry,
    find_sidecar,
    read_label_table,
    sniff_label_table,
    write_label_table,
)
from segio.model import Layer, Segment, Segmentation
from segio.terminology import Code, Terminology
from segio.testing.series import reference_series
from segio.testing.synthetic import grid

BIN = Path(sys.executable).parent
ANATOMY = Code("SCT", "123037004", "Anatomical Structure")
LEFT = Code("SCT", "7771000", "Left")
CYST_OF_LEFT_KIDNEY = Terminology(
    Code("SCT", "49755003", "Morphologically Abnormal Structure"),
    Code("SCT", "367643001", "Cyst"),
    region=Code("SCT", "64033007", "Kidney"),
    region_modifier=LEFT,
)


def _entries() -> list[LabelEntry]:
    return [
        LabelEntry(
            1,
            "Liver, segment IV",
            (0.8, 0.2, 0.4),
            terminology=Terminology(ANATOMY, Code("SCT", "10200004", "Liver")),
            properties={"Description": "caudate", "DICOM.SegmentAlgorithmType": "AUTOMATIC"},
        ),
        LabelEntry(
            4,
            "Niere links",
            (0.2, 0.6, 1.0),
            terminology=Terminology(ANATOMY, Code("SCT", "64033007", "Kidney"), LEFT),
        ),
        LabelEntry(2, "cyst", (1.0, 1.0, 0.0), terminology=CYST_OF_LEFT_KIDNEY, layer=1),
    ]


def test_round_trip_keeps_layers_names_colours_codes_and_properties(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    write_label_table(path, _entries(), format="dcmqi-json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert [[item["labelID"] for item in group] for group in doc["segmentAttributes"]] == [
        [1, 4],
        [2],
    ]
    first = doc["segmentAttributes"][0][0]
    assert first["SegmentAlgorithmType"] == "AUTOMATIC" and first["SegmentAlgorithmName"] == "segio"
    assert first["recommendedDisplayRGBValue"] == [204, 51, 102]
    assert sniff_label_table(path.read_bytes()[:4096], path.name) == "dcmqi-json"
    back = read_label_table(path)
    assert [(e.layer, e.value, e.name) for e in back] == [
        (0, 1, "Liver, segment IV"),
        (0, 4, "Niere links"),
        (1, 2, "cyst"),
    ]
    for got, want in zip(back, _entries(), strict=True):
        assert got.terminology is not None and want.terminology is not None
        assert got.terminology.matches(want.terminology)
        assert got.color is not None and want.color is not None
        assert np.allclose(got.color, want.color, atol=0.5 / 255)
    assert back[0].properties == {
        "Description": "caudate",
        "DICOM.SegmentAlgorithmType": "AUTOMATIC",
        "DICOM.SegmentAlgorithmName": "segio",
    }


def test_uncoded_entries_are_coded_by_name_or_written_as_tissue_with_a_warning(
    tmp_path: Path,
) -> None:
    path = tmp_path / "meta.json"
    entries = [LabelEntry(1, "spleen"), LabelEntry(2, "blob"), LabelEntry(3, "thing")]
    with pytest.warns(UserWarning, match=r"2 segment\(s\) have no code .*'blob', 'thing'"):
        write_label_table(path, entries, format="dcmqi-json")
    back = read_label_table(path)
    assert back[0].terminology is not None
    assert back[0].terminology.matches(lookup("spleen"))  # type: ignore[arg-type]
    assert back[1].terminology is not None and back[1].terminology.type.value == "85756007"


def test_dcmqi_makes_a_seg_of_what_segio_writes(tmp_path: Path) -> None:
    """NIfTI + dcmqi-json sidecar (oblique grid) -> itkimage2segimage -> segio."""
    pytest.importorskip("nibabel")
    geometry = grid("oblique")
    array = np.zeros(geometry.shape, np.uint8)
    array[1:4, 2:6, 2:5], array[3:6, 7:11, 5:9], array[2:5, 2:5, 7:10] = 1, 2, 3
    names = ["liver", "kidney_left", "lesion 7, cyst"]  # dcmqi 1.5.7 refuses non-ASCII labels
    colors = [(0.9, 0.3, 0.2), (0.2, 0.5, 0.9), (0.1, 0.8, 0.3)]
    segments = [
        Segment(f"s{v}", name, color, label_value=v)
        for v, (name, color) in enumerate(zip(names, colors, strict=True), 1)
    ]
    segments[2].terminology = CYST_OF_LEFT_KIDNEY
    image = tmp_path / "labels.nii.gz"
    segio.write(Segmentation(segments, [Layer(array, geometry)]), image, sidecar="dcmqi-json")
    meta = tmp_path / "labels.dcmqi.json"
    assert find_sidecar(image) == meta
    series = reference_series(geometry, tmp_path / "ct")
    command = [str(BIN / "itkimage2segimage"), "--inputImageList", str(image)]
    command += ["--inputDICOMDirectory", str(series), "--inputMetadata", str(meta)]
    command += ["--outputDICOM", str(tmp_path / "seg.dcm")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    seg = resample(segio.read(tmp_path / "seg.dcm"), geometry)  # dcmqi skips empty slices
    got = {s.name: s for s in seg.segments.values()}
    assert sorted(got) == sorted(names)
    for name, color, term in zip(
        names, colors, [lookup("liver"), lookup("kidney_left"), CYST_OF_LEFT_KIDNEY], strict=True
    ):
        assert term is not None and got[name].terminology is not None
        assert got[name].terminology.matches(term)
        assert np.allclose(got[name].color, color, atol=1.5 / 255)
        assert np.array_equal(seg.mask(got[name].id), array == names.index(name) + 1)
    # dcmqi's own reader writes a meta.json back: it reads as a dcmqi-json table
    out = tmp_path / "back"
    out.mkdir()
    command = [str(BIN / "segimage2itkimage"), "--inputDICOM", str(tmp_path / "seg.dcm")]
    subprocess.run([*command, "--outputDirectory", str(out)], capture_output=True, check=True)
    entries = read_label_table(out / "meta.json")
    assert sorted(e.name for e in entries) == sorted(names)


def test_dcmqi_example_reads_as_the_schema_says(shared_data: Path) -> None:
    examples = shared_data / "dcmqi" / "doc" / "examples"
    entries = read_label_table(examples / "seg-example_multiple_segments.json")
    assert [(e.layer, e.value, e.name) for e in entries] == [
        (0, 1, "Liver"),
        (1, 2, "Thoracic spine"),
        (2, 3, "Heart"),
    ]
    liver, spine, _ = entries
    assert liver.terminology == Terminology(
        Code("SCT", "85756007", "Tissue"), Code("SCT", "10200004", "Liver")
    )
    assert spine.terminology is not None and spine.terminology.type.value == "122495006"
    assert np.allclose(np.array(liver.color) * 255, [220, 129, 101])
    assert liver.properties == {
        "Description": "Liver Segmentation",
        "DICOM.SegmentAlgorithmType": "SEMIAUTOMATIC",
        "DICOM.SegmentAlgorithmName": "SlicerEditor",
    }
    tracked = read_label_table(examples / "seg-example.json")[0]
    assert tracked.properties["DICOM.TrackingUniqueIdentifier"] == "1.2.3"
    for example in sorted(examples.glob("seg-*.json")):
        assert sniff_label_table(example.read_bytes()[:4096], example.name) == "dcmqi-json"
        assert read_label_table(example)


def _segment(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "labelID": 1,
        "SegmentLabel": "liver",
        "SegmentedPropertyCategoryCodeSequence": {
            "CodingSchemeDesignator": "SCT",
            "CodeValue": "123037004",
            "CodeMeaning": "Anatomical Structure",
        },
        "SegmentedPropertyTypeCodeSequence": {
            "CodingSchemeDesignator": "SCT",
            "CodeValue": "10200004",
            "CodeMeaning": "Liver",
        },
        "SegmentAlgorithmType": "MANUAL",
        "recommendedDisplayRGBValue": [1, 2, 3],
    }
    item.update(changes)
    return {key: value for key, value in item.items() if value is not None}


def _doc(**changes: Any) -> dict[str, Any]:
    return {"segmentAttributes": [[_segment(**changes)]]}


_LEFT = {"CodingSchemeDesignator": "SCT", "CodeValue": "7771000", "CodeMeaning": "Left"}
_BLANK = {"CodingSchemeDesignator": "", "CodeValue": "", "CodeMeaning": "x"}
HOSTILE: list[tuple[str, object]] = [
    ('"segmentAttributes" must be a list', {"segmentAttributes": {"1": "liver"}}),
    ("must be a list of segments", {"segmentAttributes": [_segment()]}),
    ("is not a JSON object", {"segmentAttributes": [["liver"]]}),
    ("labelID must be an integer", _doc(labelID="1")),
    ("labelID must be an integer", _doc(labelID=0)),
    ("labelID must be an integer", _doc(labelID=True)),
    ("labelID must be an integer", _doc(labelID=2**70)),
    ("label value 1 appears twice", {"segmentAttributes": [[_segment(), _segment()]]}),
    ("SegmentLabel must be text", _doc(SegmentLabel=5)),
    ("SegmentDescription must be text", _doc(SegmentDescription=[])),
    ("3 integers in 0..255", _doc(recommendedDisplayRGBValue=[300, 0, 0])),
    ("3 integers in 0..255", _doc(recommendedDisplayRGBValue=[0] * 10**6)),
    ("3 integers in 0..255", _doc(recommendedDisplayRGBValue="red")),
    (
        "must hold CodingSchemeDesignator",
        _doc(SegmentedPropertyTypeCodeSequence={"CodeValue": "1"}),
    ),
    ("must hold CodingSchemeDesignator", _doc(SegmentedPropertyTypeCodeSequence=["SCT", "1", "x"])),
    ("needs a scheme and a value", _doc(SegmentedPropertyTypeCodeSequence=_BLANK)),
    ("need both a category and a type", _doc(SegmentedPropertyTypeCodeSequence=None)),
    ("without AnatomicRegionSequence", _doc(AnatomicRegionModifierSequence=_LEFT)),
]


@pytest.mark.parametrize(("message", "doc"), HOSTILE, ids=[m for m, _ in HOSTILE])
def test_hostile_json_is_one_read_error(message: str, doc: object, tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ReadError, match=message) as info:
        read_label_table(path, format="dcmqi-json")
    text = str(info.value)
    assert "\n" not in text and "meta.json" in text


def test_deep_nesting_and_huge_lists_are_refused_quickly(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"segmentAttributes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ReadError, match="nested too deeply"):
        read_label_table(deep, format="dcmqi-json")
    many = tmp_path / "many.json"
    items = [_segment(labelID=n + 1) for n in range(70_000)]
    many.write_text(json.dumps({"segmentAttributes": [items]}), encoding="utf-8")
    with pytest.raises(ReadError, match=r"labelID must be an integer in 1\.\.65535, got 65536"):
        read_label_table(many)


def test_written_labels_must_fit_dicom(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="must be an integer > 0"):
        write_label_table(tmp_path / "x.json", [LabelEntry(0, "zero")], format="dcmqi-json")
    with pytest.raises(WriteError, match="65536 of 'big' is above 65535") as info:
        write_label_table(tmp_path / "x.json", [LabelEntry(65536, "big")], format="dcmqi-json")
    assert "x.json" in str(info.value)
