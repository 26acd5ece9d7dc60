"""Terminology: Slicer's TerminologyEntry grammar, SRT -> SCT, code matching."""

from __future__ import annotations

import pytest

from segio.errors import ValidationError
from segio.terminology import (
    ANATOMIC_CONTEXT,
    DEFAULT_TISSUE,
    DICOM_CONTEXT,
    SLICER_CONTEXT,
    Code,
    Terminology,
)

#: Slicer's default for a new segment (spec §1.6).
DEFAULT_ENTRY = (
    "Segmentation category and type - 3D Slicer General Anatomy list"
    "~SCT^85756007^Tissue~SCT^85756007^Tissue~^^"
    "~Anatomic codes - DICOM master list~^^~^^"
)
#: Slicer's documented example with a region and a region modifier (spec §1.6).
REGION_ENTRY = (
    "Segmentation category and type - DICOM master list"
    "~SCT^49755003^Morphologically Altered Structure~SCT^4147007^Mass~^^"
    "~Anatomic codes - DICOM master list~SCT^23451007^Adrenal gland~SCT^24028007^Right"
)
MODIFIER_ENTRY = (
    "Segmentation category and type - 3D Slicer General Anatomy list"
    "~SCT^123037004^Anatomical Structure~SCT^64033007^Kidney~SCT^24028007^Right"
    "~Anatomic codes - DICOM master list~^^~^^"
)
REGION_ONLY_ENTRY = (
    "Segmentation category and type - DICOM master list"
    "~SCT^49755003^Morphologically Altered Structure~SCT^4147007^Mass~^^"
    "~Anatomic codes - DICOM master list~SCT^39607008^Lung~^^"
)


def entry(*parts: str) -> str:
    return "~".join(parts)


# -- round trips --------------------------------------------------------------------------


def test_default_entry_parses_to_tissue() -> None:
    t = Terminology.from_slicer(DEFAULT_ENTRY)
    assert t.category == Code("SCT", "85756007", "Tissue")
    assert t.type == Code("SCT", "85756007", "Tissue")
    assert t.type_modifier is None
    assert t.region is None
    assert t.region_modifier is None
    assert t.context == SLICER_CONTEXT
    assert t.region_context == ANATOMIC_CONTEXT
    assert t == DEFAULT_TISSUE
    assert DEFAULT_TISSUE.to_slicer() == DEFAULT_ENTRY


@pytest.mark.parametrize("text", [DEFAULT_ENTRY, REGION_ENTRY, MODIFIER_ENTRY, REGION_ONLY_ENTRY])
def test_round_trip_is_exact(text: str) -> None:
    t = Terminology.from_slicer(text)
    assert t.to_slicer() == text
    assert Terminology.from_slicer(t.to_slicer()) == t


def test_region_and_region_modifier_are_parsed() -> None:
    t = Terminology.from_slicer(REGION_ENTRY)
    assert t.context == DICOM_CONTEXT
    assert t.category == Code("SCT", "49755003", "Morphologically Altered Structure")
    assert t.type == Code("SCT", "4147007", "Mass")
    assert t.type_modifier is None
    assert t.region == Code("SCT", "23451007", "Adrenal gland")
    assert t.region_modifier == Code("SCT", "24028007", "Right")
    assert [c.value for c in t.codes()] == ["49755003", "4147007", "23451007", "24028007"]


def test_type_modifier_is_parsed() -> None:
    t = Terminology.from_slicer(MODIFIER_ENTRY)
    assert t.type_modifier == Code("SCT", "24028007", "Right")
    assert t.region is None
    assert len(t.codes()) == 3


def test_built_terminology_serialises_in_slicer_order() -> None:
    t = Terminology(
        category=Code("SCT", "123037004", "Anatomical Structure"),
        type=Code("SCT", "39607008", "Lung"),
        type_modifier=Code("SCT", "7771000", "Left"),
        region=Code("SCT", "51185008", "Thorax"),
        region_modifier=Code("SCT", "24028007", "Right"),
        context="ctx",
        region_context="rctx",
    )
    assert t.to_slicer() == (
        "ctx~SCT^123037004^Anatomical Structure~SCT^39607008^Lung~SCT^7771000^Left"
        "~rctx~SCT^51185008^Thorax~SCT^24028007^Right"
    )
    assert Terminology.from_slicer(t.to_slicer()) == t


def test_empty_meaning_round_trips() -> None:
    text = entry(
        SLICER_CONTEXT, "SCT^85756007^", "SCT^85756007^", "^^", ANATOMIC_CONTEXT, "^^", "^^"
    )
    t = Terminology.from_slicer(text)
    assert t.type == Code("SCT", "85756007", "")
    assert t.to_slicer() == text


# -- Slicer's reading rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(DEFAULT_ENTRY.rsplit("~", 1)[0], id="6-parts"),
        pytest.param(DEFAULT_ENTRY + "~^^", id="8-parts"),
        pytest.param("", id="empty"),
        pytest.param("SCT^85756007^Tissue", id="one-code"),
    ],
)
def test_entry_needs_exactly_seven_parts(text: str) -> None:
    with pytest.raises(ValidationError, match="expected 7"):
        Terminology.from_slicer(text)


@pytest.mark.parametrize(
    ("category", "type_"),
    [
        pytest.param("^^", "SCT^85756007^Tissue", id="category-none"),
        pytest.param("SCT^85756007", "SCT^85756007^Tissue", id="category-two-parts"),
        pytest.param("SCT^1^a^b", "SCT^85756007^Tissue", id="category-four-parts"),
        pytest.param("^85756007^Tissue", "SCT^85756007^Tissue", id="category-no-scheme"),
        pytest.param("SCT^85756007^Tissue", "^^", id="type-none"),
        pytest.param("SCT^85756007^Tissue", "SCT^^Tissue", id="type-no-value"),
    ],
)
def test_category_and_type_must_be_complete(category: str, type_: str) -> None:
    text = entry(SLICER_CONTEXT, category, type_, "^^", ANATOMIC_CONTEXT, "^^", "^^")
    with pytest.raises(ValidationError, match="category or a type"):
        Terminology.from_slicer(text)


@pytest.mark.parametrize("modifier", ["SCT^24028007", "SCT^^Right", "^24028007^Right", "a^b^c^d"])
def test_incomplete_modifier_is_ignored(modifier: str) -> None:
    text = entry(
        SLICER_CONTEXT,
        "SCT^85756007^Tissue",
        "SCT^85756007^Tissue",
        modifier,
        ANATOMIC_CONTEXT,
        "SCT^39607008^Lung",
        modifier,
    )
    t = Terminology.from_slicer(text)
    assert t.type_modifier is None
    assert t.region == Code("SCT", "39607008", "Lung")
    assert t.region_modifier is None


@pytest.mark.parametrize("region", ["^^", "SCT^39607008", ""])
def test_region_modifier_is_ignored_without_region(region: str) -> None:
    text = entry(
        SLICER_CONTEXT,
        "SCT^85756007^Tissue",
        "SCT^85756007^Tissue",
        "^^",
        ANATOMIC_CONTEXT,
        region,
        "SCT^24028007^Right",
    )
    t = Terminology.from_slicer(text)
    assert t.region is None
    assert t.region_modifier is None


def test_region_modifier_without_region_is_refused_when_built() -> None:
    with pytest.raises(ValidationError, match="region modifier"):
        Terminology(
            category=Code("SCT", "85756007", "Tissue"),
            type=Code("SCT", "85756007", "Tissue"),
            region_modifier=Code("SCT", "24028007", "Right"),
        )


def test_category_and_type_must_be_codes() -> None:
    with pytest.raises(ValidationError, match="category code and a type code"):
        Terminology(category="SCT^85756007^Tissue", type=Code("SCT", "1", "x"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Terminology(category=Code("SCT", "1", "x"), type=None)  # type: ignore[arg-type]


# -- SNOMED-RT and superseded codes -------------------------------------------------------


def test_srt_tissue_becomes_sct() -> None:
    code = Code("SRT", "T-D0050", "Tissue").normalized()
    assert code == Code("SCT", "85756007", "Tissue")


def test_srt_anatomical_structure_becomes_current_sct() -> None:
    code = Code("SRT", "T-D000A", "Anatomical Structure").normalized()
    assert code.key == ("SCT", "123037004")
    assert code.meaning == "Anatomical Structure"


def test_superseded_sct_code_is_normalised() -> None:
    assert Code("SCT", "91723000", "Anatomical Structure").normalized().key == (
        "SCT",
        "123037004",
    )


def test_unknown_codes_are_left_alone() -> None:
    for code in (
        Code("SRT", "T-NOT-A-CODE", "x"),
        Code("SCT", "39607008", "Lung"),
        Code("DCM", "113076", "Segmentation"),
    ):
        assert code.normalized() == code


def test_legacy_entry_is_normalised_on_read() -> None:
    legacy = entry(
        SLICER_CONTEXT,
        "SRT^T-D0050^Tissue",
        "SRT^T-D0050^Tissue",
        "^^",
        ANATOMIC_CONTEXT,
        "^^",
        "^^",
    )
    t = Terminology.from_slicer(legacy)
    assert t.category == Code("SCT", "85756007", "Tissue")
    assert t.type == Code("SCT", "85756007", "Tissue")
    assert t.to_slicer() == DEFAULT_ENTRY
    assert t.matches(DEFAULT_TISSUE)


def test_terminology_normalized_touches_every_code() -> None:
    t = Terminology(
        category=Code("SRT", "T-D000A", "Anatomical Structure"),
        type=Code("SRT", "T-D0050", "Tissue"),
        type_modifier=Code("SCT", "91723000", "x"),
        region=Code("SCT", "91723000", "y"),
        region_modifier=Code("SRT", "T-D0050", "z"),
    ).normalized()
    assert [c.key for c in t.codes()] == [
        ("SCT", "123037004"),
        ("SCT", "85756007"),
        ("SCT", "123037004"),
        ("SCT", "123037004"),
        ("SCT", "85756007"),
    ]


# -- matching -----------------------------------------------------------------------------


def test_code_matches_ignores_meaning() -> None:
    lung = Code("SCT", "39607008", "Lung")
    assert lung.matches(Code("SCT", "39607008", "Poumon"))
    assert lung.matches(Code("SCT", "39607008", ""))
    assert not lung.matches(Code("SCT", "39607009", "Lung"))
    assert not lung.matches(Code("DCM", "39607008", "Lung"))
    assert Code("SRT", "T-D0050", "Tissue").matches(Code("SCT", "85756007", "Other words"))
    assert Code("SCT", "91723000", "a").matches(Code("SCT", "123037004", "b"))
    # Codes compare as values too: meaning is part of equality, not of matching.
    assert lung != Code("SCT", "39607008", "Poumon")


def test_terminology_matches_ignores_meanings_and_contexts() -> None:
    a = Terminology.from_slicer(REGION_ENTRY)
    b = Terminology(
        category=Code("SCT", "49755003", "altered"),
        type=Code("SCT", "4147007", "mass"),
        region=Code("SCT", "23451007", "adrenal"),
        region_modifier=Code("SCT", "24028007", "R"),
        context="another context",
        region_context="another region context",
    )
    assert a.matches(b)
    assert b.matches(a)
    no_modifier = Terminology(category=b.category, type=b.type, region=b.region)
    assert not a.matches(no_modifier)
    assert not no_modifier.matches(a)
    assert not a.matches(DEFAULT_TISSUE)


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["~", "^", "|"])
@pytest.mark.parametrize("field", ["scheme", "value", "meaning"])
@pytest.mark.parametrize("slot", ["category", "type_modifier", "region_modifier"])
def test_to_slicer_refuses_separators_in_codes(char: str, field: str, slot: str) -> None:
    pieces = {"scheme": "SCT", "value": "85756007", "meaning": "Tissue"}
    pieces[field] = pieces[field] + char + "x"
    bad = Code(**pieces)
    good = Code("SCT", "85756007", "Tissue")
    region = Code("SCT", "39607008", "Lung")
    fields = {"category": good, "type": good, "region": region, slot: bad}
    t = Terminology(**fields)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="cannot hold"):
        t.to_slicer()


@pytest.mark.parametrize("char", ["~", "|"])
@pytest.mark.parametrize("field", ["context", "region_context"])
def test_to_slicer_refuses_separators_in_contexts(field: str, char: str) -> None:
    t = Terminology(
        category=Code("SCT", "85756007", "Tissue"),
        type=Code("SCT", "85756007", "Tissue"),
        **{field: f"list{char}v2"},  # type: ignore[arg-type]
    )
    with pytest.raises(ValidationError, match="context"):
        t.to_slicer()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("", "85756007", "Tissue"), id="empty-scheme"),
        pytest.param(("SCT", "", "Tissue"), id="empty-value"),
        pytest.param(("SCT", 85756007, "Tissue"), id="int-value"),
        pytest.param(("SCT", "85756007", None), id="none-meaning"),
        pytest.param((None, "85756007", "Tissue"), id="none-scheme"),
    ],
)
def test_code_validation(args: tuple[object, object, object]) -> None:
    with pytest.raises(ValidationError):
        Code(*args)  # type: ignore[arg-type]


def test_code_is_frozen_and_prints_slicer_triple() -> None:
    code = Code("SCT", "39607008", "Lung")
    assert str(code) == "SCT^39607008^Lung"
    assert code.key == ("SCT", "39607008")
    with pytest.raises(AttributeError):
        code.value = "1"  # type: ignore[misc]
    assert hash(code) == hash(Code("SCT", "39607008", "Lung"))
