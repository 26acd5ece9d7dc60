"""Coded terminology for label-only inputs (issue 14, item 5): the catalogue of DICOM/SNOMED
codes, its name look-up, coding segments, explicit terminology tables, and the DICOM SEG
writer coding segments by name.

Every code segio emits must be the standard's: the bundled table is checked row by row
against pydicom's dictionaries, and the acceptance case (a NIfTI with TotalSegmentator-style
names becoming a DICOM SEG) is read back by highdicom.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segio
from segio.cli import cli
from segio.errors import ReadError, WriteError
from segio.labels.catalogue import (
    CATEGORIES,
    LEFT,
    RIGHT,
    apply_table,
    code_segments,
    lookup,
    normalize,
    table_rows,
)
from segio.model import Layer, Segment, Segmentation
from segio.terminology import DEFAULT_TISSUE, Code, Terminology
from segio.testing.series import reference_series
from segio.testing.synthetic import grid

# TotalSegmentator's class names ("total" v2, 117 classes; "total_v1", 104 classes).
_VERTEBRAE = [
    f"vertebrae_{p}{n}" for p, top in (("C", 7), ("T", 12), ("L", 5)) for n in range(1, top + 1)
]
_RIBS = [f"rib_{side}_{n}" for side in ("left", "right") for n in range(1, 13)]
_PAIRS = [
    f"{name}_{side}"
    for name in (
        "kidney", "adrenal_gland", "iliac_artery", "iliac_vena", "humerus", "scapula",
        "clavicula", "femur", "hip", "gluteus_maximus", "gluteus_medius", "gluteus_minimus",
        "autochthon", "iliopsoas",
    )
    for side in ("left", "right")
]  # fmt: skip
TOTAL_V1 = [
    "spleen", "gallbladder", "liver", "stomach", "aorta", "inferior_vena_cava",
    "portal_vein_and_splenic_vein", "pancreas", "lung_upper_lobe_left", "lung_lower_lobe_left",
    "lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right", "esophagus",
    "trachea", "heart_myocardium", "heart_atrium_left", "heart_ventricle_left",
    "heart_atrium_right", "heart_ventricle_right", "pulmonary_artery", "brain", "small_bowel",
    "duodenum", "colon", "sacrum", "face", "urinary_bladder",
    *_VERTEBRAE, *_RIBS, *_PAIRS,
]  # fmt: skip
TOTAL_V2_EXTRA = [
    "thyroid_gland", "prostate", "kidney_cyst_left", "kidney_cyst_right", "vertebrae_S1",
    "heart", "pulmonary_vein", "brachiocephalic_trunk", "subclavian_artery_right",
    "subclavian_artery_left", "common_carotid_artery_right", "common_carotid_artery_left",
    "brachiocephalic_vein_left", "brachiocephalic_vein_right", "atrial_appendage_left",
    "superior_vena_cava", "spinal_cord", "skull", "sternum", "costal_cartilages",
]  # fmt: skip
#: Names with no concept in pydicom's dictionaries: they stay generic (never approximated).
KNOWN_GENERIC = {
    "portal_vein_and_splenic_vein",  # no combined concept
    "heart_myocardium",  # SCT 74281007 is not in pydicom
    "vertebrae_S1",  # no S1 vertebra concept (sacrum is not the same)
    *(f"{m}_{s}" for m in ("gluteus_maximus", "gluteus_medius", "gluteus_minimus",
                           "autochthon", "iliopsoas") for s in ("left", "right")),
}  # fmt: skip


def _codes(term: Terminology | None) -> tuple[object, ...] | None:
    """(category, type, type modifier, region, region modifier) as (scheme, value) keys."""
    if term is None:
        return None
    parts = (term.category, term.type, term.type_modifier, term.region, term.region_modifier)
    return tuple(None if c is None else c.key for c in parts)


ANATOMY = ("SCT", "123037004")
LESION = ("SCT", "49755003")
L, R = ("SCT", "7771000"), ("SCT", "24028007")


# -- the bundled table is the standard's ----------------------------------------------------


def _pydicom_meanings() -> dict[tuple[str, str], set[str]]:
    from pydicom.sr._concepts_dict import concepts

    found: dict[tuple[str, str], set[str]] = {}
    for scheme, keywords in concepts.items():
        for by_value in keywords.values():
            for value, (meaning, _) in by_value.items():
                found.setdefault((scheme, value), set()).add(meaning)
    return found


def test_every_bundled_code_is_in_pydicom_with_its_meaning() -> None:
    from pydicom.sr._cid_dict import cid_concepts
    from pydicom.sr._concepts_dict import concepts
    from pydicom.sr._snomed_dict import mapping

    meanings = _pydicom_meanings()
    rows = table_rows()
    assert len(rows) > 100
    for row in rows:
        for code in (row.terminology.type, row.terminology.region):
            if code is not None:
                assert code.meaning in meanings.get(code.key, set()), (row.names, str(code))
    # categories: CID 7150, Anatomical Structure as the SNOMED CT code of SRT T-D000A
    cid7150 = {
        (s, v): m for s, kws in cid_concepts[7150].items() for kw in kws
        for v, (m, _) in concepts[s][kw].items()
    }  # fmt: skip
    for short, code in CATEGORIES.items():
        if short == "anatomy":
            assert mapping["SRT"]["T-D000A"] == code.value
            assert Code("SCT", "91723000", "x").matches(code)
            assert cid7150[("SCT", "91723000")] == code.meaning
        else:
            assert cid7150[code.key] == code.meaning, short
    cid244 = {v: m for s, kws in cid_concepts[244].items() for kw in kws
              for v, (m, _) in concepts[s][kw].items()}  # fmt: skip
    assert cid244[LEFT.value] == LEFT.meaning and cid244[RIGHT.value] == RIGHT.meaning


def test_no_two_rows_claim_a_name() -> None:
    keys = [normalize(name) for row in table_rows() for name in row.names]
    assert len(keys) == len(set(keys))


# -- TotalSegmentator and common model names ------------------------------------------------


def test_totalsegmentator_names_are_coded_except_those_pydicom_lacks() -> None:
    names = TOTAL_V1 + TOTAL_V2_EXTRA
    assert len(TOTAL_V1) == 104 and len(set(names)) == 104 + 20
    generic = {name for name in names if lookup(name) is None}
    assert generic == KNOWN_GENERIC


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("liver", (ANATOMY, ("SCT", "10200004"), None, None, None)),
        ("spleen", (ANATOMY, ("SCT", "78961009"), None, None, None)),
        ("kidney_left", (ANATOMY, ("SCT", "64033007"), L, None, None)),
        ("kidney_right", (ANATOMY, ("SCT", "64033007"), R, None, None)),
        ("aorta", (ANATOMY, ("SCT", "15825003"), None, None, None)),
        ("vertebrae_L1", (ANATOMY, ("SCT", "66794005"), None, None, None)),
        ("vertebrae_C3", (ANATOMY, ("SCT", "113205007"), None, None, None)),
        ("vertebrae_T12", (ANATOMY, ("SCT", "23215003"), None, None, None)),
        ("rib_left_1", (ANATOMY, ("SCT", "113197003"), L, None, None)),
        ("rib_right_12", (ANATOMY, ("SCT", "113197003"), R, None, None)),
        ("heart_atrium_left", (ANATOMY, ("SCT", "82471001"), None, None, None)),
        ("heart_ventricle_right", (ANATOMY, ("SCT", "53085002"), None, None, None)),
        ("lung_upper_lobe_left", (ANATOMY, ("SCT", "45653009"), L, None, None)),
        ("lung_middle_lobe_right", (ANATOMY, ("SCT", "72481006"), None, None, None)),
        ("kidney_cyst_left", (LESION, ("SCT", "367643001"), None, ("SCT", "64033007"), L)),
        ("iliac_vena_right", (ANATOMY, ("SCT", "244411005"), R, None, None)),
        ("urinary_bladder", (ANATOMY, ("SCT", "89837001"), None, None, None)),
        ("costal_cartilages", (ANATOMY, ("SCT", "50016007"), None, None, None)),
        # Decathlon / BraTS / KiTS / AMOS label names
        ("tumor", (LESION, ("SCT", "108369006"), None, None, None)),
        ("edema", (LESION, ("SCT", "79654002"), None, None, None)),
        ("pancreas", (ANATOMY, ("SCT", "15776009"), None, None, None)),
        ("hepatic vessel", (ANATOMY, ("SCT", "59820001"), None, ("SCT", "10200004"), None)),
        ("left atrium", (ANATOMY, ("SCT", "82471001"), None, None, None)),
        ("enhancing tumour", (LESION, ("NCIt", "C113842"), None, None, None)),
        ("postcava", (ANATOMY, ("SCT", "64131007"), None, None, None)),
        # CID 7151 meanings, with the category its sub-groups give
        ("Liver", (ANATOMY, ("SCT", "10200004"), None, None, None)),
        ("Fat", (("SCT", "85756007"), ("SCT", "55603005"), None, None, None)),
        ("Artery", (ANATOMY, ("SCT", "51114001"), None, None, None)),  # also in Tissue
        ("Necrosis", (LESION, ("SCT", "6574001"), None, None, None)),
        ("Kidney stent", (("SCT", "260787004"), ("DCM", "112175"), None, None, None)),
        ("Bile", (("SCT", "91720002"), ("SCT", "70150004"), None, None, None)),
        ("adipose tissue", (("SCT", "85756007"), ("SCT", "55603005"), None, None, None)),
        ("Innominate vein", (ANATOMY, ("SCT", "8887007"), None, None, None)),
    ],
)
def test_codes_of_common_names(name: str, expected: tuple[object, ...]) -> None:
    assert _codes(lookup(name)) == expected


# -- normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["kidney_left", "left kidney", "Kidney L", "kidney (left)", "KIDNEY-LEFT", "LeftKidney",
     "kidney_lt", "L. kidney", "Kidney, left", "  kidney\tleft "],
)  # fmt: skip
def test_side_anywhere_in_any_spelling(name: str) -> None:
    assert _codes(lookup(name)) == (ANATOMY, ("SCT", "64033007"), L, None, None)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("vertebrae_L1", "L1 vertebra"),
        ("vertebrae L1", "Vertebra_L1"),
        ("tumour", "tumor"),
        ("Tumours", "tumor"),
        ("oesophagus", "esophagus"),
        ("oedema", "Edema"),
        ("grey matter", "Gray Matter"),
        ("coronary_arteries", "coronary artery"),
        ("lymph nodes", "Lymph Node"),
        ("Kidney R", "right_kidney"),
        ("RightKidney", "kidney_rt"),
        ("L1Vertebra", "vertebrae_L1"),
        ("Structure of renal artery", "renal artery"),  # SNOMED CT name of a CID code
    ],
)
def test_spellings_that_mean_the_same(first: str, second: str) -> None:
    assert lookup(first) is not None
    assert _codes(lookup(first)) == _codes(lookup(second))


@pytest.mark.parametrize(
    "name",
    [
        "liverish",  # no fuzzy match
        "livers left",  # the liver is not paired
        "liver left",
        "kidney left right",  # two sides
        "left",
        "R",
        "L1",  # a level without "vertebra"
        "vertebrae_S1",
        "kidney_left_upper_pole",
        "Segment_1",
        "",
        "structure 7",
        "heart_myocardium",
    ],
)
def test_no_guess_for_names_that_do_not_match_exactly(name: str) -> None:
    assert lookup(name) is None


def test_a_paired_structure_without_side_has_no_modifier() -> None:
    assert _codes(lookup("kidney")) == (ANATOMY, ("SCT", "64033007"), None, None, None)
    assert lookup(123) is None  # type: ignore[arg-type]  # not a name at all


def test_lookups_are_fast_once_built() -> None:
    """Built once (cached); 100 look-ups well under 100 ms."""
    lookup("liver")
    names = [*TOTAL_V1, "Kidney (L)", "liverish", "Tumour"][:100]
    started = time.perf_counter()
    for name in names:
        lookup(name)
    assert time.perf_counter() - started < 0.1


# -- coding a segmentation ------------------------------------------------------------------


def _labelmap(names: list[str], kind: str = "oblique") -> Segmentation:
    geometry = grid(kind)
    array = np.zeros(geometry.shape, np.uint8)
    for value in range(1, len(names) + 1):
        array.reshape(-1)[value * 7 : value * 7 + 5] = value
    segments = [
        Segment(f"s{v}", name, color=(v / 10, 0.3, 0.6), label_value=v)
        for v, name in enumerate(names, start=1)
    ]
    return Segmentation(segments, [Layer(array, geometry)])


def test_code_segments_fills_only_uncoded_segments_in_place() -> None:
    segmentation = _labelmap(["liver", "Kidney R", "blob", "spleen"])
    own = Terminology(CATEGORIES["tissue"], Code("SCT", "85756007", "Tissue"))
    segmentation.segments["s4"].terminology = own  # "spleen", but coded by the user
    assert code_segments(segmentation) == ["s3"]
    terms = {s.id: s.terminology for s in segmentation.segments.values()}
    assert _codes(terms["s1"]) == (ANATOMY, ("SCT", "10200004"), None, None, None)
    assert _codes(terms["s2"]) == (ANATOMY, ("SCT", "64033007"), R, None, None)
    assert terms["s3"] is None
    assert terms["s4"] is own


# -- the acceptance case: NIfTI with anatomy names -> DICOM SEG -> highdicom ---------------------


ACCEPTANCE = {
    "liver": (ANATOMY, ("SCT", "10200004"), None),
    "spleen": (ANATOMY, ("SCT", "78961009"), None),
    "kidney_left": (ANATOMY, ("SCT", "64033007"), L),
    "aorta": (ANATOMY, ("SCT", "15825003"), None),
    "vertebrae_L1": (ANATOMY, ("SCT", "66794005"), None),
}


def test_nifti_with_anatomy_names_becomes_a_coded_seg(tmp_path: Path) -> None:
    pytest.importorskip("nibabel")
    hd = pytest.importorskip("highdicom")
    segmentation = _labelmap(list(ACCEPTANCE))
    source = tmp_path / "ai.nii.gz"
    segio.write(segmentation, source, sidecar="json-map")  # names only, as models write
    assert json.loads((tmp_path / "ai.json").read_text()) == {
        str(v): name for v, name in enumerate(ACCEPTANCE, 1)
    }
    series = reference_series(grid("oblique"), tmp_path / "ct")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every name is coded: no generic-Tissue warning
        segio.convert(source, tmp_path / "seg.dcm", reference=series)
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    found = {}
    for number in seg.segment_numbers:
        description = seg.get_segment_description(number)
        type_item = description.SegmentedPropertyTypeCodeSequence[0]
        modifier = type_item.get("SegmentedPropertyTypeModifierCodeSequence")
        category = description.segmented_property_category
        found[description.segment_label] = (
            (category.scheme_designator, category.value),
            (description.segmented_property_type.scheme_designator, type_item.CodeValue),
            (modifier[0].CodingSchemeDesignator, modifier[0].CodeValue) if modifier else None,
        )
    assert found == ACCEPTANCE
    back = segio.read(tmp_path / "seg.dcm")
    assert {s.name: _codes(s.terminology)[:3] for s in back.segments.values()} == ACCEPTANCE


def test_seg_names_every_generic_segment_in_one_warning(tmp_path: Path) -> None:
    segmentation = _labelmap(["liver", "blob", "thing 2", "Segment_4"], kind="axial")
    series = reference_series(grid("axial"), tmp_path / "ct")
    with pytest.warns(UserWarning) as caught:
        segio.write(segmentation, tmp_path / "seg.dcm", reference=series)
    messages = [str(w.message) for w in caught]
    assert messages == [
        "3 segment(s) have no code for their name and are written as generic Tissue: "
        "'blob', 'thing 2', 'Segment_4'; pass -I terminology=FILE (a table with codes) or set "
        "their terminology"
    ]
    back = {s.name: s.terminology for s in segio.read(tmp_path / "seg.dcm").segments.values()}
    assert back["blob"] is not None and back["blob"].matches(DEFAULT_TISSUE)
    assert _codes(back["liver"]) == (ANATOMY, ("SCT", "10200004"), None, None, None)
    assert all(s.terminology is None for s in segmentation.segments.values())  # not edited


# -- explicit tables: apply_table and -I terminology=FILE -------------------------------------

_CODE_COLUMNS = [
    f"{prefix}_{part}"
    for prefix in ("Category", "Type", "TypeModifier", "Region", "RegionModifier")
    for part in ("CodingScheme", "CodeValue", "CodeMeaning")
]
_CSV_HEAD = ",".join(["LabelValue", "Name", "Color_R", "Color_G", "Color_B", "Color_A"])
_CSV_HEAD += "," + ",".join(_CODE_COLUMNS)
_EMPTY3 = ",,"


def _csv_row(value: int, name: str, type_: str, modifier: str = _EMPTY3) -> str:
    category = "SCT,123037004,Anatomical Structure"
    return f"{value},{name},10,20,30,255,{category},{type_},{modifier},{_EMPTY3},{_EMPTY3}"


def test_apply_table_matches_by_name_then_by_value_and_warns_for_the_rest(tmp_path: Path) -> None:
    table = tmp_path / "codes.labels.csv"
    rows = [
        _csv_row(9, "Left Kidney", "SCT,64033007,Kidney", "SCT,7771000,Left"),  # by name
        _csv_row(2, "organ two", "SCT,78961009,Spleen"),  # by value: no segment of that name
        _csv_row(3, "liver", "SCT,10200004,Liver"),  # by name, although its value is 3
    ]
    table.write_text("\n".join([_CSV_HEAD, *rows]) + "\n", encoding="utf-8")
    segmentation = _labelmap(["kidney_left", "Segment_2", "blob", "liver"])
    own = lookup("aorta")
    segmentation.segments["s3"].terminology = own
    with pytest.warns(UserWarning, match=r"does not cover 1 segment\(s\): 'blob'; they keep"):
        coded = apply_table(segmentation, table)
    terms = {s.id: s.terminology for s in coded.segments.values()}
    assert _codes(terms["s1"]) == (ANATOMY, ("SCT", "64033007"), L, None, None)
    assert _codes(terms["s2"]) == (ANATOMY, ("SCT", "78961009"), None, None, None)
    assert terms["s3"] is not None and terms["s3"].matches(own)  # kept
    assert _codes(terms["s4"]) == (ANATOMY, ("SCT", "10200004"), None, None, None)
    assert segmentation.segments["s1"].terminology is None  # the input is not edited


def test_apply_table_reads_totalsegmentators_mapping_layout(tmp_path: Path) -> None:
    header = (
        ["Structure"]
        + [
            f"{seq}.{part}"
            for seq in (
                "SegmentedPropertyCategoryCodeSequence",
                "SegmentedPropertyTypeCodeSequence",
                "SegmentedPropertyTypeModifierCodeSequence",
                "AnatomicRegionSequence",
                "AnatomicRegionModifierSequence",
            )
            for part in ("CodingSchemeDesignator", "CodeValue", "CodeMeaning")
        ]
        + ["DicomRGBColor"]
    )
    anatomy = "SCT,123037004,Anatomical Structure"
    lines = [
        ",".join(header),
        f'kidney_right,{anatomy},SCT,64033007,Kidney,SCT,24028007,Right,,,,,,,"34,102,136"',
        "kidney_cyst_left,SCT,49755003,Morphologically Altered Structure,SCT,367643001,Cyst,"
        ',,,SCT,64033007,Kidney,SCT,7771000,Left,"83,175,221"',
    ]
    table = tmp_path / "totalsegmentator_snomed_mapping.csv"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    segmentation = _labelmap(["kidney_right", "kidney_cyst_left"])
    coded = apply_table(segmentation, table)
    terms = [s.terminology for s in coded.segments.values()]
    assert _codes(terms[0]) == (ANATOMY, ("SCT", "64033007"), R, None, None)
    assert _codes(terms[1]) == (LESION, ("SCT", "367643001"), None, ("SCT", "64033007"), L)


def test_apply_table_refuses_a_table_without_codes_or_with_clashing_rows(tmp_path: Path) -> None:
    plain = tmp_path / "names.json"
    plain.write_text('{"1": "liver", "2": "spleen"}', encoding="utf-8")
    with pytest.raises(ReadError, match="json-map table has no terminology codes") as info:
        apply_table(_labelmap(["liver"]), plain)
    assert "\n" not in str(info.value) and "names.json" in str(info.value)
    clash = tmp_path / "clash.labels.csv"
    rows = [
        _csv_row(1, "kidney left", "SCT,64033007,Kidney"),
        _csv_row(2, "Left_Kidney", "SCT,10200004,Liver"),
    ]
    clash.write_text("\n".join([_CSV_HEAD, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(ReadError, match="two different codes"):
        apply_table(_labelmap(["kidney_left"]), clash)


def test_terminology_read_option_for_every_format_and_the_cli(tmp_path: Path) -> None:
    table = tmp_path / "codes.labels.csv"
    rows = [_csv_row(1, "organ", "SCT,78961009,Spleen"), _csv_row(2, "other", "SCT,15825003,Aorta")]
    table.write_text("\n".join([_CSV_HEAD, *rows]) + "\n", encoding="utf-8")
    source = tmp_path / "in.seg.nrrd"
    segio.write(_labelmap(["organ", "other"]), source)
    read = segio.read(source, terminology=table)
    assert [_codes(s.terminology)[1] for s in read.segments.values()] == [
        ("SCT", "78961009"),
        ("SCT", "15825003"),
    ]
    assert read.provenance["terminology_table"] == str(table)
    with pytest.raises(ReadError, match="cannot open the terminology table"):
        segio.read(source, terminology=tmp_path / "missing.csv")
    result = CliRunner().invoke(
        cli, ["convert", str(source), str(tmp_path / "out.seg.nrrd"), "-I", f"terminology={table}"]
    )
    assert result.exit_code == 0, result.output
    out = segio.read(tmp_path / "out.seg.nrrd")
    assert [_codes(s.terminology)[1] for s in out.segments.values()] == [
        ("SCT", "78961009"),
        ("SCT", "15825003"),
    ]


def test_a_write_never_replaces_the_terminology_table_it_was_read_with(tmp_path: Path) -> None:
    """The table given as -I terminology=FILE is an input: even with force, a write
    naming it is refused and the table is left as it was."""
    table = tmp_path / "codes.labels.csv"
    table.write_text(
        "\n".join([_CSV_HEAD, _csv_row(1, "organ", "SCT,78961009,Spleen")]) + "\n",
        encoding="utf-8",
    )
    before = table.read_bytes()
    source = tmp_path / "in.seg.nrrd"
    segio.write(_labelmap(["organ"]), source)
    read = segio.read(source, terminology=table)
    with pytest.raises(WriteError, match="input"):
        segio.write(read, table, format="nrrd", force=True)
    assert table.read_bytes() == before
