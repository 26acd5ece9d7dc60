"""Coded terminology for segments that have a name only.

NIfTI and NRRD outputs of AI models say ``liver`` or ``kidney_left`` and nothing more,
but a DICOM SEG needs codes. This catalogue finds them by name in two sources:

* the DICOM standard's context groups as pydicom ships them (``pydicom.sr``): every
  concept of CID 7151 *Segmentation Property Types* by its code meaning ("Liver",
  "L1 vertebra", "Left atrium"), its pydicom keyword and its SNOMED CT fully specified name
  ("Kidney structure (body structure)"), with the category CID 7150 gives it through the
  sub-groups CID 7191-7198;
* segio's own table of the names models give their classes
  (``segio/labels/data/model_labels.tsv``: TotalSegmentator, the Decathlon, BraTS, KiTS,
  AMOS, BTCV), every code of which is checked against pydicom by the tests.

Names are compared after :func:`normalize`: case, separators (``_ - ( ) ,``, camel case),
word order, British spellings, ``vertebrae`` and other plurals, and ``L``/``R``/``left``/
``right`` anywhere. A side turns into a Left/Right modifier (SCT 7771000 / 24028007) of a
structure the standard or the table knows to be paired, as DICOM SEG and 3D Slicer code
them. Nothing else is guessed: a name that does not match exactly after normalisation
stays uncoded, so a code is never silently wrong. See ``docs/terminology.md``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, cast

from segio.terminology import DICOM_CONTEXT, Code, Terminology

if TYPE_CHECKING:
    from segio.model import Segmentation

__all__ = [
    "CATEGORIES",
    "LEFT",
    "RIGHT",
    "TableRow",
    "apply_table",
    "code_segments",
    "lookup",
    "normalize",
    "table_rows",
]

#: CID 7150 Segmentation Property Categories by the short names the bundled table uses.
#: "Anatomical Structure" is written as SCT 123037004, the code 3D Slicer, dcmqi and
#: TotalSegmentator write (pydicom's CID 7150 lists the newer 91723000, which
#: :class:`~segio.terminology.Code` treats as the same concept).
CATEGORIES: dict[str, Code] = {
    "anatomy": Code("SCT", "123037004", "Anatomical Structure"),
    "tissue": Code("SCT", "85756007", "Tissue"),
    "lesion": Code("SCT", "49755003", "Morphologically Abnormal Structure"),
    "object": Code("SCT", "260787004", "Physical object"),
    "substance": Code("SCT", "105590001", "Substance"),
    "body-substance": Code("SCT", "91720002", "Body Substance"),
    "function": Code("SCT", "246464006", "Function"),
    "spatial": Code("SCT", "309825002", "Spatial and Relational Concept"),
}
#: CID 244 Laterality, as type (or region) modifiers.
LEFT = Code("SCT", "7771000", "Left")
RIGHT = Code("SCT", "24028007", "Right")
_SIDES = {"left": LEFT, "right": RIGHT}
#: The sub-groups of CID 7151 that say a type's category, in the order a type listed in
#: several is settled: an artery is Anatomical Structure (not Tissue), Tissue is Tissue
#: (not Spatial), "Normal" and "Background" are Spatial (not Morphologically Abnormal).
_GROUPS = (
    (7192, "anatomy"),
    (7191, "tissue"),
    (7196, "spatial"),
    (7194, "lesion"),
    (7197, "body-substance"),
    (7198, "substance"),
    (7193, "object"),
    (7195, "function"),
)
_TABLE = "model_labels.tsv"
#: pydicom's concept dictionary: scheme -> keyword -> code value -> (meaning, CIDs).
_Concepts = dict[str, dict[str, dict[str, tuple[str, list[int]]]]]

# -- names -----------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[0-9])(?=[A-Z][a-z])")
_WORD = re.compile(r"[^\W_]+")
#: Whole-word rewrites: British to American spelling (as SNOMED CT writes), Latin
#: plurals, and the abbreviations of a side.
_WORDS = {
    "tumour": "tumor",
    "tumours": "tumors",
    "oesophagus": "esophagus",
    "oesophageal": "esophageal",
    "oedema": "edema",
    "haemorrhage": "hemorrhage",
    "haemorrhagic": "hemorrhagic",
    "haematoma": "hematoma",
    "haemangioma": "hemangioma",
    "caecum": "cecum",
    "coeliac": "celiac",
    "faeces": "feces",
    "foetal": "fetal",
    "foetus": "fetus",
    "ischaemia": "ischemia",
    "grey": "gray",
    "centre": "center",
    "fibre": "fiber",
    "vertebrae": "vertebra",
    "metastases": "metastasis",
    "l": "left",
    "lt": "left",
    "r": "right",
    "rt": "right",
}
_DROPPED = frozenset({"of", "the", "structure"})  # "Liver structure" is the liver


def _words(name: str) -> list[str]:
    """The words of a name, rewritten as :data:`_WORDS` says, without :data:`_DROPPED`."""
    text = unicodedata.normalize("NFKC", _CAMEL.sub(" ", name)).casefold()
    words = (_WORDS.get(word, word) for word in _WORD.findall(text))
    return [word for word in words if word not in _DROPPED]


def _key(words: Iterable[str]) -> str:
    return " ".join(sorted(words))


def normalize(name: str) -> str:
    """The form names are compared in: ``"Kidney (L)"``, ``"kidney_left"`` and
    ``"LeftKidney"`` all give ``"kidney left"`` (words, rewritten, in sorted order)."""
    return _key(_words(name))


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


# -- the catalogue ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    terminology: Terminology
    paired: bool  # the name may carry a side


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row of the bundled table: the names it covers and what they are coded as."""

    names: tuple[str, ...]
    terminology: Terminology
    paired: bool


class _Catalogue:
    """Normalised name -> entry; built once (:func:`_catalogue`), then read only."""

    def __init__(self, entries: dict[str, _Entry]) -> None:
        self.entries = entries
        self.vocabulary = frozenset(word for key in entries for word in key.split())

    def lookup(self, name: str) -> Terminology | None:
        words = _words(name)
        found = self._find(words)
        if found is None:  # a plural the catalogue has in the singular ("coronary arteries")
            singular = [w if w in self.vocabulary else _singular(w) for w in words]
            if singular != words:
                found = self._find(singular)
        return found

    def _find(self, words: list[str]) -> Terminology | None:
        if not words:
            return None
        entry = self.entries.get(_key(words))
        if entry is not None:
            return entry.terminology
        sides = [w for w in words if w in _SIDES]
        if len(sides) != 1:
            return None
        entry = self.entries.get(_key(w for w in words if w not in _SIDES))
        if entry is None or not entry.paired:
            return None
        return _with_side(entry.terminology, _SIDES[sides[0]])


def _with_side(term: Terminology, side: Code) -> Terminology | None:
    """The side as the modifier of the region when there is one (a cyst of the left
    kidney), else of the type (the left kidney); None when that modifier is taken."""
    if term.region is not None:
        return None if term.region_modifier else replace(term, region_modifier=side)
    return None if term.type_modifier else replace(term, type_modifier=side)


@lru_cache(maxsize=1)
def _catalogue() -> _Catalogue:
    """Built on first use: the CID concepts, then the bundled table over them."""
    entries = _cid_entries()
    paired_types = set()
    for row in table_rows():
        entry = _Entry(row.terminology, row.paired)
        for name in row.names:
            entries[normalize(name)] = entry
        if row.paired and row.terminology.region is None:
            paired_types.add(row.terminology.type.key)
    for key, entry in entries.items():
        if not entry.paired and entry.terminology.type.key in paired_types:
            entries[key] = _Entry(entry.terminology, True)
    return _Catalogue(entries)


def _cid_entries() -> dict[str, _Entry]:
    """Every CID 7151 type under its meaning, keyword and SNOMED CT name; a name that two
    concepts share is left out (ambiguous). Paired: pydicom also has "Left <meaning>"."""
    from pydicom.sr._cid_dict import cid_concepts
    from pydicom.sr._concepts_dict import concepts as pydicom_concepts

    concepts = cast(_Concepts, pydicom_concepts)

    category: dict[tuple[str, str], str] = {}
    for cid, short in reversed(_GROUPS):  # the first group listed wins
        for scheme, keywords in cid_concepts[cid].items():
            category.update({(scheme, kw): short for kw in keywords})
    names: dict[tuple[str, str], set[str]] = {}  # code -> normalised names
    types: dict[tuple[str, str], Terminology] = {}
    for scheme, keywords in cid_concepts[7151].items():
        for keyword in keywords:
            for value, (meaning, _) in concepts[scheme][keyword].items():
                code = Code(scheme, value, meaning)
                types[code.key] = Terminology(
                    CATEGORIES[category[(scheme, keyword)]], code, context=DICOM_CONTEXT
                )
                names.setdefault(code.key, set()).update({normalize(meaning), normalize(keyword)})
    lateral: set[str] = set()
    for scheme, meaning, value in _all_concepts(concepts):
        if meaning[:6].casefold().startswith(("left ", "right ")):
            lateral.add(_key(_words(meaning)[1:]))
        if meaning.endswith("(body structure)") and (scheme, value) in names:
            names[(scheme, value)].add(normalize(meaning[: -len("(body structure)")]))
    owners: dict[str, set[tuple[str, str]]] = {}
    for code_key, keys in names.items():
        for key in keys:
            owners.setdefault(key, set()).add(code_key)
    return {
        key: _Entry(types[code_key], key in lateral)
        for key, codes in owners.items()
        if key and len(codes) == 1
        for code_key in codes
    }


def _all_concepts(concepts: _Concepts) -> Iterator[tuple[str, str, str]]:
    for scheme, keywords in concepts.items():
        for by_value in keywords.values():
            for value, (meaning, _) in by_value.items():
                yield scheme, meaning, value


@lru_cache(maxsize=1)
def table_rows() -> tuple[TableRow, ...]:
    """The bundled table of model label names, parsed (the tests check it row by row)."""
    text = resources.files("segio.labels").joinpath("data", _TABLE).read_text(encoding="utf-8")
    rows = []
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    for line in lines[1:]:  # the first is the header
        names, category, type_, region, sides = (line.split("\t") + [""] * 5)[:5]
        rows.append(
            TableRow(
                names=tuple(n.strip() for n in names.split("|")),
                terminology=Terminology(
                    CATEGORIES[category],
                    _code(type_),
                    region=_code(region) if region else None,
                    context=DICOM_CONTEXT,
                ),
                paired=sides == "paired",
            )
        )
    return tuple(rows)


def _code(text: str) -> Code:
    scheme, value, meaning = text.split("^")
    return Code(scheme, value, meaning)


# -- the public functions ------------------------------------------------------------------


def lookup(name: str) -> Terminology | None:
    """The DICOM codes for a segment name, or None when the catalogue has no exact match.

    ``lookup("kidney_left")`` is Anatomical Structure / Kidney (SCT 64033007) / Left
    (SCT 7771000); ``lookup("vertebrae_L1")`` is L1 vertebra (SCT 66794005);
    ``lookup("liverish")`` is None. The first call builds the catalogue (a few tenths of a
    second, mostly importing pydicom's dictionaries); later calls are a dictionary look-up.
    """
    if not isinstance(name, str):
        return None
    return _catalogue().lookup(name)


def code_segments(segmentation: Segmentation) -> list[str]:
    """Give every segment without terminology the codes :func:`lookup` finds for its name.

    Edits ``segmentation`` in place (codes are metadata: no voxel is copied, and derived
    representations stay valid); segments that already have codes are never touched.
    Returns the ids of the segments that stayed uncoded, in segment order.
    """
    generic = []
    for segment in segmentation.segments.values():
        if segment.terminology is not None:
            continue
        found = lookup(segment.name)
        if found is None:
            generic.append(segment.id)
        else:
            segment.terminology = found
    return generic


def apply_table(
    segmentation: Segmentation, path: str | os.PathLike[str], *, copy: bool = True
) -> Segmentation:
    """Set segments' terminology from an explicit table (see :mod:`segio.labels.coding`).

    Returns a copy unless ``copy=False`` (then ``segmentation`` itself is edited, as
    :func:`segio.read` does for ``terminology=FILE``).
    """
    from segio.labels.coding import apply_table as apply

    return apply(segmentation, path, copy=copy)
