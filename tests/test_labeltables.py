"""Label-table sidecars: round trips, real-world samples, sniffing, sidecar lookup, errors."""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segio.errors import ReadError, UnknownFormatError, WriteError
from segio.labels.tables import (
    LabelEntry,
    find_sidecar,
    label_tables,
    read_label_table,
    sniff_label_table,
    write_label_table,
)
from segio.labels.tables.caret_xml import caret_xml, parse_caret_xml
from segio.terminology import Code, Terminology

KIDNEY = Terminology(
    category=Code("SCT", "123037004", "Anatomical Structure"),
    type=Code("SCT", "64033007", "Kidney"),
    type_modifier=Code("SCT", "7771000", "Left"),
)
ADRENAL_MASS = Terminology(
    category=Code("SCT", "49755003", "Morphologically Altered Structure"),
    type=Code("SCT", "4147007", "Mass"),
    region=Code("SCT", "23451007", "Adrenal gland"),
    region_modifier=Code("SCT", "24028007", "Right"),
)

# Sparse, unsorted values; colours that are not multiples of 1/255.
ENTRIES = [
    LabelEntry(7, "Left-Kidney", (0.83, 0.49, 0.59), 1.0, KIDNEY),
    LabelEntry(1, "Liver", (0.1, 0.2, 0.3), 0.5),
    LabelEntry(3, "Adrenal-Mass", (1.0, 0.0, 0.0), 0.0, ADRENAL_MASS),
]


def _same(got: list[LabelEntry], want: list[LabelEntry], *, tol: float, **keep: bool) -> None:
    """Compare what a format keeps: value and name always; the rest as ``keep`` says."""
    assert [(e.value, e.name) for e in got] == [(e.value, e.name) for e in want]
    for g, w in zip(got, want, strict=True):
        if keep.get("color"):
            assert g.color is not None and w.color is not None
            assert g.color == pytest.approx(w.color, abs=tol)
        if keep.get("opacity"):
            assert g.opacity == pytest.approx(w.opacity, abs=tol)
        if keep.get("terminology"):
            assert g.terminology == w.terminology


# -- round trips ------------------------------------------------------------------------------


def test_segio_json_round_trip_is_exact(tmp_path: Path) -> None:
    entries = [
        LabelEntry(
            1,
            "Nebennierentumor rechts — 副腎",
            (0.123456789, 1 / 3, 0.0),
            0.42,
            ADRENAL_MASS,
            layer=0,
            id="Segment_1",
            properties={"note": "zweite Meinung", "Segmentation.Status": "completed"},
        ),
        LabelEntry(1, "overlapping, second layer", None, None, None, layer=1),
        LabelEntry(2, "kidney", (0.5, 0.25, 0.125), None, replace(KIDNEY, context="custom")),
    ]
    path = tmp_path / "liver.json"
    write_label_table(path, entries, format="segio-json")
    text = path.read_text(encoding="utf-8")
    assert "副腎" in text  # ensure_ascii=False
    doc = json.loads(text)
    assert doc["format"] == "segio-labels" and doc["version"] == 1
    term = doc["segments"][0]["terminology"]
    assert term["anatomicRegionModifier"] == ["SCT", "24028007", "Right"]
    assert term["contextName"].startswith("Segmentation category and type")
    assert read_label_table(path) == entries


@pytest.mark.parametrize(
    ("fmt", "name", "keep"),
    [
        ("slicer-csv", "t.labels.csv", {"color": True, "opacity": True, "terminology": True}),
        ("slicer-csv", "t.tsv", {"color": True, "opacity": True, "terminology": True}),
        ("slicer-ctbl", "t.ctbl", {"color": True, "opacity": True}),
        ("itksnap", "t.label", {"color": True, "opacity": True}),
        ("freesurfer", "t.txt", {"color": True, "opacity": True}),
        ("json-map", "t.json", {}),
        ("caret-xml", "t.xml", {"color": True, "opacity": True}),
    ],
)
def test_round_trip_within_format_precision(
    tmp_path: Path, fmt: str, name: str, keep: dict[str, bool]
) -> None:
    path = tmp_path / name
    write_label_table(path, ENTRIES, format=fmt)
    assert sniff_label_table(path.read_bytes()[:4096], path.suffix) == fmt
    tol = 1e-12 if fmt == "caret-xml" else 0.5 / 255 + 1e-9
    _same(read_label_table(path), ENTRIES, tol=tol, **keep)


def test_nnunet_round_trip_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {}, "numTraining": 3}))
    entries = [LabelEntry(2, "spleen"), LabelEntry(1, "liver")]
    write_label_table(path, entries, format="nnunet")
    doc = json.loads(path.read_text())
    assert doc["channel_names"] == {"0": "CT"} and doc["numTraining"] == 3
    assert list(doc["labels"].items()) == [("background", 0), ("liver", 1), ("spleen", 2)]
    assert [(e.value, e.name) for e in read_label_table(path)] == [(1, "liver"), (2, "spleen")]


def test_ctbl_spaces_become_underscores_and_back(tmp_path: Path) -> None:
    path = tmp_path / "t.ctbl"
    write_label_table(path, [LabelEntry(1, "left kidney"), LabelEntry(2, "")], format="slicer-ctbl")
    assert "1 left_kidney " in path.read_text() and "\n2 _ " in path.read_text()
    assert [e.name for e in read_label_table(path)] == ["left kidney", ""]


def test_caret_xml_bytes_round_trip_with_awkward_names() -> None:
    entries = [LabelEntry(1, "a ]]> b & <c>", (0.2, 0.4, 0.6), 1.0)]
    assert parse_caret_xml(caret_xml(entries) + b"\x00" * 13) == entries


# -- real-world samples -----------------------------------------------------------------------

ITKSNAP = """\
################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields:
#    IDX:   Zero-based index
#    -A-:   Label transparency (0.00 .. 1.00)
################################################
    0     0    0    0        0  0  0    "Clear Label"
    1   255    0    0        1  1  1    "Label 1"
    2     0  255    0     0.35  1  0    "Left ventricle"
   14   255  255    0        0  0  1    "Tumour (enhancing)"
"""

FREESURFER = """\
#$Id: FreeSurferColorLUT.txt,v 1.70 2011/01/01 $

#No. Label Name:                            R   G   B   A

0   Unknown                                 0   0   0   0
1   Left-Cerebral-Exterior                  70  130 180 0
2   Left-Cerebral-White-Matter              245 245 245 0
4   Left-Lateral-Ventricle                  120 18  134 0   1
7   Left-Cerebellum-White-Matter            220 248 164 128

# Below is a comment block and a line FreeSurfer cannot scan
this line is not a label
"""

NNUNET_V2 = """{
  "channel_names": {"0": "T2", "1": "ADC"},
  "labels": {"background": 0, "PZ": 1, "TZ": 2, "ignore": 3},
  "numTraining": 32,
  "file_ending": ".nii.gz"
}"""

NNUNET_V2_REGIONS = """{
  "channel_names": {"0": "FLAIR"},
  "labels": {"background": 0, "whole_tumor": [1, 2, 3], "edema": 1, "enhancing": 3},
  "regions_class_order": [1, 2, 3],
  "numTraining": 484,
  "file_ending": ".nii.gz"
}"""

NNUNET_V1 = """{
  "name": "BRATS",
  "tensorImageSize": "4D",
  "modality": {"0": "FLAIR", "1": "T1w"},
  "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
  "numTraining": 484,
  "training": [{"image": "./imagesTr/BRATS_457.nii.gz", "label": "./labelsTr/BRATS_457.nii.gz"}]
}"""

CTBL = """\
# Color table file /home/user/Documents/abdomen.ctbl
# 4 values
0 Background 0 0 0 0
1 right_kidney 185 102 83 255
2 _ 128 174 128 255
10 "left_adrenal_gland" 249 180 111 200
"""

TERMINOLOGY_COLUMNS = ",".join(
    f"{p}_{s}"
    for p in ("Category", "Type", "TypeModifier", "Region", "RegionModifier")
    for s in ("CodingScheme", "CodeValue", "CodeMeaning")
)
# Sparse, unsorted, a quoted name with a comma, a BOM, a region with a modifier.
SLICER_CSV = (
    f"\ufeffLabelValue,Name,Color_R,Color_G,Color_B,Color_A,{TERMINOLOGY_COLUMNS}\n"
    "0,background,0,0,0,0,,,,,,,,,,,,,,,\n"
    '12,"kidney, left",212,126,151,255,SCT,123037004,Anatomical Structure,'
    "SCT,64033007,Kidney,SCT,7771000,Left,,,,,,\n"
    "3,adrenal mass,200,100,50,128,SCT,49755003,Morphologically Altered Structure,"
    "SCT,4147007,Mass,,,,SCT,23451007,Adrenal gland,SCT,24028007,Right\n"
    "5,no codes,1,2,3,255,,,,,,,,,,,,,,,\n"
)

CARET = b"""<?xml version="1.0" encoding="UTF-8"?>
<CaretExtension>
  <Date><![CDATA[2024-05-01T10:00:00]]></Date>
  <VolumeInformation Index="0">
    <LabelTable>
      <Label Key="0" Red="0" Green="0" Blue="0" Alpha="0"><![CDATA[background]]></Label>
      <Label Key="1" Red="1.0" Green="0.0" Blue="0.0" Alpha="1"><![CDATA[spleen]]></Label>
      <Label Key="92" Red="0.0" Green="0.5019607843137255" Blue="0.0"
             Alpha="1"><![CDATA[rib_right_4]]></Label>
      <Label Key="93" Red="0.0" Green="0.0" Blue="1.0" Alpha="1"><![CDATA[rib_right_3]]></Label>
    </LabelTable>
  </VolumeInformation>
</CaretExtension>"""
CARET_PADDED = CARET + b"\x00" * (-len(CARET) % 16 or 16)


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def test_itksnap_sample(tmp_path: Path) -> None:
    entries = read_label_table(_write(tmp_path, "seg.label", ITKSNAP))
    assert [(e.value, e.name) for e in entries] == [
        (1, "Label 1"),
        (2, "Left ventricle"),
        (14, "Tumour (enhancing)"),
    ]
    assert entries[0].color == (1.0, 0.0, 0.0) and entries[0].opacity == 1.0
    assert entries[1].opacity == pytest.approx(0.35)
    assert entries[1].properties == {"itksnap.visible": "1", "itksnap.mesh": "0"}
    assert entries[2].properties["itksnap.visible"] == "0"


def test_freesurfer_sample_transparency_and_tissue_type(tmp_path: Path) -> None:
    entries = read_label_table(_write(tmp_path, "FreeSurferColorLUT.txt", FREESURFER))
    assert [e.value for e in entries] == [1, 2, 4, 7]
    assert entries[0].name == "Left-Cerebral-Exterior"
    assert entries[0].color == pytest.approx((70 / 255, 130 / 255, 180 / 255))
    assert entries[0].opacity == 1.0  # T = 0 means opaque
    assert entries[3].opacity == pytest.approx(127 / 255)
    assert entries[2].properties == {"freesurfer.tissue_type": "1"}


def test_freesurfer_duplicate_warns_and_first_wins(tmp_path: Path) -> None:
    path = _write(tmp_path, "lut.ctab", "1 first 1 2 3 0\n1 second 4 5 6 0\n")
    with pytest.warns(UserWarning, match="twice"):
        entries = read_label_table(path)
    assert [e.name for e in entries] == ["first"]


def test_nnunet_v2_sample_with_ignore(tmp_path: Path) -> None:
    entries = read_label_table(_write(tmp_path, "dataset.json", NNUNET_V2))
    assert [(e.value, e.name) for e in entries] == [(1, "PZ"), (2, "TZ"), (3, "ignore")]
    assert entries[2].properties == {"nnunet.ignore": "1"} and entries[0].properties == {}


def test_nnunet_v2_regions_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, "dataset.json", NNUNET_V2_REGIONS)
    with pytest.warns(UserWarning, match="whole_tumor"):
        entries = read_label_table(path)
    assert [(e.value, e.name) for e in entries] == [(1, "edema"), (3, "enhancing")]


def test_nnunet_v1_decathlon_sample(tmp_path: Path) -> None:
    entries = read_label_table(_write(tmp_path, "dataset.json", NNUNET_V1))
    assert [(e.value, e.name) for e in entries] == [
        (1, "edema"),
        (2, "non-enhancing tumor"),
        (3, "enhancing tumour"),
    ]
    assert all(e.color is None and e.terminology is None for e in entries)


def test_slicer_ctbl_sample(tmp_path: Path) -> None:
    entries = read_label_table(_write(tmp_path, "abdomen.ctbl", CTBL))
    assert [(e.value, e.name) for e in entries] == [
        (1, "right kidney"),
        (2, ""),
        (10, "left adrenal gland"),
    ]
    assert entries[0].color == pytest.approx((185 / 255, 102 / 255, 83 / 255))
    assert entries[2].opacity == pytest.approx(200 / 255)


def test_slicer_csv_sample_with_terminology(tmp_path: Path) -> None:
    entries = read_label_table(_write(tmp_path, "seg.labels.csv", SLICER_CSV))
    assert [(e.value, e.name) for e in entries] == [
        (12, "kidney, left"),
        (3, "adrenal mass"),
        (5, "no codes"),
    ]
    assert entries[0].terminology == KIDNEY
    assert entries[1].terminology == ADRENAL_MASS
    assert entries[1].opacity == pytest.approx(128 / 255)
    assert entries[2].terminology is None


def test_slicer_csv_minimal_tsv_and_latin1(tmp_path: Path) -> None:
    tsv = "LabelValue\tName\n2\tRückenmark\n1\tLeber\n".encode("latin-1")
    entries = read_label_table(_write(tmp_path, "seg.tsv", tsv))
    assert [(e.value, e.name, e.color, e.opacity) for e in entries] == [
        (2, "Rückenmark", None, None),
        (1, "Leber", None, None),
    ]


def test_totalsegmentator_caret_xml_with_padding(tmp_path: Path) -> None:
    assert len(CARET_PADDED) % 16 == 0
    entries = parse_caret_xml(CARET_PADDED)
    assert [(e.value, e.name) for e in entries] == [
        (1, "spleen"),
        (92, "rib_right_4"),
        (93, "rib_right_3"),
    ]
    assert entries[1].color == (0.0, 0.5019607843137255, 0.0)
    assert read_label_table(_write(tmp_path, "ext.xml", CARET_PADDED)) == entries


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("seg.label", ITKSNAP, "itksnap"),
        ("seg.txt", "\n".join(ITKSNAP.splitlines()[8:]), "itksnap"),
        ("lut.txt", FREESURFER, "freesurfer"),
        ("lut.txt", "1 liver 255 0 0 0\n2 spleen 0 255 0 0\n", "freesurfer"),
        ("colors.txt", "1 liver 255 0 0 255\n2 spleen 0 255 0 255\n", "slicer-ctbl"),
        ("abdomen.ctbl", CTBL, "slicer-ctbl"),
        ("proc.txt", "# Color procedural file /x\n0 0 0 0\n", "slicer-ctbl"),
        ("dataset.json", NNUNET_V2, "nnunet"),
        ("dataset.json", NNUNET_V1, "nnunet"),
        ("map.json", '{"1": "liver", "2": "spleen"}', "json-map"),
        ("map.json", '{"liver": 1, "spleen": 2}', "json-map"),
        ("map.json", '{"labels": {"liver": 1}}', "json-map"),
        ("seg.json", '{"format": "segio-labels", "version": 1, "segments": []}', "segio-json"),
        ("seg.labels.csv", SLICER_CSV, "slicer-csv"),
        ("seg.tsv", "LabelValue\tName\n1\tx\n", "slicer-csv"),
        ("ext.xml", CARET_PADDED, "caret-xml"),
        ("bids.json", '{"Manufacturer": "Siemens", "EchoTime": 0.03}', None),
        ("table.csv", "a,b\n1,2\n", None),
        ("notes.txt", "remember to segment the liver\n", None),
        ("empty.txt", "", None),
    ],
)
def test_sniffing(name: str, content: str | bytes, fmt: str | None) -> None:
    data = content.encode("utf-8") if isinstance(content, str) else content
    assert sniff_label_table(data[:4096], Path(name).suffix) == fmt


def test_sniffing_accepts_a_whole_file_name() -> None:
    assert sniff_label_table(CTBL.encode(), "abdomen.ctbl") == "slicer-ctbl"
    assert sniff_label_table(SLICER_CSV.encode(), "seg.labels.csv") == "slicer-csv"
    assert sniff_label_table(b"1 liver 255 0 0 255\n", "lut.CTAB") == "freesurfer"


def test_staged_temporary_names_still_work(tmp_path: Path) -> None:
    """Writers may get an empty temporary file named like ``.x.tsv.abc.segio-tmp``."""
    staged = _write(tmp_path, ".seg.tsv.k2j4.segio-tmp", b"")
    write_label_table(staged, ENTRIES, format="slicer-csv")
    assert staged.read_text().startswith("LabelValue\tName\t")
    staged = _write(tmp_path, ".dataset.json.x1.segio-tmp", b"")
    write_label_table(staged, [LabelEntry(1, "liver")], format="nnunet")
    assert json.loads(staged.read_text()) == {"labels": {"background": 0, "liver": 1}}


def test_sniffing_a_large_json_map_from_its_head() -> None:
    big = json.dumps({str(i): f"structure_number_{i}" for i in range(1, 2000)}).encode()
    assert len(big) > 4096
    assert sniff_label_table(big[:4096], ".json") == "json-map"


def test_all_formats_listed() -> None:
    assert list(label_tables()) == [
        "segio-json",
        "dcmqi-json",
        "slicer-csv",
        "slicer-ctbl",
        "itksnap",
        "freesurfer",
        "nnunet",
        "json-map",
        "caret-xml",
    ]
    with pytest.raises(UnknownFormatError):
        write_label_table("x.txt", ENTRIES, format="mitk")


# -- find_sidecar -----------------------------------------------------------------------------


def test_find_sidecar_priority(tmp_path: Path) -> None:
    image = _write(tmp_path, "liver.nii.gz", b"")
    assert find_sidecar(image) is None
    _write(tmp_path, "liver.json", '{"Modality": "MR", "EchoTime": 0.03}')  # BIDS, not labels
    txt = _write(tmp_path, "liver.txt", ITKSNAP)
    _write(tmp_path, "liver.csv", "a,b\n1,2\n")  # a CSV that is not a label table
    assert find_sidecar(image) == txt
    labels_csv = _write(tmp_path, "liver.labels.csv", SLICER_CSV)
    assert find_sidecar(image) == labels_csv
    own = _write(tmp_path, "liver.json", '{"format": "segio-labels", "version": 1, "segments": []}')
    assert find_sidecar(image) == own
    assert find_sidecar(tmp_path / "liver.nrrd") == own
    assert find_sidecar(tmp_path / "liver.nii") == own


def test_find_sidecar_nnunet_dataset_root(tmp_path: Path) -> None:
    labels_tr = tmp_path / "Dataset001_Prostate" / "labelsTr"
    labels_tr.mkdir(parents=True)
    dataset = _write(labels_tr.parent, "dataset.json", NNUNET_V2)
    assert find_sidecar(labels_tr / "prostate_00.nii.gz") == dataset
    deep = labels_tr / "a" / "b"
    deep.mkdir(parents=True)
    assert find_sidecar(deep / "x.nii.gz") is None  # three levels up is too far


# -- errors -----------------------------------------------------------------------------------

SEGIO = '{"format": "segio-labels", "version": 1, "segments": [%s]}'


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("a.json", '{"format": "segio-labels", ', None),
        ("a.json", SEGIO % '{"label": 0, "name": "x"}', None),
        ("a.json", SEGIO % '{"label": "1", "name": "x"}', None),
        ("a.json", SEGIO % '{"label": 1}, {"label": 1}', None),
        ("a.json", SEGIO % '{"label": 1, "color": [1.5, 0, 0]}', None),
        ("a.json", SEGIO % '{"label": 1, "color": [1, 0]}', None),
        ("a.json", SEGIO % '{"label": 1, "terminology": {"category": ["SCT", "1", "x"]}}', None),
        (
            "a.json",
            SEGIO % '{"label": 1, "terminology": {"category": ["", "", "x"], "type": 1}}',
            None,
        ),
        ("a.json", '{"format": "segio-labels", "version": 2, "segments": []}', None),
        ("a.csv", "Name,Color_R\nliver,1\n", "slicer-csv"),
        ("a.csv", "LabelValue,Name\nabc,liver\n", None),
        ("a.csv", "LabelValue,Name,Color_R,Color_G,Color_B\n1,liver,300,0,0\n", None),
        ("a.csv", "LabelValue,Name\n1,liver\n1,spleen\n", None),
        ("a.csv", "LabelValue,Name\n-3,liver\n", None),
        ("a.ctbl", "# Color table file x\n1 liver red 0 0 255\n", None),
        ("a.ctbl", "# Color procedural file x\n0 0 0 0\n1 1 1 1\n", None),
        ("a.label", ITKSNAP.replace("0.35", "2.5"), None),
        ("a.label", ITKSNAP + "15 1 2\n", None),
        ("a.txt", FREESURFER.replace("70  130", "700 130"), None),
        ("dataset.json", '{"labels": {"background": 0, "x": -1}, "numTraining": 1}', None),
        ("dataset.json", '{"labels": {"background": 0, "x": "one"}, "numTraining": 1}', None),
        ("m.json", '{"1": "a", "1": "b"}', "json-map"),
        ("m.json", "not json at all", "json-map"),
        ("m.xml", b"<CaretExtension><LabelTable><Label Key='x'/>", None),
        (
            "m.xml",
            b"<CaretExtension><Label Key='1' Red='2' Green='0' Blue='0'/></CaretExtension>",
            None,
        ),
        ("m.xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><CaretExtension/>", "caret-xml"),
        ("notes.txt", "just some notes\n", None),
    ],
)
def test_malformed_inputs_raise_read_error(
    tmp_path: Path, name: str, content: str | bytes, fmt: str | None
) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(ReadError) as info:
        read_label_table(path, format=fmt)
    assert info.value.path == str(path)


def test_read_error_chains_the_cause(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as info:
        read_label_table(_write(tmp_path, "a.csv", "LabelValue,Name\n1.5,x\n"))
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ReadError, match="procedural"):
        read_label_table(_write(tmp_path, "p.txt", "# Color procedural file x\n0 0 0 0\n"))
    with pytest.raises(ReadError):
        read_label_table(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("fmt", "entry"),
    [
        ("itksnap", LabelEntry(1, 'say "hi"')),
        ("segio-json", LabelEntry(1, "two\nlines")),
        ("freesurfer", LabelEntry(1, "left kidney")),
        ("slicer-csv", LabelEntry(1, 'a "quoted" name')),
        ("slicer-ctbl", LabelEntry(1, "tab\tname")),
        ("caret-xml", LabelEntry(1, "bell\x07")),
        ("nnunet", LabelEntry(2, "gap")),
        ("json-map", LabelEntry(0, "background")),
        ("itksnap", LabelEntry(1, "x", (1.2, 0.0, 0.0))),
        ("itksnap", LabelEntry(1, "second layer", layer=1)),
    ],
)
def test_writers_refuse_what_the_format_cannot_hold(
    tmp_path: Path, fmt: str, entry: LabelEntry
) -> None:
    with pytest.raises(WriteError) as info:
        write_label_table(tmp_path / "out", [entry], format=fmt)
    assert info.value.path == str(tmp_path / "out")


def test_writers_refuse_duplicate_values(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="twice"):
        write_label_table(tmp_path / "x.json", [ENTRIES[0], ENTRIES[0]], format="segio-json")


# -- fuzzing ----------------------------------------------------------------------------------

_PREFIXES = [
    "",
    "# ITK-SnAP Label Description File\n",
    "# Color table file x\n",
    "LabelValue,Name,Color_R,Color_G,Color_B,Color_A\n",
    '{"format": "segio-labels", "version": 1, "segments": [',
    '{"labels": {',
    '{"1": ',
    "<CaretExtension><LabelTable>",
    "1 name 1 2 3 0\n",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(_PREFIXES),
    body=st.one_of(st.text(max_size=200), st.binary(max_size=200)),
    suffix=st.sampled_from([".json", ".csv", ".tsv", ".txt", ".label", ".ctbl", ".xml", ""]),
)
def test_random_input_gives_entries_or_read_error(
    prefix: str, body: str | bytes, suffix: str
) -> None:
    data = prefix.encode() + (
        body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"table{suffix}"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = read_label_table(path)
            except ReadError:
                return
    assert isinstance(result, list)
    assert all(isinstance(e, LabelEntry) and e.value > 0 for e in result)


def test_writers_accept_numpy_scalars(tmp_path: Path) -> None:
    import numpy as np

    entry = LabelEntry(np.int64(3), "x", tuple(np.float32([0.5, 0.25, 1.0])), np.float64(0.5))  # type: ignore[arg-type]
    write_label_table(tmp_path / "t.json", [entry], format="segio-json")
    assert read_label_table(tmp_path / "t.json") == [LabelEntry(3, "x", (0.5, 0.25, 1.0), 0.5)]


# -- hostile tables ---------------------------------------------------------------------------


def test_a_fifo_or_device_table_is_refused_not_waited_on(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(ReadError, match="FIFO"):
        read_label_table(tmp_path / "pipe.txt", format="freesurfer")
    with pytest.raises(ReadError, match="character device"):
        read_label_table("/dev/zero", format="freesurfer")


def test_find_sidecar_skips_links_out_of_the_folder_without_opening_them(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_text('{"1": "liver"}')
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "x.json").symlink_to(tmp_path / "outside" / "secret.json")
    (folder / "x.labels.csv").symlink_to("/dev/zero")
    (folder / "x.ctbl").write_text("1 liver 255 0 0 255\n")
    with pytest.warns(UserWarning, match="outside the folder") as caught:
        assert find_sidecar(folder / "x.nii.gz") == folder / "x.ctbl"
    assert len(caught) == 2 and all("x.nii" not in str(w.message) for w in caught)
    (folder / "inside.json").write_text('{"1": "spleen"}')
    (folder / "y.json").symlink_to("inside.json")  # a link within the folder is fine
    assert find_sidecar(folder / "y.nii") == folder / "y.json"


def test_deeply_nested_json_is_a_read_error_without_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "segio-labels", "version": 1, "segments": ' + "[" * 100_000)
    with pytest.raises(ReadError, match="nested too deeply") as info:
        read_label_table(path)
    chain: BaseException | None = info.value
    while chain is not None:
        assert not isinstance(chain, RecursionError)
        chain = chain.__cause__ or chain.__context__


def test_thousands_of_repeated_labels_are_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "lut.txt"
    path.write_text("1 liver 255 0 0 0\n" * 5000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = read_label_table(path, format="freesurfer")
    assert [e.name for e in entries] == ["liver"]
    assert [str(w.message) for w in caught] == [
        f"{path}: 4999 label(s) listed twice (1, 1, 1, 1, 1, ...); keeping the first of each"
    ]


def test_a_huge_label_value_gets_a_colour_without_overflow(tmp_path: Path) -> None:
    path = tmp_path / "t.labels.csv"
    write_label_table(
        path, [LabelEntry(10**400, "big"), LabelEntry(2**64, "x")], format="slicer-csv"
    )
    assert [e.value for e in read_label_table(path)] == [10**400, 2**64]


def test_a_colour_table_index_slicer_cannot_hold_is_refused_on_write(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="above 1000000"):
        write_label_table(tmp_path / "t.ctbl", [LabelEntry(2**32 - 1, "big")], format="slicer-ctbl")
